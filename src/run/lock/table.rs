//! The team-wide lock store: one item per cluster in a DynamoDB table (partition key
//! `lock_key`, a string), so that a run on one laptop stops a colleague's CI job on the same
//! cluster. Chosen by the plan (`locks: {dynamodb: {table: T, region: R}}`) or by
//! `SPOTDRILL_LOCK_TABLE` (and `SPOTDRILL_LOCK_TABLE_REGION`).
//!
//! Every write is conditional, so the table decides who holds a lock: taking one is a PutItem
//! `attribute_not_exists(lock_key)`; taking over a stale one (resuming its run) is a PutItem on
//! the condition that the item still carries the stale holder's token; releasing or clearing is
//! a DeleteItem on the token seen. The stale-holder rules are the file locks': a holder on this
//! host whose pid is gone is stale; a holder on another host is held (`unlock --force` clears
//! it after checking).

use std::collections::HashMap;
use std::path::Path;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::AttributeValue;

use super::{Holder, Key, LockError, Release, State, clearable, judged, same_dir};
use crate::nodes::aws::AwsSettings;

/// The partition key of the table.
pub const KEY: &str = "lock_key";

/// A DynamoDB table of locks.
#[derive(Clone, Debug)]
pub struct Table {
    client: Client,
    name: String,
}

/// A lock held in the table; [`TableLock::release`] deletes it (only if it is still ours).
#[derive(Debug)]
pub struct TableLock {
    table: Table,
    key: String,
    token: String,
}

type Item = HashMap<String, AttributeValue>;

fn detail<E: std::error::Error + ProvideErrorMetadata>(op: &str, e: &E) -> String {
    match (e.code(), e.message()) {
        (Some(code), Some(message)) => format!("{op}: {code}: {message}"),
        (Some(code), None) => format!("{op}: {code}"),
        _ => format!("{op}: {}", DisplayErrorContext(e)),
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn item_of(h: &Holder) -> Item {
    HashMap::from([
        (KEY.to_owned(), s(&h.key)),
        ("pid".to_owned(), AttributeValue::N(h.pid.to_string())),
        ("host".to_owned(), s(&h.host)),
        ("run_dir".to_owned(), s(&h.run_dir)),
        ("since".to_owned(), s(&h.since)),
        ("token".to_owned(), s(&h.token)),
    ])
}

fn holder_of(item: &Item) -> Holder {
    let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let key = text(KEY).unwrap_or_default();
    let mut h = Holder::unknown(&key);
    h.pid = item
        .get("pid")
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    for (field, slot) in [
        ("host", &mut h.host),
        ("run_dir", &mut h.run_dir),
        ("since", &mut h.since),
        ("token", &mut h.token),
    ] {
        if let Some(v) = text(field) {
            *slot = v;
        }
    }
    h
}

impl Table {
    /// The table `name` in `region` (else the region of `--region` or the environment).
    pub async fn connect(aws: &AwsSettings, name: &str, region: Option<&str>) -> Table {
        let config = crate::nodes::aws::sdk_config(aws, region).await;
        Table {
            client: Client::new(&config),
            name: name.to_owned(),
        }
    }

    fn error(&self, target: &str, detail: String) -> LockError {
        LockError::Table {
            target: target.to_owned(),
            table: self.name.clone(),
            detail,
        }
    }

    fn where_(&self) -> String {
        format!("DynamoDB table {}", self.name)
    }

    /// Write `h`: when `replacing` is `None` only if no one holds the key, else only if the
    /// holder is still the one with that token. `Ok(false)`: the condition did not hold.
    async fn put(&self, h: &Holder, replacing: Option<&str>) -> Result<bool, String> {
        let call = self
            .client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(item_of(h)))
            .expression_attribute_names("#k", KEY);
        let call = match replacing {
            None => call.condition_expression("attribute_not_exists(#k)"),
            Some(token) => call
                .condition_expression("#t = :t")
                .expression_attribute_names("#t", "token")
                .expression_attribute_values(":t", s(token)),
        };
        match call.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(detail("PutItem", &e)),
        }
    }

    /// The holder of `key` now (a consistent read).
    async fn get(&self, key: &str) -> Result<Option<Holder>, String> {
        let out = self
            .client
            .get_item()
            .table_name(&self.name)
            .key(KEY, s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| detail("GetItem", &e))?;
        Ok(out.item().map(holder_of))
    }

    /// Delete `key` if its holder still has `token`. `Ok(false)`: it changed hands.
    async fn delete(&self, key: &str, token: &str) -> Result<bool, String> {
        let sent = self
            .client
            .delete_item()
            .table_name(&self.name)
            .key(KEY, s(key))
            .condition_expression("#t = :t")
            .expression_attribute_names("#t", "token")
            .expression_attribute_values(":t", s(token))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(detail("DeleteItem", &e)),
        }
    }

    /// Delete our own lock (on release, or on the way out); a failure is logged, the lock then
    /// is stale and `unlock` or a resume clears it.
    pub async fn delete_own(&self, key: &str, token: &str) {
        if let Err(e) = self.delete(key, token).await {
            tracing::warn!(table = %self.name, key = %key, error = %e, "could not release the lock");
        }
    }

    /// Take the lock of `key` for the run in `run_dir`.
    pub async fn acquire(
        &self,
        target: &str,
        key: &str,
        run_dir: &Path,
    ) -> Result<TableLock, LockError> {
        let me = super::Holder::this(key, run_dir);
        let lock = || TableLock {
            table: self.clone(),
            key: key.to_owned(),
            token: me.token.clone(),
        };
        for _ in 0..8 {
            if self
                .put(&me, None)
                .await
                .map_err(|d| self.error(target, d))?
            {
                return Ok(lock());
            }
            let Some(other) = self.get(key).await.map_err(|d| self.error(target, d))? else {
                continue; // released between the two calls: try again
            };
            let (target, where_) = (target.to_owned(), self.where_());
            match judged(other) {
                State::Stale(h) if same_dir(&h.run_dir, run_dir) => {
                    let took = self.put(&me, Some(&h.token)).await;
                    if took.map_err(|d| self.error(&target, d))? {
                        tracing::warn!(target = %target, pid = h.pid, "taking over the stale lock of the run being resumed");
                        return Ok(lock());
                    }
                }
                State::Stale(h) => {
                    let holder = Box::new(h);
                    return Err(LockError::Stale {
                        target,
                        holder,
                        where_,
                    });
                }
                State::Held(h) => {
                    let holder = Box::new(h);
                    return Err(LockError::Held {
                        target,
                        holder,
                        where_,
                    });
                }
                State::Free => {}
            }
        }
        Err(self.error(target, "the lock keeps changing hands".into()))
    }

    /// The items `key` names: one, or every one with the prefix.
    async fn items(&self, key: &Key) -> Result<Vec<Holder>, String> {
        if !key.prefix {
            return Ok(self.get(&key.text).await?.into_iter().collect());
        }
        let mut pages = self
            .client
            .scan()
            .table_name(&self.name)
            .filter_expression("begins_with(#k, :p)")
            .expression_attribute_names("#k", KEY)
            .expression_attribute_values(":p", s(&key.text))
            .consistent_read(true)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| detail("Scan", &e))?;
            out.extend(page.items().iter().map(holder_of));
        }
        Ok(out)
    }

    /// Clear the locks of `key`: stale ones, or forced ones held on another host.
    pub async fn clear(
        &self,
        target: &str,
        key: &Key,
        force: bool,
    ) -> Result<Vec<Holder>, LockError> {
        let mut removed = Vec::new();
        for h in self.items(key).await.map_err(|d| self.error(target, d))? {
            let the_key = h.key.clone();
            match clearable(judged(h), force) {
                Ok(None) => {}
                Ok(Some(h)) => {
                    let gone = self.delete(&the_key, &h.token).await;
                    if gone.map_err(|d| self.error(target, d))? {
                        removed.push(h);
                    }
                }
                Err(holder) => {
                    return Err(LockError::Held {
                        target: target.to_owned(),
                        holder,
                        where_: self.where_(),
                    });
                }
            }
        }
        Ok(removed)
    }
}

impl TableLock {
    pub fn releaser(&self) -> Release {
        Release::Table(self.table.clone(), self.key.clone(), self.token.clone())
    }

    pub async fn release(self) {
        self.table.delete_own(&self.key, &self.token).await;
    }
}
