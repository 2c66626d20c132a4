//! The live page (`run --web ADDR`, `watch --web ADDR`): what the terminal dashboard shows, in a
//! browser, for a room. One [`Follower`] reads the run directory; each viewer gets the page
//! (`/`, everything inline) and a Server-Sent Events stream (`/events`) of the state and the lag
//! samples; `/state` is the snapshot as JSON. Read-only: nothing else is served.
//!
//! HTTP is tiny_http, as for the lab's APIs. Its responses are buffered (a chunked body is
//! written when 8 KiB are ready), so an event stream takes the connection's writer and writes
//! the response itself, flushing after every event: one thread per viewer.

mod access;
mod stream;
mod wire;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub use access::{Access, AccessError, TOKEN_ENV};

use super::Follower;

/// How often the run directory is read.
const POLL: Duration = Duration::from_millis(250);
/// At most this many viewers at once (each holds a thread).
const VIEWERS: usize = 64;

/// What every viewer's stream reads: the followed run, and a version that grows with it.
pub(crate) struct Hub {
    inner: Mutex<Shared>,
    changed: Condvar,
}

pub(crate) struct Shared {
    pub follower: Follower,
    pub version: u64,
    /// The snapshot of this version, as JSON.
    pub state_json: Arc<String>,
    /// The server is stopping: streams send what is left and end.
    pub closed: bool,
    pub viewers: usize,
}

impl Hub {
    fn new(follower: Follower) -> Hub {
        let mut shared = Shared {
            follower,
            version: 0,
            state_json: Arc::default(),
            closed: false,
            viewers: 0,
        };
        shared.refresh();
        Hub {
            inner: Mutex::new(shared),
            changed: Condvar::new(),
        }
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Read the run directory; wake the streams when something is new.
    fn poll(&self) {
        let mut s = self.lock();
        match s.follower.poll() {
            Ok(true) => {
                s.refresh();
                self.changed.notify_all();
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, dir = %s.follower.dir().display(), "cannot read the run");
            }
        }
    }
}

impl Shared {
    fn refresh(&mut self) {
        self.version += 1;
        let json = serde_json::to_string(&wire::snapshot(&self.follower.state))
            .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
        self.state_json = Arc::new(json);
    }
}

/// The live page, serving until [`WebServer::finish`].
pub struct WebServer {
    /// Where it listens (the port chosen when `:0` was asked for).
    pub addr: std::net::SocketAddr,
    hub: Arc<Hub>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    streams: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl WebServer {
    /// Listen as `access` says and follow `dir`.
    pub fn start(dir: &std::path::Path, access: Access) -> std::io::Result<WebServer> {
        let server = tiny_http::Server::http(access.addr).map_err(std::io::Error::other)?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| std::io::Error::other("the live page has no IP address"))?;
        let hub = Arc::new(Hub::new(Follower::new(dir)));
        let stop = Arc::new(AtomicBool::new(false));
        let streams: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let follow = std::thread::Builder::new()
            .name("web-follow".into())
            .spawn({
                let (hub, stop) = (hub.clone(), stop.clone());
                move || {
                    while !stop.load(Ordering::SeqCst) {
                        hub.poll();
                        std::thread::sleep(POLL);
                    }
                }
            })?;
        let serve = std::thread::Builder::new().name("web".into()).spawn({
            let (hub, stop, streams) = (hub.clone(), stop.clone(), streams.clone());
            let page = Arc::new(page::html());
            move || {
                serve(
                    server,
                    &Ctx {
                        hub,
                        access,
                        page,
                        streams,
                    },
                    &stop,
                )
            }
        })?;
        Ok(WebServer {
            addr,
            hub,
            stop,
            threads: vec![follow, serve],
            streams,
        })
    }

    /// Read the run one last time, send every viewer what it has not seen and end the streams
    /// (the pages keep showing the end), waiting at most `within` for slow viewers.
    pub fn finish(self, within: Duration) {
        self.hub.poll();
        {
            let mut s = self.hub.lock();
            s.closed = true;
            self.hub.changed.notify_all();
        }
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            let _ = t.join();
        }
        let deadline = std::time::Instant::now() + within;
        let streams = std::mem::take(&mut *self.streams.lock().unwrap_or_else(|e| e.into_inner()));
        for s in streams {
            while !s.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if s.is_finished() {
                let _ = s.join();
            }
        }
    }
}

/// What answering a request needs.
struct Ctx {
    hub: Arc<Hub>,
    access: Access,
    page: Arc<String>,
    streams: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

fn serve(server: tiny_http::Server, ctx: &Ctx, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        match server.recv_timeout(Duration::from_millis(100)) {
            Ok(Some(request)) => answer(ctx, request),
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "live page: a request could not be read"),
        }
    }
}

fn header<'a>(r: &'a tiny_http::Request, name: &'static str) -> Option<&'a str> {
    r.headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str())
}

fn answer(ctx: &Ctx, request: tiny_http::Request) {
    let (path, query) = match request.url().split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (request.url().to_owned(), None),
    };
    let verdict = ctx.access.check(
        query.as_deref(),
        header(&request, "Authorization"),
        header(&request, "Host"),
    );
    let method_ok = matches!(
        request.method(),
        tiny_http::Method::Get | tiny_http::Method::Head
    );
    let reply = match (verdict, method_ok, path.as_str()) {
        (access::Verdict::NoToken, ..) => {
            Reply::text(401, "a token is required: ?token= or Authorization: Bearer")
        }
        (access::Verdict::ForeignHost, ..) => {
            Reply::text(403, "open this page through 127.0.0.1 or localhost")
        }
        (_, false, _) => Reply::text(405, "the live page is read-only"),
        (_, true, "/") => Reply::page(&ctx.page),
        (_, true, "/state") => Reply::json(&ctx.hub.lock().state_json),
        (_, true, "/events") => return open_stream(ctx, request),
        _ => Reply::text(404, "not found"),
    };
    let _ = request.respond(reply.0);
}

/// Start a viewer's event stream on a thread of its own, unless there are too many.
fn open_stream(ctx: &Ctx, request: tiny_http::Request) {
    {
        let mut s = ctx.hub.lock();
        if s.viewers >= VIEWERS {
            drop(s);
            let _ = request.respond(Reply::text(503, "too many viewers").0);
            return;
        }
        s.viewers += 1;
    }
    let last = header(&request, "Last-Event-ID").and_then(|v| v.trim().parse::<u64>().ok());
    let hub = ctx.hub.clone();
    let spawned = std::thread::Builder::new()
        .name("web-viewer".into())
        .spawn(move || {
            stream::run(&hub, request.into_writer(), last);
            hub.lock().viewers -= 1;
        });
    match spawned {
        Ok(t) => {
            let mut streams = ctx.streams.lock().unwrap_or_else(|e| e.into_inner());
            streams.retain(|s| !s.is_finished());
            streams.push(t);
        }
        Err(e) => {
            ctx.hub.lock().viewers -= 1;
            tracing::warn!(error = %e, "live page: cannot start a viewer's stream");
        }
    }
}

/// A response with the headers every answer carries.
struct Reply(tiny_http::Response<std::io::Cursor<Vec<u8>>>);

impl Reply {
    fn with(status: u16, content_type: &str, body: Vec<u8>) -> Reply {
        let mut r = tiny_http::Response::from_data(body).with_status_code(status);
        for (k, v) in [
            ("Content-Type", content_type),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
            ("Content-Security-Policy", page::CSP),
        ] {
            if let Ok(h) = tiny_http::Header::from_bytes(k, v) {
                r.add_header(h);
            }
        }
        Reply(r)
    }

    fn text(status: u16, text: &str) -> Reply {
        Reply::with(
            status,
            "text/plain; charset=utf-8",
            format!("{text}\n").into_bytes(),
        )
    }

    fn json(body: &str) -> Reply {
        Reply::with(200, "application/json", body.as_bytes().to_vec())
    }

    fn page(html: &str) -> Reply {
        Reply::with(200, "text/html; charset=utf-8", html.as_bytes().to_vec())
    }
}

mod page {
    //! The page: the report's style sheet and chart colours, the page's own style and script,
    //! all inline (the content security policy allows nothing from anywhere else).

    pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; \
        script-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; \
        form-action 'none'; frame-ancestors 'none'";

    const TEMPLATE: &str = include_str!("page.html");
    const STYLE: &str = include_str!("page.css");
    const SCRIPT: &str = include_str!("page.js");

    pub fn html() -> String {
        let theme = serde_json::json!({
            "chart": crate::report::chart_theme(),
            "version": env!("CARGO_PKG_VERSION"),
        });
        // Inside <script type="application/json">: `<` escaped, so no `</script>` can end it.
        let theme = theme.to_string().replace('<', "\\u003c");
        TEMPLATE
            .replace("/*REPORT_STYLE*/", crate::report::PAGE_STYLE)
            .replace("/*PAGE_STYLE*/", STYLE)
            .replace("/*THEME*/", &theme)
            .replace("/*SCRIPT*/", SCRIPT)
    }
}
