//! [`Rebased`]: the blobs below one key prefix, kept in another store without that prefix.
//!
//! `barrage run` keeps one run in one folder: the keys the agents and the report code use
//! (`runs/{lt}/{run}/agents/…`, `runs/{lt}/{run}/windows/…`) land as `agents/…` and
//! `windows/…` below the folder, the layout S3 has below the run's prefix.
//!
//! Must not: accept a key outside the prefix (the run's folder holds only its own run).

use async_trait::async_trait;
use bytes::Bytes;

use crate::{Blobs, PutOnce, Result, StoreError};

/// Keys below `prefix`, stored in `inner` with the prefix removed.
#[derive(Debug, Clone)]
pub struct Rebased<B> {
    inner: B,
    prefix: String,
}

impl<B: Blobs> Rebased<B> {
    /// The keys below `prefix` (which ends with `/`), kept in `inner`.
    pub fn new(inner: B, prefix: impl Into<String>) -> Rebased<B> {
        Rebased {
            inner,
            prefix: prefix.into(),
        }
    }

    /// The store the blobs are kept in.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    fn inner_key<'k>(&self, key: &'k str) -> Result<&'k str> {
        key.strip_prefix(self.prefix.as_str())
            .ok_or_else(|| StoreError::BadKey {
                key: key.to_string(),
                rule: format!("is not below {}", self.prefix),
            })
    }
}

#[async_trait]
impl<B: Blobs> Blobs for Rebased<B> {
    async fn put_once(&self, key: &str, body: Bytes, content_type: &str) -> Result<PutOnce> {
        self.inner
            .put_once(self.inner_key(key)?, body, content_type)
            .await
    }

    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<()> {
        self.inner
            .put(self.inner_key(key)?, body, content_type)
            .await
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.inner.get(self.inner_key(key)?).await
    }

    /// Listing a prefix above the run's (`runs/{lt}/`) lists the whole run.
    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let below = match prefix.strip_prefix(self.prefix.as_str()) {
            Some(rest) => rest,
            None if self.prefix.starts_with(prefix) => "",
            None => return Ok(Vec::new()),
        };
        let keys = self.inner.list(below).await?;
        Ok(keys
            .into_iter()
            .map(|k| format!("{}{k}", self.prefix))
            .collect())
    }

    fn uri(&self, key: &str) -> String {
        match self.inner_key(key) {
            Ok(k) => self.inner.uri(k),
            Err(_) => key.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryBlobs;

    #[tokio::test]
    async fn keys_below_the_prefix_are_kept_without_it_and_listed_with_it() {
        let run = Rebased::new(MemoryBlobs::new(), "runs/t/r1/");
        let key = "runs/t/r1/agents/0000-00/000001.hlog";
        let put = run.put_once(key, Bytes::from("a"), "text/plain").await;
        assert_eq!(put.expect("put_once"), PutOnce::Created);
        let again = run.put_once(key, Bytes::from("b"), "text/plain").await;
        assert_eq!(again.expect("put_once again"), PutOnce::AlreadyExists);
        assert_eq!(
            run.inner().list("").await.expect("inner list"),
            vec!["agents/0000-00/000001.hlog".to_string()]
        );
        for prefix in ["runs/t/r1/agents/", "runs/t/", "runs/t/r1/"] {
            assert_eq!(
                run.list(prefix).await.expect("list"),
                vec![key.to_string()],
                "{prefix}"
            );
        }
        assert!(run.list("runs/t/r2/").await.expect("list").is_empty());
        assert_eq!(run.get(key).await.expect("get"), Some(Bytes::from("a")));
    }

    #[tokio::test]
    async fn a_key_of_another_run_is_refused_with_the_rule() {
        let run = Rebased::new(MemoryBlobs::new(), "runs/t/r1/");
        let err = run
            .put(
                "runs/t/r2/report/report.json",
                Bytes::from("x"),
                "application/json",
            )
            .await
            .expect_err("outside the run");
        assert_eq!(
            err.to_string(),
            "blob key \"runs/t/r2/report/report.json\" is not below runs/t/r1/"
        );
        assert!(run.inner().list("").await.expect("list").is_empty());
    }
}
