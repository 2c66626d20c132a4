//! Lag from Prometheus (`applications.<name>.lag: {prometheus, query, unit}`): an instant PromQL
//! query through the HTTP API, once per sample, as a [`GroupLag`] under the application's lag
//! key, so the runner judges it with the same band, spike and recovery rules as lag read from
//! Kafka. A query error, an empty result, a NaN or a stale series is a gap (`missing`), never 0.

use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;

use super::health::{ApiClient, HealthError, HttpSettings};
use super::lag::GroupLag;
use crate::plan::PromLag;
use crate::plan::spec::LagUnit;

/// One application's PromQL lag query.
#[derive(Debug)]
pub struct PromQuery {
    /// The name its samples go by (`prometheus:APPLICATION`).
    pub key: String,
    client: ApiClient,
    query: String,
    unit: LagUnit,
    max_age: Duration,
    timeout: Duration,
}

/// `/api/v1/query`'s answer.
#[derive(Debug, Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

impl PromQuery {
    /// Secrets are read from the environment here: a missing variable is an error now.
    pub fn new(
        key: String,
        lag: &PromLag,
        settings: &HttpSettings,
    ) -> Result<PromQuery, HealthError> {
        Ok(PromQuery {
            key,
            client: ApiClient::new(&lag.url, settings)?,
            query: lag.query.clone(),
            unit: lag.unit,
            max_age: lag.max_age,
            timeout: settings.timeout,
        })
    }

    /// One sample: the largest value of the query's series, in seconds, or a gap saying why.
    pub fn sample(&self, started: Instant) -> GroupLag {
        let at = SystemTime::now();
        let begun = Instant::now();
        let elapsed_ms = begun.duration_since(started).as_millis() as u64;
        let result = self.measure();
        let took_ms = begun.elapsed().as_millis() as u64;
        match result {
            Ok(lag_s) => {
                let mut g = GroupLag::missing(&self.key, at, elapsed_ms, took_ms, String::new());
                g.status = super::Status::Ok;
                g.problems.clear();
                g.lag_seconds = Some(lag_s);
                g.lag_messages = None;
                g
            }
            Err(why) => GroupLag::missing(&self.key, at, elapsed_ms, took_ms, why),
        }
    }

    /// The preflight's question: the lag now, in seconds, or why a run would read a gap.
    pub fn check(&self) -> Result<f64, String> {
        self.measure()
    }

    fn measure(&self) -> Result<f64, String> {
        let (now, values) = self.instant(&self.query)?;
        let Some(value) = values.iter().copied().reduce(f64::max) else {
            return Err(format!("the query `{}` returned no series", self.query));
        };
        let (_, stamps) = self.instant(&format!("timestamp({})", self.query))?;
        if let Some(newest) = stamps.iter().copied().reduce(f64::max)
            && now - newest > self.max_age.as_secs_f64()
        {
            return Err(format!(
                "the query `{}` is stale: its newest sample is {:.0} s old",
                self.query,
                now - newest
            ));
        }
        Ok(match self.unit {
            LagUnit::Seconds => value,
            LagUnit::Milliseconds => value / 1000.0,
        })
    }

    /// An instant query: the evaluation time and every finite value.
    fn instant(&self, promql: &str) -> Result<(f64, Vec<f64>), String> {
        let q = percent_encoding::utf8_percent_encode(promql, percent_encoding::NON_ALPHANUMERIC);
        let path = format!("/api/v1/query?query={q}");
        let until = Instant::now() + self.timeout;
        let answer: Answer = self
            .client
            .get_json(&path, until)
            .map_err(|e| e.to_string())?;
        if answer.status != "success" {
            return Err(format!(
                "Prometheus refused `{promql}`: {}",
                answer.error.unwrap_or_default()
            ));
        }
        let data = answer.data.ok_or("Prometheus answered without data")?;
        points(&data).ok_or_else(|| format!("`{promql}` gave a {} result", data.result_type))
    }
}

/// A result's evaluation time and finite values: a vector's samples, or a scalar.
fn points(data: &Data) -> Option<(f64, Vec<f64>)> {
    let pair = |v: &serde_json::Value| -> Option<(f64, f64)> {
        Some((v.get(0)?.as_f64()?, v.get(1)?.as_str()?.parse().ok()?))
    };
    let pairs: Vec<(f64, f64)> = match data.result_type.as_str() {
        "vector" => data
            .result
            .as_array()?
            .iter()
            .filter_map(|s| pair(s.get("value")?))
            .collect(),
        "scalar" => vec![pair(&data.result)?],
        _ => return None,
    };
    let now = pairs.first().map_or_else(wall_clock, |p| p.0);
    Some((
        now,
        pairs
            .into_iter()
            .map(|p| p.1)
            .filter(|v| v.is_finite())
            .collect(),
    ))
}

fn wall_clock() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(kind: &str, result: serde_json::Value) -> Data {
        Data {
            result_type: kind.into(),
            result,
        }
    }

    #[test]
    fn vectors_give_every_finite_value_and_scalars_one() {
        let v = data(
            "vector",
            serde_json::json!([
                {"metric": {"a": "1"}, "value": [100.5, "3.25"]},
                {"metric": {"a": "2"}, "value": [100.5, "NaN"]},
                {"metric": {"a": "3"}, "value": [100.5, "7"]}
            ]),
        );
        assert_eq!(points(&v), Some((100.5, vec![3.25, 7.0])));
        let s = data("scalar", serde_json::json!([9.0, "2"]));
        assert_eq!(points(&s), Some((9.0, vec![2.0])));
        let empty = data("vector", serde_json::json!([]));
        assert_eq!(points(&empty).map(|p| p.1), Some(vec![]));
        assert_eq!(points(&data("matrix", serde_json::json!([]))), None);
    }
}
