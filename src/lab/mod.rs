//! The embedded lab (DESIGN.md "The lab"). So far: the telemetry producer. Node processes, the
//! Storm/Mesos-like schedulers, their HTTP endpoints and `spotdrill lab up` are still to come.

pub mod producer;
