//! The AWS emulator for tests: moto 5.2.5's `moto_server` (installed into .venv by
//! scripts/install-test-tools) on a free loopback port, started per test and killed on drop.
//! Seeding and checking go through boto3 in the same venv, so the emulator is reached by a
//! second, independent AWS client; spotdrill reaches it through `AWS_ENDPOINT_URL`.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::kafka::free_port;

pub struct Moto {
    pub endpoint: String,
    child: Child,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The venv's tool `name`: `$SPOTDRILL_MOTO_SERVER` / `$SPOTDRILL_PYTHON` or .venv/bin.
fn venv_tool(var: &str, name: &str) -> PathBuf {
    if let Ok(p) = std::env::var(var) {
        return PathBuf::from(p);
    }
    let p = crate::util::root().join(".venv/bin").join(name);
    assert!(
        p.exists(),
        "{name} is not installed: run ./scripts/test, which installs it into .venv"
    );
    p
}

/// The environment that points an AWS client (spotdrill or boto3) at moto, with dummy
/// credentials and no instance metadata lookups.
pub const REGION: &str = "us-east-1";

impl Moto {
    /// Start moto_server and wait until `/moto-api/` answers.
    pub fn start() -> Moto {
        let port = free_port();
        let child = Command::new(venv_tool("SPOTDRILL_MOTO_SERVER", "moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let moto = Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if http_get_ok(port, "/moto-api/") {
                return moto;
            }
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Environment variables for a process that should reach this moto.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_SESSION_TOKEN", "testing".into()),
            ("AWS_DEFAULT_REGION", REGION.into()),
            ("AWS_REGION", REGION.into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("AWS_CONFIG_FILE", "/dev/null".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
        ]
    }

    /// Run a boto3 script (with `ec2`, `asg`, `fis` clients and `json` in scope) and parse the
    /// JSON it prints last.
    pub fn py(&self, script: &str) -> Value {
        let prelude = "import boto3, json\n\
            ec2 = boto3.client('ec2')\n\
            asg = boto3.client('autoscaling')\n\
            fis = boto3.client('fis')\n";
        let out: Output = Command::new(venv_tool("SPOTDRILL_PYTHON", "python"))
            .arg("-c")
            .arg(format!("{prelude}{script}"))
            .envs(self.env())
            .output()
            .expect("python runs");
        assert!(
            out.status.success(),
            "boto3 script failed:\n{script}\n--- stderr\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let last = stdout.lines().last().unwrap_or("null");
        serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
    }

    /// Launch `count` instances with `tags` in `zone` of `instance_type`, spot or on-demand;
    /// returns their ids.
    pub fn launch(
        &self,
        count: u32,
        zone: &str,
        instance_type: &str,
        spot: bool,
        tags: &[(&str, &str)],
    ) -> Vec<String> {
        let tags: Vec<String> = tags
            .iter()
            .map(|(k, v)| format!("{{'Key': '{k}', 'Value': '{v}'}}"))
            .collect();
        let market = if spot {
            ", InstanceMarketOptions={'MarketType': 'spot', 'SpotOptions': {'SpotInstanceType': 'one-time'}}"
        } else {
            ""
        };
        let v = self.py(&format!(
            "r = ec2.run_instances(ImageId='ami-12c6146b', MinCount={count}, MaxCount={count}, \
             InstanceType='{instance_type}', Placement={{'AvailabilityZone': '{zone}'}}, \
             TagSpecifications=[{{'ResourceType': 'instance', 'Tags': [{}]}}]{market})\n\
             print(json.dumps([i['InstanceId'] for i in r['Instances']]))",
            tags.join(", ")
        ));
        serde_json::from_value(v).expect("ids")
    }

    /// Every instance: id → (state, lifecycle or "on-demand").
    pub fn instances(&self) -> std::collections::BTreeMap<String, (String, String)> {
        let v = self.py(
            "out = {}\n\
             for page in ec2.get_paginator('describe_instances').paginate():\n\
             \x20   for r in page['Reservations']:\n\
             \x20       for i in r['Instances']:\n\
             \x20           out[i['InstanceId']] = [i['State']['Name'], i.get('InstanceLifecycle', 'on-demand')]\n\
             print(json.dumps(out))",
        );
        serde_json::from_value::<std::collections::BTreeMap<String, (String, String)>>(v)
            .expect("instances")
    }
}

fn http_get_ok(port: u16, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut buf = [0_u8; 16];
    matches!(s.read(&mut buf), Ok(n) if n >= 12 && buf.starts_with(b"HTTP/1.") && &buf[9..10] == b"2")
}
