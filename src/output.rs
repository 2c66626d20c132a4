//! The output layer: everything people read goes through here (reports, tables, diagnostics).
//! Diagnostics about spotdrill itself go through `tracing`.
//!
//! While the live dashboard owns the screen ([`hold`]), text for stdout and stderr (and log lines)
//! is kept and written when the dashboard leaves, so nothing a run says is lost or drawn over it.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write;
use std::sync::Mutex;

/// Text held while the dashboard owns the screen: `None` when nothing is held.
static HELD: Mutex<Option<Vec<(Stream, String)>>> = Mutex::new(None);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stream {
    Out,
    Err,
}

/// Keep what would be written to stdout and stderr until the guard is dropped (or [`release`]
/// is called), then write it in order.
#[must_use = "the text is released when the guard is dropped"]
pub struct Hold(());

/// Start holding output (see [`Hold`]).
pub fn hold() -> Hold {
    if let Ok(mut held) = HELD.lock()
        && held.is_none()
    {
        *held = Some(Vec::new());
    }
    Hold(())
}

impl Drop for Hold {
    fn drop(&mut self) {
        release();
    }
}

/// Stop holding output and write what was held. Idempotent.
pub fn release() {
    let held = HELD.lock().map(|mut h| h.take()).unwrap_or_default();
    for (stream, text) in held.unwrap_or_default() {
        match stream {
            Stream::Out => {
                let _ = std::io::stdout().lock().write_all(text.as_bytes());
            }
            Stream::Err => {
                let _ = std::io::stderr().lock().write_all(text.as_bytes());
            }
        }
    }
}

/// Keep the text if output is held; give it back otherwise.
fn held(stream: Stream, text: &str) -> bool {
    match HELD.lock() {
        Ok(mut h) => match h.as_mut() {
            Some(buf) => {
                buf.push((stream, text.to_owned()));
                true
            }
            None => false,
        },
        Err(_) => false,
    }
}

/// Write text to stdout as is. A closed pipe (`spotdrill … | head`) is not an error.
pub fn out(text: &str) {
    if !held(Stream::Out, text) {
        let _ = std::io::stdout().lock().write_all(text.as_bytes());
    }
}

/// Write text to stderr as is.
pub fn err(text: &str) {
    if !held(Stream::Err, text) {
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
}

/// Print an error the way every command does: `error:` then one `Caused by:` line per cause.
pub fn error_chain(error: &anyhow::Error) {
    let mut text = format!("error: {error}\n");
    let causes: Vec<String> = error.chain().skip(1).map(|c| c.to_string()).collect();
    if !causes.is_empty() {
        text.push_str("\nCaused by:\n");
        for (i, cause) in causes.iter().enumerate() {
            text.push_str(&format!("  {i}: {cause}\n"));
        }
    }
    err(&text);
}

/// Log lines go to stderr, or are held with everything else while the dashboard is up.
struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        err(&String::from_utf8_lossy(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Logging to stderr; `-v` shows info, `-vv` debug, `-vvv` trace.
pub fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        2 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    // The AWS SDK's debug and trace events print the resolved identity in its Debug form (the
    // access key id in clear): its crates log at info at most. Its warnings (a whole IMDS error
    // structure for "no region on this laptop") are not for default output: spotdrill says what
    // failed in one sentence (nodes::aws::call_error); -v shows them, -vv the raw chain.
    let sdk_level = match verbose {
        0 => tracing_subscriber::filter::LevelFilter::OFF,
        1 => tracing_subscriber::filter::LevelFilter::WARN,
        _ => tracing_subscriber::filter::LevelFilter::INFO,
    };
    let mut filter = tracing_subscriber::filter::Targets::new().with_default(level);
    for sdk in [
        "aws_config",
        "aws_credential_types",
        "aws_runtime",
        "aws_sigv4",
        "aws_smithy_runtime",
        "aws_smithy_runtime_api",
        "aws_smithy_http_client",
        "aws_smithy_types",
        "spotdrill::nodes::ec2_api",
        "aws_sdk_autoscaling",
        "aws_sdk_fis",
        "aws_sdk_sts",
        "aws_sdk_dynamodb",
        "aws_sdk_sso",
        "aws_sdk_ssooidc",
        "aws_sdk_sts",
    ] {
        filter = filter.with_target(sdk, sdk_level);
    }
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(|| LogWriter)
                .with_target(false),
        )
        .with(filter)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_text_is_kept_in_order_until_released() {
        let guard = hold();
        out("one\n");
        err("two\n");
        let kept: Vec<(Stream, String)> = HELD.lock().unwrap().clone().unwrap();
        assert_eq!(
            kept,
            vec![(Stream::Out, "one\n".into()), (Stream::Err, "two\n".into())]
        );
        drop(guard);
        assert!(HELD.lock().unwrap().is_none());
    }
}
