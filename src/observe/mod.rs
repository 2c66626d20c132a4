//! Observation: Kafka consumer lag (later: Storm, Mesos and Marathon health).

pub mod config;
pub mod group;
pub mod health;
pub mod lag;
pub mod probe;
pub mod promql;
pub mod reader;
pub mod sampler;

pub use group::GroupState;
pub use lag::{GroupLag, Isolation, Note, OpenTransaction, PartitionLag, Status};
pub use probe::{GroupSpec, LagProbe, ProbeError};
pub use sampler::Snapshot;
