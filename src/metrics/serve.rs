//! `/metrics` over HTTP on a thread of its own (tiny_http, as the lab's endpoints), until the
//! handle is dropped. Each scrape asks the source for a fresh registry.

use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use super::encode::{Format, exposition};
use crate::exit::Failure;

/// Where each scrape's registry comes from.
pub type Source = Box<dyn FnMut() -> Registry + Send>;

/// The running server; dropping it stops it.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    cancel: CancellationToken,
    thread: Option<JoinHandle<()>>,
}

/// Serve `/metrics` on `addr` (port 0: a free one).
pub fn serve(addr: SocketAddr, mut source: Source) -> anyhow::Result<Server> {
    let server = tiny_http::Server::http(addr)
        .map_err(|e| Failure::environment(format!("--metrics: cannot listen on {addr}: {e}")))?;
    let bound = server.server_addr().to_ip().unwrap_or(addr);
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    let thread = std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            while !stop.is_cancelled() {
                if let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(100)) {
                    answer(request, &mut source);
                }
            }
        })?;
    tracing::info!(addr = %bound, "serving /metrics");
    Ok(Server {
        addr: bound,
        cancel,
        thread: Some(thread),
    })
}

fn answer(request: tiny_http::Request, source: &mut Source) {
    let path = request.url().split('?').next().unwrap_or("");
    if path != "/metrics" {
        let body = "spotdrill: metrics are at /metrics\n";
        let _ = request.respond(tiny_http::Response::from_string(body).with_status_code(404));
        return;
    }
    let accept = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Accept"))
        .map(|h| h.value.as_str().to_owned());
    let format = Format::from_accept(accept.as_deref());
    let body = exposition(&source(), format);
    let header = tiny_http::Header::from_bytes("Content-Type", format.content_type())
        .expect("a valid header");
    let _ = request.respond(tiny_http::Response::from_string(body).with_header(header));
}

impl Drop for Server {
    fn drop(&mut self) {
        self.cancel.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
