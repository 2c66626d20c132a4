//! One viewer's Server-Sent Events stream. Events:
//! - `reset` (no data): forget every sample; sent first unless the browser resumes
//!   (`Last-Event-ID`), so a page never keeps points the server does not know about;
//! - `samples`: a JSON array of new samples, its `id` the last one's sequence number (the
//!   browser sends it back as `Last-Event-ID` when it reconnects, and gets only newer ones);
//! - `state`: the snapshot, replacing the last one (no `id`: it does not move the resume point);
//! - `end`: the server stops; the page keeps what it shows and does not reconnect.
//!
//! A comment line every [`KEEPALIVE`] finds viewers that went away.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use super::{Hub, wire};

const KEEPALIVE: Duration = Duration::from_secs(10);
/// How long a browser waits before reconnecting.
const RETRY_MS: u32 = 1000;

/// What one wake-up found to send.
struct Batch {
    samples: Vec<wire::SampleWire>,
    state: Option<Arc<String>>,
    closed: bool,
}

/// Write the stream until the viewer leaves or the server closes.
pub fn run(hub: &Hub, mut out: Box<dyn Write + Send>, resume_after: Option<u64>) {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n\
         X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\nretry: {RETRY_MS}\n\n{}",
        if resume_after.is_none() {
            "event: reset\ndata:\n\n"
        } else {
            ""
        }
    );
    if out
        .write_all(head.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        return;
    }
    let mut sent_seq = resume_after.unwrap_or(0);
    let mut sent_version = 0;
    loop {
        let batch = next_batch(hub, &mut sent_seq, &mut sent_version);
        let text = frames(&batch);
        if out
            .write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            return; // The viewer left.
        }
        if batch.closed {
            return;
        }
    }
}

/// Wait until there is something new (or a keepalive is due), and take it.
fn next_batch(hub: &Hub, sent_seq: &mut u64, sent_version: &mut u64) -> Batch {
    let mut s = hub.lock();
    if s.version == *sent_version && !s.closed {
        s = hub
            .changed
            .wait_timeout_while(s, KEEPALIVE, |s| s.version == *sent_version && !s.closed)
            .map(|(g, _)| g)
            .unwrap_or_else(|e| e.into_inner().0);
    }
    let samples = wire::samples_after(&s.follower.state, *sent_seq);
    if let Some(last) = samples.last() {
        *sent_seq = last.seq;
    }
    let state = (s.version != *sent_version).then(|| s.state_json.clone());
    *sent_version = s.version;
    Batch {
        samples,
        state,
        closed: s.closed,
    }
}

/// The SSE text of a batch (a keepalive comment when it is empty).
fn frames(b: &Batch) -> String {
    let mut text = String::new();
    if let Some(last) = b.samples.last() {
        let json = serde_json::to_string(&b.samples).unwrap_or_else(|_| "[]".into());
        text.push_str(&format!(
            "id: {}\nevent: samples\ndata: {json}\n\n",
            last.seq
        ));
    }
    if let Some(state) = &b.state {
        text.push_str(&format!("event: state\ndata: {state}\n\n"));
    }
    if b.closed {
        text.push_str("event: end\ndata:\n\n");
    }
    if text.is_empty() {
        text.push_str(": keepalive\n\n");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_framed_as_server_sent_events() {
        let b = Batch {
            samples: vec![wire::SampleWire {
                seq: 7,
                app: "a".into(),
                at: 1.5,
                lag_s: None,
                lag_messages: Some(3),
            }],
            state: Some(Arc::new("{\"x\":1}".into())),
            closed: true,
        };
        assert_eq!(
            frames(&b),
            "id: 7\nevent: samples\ndata: [{\"seq\":7,\"app\":\"a\",\"at\":1.5,\"lag_s\":null,\"lag_messages\":3}]\n\n\
             event: state\ndata: {\"x\":1}\n\nevent: end\ndata:\n\n"
        );
        let empty = Batch {
            samples: vec![],
            state: None,
            closed: false,
        };
        assert_eq!(frames(&empty), ": keepalive\n\n");
    }
}
