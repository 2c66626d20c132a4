//! The EC2 Query protocol's two halves: the form-encoded request (`Action=…&Version=…`, lists as
//! `Name.N`, filters as `Filter.N.Name` / `Filter.N.Value.M`) and the XML answers, parsed with
//! the SDK's own XML reader (aws-smithy-xml) into the few typed shapes spotdrill reads.

use aws_smithy_xml::decode::{Document, ScopedDecoder, XmlDecodeError, try_data};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// The EC2 API version every request names.
pub const API_VERSION: &str = "2016-11-15";

/// RFC 3986 unreserved characters stay; everything else is escaped (as the SDK encodes).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// One DescribeInstances filter: `name` matches any of `values`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    pub name: String,
    pub values: Vec<String>,
}

impl Filter {
    pub fn new(name: &str, values: impl IntoIterator<Item = impl Into<String>>) -> Filter {
        Filter {
            name: name.to_owned(),
            values: values.into_iter().map(Into::into).collect(),
        }
    }
}

/// A request's parameters, in order, before encoding.
#[derive(Clone, Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn new() -> Params {
        Params::default()
    }

    /// One parameter.
    pub fn set(mut self, name: &str, value: impl Into<String>) -> Params {
        self.0.retain(|(n, _)| n != name);
        self.0.push((name.to_owned(), value.into()));
        self
    }

    /// A list: `name.1=…&name.2=…`.
    pub fn list(mut self, name: &str, values: &[String]) -> Params {
        for (n, v) in values.iter().enumerate() {
            self.0.push((format!("{name}.{}", n + 1), v.clone()));
        }
        self
    }

    /// Filters: `Filter.N.Name=…&Filter.N.Value.M=…`.
    pub fn filters(mut self, filters: &[Filter]) -> Params {
        for (n, f) in filters.iter().enumerate() {
            let at = format!("Filter.{}", n + 1);
            self.0.push((format!("{at}.Name"), f.name.clone()));
            self = self.list(&format!("{at}.Value"), &f.values);
        }
        self
    }

    /// The form body of `action` with these parameters.
    pub fn encode(&self, action: &str) -> String {
        let head = [("Action", action), ("Version", API_VERSION)];
        let rest = self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()));
        head.into_iter()
            .chain(rest)
            .map(|(n, v)| {
                format!(
                    "{}={}",
                    utf8_percent_encode(n, UNRESERVED),
                    utf8_percent_encode(v, UNRESERVED)
                )
            })
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// An instance's state (`instanceState.name`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InstanceState {
    Pending,
    Running,
    ShuttingDown,
    Terminated,
    Stopping,
    Stopped,
    Other(String),
}

impl InstanceState {
    pub fn parse(s: &str) -> InstanceState {
        match s {
            "pending" => InstanceState::Pending,
            "running" => InstanceState::Running,
            "shutting-down" => InstanceState::ShuttingDown,
            "terminated" => InstanceState::Terminated,
            "stopping" => InstanceState::Stopping,
            "stopped" => InstanceState::Stopped,
            other => InstanceState::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            InstanceState::Pending => "pending",
            InstanceState::Running => "running",
            InstanceState::ShuttingDown => "shutting-down",
            InstanceState::Terminated => "terminated",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
            InstanceState::Other(s) => s,
        }
    }
}

/// What spotdrill reads of one described instance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Instance {
    pub instance_id: Option<String>,
    pub state: Option<InstanceState>,
    /// `spot` or `scheduled`; absent for on-demand.
    pub instance_lifecycle: Option<String>,
    pub instance_type: Option<String>,
    pub availability_zone: Option<String>,
    pub private_dns_name: Option<String>,
    pub private_ip_address: Option<String>,
    /// `(key, value)` in the answer's order.
    pub tags: Vec<(String, String)>,
}

/// One reservation of a DescribeInstances answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reservation {
    pub owner_id: Option<String>,
    pub instances: Vec<Instance>,
}

/// One page of a paginated answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Absent (or empty in the XML) on the last page.
    pub next_token: Option<String>,
}

/// An instance's state change in a TerminateInstances answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateChange {
    pub instance_id: String,
    pub current: Option<InstanceState>,
}

/// One point of a DescribeSpotPriceHistory answer: the price of a market from `timestamp` on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpotPrice {
    pub instance_type: String,
    pub availability_zone: String,
    /// `Linux/UNIX`, `Linux/UNIX (Amazon VPC)`, `Windows` …
    pub product_description: String,
    /// USD per hour, as the answer writes it.
    pub spot_price: String,
    /// RFC 3339.
    pub timestamp: String,
}

/// The error an EC2 answer carries: `<Response><Errors><Error><Code>…`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorBody {
    pub code: String,
    pub message: Option<String>,
    pub request_id: Option<String>,
}

type Decoded<T> = Result<T, XmlDecodeError>;

fn text(d: &mut ScopedDecoder<'_, '_>) -> Decoded<String> {
    Ok(try_data(d)?.into_owned())
}

/// `<item>` children of a set, each parsed by `each`.
fn items<T>(
    d: &mut ScopedDecoder<'_, '_>,
    each: fn(&mut ScopedDecoder<'_, '_>) -> Decoded<T>,
) -> Decoded<Vec<T>> {
    let mut out = Vec::new();
    while let Some(mut item) = d.next_tag() {
        if item.start_el().matches("item") {
            out.push(each(&mut item)?);
        }
    }
    Ok(out)
}

/// The root element of `xml`, which must be `<{action}Response>`; `each` sees its children
/// and the next token is collected.
fn page<T>(
    action: &str,
    xml: &str,
    set: &str,
    each: fn(&mut ScopedDecoder<'_, '_>) -> Decoded<T>,
) -> Decoded<Page<T>> {
    let mut doc = Document::new(xml);
    let mut root = doc.root_element()?;
    let want = format!("{action}Response");
    if !root.start_el().matches(&want) {
        let got = root.start_el().local().to_owned();
        return Err(XmlDecodeError::custom(format!(
            "expected <{want}>, got <{got}>"
        )));
    }
    let mut out = Page {
        items: Vec::new(),
        next_token: None,
    };
    while let Some(mut tag) = root.next_tag() {
        let name = tag.start_el().local().to_owned();
        if name == set {
            out.items = items(&mut tag, each)?;
        } else if name == "nextToken" {
            out.next_token = Some(text(&mut tag)?).filter(|t| !t.is_empty());
        }
    }
    Ok(out)
}

fn tag(d: &mut ScopedDecoder<'_, '_>) -> Decoded<(String, String)> {
    let (mut key, mut value) = (String::new(), String::new());
    while let Some(mut t) = d.next_tag() {
        match t.start_el().local() {
            "key" => key = text(&mut t)?,
            "value" => value = text(&mut t)?,
            _ => {}
        }
    }
    Ok((key, value))
}

/// `<instanceState>` / `<currentState>`: its `<name>`.
fn state(d: &mut ScopedDecoder<'_, '_>) -> Decoded<Option<InstanceState>> {
    let mut out = None;
    while let Some(mut t) = d.next_tag() {
        if t.start_el().matches("name") {
            out = Some(InstanceState::parse(&text(&mut t)?));
        }
    }
    Ok(out)
}

fn zone(d: &mut ScopedDecoder<'_, '_>) -> Decoded<Option<String>> {
    let mut out = None;
    while let Some(mut t) = d.next_tag() {
        if t.start_el().matches("availabilityZone") {
            out = Some(text(&mut t)?);
        }
    }
    Ok(out)
}

fn instance(d: &mut ScopedDecoder<'_, '_>) -> Decoded<Instance> {
    let mut i = Instance::default();
    while let Some(mut t) = d.next_tag() {
        let name = t.start_el().local().to_owned();
        match name.as_str() {
            "instanceId" => i.instance_id = Some(text(&mut t)?),
            "instanceState" => i.state = state(&mut t)?,
            "instanceLifecycle" => i.instance_lifecycle = Some(text(&mut t)?),
            "instanceType" => i.instance_type = Some(text(&mut t)?),
            "placement" => i.availability_zone = zone(&mut t)?,
            "privateDnsName" => i.private_dns_name = Some(text(&mut t)?),
            "privateIpAddress" => i.private_ip_address = Some(text(&mut t)?),
            "tagSet" => i.tags = items(&mut t, tag)?,
            _ => {}
        }
    }
    Ok(i)
}

fn reservation(d: &mut ScopedDecoder<'_, '_>) -> Decoded<Reservation> {
    let mut r = Reservation::default();
    while let Some(mut t) = d.next_tag() {
        match t.start_el().local() {
            "ownerId" => r.owner_id = Some(text(&mut t)?),
            "instancesSet" => r.instances = items(&mut t, instance)?,
            _ => {}
        }
    }
    Ok(r)
}

/// One page of DescribeInstances.
pub fn describe_instances(xml: &str) -> Decoded<Page<Reservation>> {
    page("DescribeInstances", xml, "reservationSet", reservation)
}

fn instance_id(d: &mut ScopedDecoder<'_, '_>) -> Decoded<String> {
    let mut id = String::new();
    while let Some(mut t) = d.next_tag() {
        if t.start_el().matches("instanceId") {
            id = text(&mut t)?;
        }
    }
    Ok(id)
}

/// One page of DescribeSpotFleetInstances: the active instances' ids.
pub fn describe_spot_fleet_instances(xml: &str) -> Decoded<Page<String>> {
    page(
        "DescribeSpotFleetInstances",
        xml,
        "activeInstanceSet",
        instance_id,
    )
}

fn state_change(d: &mut ScopedDecoder<'_, '_>) -> Decoded<StateChange> {
    let mut out = StateChange {
        instance_id: String::new(),
        current: None,
    };
    while let Some(mut t) = d.next_tag() {
        match t.start_el().local() {
            "instanceId" => out.instance_id = text(&mut t)?,
            "currentState" => out.current = state(&mut t)?,
            _ => {}
        }
    }
    Ok(out)
}

/// TerminateInstances: each instance's new state.
pub fn terminate_instances(xml: &str) -> Decoded<Vec<StateChange>> {
    Ok(page("TerminateInstances", xml, "instancesSet", state_change)?.items)
}

fn spot_price(d: &mut ScopedDecoder<'_, '_>) -> Decoded<SpotPrice> {
    let mut p = SpotPrice::default();
    while let Some(mut t) = d.next_tag() {
        let name = t.start_el().local().to_owned();
        let field = match name.as_str() {
            "instanceType" => &mut p.instance_type,
            "availabilityZone" => &mut p.availability_zone,
            "productDescription" => &mut p.product_description,
            "spotPrice" => &mut p.spot_price,
            "timestamp" => &mut p.timestamp,
            _ => continue,
        };
        *field = text(&mut t)?;
    }
    Ok(p)
}

/// One page of DescribeSpotPriceHistory.
pub fn describe_spot_price_history(xml: &str) -> Decoded<Page<SpotPrice>> {
    page(
        "DescribeSpotPriceHistory",
        xml,
        "spotPriceHistorySet",
        spot_price,
    )
}

/// The first `<Error>` of an error answer, and its request id.
pub fn error(xml: &str) -> Decoded<ErrorBody> {
    let mut doc = Document::new(xml);
    let mut root = doc.root_element()?;
    if !root.start_el().matches("Response") {
        return Err(XmlDecodeError::custom("expected <Response> as the root"));
    }
    let mut out = ErrorBody::default();
    while let Some(mut t) = root.next_tag() {
        match t.start_el().local() {
            "Errors" => {
                if let Some(mut e) = t.next_tag().filter(|e| e.start_el().matches("Error")) {
                    error_fields(&mut e, &mut out)?;
                }
            }
            "RequestID" | "RequestId" => out.request_id = Some(text(&mut t)?),
            _ => {}
        }
    }
    if out.code.is_empty() {
        return Err(XmlDecodeError::custom("no <Error><Code> in the answer"));
    }
    Ok(out)
}

fn error_fields(e: &mut ScopedDecoder<'_, '_>, out: &mut ErrorBody) -> Decoded<()> {
    while let Some(mut f) = e.next_tag() {
        match f.start_el().local() {
            "Code" => out.code = text(&mut f)?,
            "Message" => out.message = Some(text(&mut f)?),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
