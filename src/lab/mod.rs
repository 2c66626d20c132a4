//! The embedded lab (DESIGN.md "The lab"). So far: the telemetry producer and the workers that
//! consume like Storm (manual assignment) and Mesos tasks (a consumer group). Node processes, the
//! Storm/Mesos-like schedulers, their HTTP endpoints and `spotdrill lab up` are still to come.

pub mod node;
pub mod producer;
pub mod worker;
