//! The embedded lab (DESIGN.md "The lab"). So far: the telemetry producer, the workers that
//! consume like Storm (manual assignment) and Mesos tasks (a consumer group), and node processes
//! hosting workers, controlled through their stdin. The Storm/Mesos-like schedulers (detection,
//! re-placement, replacement nodes), lab-truth.jsonl, the HTTP endpoints and `spotdrill lab up`
//! are still to come.

pub mod node;
pub mod producer;
pub mod worker;
