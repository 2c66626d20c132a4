//! The embedded lab (DESIGN.md "The lab"). So far: the telemetry producer, the workers that
//! consume like Storm (manual assignment) and Mesos tasks (a consumer group), node processes
//! hosting workers (controlled through their stdin), and clusters whose scheduler notices dead
//! nodes, re-places their work on free slots and brings replacement nodes in, writing
//! lab-truth.jsonl. The HTTP endpoints (Storm UI, Mesos, Marathon), `spotdrill lab up` and the
//! backlog-drained truth events are still to come.

pub mod cluster;
pub mod http;
pub mod node;
pub mod producer;
pub mod up;
pub mod worker;
