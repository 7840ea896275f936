//! [`DirBlobs`]: blobs in a local folder, for one machine (`barrage run`, the process launcher,
//! tests). Keys map to relative paths under the root (`runs/t/r/agents/0000-00/000001.hlog`).
//!
//! Writes are atomic: the body goes to a temporary file in the target's folder first, then it
//! is hard-linked to its name (write-once: linking fails if the name exists, so a retried upload
//! never replaces what a first attempt wrote) or renamed over it (`put`). A reader never sees a
//! half-written blob. Keys with `..`, `.`, empty segments, a leading `/` or a backslash are
//! rejected: a key can never name a file outside the root.
//!
//! Must not: follow a key outside the root, or list its own temporary files.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use crate::{Blobs, PutOnce, Result, StoreError};

/// Name prefix of the temporary files a write goes through (never listed, never a key).
const TMP_PREFIX: &str = ".barrage-tmp-";

/// Blobs kept as files under a root folder.
#[derive(Debug, Clone)]
pub struct DirBlobs {
    root: PathBuf,
}

impl DirBlobs {
    /// Blobs under `root` (created on first write if absent).
    pub fn new(root: impl Into<PathBuf>) -> DirBlobs {
        DirBlobs { root: root.into() }
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, key: &str) -> Result<PathBuf> {
        check_key(key)?;
        Ok(self.root.join(key))
    }
}

/// A key is a `/`-separated relative path of plain segments.
fn check_key(key: &str) -> Result<()> {
    let bad = |rule: &str| {
        Err(StoreError::Backend {
            operation: "blob key check",
            message: format!("blob key {key:?} {rule}"),
        })
    };
    if key.is_empty() {
        return bad("is empty");
    }
    if key.starts_with('/') {
        return bad("must be relative (no leading '/')");
    }
    if key.contains('\\') || key.contains('\0') {
        return bad("must not contain '\\' or NUL");
    }
    for segment in key.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return bad("must not contain empty, '.' or '..' segments");
        }
        if segment.starts_with(TMP_PREFIX) {
            return bad("must not name a temporary file");
        }
    }
    Ok(())
}

fn io_err(path: &Path, source: io::Error) -> StoreError {
    StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `body` to a fresh temporary file next to `target` and returns its path.
fn write_temp(target: &Path, body: &[u8]) -> Result<PathBuf> {
    let dir = target.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let tmp = dir.join(format!("{TMP_PREFIX}{}", uuid::Uuid::new_v4().simple()));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| io_err(&tmp, e))?;
    let written = file.write_all(body).and_then(|()| file.sync_all());
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io_err(&tmp, e));
    }
    Ok(tmp)
}

fn put_once_sync(target: &Path, body: &[u8]) -> Result<PutOnce> {
    if target.exists() {
        return Ok(PutOnce::AlreadyExists);
    }
    let tmp = write_temp(target, body)?;
    let linked = fs::hard_link(&tmp, target);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(PutOnce::Created),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(PutOnce::AlreadyExists),
        Err(e) if e.kind() == io::ErrorKind::Unsupported => {
            // A filesystem without hard links: fall back to create_new, still write-once
            // (a crash mid-write can leave a short file; such filesystems are not our target).
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(target)
            {
                Ok(mut file) => {
                    file.write_all(body).map_err(|e| io_err(target, e))?;
                    Ok(PutOnce::Created)
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(PutOnce::AlreadyExists),
                Err(e) => Err(io_err(target, e)),
            }
        }
        Err(e) => Err(io_err(target, e)),
    }
}

fn put_sync(target: &Path, body: &[u8]) -> Result<()> {
    let tmp = write_temp(target, body)?;
    fs::rename(&tmp, target).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err(target, e)
    })
}

fn get_sync(target: &Path) -> Result<Option<Bytes>> {
    match fs::read(target) {
        Ok(body) => Ok(Some(Bytes::from(body))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        // A key that names a folder (a prefix of other keys) is not a blob.
        Err(_) if target.is_dir() => Ok(None),
        Err(e) => Err(io_err(target, e)),
    }
}

/// Every file under `dir` whose key (relative to the root, `/`-joined) starts with `prefix`.
fn collect(dir: &Path, key_of_dir: &str, prefix: &str, out: &mut Vec<String>) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue; // not a key this store wrote
        };
        if name.starts_with(TMP_PREFIX) {
            continue;
        }
        let key = if key_of_dir.is_empty() {
            name
        } else {
            format!("{key_of_dir}/{name}")
        };
        let file_type = entry.file_type().map_err(|e| io_err(&entry.path(), e))?;
        if file_type.is_dir() {
            // Descend only where keys can still match the prefix.
            let as_dir = format!("{key}/");
            if as_dir.starts_with(prefix) || prefix.starts_with(&as_dir) {
                collect(&entry.path(), &key, prefix, out)?;
            }
        } else if file_type.is_file() && key.starts_with(prefix) {
            out.push(key);
        }
    }
    Ok(())
}

fn list_sync(root: &Path, prefix: &str) -> Result<Vec<String>> {
    // Start at the deepest folder the prefix names fully, when it is a plain relative path.
    let (start_key, start) = match prefix.rfind('/') {
        Some(i) if check_key(&prefix[..i]).is_ok() => (&prefix[..i], root.join(&prefix[..i])),
        _ => ("", root.to_path_buf()),
    };
    let mut keys = Vec::new();
    collect(&start, start_key, prefix, &mut keys)?;
    keys.sort();
    Ok(keys)
}

async fn blocking<T: Send + 'static>(
    operation: &'static str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Backend {
            operation,
            message: e.to_string(),
        })?
}

#[async_trait]
impl Blobs for DirBlobs {
    async fn put_once(&self, key: &str, body: Bytes, _content_type: &str) -> Result<PutOnce> {
        let target = self.path_of(key)?;
        blocking("put_once", move || put_once_sync(&target, &body)).await
    }

    async fn put(&self, key: &str, body: Bytes, _content_type: &str) -> Result<()> {
        let target = self.path_of(key)?;
        blocking("put", move || put_sync(&target, &body)).await
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let target = self.path_of(key)?;
        blocking("get", move || get_sync(&target)).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        if prefix.contains("..") || prefix.starts_with('/') || prefix.contains('\\') {
            return Err(StoreError::Backend {
                operation: "list",
                message: format!("blob prefix {prefix:?} must be a plain relative path"),
            });
        }
        let root = self.root.clone();
        let prefix = prefix.to_string();
        blocking("list", move || list_sync(&root, &prefix)).await
    }

    fn uri(&self, key: &str) -> String {
        self.root.join(key).display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs() -> (tempfile::TempDir, DirBlobs) {
        let dir = tempfile::tempdir().expect("temp dir");
        let blobs = DirBlobs::new(dir.path().join("blobs"));
        (dir, blobs)
    }

    #[tokio::test]
    async fn put_once_writes_once_and_keeps_the_first_body() {
        let (_dir, blobs) = blobs();
        let key = "runs/t/r1/agents/0000-00/000001.hlog";
        let first = blobs
            .put_once(key, Bytes::from("first"), "text/plain")
            .await;
        let second = blobs
            .put_once(key, Bytes::from("second"), "text/plain")
            .await;
        assert_eq!(first.expect("first put"), PutOnce::Created);
        assert_eq!(second.expect("second put"), PutOnce::AlreadyExists);
        let body = blobs.get(key).await.expect("get");
        assert_eq!(body, Some(Bytes::from("first")));
    }

    #[tokio::test]
    async fn put_replaces_and_get_of_a_missing_key_is_none() {
        let (_dir, blobs) = blobs();
        blobs
            .put("r/report.json", Bytes::from("1"), "application/json")
            .await
            .expect("put");
        blobs
            .put("r/report.json", Bytes::from("2"), "application/json")
            .await
            .expect("put again");
        assert_eq!(
            blobs.get("r/report.json").await.expect("get"),
            Some(Bytes::from("2"))
        );
        assert_eq!(blobs.get("r/absent").await.expect("get absent"), None);
        assert_eq!(blobs.get("r").await.expect("get a folder"), None);
    }

    #[tokio::test]
    async fn list_is_sorted_filtered_by_prefix_and_hides_temporary_files() {
        let (_dir, blobs) = blobs();
        for key in ["a/b/2", "a/b/1", "a/c/1", "ab/1", "z"] {
            blobs
                .put_once(key, Bytes::from(key.to_string()), "x")
                .await
                .expect("put");
        }
        fs::write(
            blobs.root().join("a/b").join(format!("{TMP_PREFIX}x")),
            "tmp",
        )
        .expect("tmp");
        assert_eq!(
            blobs.list("a/b/").await.expect("list"),
            vec!["a/b/1", "a/b/2"]
        );
        assert_eq!(
            blobs.list("a").await.expect("list"),
            vec!["a/b/1", "a/b/2", "a/c/1", "ab/1"]
        );
        assert_eq!(
            blobs.list("").await.expect("list all"),
            vec!["a/b/1", "a/b/2", "a/c/1", "ab/1", "z"]
        );
        assert!(blobs.list("nothing/").await.expect("list").is_empty());
    }

    #[tokio::test]
    async fn keys_that_could_leave_the_root_are_rejected() {
        let (_dir, blobs) = blobs();
        for key in [
            "../x",
            "a/../../x",
            "/etc/passwd",
            "a//b",
            "./a",
            "a\\b",
            "",
        ] {
            let result = blobs.put_once(key, Bytes::from("x"), "x").await;
            assert!(result.is_err(), "key {key:?} must be rejected");
        }
        assert!(blobs.list("../").await.is_err());
    }

    #[test]
    fn uri_names_the_file() {
        let blobs = DirBlobs::new("/data/blobs");
        assert_eq!(blobs.uri("runs/a/b"), "/data/blobs/runs/a/b");
    }
}
