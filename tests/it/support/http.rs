//! Loopback HTTP servers for tests: a listener thread of their own and a thread per
//! connection, so no client waits on another one or on the test's threads.

use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

/// Listen on a free loopback port and hand every connection to `serve` on a thread of its own;
/// returns `http://127.0.0.1:PORT`. The server lives as long as the test binary.
pub fn serve_each(serve: impl Fn(TcpStream) + Send + Sync + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    let url = format!("http://{}", listener.local_addr().expect("a bound address"));
    let serve = Arc::new(serve);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let serve = serve.clone();
            std::thread::spawn(move || serve(stream));
        }
    });
    url
}
