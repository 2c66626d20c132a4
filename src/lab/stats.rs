//! What the lab costs the machine: CPU and resident memory of the lab process and its node
//! processes, read from `/proc` (Linux).

use std::time::Instant;

/// Clock ticks per second in `/proc/PID/stat` (USER_HZ, 100 on every Linux architecture
/// spotdrill builds for).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU time and memory of a set of processes at one moment.
#[derive(Clone, Debug)]
pub struct Reading {
    pub at: Instant,
    /// CPU seconds (user + system) of each process, by pid.
    pub cpu_s: Vec<(u32, f64)>,
    /// Resident memory of all processes together, in bytes.
    pub rss_bytes: u64,
}

/// Read the processes' CPU time and memory; processes that are gone are left out.
pub fn read(pids: &[u32]) -> Reading {
    let page = 4096_u64;
    let mut cpu_s = Vec::new();
    let mut rss_bytes = 0;
    for &pid in pids {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The command name may hold spaces: fields start after the last ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // After the name: state is field 3 (index 0 here); utime 14, stime 15, rss 24.
        let num = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<u64>().ok());
        if let (Some(utime), Some(stime)) = (num(14), num(15)) {
            cpu_s.push((pid, (utime + stime) as f64 / TICKS_PER_SECOND));
        }
        rss_bytes += num(24).unwrap_or(0) * page;
    }
    Reading {
        at: Instant::now(),
        cpu_s,
        rss_bytes,
    }
}

/// CPU used between two readings, as a share of one core (1.0 = one core busy), counting only
/// processes present in both.
pub fn cpu_share(before: &Reading, after: &Reading) -> f64 {
    let wall = after.at.duration_since(before.at).as_secs_f64();
    if wall <= 0.0 {
        return 0.0;
    }
    let used: f64 = after
        .cpu_s
        .iter()
        .filter_map(|(pid, now)| {
            before
                .cpu_s
                .iter()
                .find(|(p, _)| p == pid)
                .map(|(_, then)| (now - then).max(0.0))
        })
        .sum();
    used / wall
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        let a = read(&[me]);
        let start = Instant::now();
        let mut x = 0_u64;
        while start.elapsed().as_millis() < 200 {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let b = read(&[me, u32::MAX]);
        assert_eq!(b.cpu_s.len(), 1, "a missing pid is left out");
        assert!(b.rss_bytes > 1 << 20, "rss {}", b.rss_bytes);
        let share = cpu_share(&a, &b);
        assert!(share > 0.3, "a busy loop used {share} of a core");
    }
}
