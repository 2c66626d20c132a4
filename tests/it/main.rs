//! The one integration-test binary: drives the real `spotdrill` CLI.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod aws;
mod cli;
mod completions;
mod experiments;
mod health;
mod inputs;
mod lab;
mod lab_cli;
mod lag;
mod lag_cli;
mod live;
mod locks;
mod plan_cli;
mod report;
mod report_browser;
mod report_diff;
mod report_run;
mod run;
mod run_capacity;
mod schema;
mod support;
mod trust;
mod util;
mod validate;
