#!/usr/bin/env python3
"""Resources of the default lab: runs `spotdrill lab up` (release build) for 25 s and prints the CPU and
memory of the lab process and its node processes, measured from /proc over the last 20 s.
Usage: cargo build --release && python3 bench/lab-resources.py [PLAN]"""
import os
import signal
import subprocess
import sys
import time
plan = sys.argv[1:] or ["experiments/lab-game-day.yaml"]
p = subprocess.Popen(["./target/release/spotdrill", "lab", "up", *plan, "--dir", "/tmp/spotdrill-lab-resources"], stdout=subprocess.PIPE, text=True)
first = p.stdout.readline()
t_ready = time.time()
def procs():
    out = [p.pid]
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                st = open(f"/proc/{pid}/stat").read()
                ppid = int(st.rsplit(")",1)[1].split()[1])
                if ppid == p.pid: out.append(int(pid))
            except Exception: pass
    return out
def usage(pids):
    cpu = 0; rss = 0
    for pid in pids:
        try:
            f = open(f"/proc/{pid}/stat").read().rsplit(")",1)[1].split()
            cpu += (int(f[11]) + int(f[12])) / 100
            for l in open(f"/proc/{pid}/status"):
                if l.startswith("VmRSS:"): rss += int(l.split()[1])
        except Exception: pass
    return cpu, rss
time.sleep(5)
pids = procs(); c0, _ = usage(pids); t0 = time.time()
time.sleep(20)
c1, rss = usage(pids); t1 = time.time()
print(f"processes {len(pids)}; CPU {100*(c1-c0)/(t1-t0):.1f}% of one core ({100*(c1-c0)/(t1-t0)/2:.1f}% of the 2-core machine); RSS total {rss/1024:.0f} MB")
p.send_signal(signal.SIGINT); p.wait()
