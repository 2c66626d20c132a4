//! A small CloudTrail client: LookupEvents, over the JSON 1.1 protocol (`X-Amz-Target:
//! com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents`), on the EC2 client's
//! transport (credentials, SigV4 for `cloudtrail`, retries, timeouts, typed errors).
//!
//! LookupEvents reads the account's management events of the last 90 days in one region; it
//! allows two calls a second per account and region (throttling is retried like any other).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::SdkConfig;
use serde::Deserialize;

use super::{CLOUDTRAIL, Client, Error, query::ErrorBody};

/// At most this many pages of 50 events are read (10 000 events); the answer says when more
/// were left.
const MAX_PAGES: usize = 200;

/// One CloudTrail event, as spotdrill reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub id: String,
    pub name: String,
    /// When it happened: seconds since the Unix epoch.
    pub time_s: f64,
    /// The instances it names: `serviceEventDetails.instanceIdSet` of the event record (a
    /// `BidEvictedEvent`), else its `AWS::EC2::Instance` resources.
    pub instance_ids: Vec<String>,
}

/// The events of a lookup, and whether the page limit cut it short.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Lookup {
    pub events: Vec<Event>,
    pub truncated: bool,
}

/// A CloudTrail client for one region and endpoint.
#[derive(Clone)]
pub struct CloudTrail(Client);

impl CloudTrail {
    /// A client for the loaded configuration (no call made).
    pub fn new(config: &SdkConfig) -> CloudTrail {
        CloudTrail(Client::for_service(config, CLOUDTRAIL))
    }

    /// The endpoint calls go to.
    pub fn endpoint(&self) -> &str {
        self.0.endpoint()
    }

    /// LookupEvents of the events named `name` from `start` to `end`, every page (up to
    /// [`MAX_PAGES`]).
    pub async fn lookup_events(
        &self,
        name: &str,
        start: SystemTime,
        end: SystemTime,
    ) -> Result<Lookup, Error> {
        let mut out = Lookup::default();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let body = request(name, start, end, token.as_deref());
            let text = self.0.call_json("LookupEvents", body).await?;
            let (events, next) = page(&text).map_err(|detail| Error::Response {
                status: 200,
                detail,
            })?;
            out.events.extend(events);
            match next {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
        out.truncated = true;
        Ok(out)
    }
}

fn epoch(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
}

/// The LookupEvents request body.
fn request(name: &str, start: SystemTime, end: SystemTime, token: Option<&str>) -> String {
    let mut body = serde_json::json!({
        "LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": name}],
        "StartTime": epoch(start).floor(),
        "EndTime": epoch(end).ceil(),
        "MaxResults": 50,
    });
    if let Some(t) = token {
        body["NextToken"] = t.into();
    }
    body.to_string()
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Answer {
    #[serde(default)]
    events: Vec<RawEvent>,
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawEvent {
    #[serde(default)]
    event_id: String,
    #[serde(default)]
    event_name: String,
    event_time: f64,
    #[serde(default)]
    resources: Vec<Resource>,
    /// The whole event record, as a JSON string.
    cloud_trail_event: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Resource {
    resource_type: Option<String>,
    resource_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    service_event_details: Option<Details>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Details {
    #[serde(default)]
    instance_id_set: Vec<String>,
}

/// One LookupEvents answer: its events and the next page's token.
pub fn page(text: &str) -> Result<(Vec<Event>, Option<String>), String> {
    let answer: Answer = serde_json::from_str(text)
        .map_err(|e| format!("cannot read the LookupEvents answer: {e}"))?;
    let events = answer.events.into_iter().map(event).collect();
    Ok((events, answer.next_token.filter(|t| !t.is_empty())))
}

fn event(raw: RawEvent) -> Event {
    let from_record = raw
        .cloud_trail_event
        .as_deref()
        .and_then(|r| serde_json::from_str::<Record>(r).ok())
        .and_then(|r| r.service_event_details)
        .map(|d| d.instance_id_set)
        .unwrap_or_default();
    let instance_ids = match from_record.is_empty() {
        false => from_record,
        true => raw
            .resources
            .into_iter()
            .filter(|r| r.resource_type.as_deref() == Some("AWS::EC2::Instance"))
            .filter_map(|r| r.resource_name)
            .collect(),
    };
    Event {
        id: raw.event_id,
        name: raw.event_name,
        time_s: raw.event_time,
        instance_ids,
    }
}

/// A JSON 1.1 error answer: `{"__type": "…#AccessDeniedException", "message": "…"}`.
pub(super) fn error(text: &str, request_id: Option<&str>) -> Option<ErrorBody> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let kind = v.get("__type").or_else(|| v.get("code"))?.as_str()?;
    let code = kind.rsplit('#').next().unwrap_or(kind);
    let code = code.split(':').next().unwrap_or(code).to_owned();
    let message = ["message", "Message"]
        .iter()
        .find_map(|k| v.get(k).and_then(|m| m.as_str()))
        .map(str::to_owned);
    Some(ErrorBody {
        code,
        message,
        request_id: request_id.map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A LookupEvents answer in the shape of the CloudTrail API reference, carrying the
    /// `BidEvictedEvent` record of the EC2 user guide ("Determine whether Amazon EC2 terminated
    /// a Spot Instance") as its `CloudTrailEvent` string.
    const ANSWER: &str = r#"{
      "Events": [{
        "EventId": "d27a6096-807b-4bd0-8c20-a33a83375054",
        "EventName": "BidEvictedEvent",
        "ReadOnly": "true",
        "EventTime": 1471386600.0,
        "EventSource": "ec2.amazonaws.com",
        "Resources": [],
        "CloudTrailEvent": "{\"eventVersion\":\"1.05\",\"userIdentity\":{\"accountId\":\"123456789012\",\"invokedBy\":\"ec2.amazonaws.com\"},\"eventTime\":\"2016-08-16T22:30:00Z\",\"eventSource\":\"ec2.amazonaws.com\",\"eventName\":\"BidEvictedEvent\",\"awsRegion\":\"us-east-2\",\"eventID\":\"d27a6096-807b-4bd0-8c20-a33a83375054\",\"eventType\":\"AwsServiceEvent\",\"recipientAccountId\":\"123456789012\",\"RequestParameters\":null,\"ResponseElements\":null,\"serviceEventDetails\":{\"instanceIdSet\":[\"i-1eb2ac8eEXAMPLE\"]}}"
      }, {
        "EventId": "e1",
        "EventName": "BidEvictedEvent",
        "EventTime": 1471386700,
        "Resources": [{"ResourceType": "AWS::EC2::Instance", "ResourceName": "i-0b"}]
      }],
      "NextToken": "next-1"
    }"#;

    #[test]
    fn lookup_events_reads_the_documented_shape() {
        let (events, next) = page(ANSWER).unwrap();
        assert_eq!(next.as_deref(), Some("next-1"));
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].name, "BidEvictedEvent");
        assert_eq!(events[0].time_s, 1_471_386_600.0);
        assert_eq!(events[0].instance_ids, ["i-1eb2ac8eEXAMPLE"]);
        // Without a record, the instance resources name the instances.
        assert_eq!(events[1].instance_ids, ["i-0b"]);
    }

    #[test]
    fn the_last_page_has_no_token() {
        let (events, next) = page(r#"{"Events": [], "NextToken": ""}"#).unwrap();
        assert!(events.is_empty() && next.is_none());
        assert!(page("<html>").is_err());
    }

    #[test]
    fn a_json_error_names_its_code_and_message() {
        let e = error(
            r#"{"__type":"com.amazonaws#AccessDeniedException","Message":"not authorized"}"#,
            Some("req-1"),
        )
        .unwrap();
        assert_eq!(e.code, "AccessDeniedException");
        assert_eq!(e.message.as_deref(), Some("not authorized"));
        assert_eq!(e.request_id.as_deref(), Some("req-1"));
        assert!(error("<html>500</html>", None).is_none());
    }

    #[test]
    fn the_request_names_the_event_and_the_window() {
        let start = UNIX_EPOCH + Duration::from_secs(100);
        let end = UNIX_EPOCH + Duration::from_secs(200);
        let v: serde_json::Value =
            serde_json::from_str(&request("BidEvictedEvent", start, end, Some("t"))).unwrap();
        assert_eq!(
            v["LookupAttributes"][0]["AttributeValue"],
            "BidEvictedEvent"
        );
        assert_eq!(v["StartTime"], 100.0);
        assert_eq!(v["EndTime"], 200.0);
        assert_eq!(v["NextToken"], "t");
    }
}
