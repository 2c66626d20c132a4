//! Small helpers over `prometheus-client`: gauge and counter families with string labels,
//! registered under the `spotdrill_` prefix.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

/// A series' labels, in order. Label values are names from the plan and fixed words, never
/// free text, so their number stays bounded.
pub type Labels = Vec<(&'static str, String)>;
pub type Gauges = Family<Labels, Gauge<f64, AtomicU64>>;
pub type Counters = Family<Labels, Counter<u64>>;

/// The registry every exposition starts from.
pub fn registry() -> Registry {
    Registry::with_prefix("spotdrill")
}

/// A gauge family `spotdrill_NAME[_UNIT]`.
pub fn gauges(registry: &mut Registry, name: &str, help: &str, unit: Option<Unit>) -> Gauges {
    let family = Gauges::default();
    match unit {
        Some(unit) => registry.register_with_unit(name, help, unit, family.clone()),
        None => registry.register(name, help, family.clone()),
    }
    family
}

/// A counter family `spotdrill_NAME_total`.
pub fn counters(registry: &mut Registry, name: &str, help: &str) -> Counters {
    let family = Counters::default();
    registry.register(name, help, family.clone());
    family
}

/// Set one series of a gauge family.
pub fn set(family: &Gauges, labels: &[(&'static str, &str)], value: f64) {
    family.get_or_create(&owned(labels)).set(value);
}

/// Labels with owned values.
pub fn owned(labels: &[(&'static str, &str)]) -> Labels {
    labels.iter().map(|&(k, v)| (k, v.to_owned())).collect()
}

/// Messages, the unit of lag in records.
pub fn messages() -> Option<Unit> {
    Some(Unit::Other("messages".into()))
}

pub fn seconds() -> Option<Unit> {
    Some(Unit::Seconds)
}
