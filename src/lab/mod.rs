//! The embedded lab (DESIGN.md "The lab"). So far: the telemetry producer, the workers that
//! consume like Storm (manual assignment) and Mesos tasks (a consumer group), node processes
//! hosting workers (controlled through their stdin), and clusters whose scheduler notices dead
//! nodes, re-places their work on free slots and brings replacement nodes in, writing
//! lab-truth.jsonl, their HTTP APIs (Storm UI, Mesos master, Marathon), and `spotdrill lab up`.
//! Still to come: truth events for "backlog drained".

pub mod cluster;
pub mod http;
pub mod node;
pub mod producer;
pub mod up;
pub mod worker;
