//! Topic configuration the lag needs: which topics are compacted (`cleanup.policy` holds
//! `compact`), read with DescribeConfigs when the partition set changes.

use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;

pub type Admin = AdminClient<DefaultClientContext>;

/// The compacted topics among `topics`; `Err` when the broker does not answer DescribeConfigs
/// (the librdkafka mock cluster), and then no value is flagged as compacted.
pub fn compacted(
    admin: &Admin,
    topics: &BTreeSet<String>,
    timeout: Duration,
) -> Result<BTreeSet<String>, String> {
    if topics.is_empty() {
        return Ok(BTreeSet::new());
    }
    let specs: Vec<ResourceSpecifier<'_>> =
        topics.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
    let opts = AdminOptions::new().request_timeout(Some(timeout));
    // The admin client's own thread completes the future; any executor can wait for it, and a
    // thread of its own keeps this callable from inside a tokio runtime.
    let results = std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(admin.describe_configs(specs.iter(), &opts))
                .map_err(|e| e.to_string())
        })
        .join()
        .unwrap_or_else(|_| Err("DescribeConfigs failed".into()))
    })?;
    let mut out = BTreeSet::new();
    for r in results {
        let resource = r.map_err(|e| e.to_string())?;
        let compact = resource
            .get("cleanup.policy")
            .and_then(|e| e.value.as_deref())
            .is_some_and(|v| v.split(',').any(|p| p.trim() == "compact"));
        if let (true, rdkafka::admin::OwnedResourceSpecifier::Topic(t)) =
            (compact, &resource.specifier)
        {
            out.insert(t.clone());
        }
    }
    Ok(out)
}
