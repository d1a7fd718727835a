//! The `Blobs` port: stored files (profile images). S3 in aws mode; a local directory (or memory)
//! otherwise, served by the API under `/resources/{name}`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob name not allowed")]
    BadName,
    #[error("blob store: {0}")]
    Io(String),
}

/// Names are `folder/file` of `[a-z0-9_.-]`, no leading dot, no `..`: never a path outside the root.
pub fn valid_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('/').collect();
    !name.is_empty()
        && name.len() <= 200
        && parts.iter().all(|p| {
            !p.is_empty()
                && !p.starts_with('.')
                && p.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.')
                })
        })
}

/// The port.
#[async_trait]
pub trait Blobs: Send + Sync + 'static {
    /// Stores bytes under a name.
    async fn put(&self, name: &str, bytes: Bytes, content_type: &str) -> Result<(), BlobError>;
    /// Reads a stored file (`None` when absent).
    async fn get(&self, name: &str) -> Result<Option<Bytes>, BlobError>;
    /// Removes a file (absent is fine).
    async fn delete(&self, name: &str) -> Result<(), BlobError>;
    /// A URL a client can load the file from.
    async fn url(&self, name: &str) -> Result<String, BlobError>;
}

/// Shared blob store handle.
pub type BlobsRef = Arc<dyn Blobs>;

fn io(e: impl std::fmt::Display) -> BlobError {
    BlobError::Io(e.to_string())
}

/// Files in a directory, served by the API at `{public_base_url}/resources/{name}`.
pub struct DirBlobs {
    root: PathBuf,
    public_base_url: String,
}

impl DirBlobs {
    pub fn new(root: impl Into<PathBuf>, public_base_url: &str) -> Self {
        DirBlobs {
            root: root.into(),
            public_base_url: public_base_url.trim_end_matches('/').to_owned(),
        }
    }
    fn path(&self, name: &str) -> Result<PathBuf, BlobError> {
        if valid_name(name) {
            Ok(self.root.join(Path::new(name)))
        } else {
            Err(BlobError::BadName)
        }
    }
}

#[async_trait]
impl Blobs for DirBlobs {
    async fn put(&self, name: &str, bytes: Bytes, _content_type: &str) -> Result<(), BlobError> {
        let path = self.path(name)?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(io)?;
        }
        // Write then rename, so a reader never sees half a file.
        let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
        tokio::fs::write(&tmp, &bytes).await.map_err(io)?;
        tokio::fs::rename(&tmp, &path).await.map_err(io)
    }
    async fn get(&self, name: &str) -> Result<Option<Bytes>, BlobError> {
        match tokio::fs::read(self.path(name)?).await {
            Ok(b) => Ok(Some(Bytes::from(b))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }
    async fn delete(&self, name: &str) -> Result<(), BlobError> {
        match tokio::fs::remove_file(self.path(name)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(e)),
        }
    }
    async fn url(&self, name: &str) -> Result<String, BlobError> {
        self.path(name)?;
        Ok(format!("{}/resources/{name}", self.public_base_url))
    }
}

/// Files in memory (the in-memory local mode and tests), served like [`DirBlobs`].
pub struct MemoryBlobs {
    files: Mutex<HashMap<String, Bytes>>,
    public_base_url: String,
}

impl MemoryBlobs {
    pub fn new(public_base_url: &str) -> Self {
        MemoryBlobs {
            files: Mutex::default(),
            public_base_url: public_base_url.trim_end_matches('/').to_owned(),
        }
    }
    fn files(&self) -> std::sync::MutexGuard<'_, HashMap<String, Bytes>> {
        self.files.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// Names currently stored (for tests).
    pub fn names(&self) -> Vec<String> {
        self.files().keys().cloned().collect()
    }
}

#[async_trait]
impl Blobs for MemoryBlobs {
    async fn put(&self, name: &str, bytes: Bytes, _content_type: &str) -> Result<(), BlobError> {
        if !valid_name(name) {
            return Err(BlobError::BadName);
        }
        self.files().insert(name.to_owned(), bytes);
        Ok(())
    }
    async fn get(&self, name: &str) -> Result<Option<Bytes>, BlobError> {
        Ok(self.files().get(name).cloned())
    }
    async fn delete(&self, name: &str) -> Result<(), BlobError> {
        self.files().remove(name);
        Ok(())
    }
    async fn url(&self, name: &str) -> Result<String, BlobError> {
        Ok(format!("{}/resources/{name}", self.public_base_url))
    }
}

/// The blob store of a function that declares none (see [`crate::lambda`]): every call fails.
pub struct UnconfiguredBlobs;

#[async_trait]
impl Blobs for UnconfiguredBlobs {
    async fn put(&self, _: &str, _: Bytes, _: &str) -> Result<(), BlobError> {
        Err(unconfigured())
    }
    async fn get(&self, _: &str) -> Result<Option<Bytes>, BlobError> {
        Err(unconfigured())
    }
    async fn delete(&self, _: &str) -> Result<(), BlobError> {
        Err(unconfigured())
    }
    async fn url(&self, _: &str) -> Result<String, BlobError> {
        Err(unconfigured())
    }
}

fn unconfigured() -> BlobError {
    BlobError::Io("this function has no blob store".into())
}

/// Objects in an S3 bucket, handed out under a stable public base: `IMAGE_PUBLIC_BASE_URL` (e.g.
/// a CloudFront distribution in front of the bucket), else the API's own
/// `{PUBLIC_BASE_URL}/resources`, whose route reads the object through the function. Never a
/// presigned URL: one signed with a function role's temporary credentials dies with that session
/// (within hours), long before a stored profile image stops being shown.
pub struct S3Blobs {
    client: aws_sdk_s3::Client,
    bucket: String,
    public_base_url: String,
}

impl S3Blobs {
    pub fn new(client: aws_sdk_s3::Client, bucket: &str, public_base_url: &str) -> Self {
        S3Blobs {
            client,
            bucket: bucket.to_owned(),
            public_base_url: public_base_url.trim_end_matches('/').to_owned(),
        }
    }
}

#[async_trait]
impl Blobs for S3Blobs {
    async fn put(&self, name: &str, bytes: Bytes, content_type: &str) -> Result<(), BlobError> {
        if !valid_name(name) {
            return Err(BlobError::BadName);
        }
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(name)
            .content_type(content_type)
            .body(aws_sdk_s3::primitives::ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| io(aws_sdk_s3::error::DisplayErrorContext(e)))?;
        Ok(())
    }
    async fn get(&self, name: &str) -> Result<Option<Bytes>, BlobError> {
        if !valid_name(name) {
            return Err(BlobError::BadName);
        }
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(name)
            .send()
            .await
        {
            Ok(out) => {
                let data = out.body.collect().await.map_err(io)?;
                Ok(Some(data.into_bytes()))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(io(aws_sdk_s3::error::DisplayErrorContext(e))),
        }
    }
    async fn delete(&self, name: &str) -> Result<(), BlobError> {
        if !valid_name(name) {
            return Err(BlobError::BadName);
        }
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(name)
            .send()
            .await
            .map_err(|e| io(aws_sdk_s3::error::DisplayErrorContext(e)))?;
        Ok(())
    }
    async fn url(&self, name: &str) -> Result<String, BlobError> {
        if !valid_name(name) {
            return Err(BlobError::BadName);
        }
        Ok(format!("{}/{name}", self.public_base_url))
    }
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn names_cannot_escape_the_root() {
        assert!(valid_name("user_profile_img/0123abcd.png"));
        for bad in [
            "../etc/passwd",
            "user_profile_img/../x",
            "/abs",
            "a//b",
            ".hidden",
            "A.png",
            "a\\b",
            "a/b%2f",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
