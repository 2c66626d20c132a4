//! Prometheus metrics (`run --metrics ADDR`, `lag --metrics ADDR`, `run --pushgateway URL`).
//!
//! Exposed with the official Rust client (`prometheus-client`): OpenMetrics when the scraper
//! asks for it, the text format otherwise. A run's metrics are read from its run directory the
//! way the live dashboard reads it (the journal, samples and capacity probes), so the runner
//! knows nothing of them; `lag`'s come from its samples. Names follow Prometheus conventions:
//! `spotdrill_` prefix, units in names, `_total` counters, label values from the plan only.

mod encode;
mod family;
mod lag;
mod push;
mod run;
mod serve;

pub use encode::{Format, exposition};
pub use lag::LagMetrics;
pub use push::{PushTarget, push};
pub use run::RunSource;
pub use serve::{Server, Source, serve};
