//! How spotdrill reaches a cluster (kubeconfig context or in-cluster service account) and the
//! permission preflight (one SelfSubjectAccessReview per verb and resource it needs).

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::nodes::ProviderError;
use crate::plan::KubeTerminate;

/// One permission the provider needs: verb, resource, subresource.
pub type Need = (&'static str, &'static str, Option<&'static str>);

/// What every kubernetes target needs: find nodes and the pods on them, and follow both.
pub const REQUIRED: &[Need] = &[
    ("list", "nodes", None),
    ("watch", "nodes", None),
    ("list", "pods", None),
    ("watch", "pods", None),
];

/// What a drain needs beyond [`REQUIRED`]: cordon, evict, delete the Node.
const DRAIN: &[Need] = &[
    ("patch", "nodes", None),
    ("create", "pods", Some("eviction")),
    ("delete", "nodes", None),
];

/// A reachable cluster: the client and how it was reached.
pub struct Access {
    pub client: Client,
    /// The same, without the client's own retries (for evictions: a 429 is an answer).
    pub evictions: Client,
    /// The API server's URL.
    pub cluster: String,
    /// `context NAME` or `in-cluster service account`.
    pub how: String,
}

impl Access {
    /// The client of `context` (or the kubeconfig's current context, or the in-cluster service
    /// account where there is no kubeconfig); an error names what was tried.
    pub async fn connect(context: Option<&str>) -> Result<Access, String> {
        let (config, how) = config(context).await?;
        Access::of(config, how)
    }

    /// The Kubernetes API a lab cluster serves on loopback (plain HTTP, no credentials).
    pub fn lab(cluster: &str, url: &str) -> Result<Access, String> {
        let uri = url
            .parse()
            .map_err(|e| format!("the lab's Kubernetes API {url}: {e}"))?;
        Access::of(Config::new(uri), format!("lab cluster {cluster}"))
    }

    fn of(config: Config, how: String) -> Result<Access, String> {
        let cluster = config.cluster_url.to_string();
        let build = |config: Config| {
            Client::try_from(config)
                .map_err(|e| format!("cannot build a Kubernetes client for {cluster}: {e}"))
        };
        // kube's default retry repeats a 429 up to 15 times with backoff growing to minutes:
        // an eviction a PodDisruptionBudget refuses must come back at once, so the drain sees
        // the block, journals it, and retries on its own clock within `drain_timeout`.
        let mut once = config.clone();
        once.default_retry = false;
        let evictions = build(once)?;
        let client = build(config)?;
        Ok(Access {
            client,
            evictions,
            cluster: cluster.trim_end_matches('/').to_owned(),
            how,
        })
    }

    /// How the capacity probes reach the same API server.
    pub fn health(&self) -> crate::observe::health::KubeApi {
        crate::observe::health::KubeApi {
            client: self.client.clone(),
            cluster: self.cluster.clone(),
        }
    }

    /// What `plan` shows of the cluster: where, through which context, lost how.
    pub fn describe(&self, terminate: KubeTerminate) -> String {
        format!(
            "Kubernetes cluster {} ({}); nodes are lost by {}",
            self.cluster,
            self.how,
            match terminate {
                KubeTerminate::Drain => "a drain (cordon, evict honouring PDBs, delete the Node)",
                KubeTerminate::AwsEc2 => "TerminateInstances on the EC2 instance behind each node",
                KubeTerminate::AwsFis => {
                    "an FIS spot interruption of the EC2 instance behind each node"
                }
            }
        )
    }

    /// Ask the API server whether each needed permission is granted; every answer is listed,
    /// and any denial is an error naming it.
    pub async fn check(&self, terminate: KubeTerminate) -> Result<String, ProviderError> {
        let mut needs: Vec<Need> = REQUIRED.to_vec();
        if terminate == KubeTerminate::Drain {
            needs.extend_from_slice(DRAIN);
        }
        let mut allowed = Vec::new();
        let mut denied = Vec::new();
        for need in &needs {
            let (ok, reason) = self.review(need).await?;
            if ok {
                allowed.push(need_name(need));
            } else {
                let why = reason.map(|r| format!(" ({r})")).unwrap_or_default();
                denied.push(format!("{}{why}", need_name(need)));
            }
        }
        if !denied.is_empty() {
            return Err(ProviderError::Kubernetes(format!(
                "SelfSubjectAccessReview on {} ({}): not allowed: {}; allowed: {}",
                self.cluster,
                self.how,
                denied.join(", "),
                if allowed.is_empty() {
                    "nothing".to_owned()
                } else {
                    allowed.join(", ")
                }
            )));
        }
        Ok(format!(
            "allowed by SelfSubjectAccessReview on {}: {}",
            self.cluster,
            allowed.join(", ")
        ))
    }

    async fn review(&self, need: &Need) -> Result<(bool, Option<String>), ProviderError> {
        let (verb, resource, subresource) = *need;
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(verb.to_owned()),
                    resource: Some(resource.to_owned()),
                    subresource: subresource.map(str::to_owned),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
        let api: Api<SelfSubjectAccessReview> = Api::all(self.client.clone());
        let answer = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| {
                ProviderError::Kubernetes(format!(
                    "SelfSubjectAccessReview for {} on {}: {e}",
                    need_name(need),
                    self.cluster
                ))
            })?;
        let status = answer.status.unwrap_or_default();
        Ok((status.allowed, status.reason))
    }
}

/// `create pods/eviction`, `list nodes`.
fn need_name(need: &Need) -> String {
    match need.2 {
        Some(sub) => format!("{} {}/{sub}", need.0, need.1),
        None => format!("{} {}", need.0, need.1),
    }
}

async fn config(context: Option<&str>) -> Result<(Config, String), String> {
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    match Kubeconfig::read() {
        Ok(kubeconfig) => {
            let name = context
                .map(str::to_owned)
                .or_else(|| kubeconfig.current_context.clone())
                .unwrap_or_else(|| "(none)".to_owned());
            let config = Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| format!("kubeconfig context {name}: {e}"))?;
            Ok((config, format!("context {name}")))
        }
        Err(e) if context.is_none() => match Config::incluster() {
            Ok(config) => Ok((config, "in-cluster service account".to_owned())),
            Err(ie) => Err(format!(
                "no kubeconfig ({e}; set KUBECONFIG) and not inside a cluster ({ie})"
            )),
        },
        Err(e) => Err(format!(
            "context {} was asked for, but there is no kubeconfig: {e}",
            context.unwrap_or_default()
        )),
    }
}
