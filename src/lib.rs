//! spotdrill: a chaos-engineering harness for spot terminations.
//!
//! Data flows one way: plan text → validated plan ([`plan`]) → preflight → run → report.
//! The command line lives in [`cli`]; everything people read goes through [`output`].

pub mod analysis;
pub mod cli;
pub mod exit;
pub mod journal;
pub mod kafka;
pub mod lab;
pub mod live;
pub mod metrics;
pub mod nodes;
pub mod observe;
pub mod output;
pub mod plan;
pub mod preflight;
pub mod report;
pub mod run;
