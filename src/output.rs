//! The output layer: everything people read goes through here (reports, tables, diagnostics).
//! Diagnostics about spotdrill itself go through `tracing`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write;

/// Write text to stdout as is. A closed pipe (`spotdrill … | head`) is not an error.
pub fn out(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// Write text to stderr as is.
pub fn err(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
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

/// Logging to stderr; `-v` shows info, `-vv` debug, `-vvv` trace.
pub fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        2 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
