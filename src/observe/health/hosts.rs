//! Node ↔ host mapping (DESIGN.md "Health probes"): an EC2 node is known by its private DNS
//! name (`ip-10-0-1-5.ec2.internal`) and private IP (`10.0.1.5`); a Storm supervisor or Mesos
//! agent reports one of them, or the short host name. Lab nodes use their id as host name.

/// Whether two host names (or addresses) name the same machine: equal ignoring case and a
/// trailing dot; or one is the other's first DNS label (`ip-10-0-1-5` ↔
/// `ip-10-0-1-5.ec2.internal`); or one is an IPv4 address and the other the EC2 name made from
/// it (`10.0.1.5` ↔ `ip-10-0-1-5[.region.compute.internal]`).
pub fn same_host(a: &str, b: &str) -> bool {
    let (a, b) = (normalize(a), normalize(b));
    if a.is_empty() || b.is_empty() {
        return false;
    }
    if a == b {
        return true;
    }
    let (la, lb) = (first_label(&a), first_label(&b));
    let a_ip = is_ipv4(&a);
    let b_ip = is_ipv4(&b);
    if !a_ip && !b_ip && (la == b || lb == a) {
        return true;
    }
    match (a_ip, b_ip) {
        (true, false) => ec2_ip(lb).is_some_and(|ip| ip == a),
        (false, true) => ec2_ip(la).is_some_and(|ip| ip == b),
        _ => false,
    }
}

fn normalize(h: &str) -> String {
    h.trim().trim_end_matches('.').to_ascii_lowercase()
}

fn first_label(h: &str) -> &str {
    h.split('.').next().unwrap_or(h)
}

fn is_ipv4(h: &str) -> bool {
    h.parse::<std::net::Ipv4Addr>().is_ok()
}

/// `ip-10-0-1-5` → `10.0.1.5`.
fn ec2_ip(label: &str) -> Option<String> {
    let ip = label.strip_prefix("ip-")?.replace('-', ".");
    is_ipv4(&ip).then_some(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec2_names_addresses_and_short_names_match() {
        assert!(same_host("storm-lab-1", "storm-lab-1"));
        assert!(same_host(
            "IP-10-0-1-5.ec2.internal.",
            "ip-10-0-1-5.ec2.internal"
        ));
        assert!(same_host(
            "ip-10-0-1-5",
            "ip-10-0-1-5.us-west-2.compute.internal"
        ));
        assert!(same_host("10.0.1.5", "ip-10-0-1-5.ec2.internal"));
        assert!(same_host("ip-10-0-1-5", "10.0.1.5"));
        assert!(!same_host("10.0.1.5", "ip-10-0-1-6.ec2.internal"));
        assert!(!same_host("10.0.1.5", "10.0.1.50"));
        assert!(!same_host("storm-lab-1", "storm-lab-10"));
        // Two addresses sharing a first octet are not the same host.
        assert!(!same_host("10.0.1.5", "10.9.9.9"));
        assert!(!same_host("", ""));
    }
}
