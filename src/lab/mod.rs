//! The embedded lab (DESIGN.md "The lab"). So far: the telemetry producer, the workers that
//! consume like Storm (manual assignment) and Mesos tasks (a consumer group), node processes
//! hosting workers (controlled through their stdin), and clusters whose scheduler notices dead
//! nodes, re-places their work on free slots and brings replacement nodes in, writing
//! lab-truth.jsonl (including when each workload's backlog drained, [`truth`]), their HTTP APIs
//! (Storm UI, Mesos master, Marathon), a running lab as a handle ([`up::RunningLab`]) for the
//! runner and `spotdrill lab up`, and its resource use ([`stats`]).

pub mod broker;
pub mod cluster;
pub mod http;
pub mod kube_api;
pub mod node;
pub mod producer;
pub mod stats;
pub mod truth;
pub mod up;
pub mod worker;
