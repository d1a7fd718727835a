//! Profile images: content sniffed (JPEG/PNG/WebP whatever the file name says), size-capped,
//! stripped of metadata ([`super::metadata`]), stored under a generated name; the previous image
//! is removed.

use bytes::Bytes;

use super::{ProfileError, Profiles};
use crate::audit::LogKind;
use crate::domain::Username;
use crate::store::{Cond, StoreError, Update, keys};

/// Largest accepted image.
pub const MAX_IMAGE_BYTES: usize = 2 * 1024 * 1024;
/// Request body limit of the upload route: the image plus multipart framing.
pub const UPLOAD_BODY_LIMIT: usize = MAX_IMAGE_BYTES + 64 * 1024;
/// Folder of profile images in the blob store (and under `/resources/`).
pub const FOLDER: &str = "user_profile_img";

/// An accepted image format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageKind {
    Jpeg,
    Png,
    Webp,
}

impl ImageKind {
    /// Recognises the format by its magic bytes.
    pub fn sniff(bytes: &[u8]) -> Option<ImageKind> {
        const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
        // Beyond the magic number, the first structure must be there too, so that a text file
        // that merely starts with the signature is not taken (and later served) as an image:
        // JPEG: SOI then a marker; PNG: the IHDR chunk (length 13) first; WebP: a VP8/VP8L/VP8X
        // chunk first.
        if bytes.len() >= 4
            && bytes.starts_with(&[0xFF, 0xD8, 0xFF])
            && bytes[3] >= 0xC0
            && bytes[3] != 0xFF
        {
            Some(ImageKind::Jpeg)
        } else if bytes.starts_with(&PNG_SIGNATURE)
            && bytes.get(8..16) == Some(&[0, 0, 0, 13, b'I', b'H', b'D', b'R'][..])
        {
            Some(ImageKind::Png)
        } else if bytes.len() >= 16
            && &bytes[0..4] == b"RIFF"
            && &bytes[8..12] == b"WEBP"
            && matches!(&bytes[12..16], b"VP8 " | b"VP8L" | b"VP8X")
        {
            Some(ImageKind::Webp)
        } else {
            None
        }
    }
    pub fn ext(self) -> &'static str {
        match self {
            ImageKind::Jpeg => "jpg",
            ImageKind::Png => "png",
            ImageKind::Webp => "webp",
        }
    }
    pub fn content_type(self) -> &'static str {
        match self {
            ImageKind::Jpeg => "image/jpeg",
            ImageKind::Png => "image/png",
            ImageKind::Webp => "image/webp",
        }
    }
    fn from_ext(ext: &str) -> Option<ImageKind> {
        match ext {
            "jpg" => Some(ImageKind::Jpeg),
            "png" => Some(ImageKind::Png),
            "webp" => Some(ImageKind::Webp),
            _ => None,
        }
    }
}

/// The blob name of a stored file name.
pub fn blob_name(file: &str) -> String {
    format!("{FOLDER}/{file}")
}

/// Parses a served file name: exactly a generated name (32 hex digits + a known extension), so
/// nothing else — no `..`, no other folder — can ever be addressed. Returns its format.
pub fn parse_file_name(file: &str) -> Option<ImageKind> {
    let (stem, ext) = file.split_once('.')?;
    let ok = stem.len() == 32
        && stem
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, 'a'..='f'));
    if ok { ImageKind::from_ext(ext) } else { None }
}

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Over [`MAX_IMAGE_BYTES`].
    #[error("file too large")]
    TooLarge,
    #[error("profile_img is empty")]
    Empty,
    #[error("not a JPEG, PNG or WebP image")]
    NotAnImage,
    /// Kept losing the race on the profile's pointer (retryable).
    #[error("profile image kept changing concurrently")]
    Busy,
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error(transparent)]
    Blob(#[from] crate::blobs::BlobError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Profiles {
    /// Stores a new profile image and points the profile at it; returns the image URL.
    pub async fn replace_image(
        &self,
        username: &Username,
        bytes: Bytes,
    ) -> Result<String, ImageError> {
        if bytes.len() > MAX_IMAGE_BYTES {
            return Err(ImageError::TooLarge);
        }
        if bytes.is_empty() {
            return Err(ImageError::Empty);
        }
        let not_an_image = || ImageError::NotAnImage;
        let kind = ImageKind::sniff(&bytes).ok_or_else(not_an_image)?;
        // EXIF (GPS position, camera serial), XMP, IPTC and text chunks never reach the public URL.
        let bytes = super::metadata::strip(kind, bytes).map_err(|_| not_an_image())?;
        let file = format!("{}.{}", uuid::Uuid::new_v4().simple(), kind.ext());
        let size = bytes.len();
        self.blobs
            .put(&blob_name(&file), bytes, kind.content_type())
            .await?;
        // Swap the profile's pointer only if it still names the image we read, so two concurrent
        // uploads cannot both "replace" the same old file and orphan one of the new ones.
        let mut swapped = None;
        for attempt in 0..20u32 {
            let old = match self.info(username).await {
                Ok(info) => info.profile_img,
                Err(e) => {
                    let _ = self.blobs.delete(&blob_name(&file)).await;
                    return Err(e.into());
                }
            };
            let still = match &old {
                Some(o) => Cond::eq("profile_img", o.as_str()),
                None => Cond::NotExists("profile_img".into())
                    .or(Cond::eq("profile_img", crate::store::AttrValue::Null)),
            };
            let update = Update::new()
                .set("profile_img", file.as_str())
                .set("updated_at", self.clock.epoch());
            let cond = Cond::item_exists().and(still);
            match self
                .table
                .update(&keys::info(username), update, Some(cond))
                .await
            {
                Ok(_) => {
                    swapped = Some(old);
                    break;
                }
                Err(StoreError::ConditionFailed) => {
                    let jitter = rand::random_range(1..=(2u64 << attempt.min(5)));
                    tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
                }
                Err(e) => {
                    // The profile did not change: do not leave the new file behind.
                    let _ = self.blobs.delete(&blob_name(&file)).await;
                    return Err(e.into());
                }
            }
        }
        let Some(old) = swapped else {
            let _ = self.blobs.delete(&blob_name(&file)).await;
            return Err(ImageError::Busy);
        };
        if let Some(old) = old.filter(|o| parse_file_name(o).is_some())
            && let Err(e) = self.blobs.delete(&blob_name(&old)).await
        {
            tracing::warn!(error = %e, "could not remove the previous profile image");
        }
        let data = serde_json::json!({ "file": file, "bytes": size, "type": kind.content_type() });
        self.audit
            .record(
                LogKind::Audit,
                username,
                Some(username),
                "profile.image_updated",
                data,
            )
            .await;
        Ok(self.blobs.url(&blob_name(&file)).await?)
    }

    /// Reads a served profile image: its bytes and content type, or `None`.
    pub async fn read_image(
        &self,
        file: &str,
    ) -> Result<Option<(Bytes, &'static str)>, ImageError> {
        let Some(kind) = parse_file_name(file) else {
            return Ok(None);
        };
        Ok(self
            .blobs
            .get(&blob_name(file))
            .await?
            .map(|b| (b, kind.content_type())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_names_are_only_generated_names() {
        assert_eq!(
            parse_file_name("0123456789abcdef0123456789abcdef.png"),
            Some(ImageKind::Png)
        );
        for bad in [
            "../0123456789abcdef0123456789abcdef.png",
            "0123456789abcdef0123456789abcdef.png.exe",
            "0123456789ABCDEF0123456789ABCDEF.png",
            "0123456789abcdef0123456789abcdef.gif",
            "john_doe.jpg",
            "",
        ] {
            assert_eq!(parse_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_are_recognised_by_content() {
        assert_eq!(
            ImageKind::sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]),
            Some(ImageKind::Jpeg)
        );
        assert_eq!(
            ImageKind::sniff(b"RIFF\x10\0\0\0WEBPVP8 "),
            Some(ImageKind::Webp)
        );
        assert_eq!(
            ImageKind::sniff(b"hello, I am text pretending to be a png"),
            None
        );
        assert_eq!(ImageKind::sniff(b"GIF89a"), None);
        // The magic number alone is not enough.
        assert_eq!(ImageKind::sniff(b"\x89PNG\r\n\x1a\nnot really a png"), None);
        assert_eq!(ImageKind::sniff(b"\xFF\xD8\xFFhello"), None);
        assert_eq!(ImageKind::sniff(b"RIFF\x10\0\0\0WEBPtext"), None);
    }
}
