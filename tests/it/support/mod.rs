//! Real parts for tests: Kafka brokers (librdkafka's mock cluster, tansu) and ways to put known
//! data in them.

pub mod browser;
pub mod http;
pub mod kafka;
pub mod moto;
pub mod prometheus;
pub mod proxy;
