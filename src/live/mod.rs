//! The live dashboard (`spotdrill run PLAN --live`, `spotdrill watch RUN_DIR`).
//!
//! One code path for both: a [`Follower`] reads the run directory as it grows (journal, samples,
//! the lab's truth, capacity probes) into a [`LiveState`], and [`render`] draws that state. The
//! runner never talks to the dashboard except through [`Control`] (operator keys: confirm a step,
//! stop escalating), so a run started elsewhere looks the same as one started here. [`web`]
//! serves the same state to browsers (`--web`).

mod follow;
mod render;
mod state;
mod term;
pub mod web;

pub use follow::{Follower, Tail};
pub use render::{View, render, to_text};
pub use state::{LiveState, StepState, parse_time};
pub use term::{Dashboard, Ending, restore, stdout_is_terminal, terminal_gone};

pub use crate::run::Control;
