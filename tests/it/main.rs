//! The one integration-test binary: drives the real `spotdrill` CLI.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod cli;
mod experiments;
mod schema;
mod util;
mod validate;
