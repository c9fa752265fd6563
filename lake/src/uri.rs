//! Lake URIs: `file://` (relative or absolute) and `s3://bucket/prefix`.

use std::path::PathBuf;

use crate::error::{LakeError, Result};

/// Where the lake lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LakeUri {
    /// A folder on the local file system (absolute after parsing).
    Local(PathBuf),
    /// A bucket and key prefix on S3 (or an S3-protocol server named by `AWS_ENDPOINT_URL`).
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix without leading or trailing `/`; may be empty.
        prefix: String,
    },
}

/// The default lake: `file://./lake`.
pub const DEFAULT_LAKE_URI: &str = "file://./lake";

impl LakeUri {
    /// Parses `file://./rel`, `file:///abs`, a bare path, or `s3://bucket[/prefix]`.
    /// Relative local paths are resolved against the current directory.
    pub fn parse(uri: &str) -> Result<Self> {
        let bad = |reason: &str| LakeError::InvalidUri {
            uri: uri.to_string(),
            reason: reason.to_string(),
        };
        if let Some(rest) = uri.strip_prefix("s3://") {
            let rest = rest.trim_end_matches('/');
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("an S3 lake needs a bucket: s3://bucket/prefix"));
            }
            if prefix.split('/').any(|p| p == ".." || p == ".") {
                return Err(bad("the S3 prefix may not contain '.' or '..' segments"));
            }
            return Ok(LakeUri::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.trim_matches('/').to_string(),
            });
        }
        let path = if let Some(rest) = uri.strip_prefix("file://") {
            if rest.is_empty() {
                return Err(bad(
                    "a file lake needs a path: file://./lake or file:///abs/path",
                ));
            }
            rest
        } else if uri.contains("://") {
            return Err(bad("supported schemes are file:// and s3://"));
        } else if uri.is_empty() {
            return Err(bad("empty URI"));
        } else {
            uri
        };
        let path = PathBuf::from(path);
        let abs = if path.is_absolute() {
            path
        } else {
            std::env::current_dir()?.join(path)
        };
        Ok(LakeUri::Local(normalize(&abs)))
    }

    /// The canonical textual form (`file:///abs/path` or `s3://bucket/prefix`).
    pub fn to_uri_string(&self) -> String {
        match self {
            LakeUri::Local(p) => format!("file://{}", p.display()),
            LakeUri::S3 { bucket, prefix } if prefix.is_empty() => format!("s3://{bucket}"),
            LakeUri::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
        }
    }
}

impl std::fmt::Display for LakeUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_uri_string())
    }
}

/// Removes `.` and resolves `..` lexically (the folder may not exist yet).
fn normalize(p: &std::path::Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_local_and_s3_uris() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            LakeUri::parse("file://./lake").unwrap(),
            LakeUri::Local(cwd.join("lake"))
        );
        assert_eq!(
            LakeUri::parse("file:///tmp/x/../y").unwrap(),
            LakeUri::Local("/tmp/y".into())
        );
        assert_eq!(
            LakeUri::parse("lake2").unwrap(),
            LakeUri::Local(cwd.join("lake2"))
        );
        assert_eq!(
            LakeUri::parse("s3://b/p/q/").unwrap(),
            LakeUri::S3 {
                bucket: "b".into(),
                prefix: "p/q".into()
            }
        );
        assert_eq!(
            LakeUri::parse("s3://b").unwrap(),
            LakeUri::S3 {
                bucket: "b".into(),
                prefix: "".into()
            }
        );
        assert!(LakeUri::parse("s3://").is_err());
        assert!(LakeUri::parse("gs://b").is_err());
        assert!(LakeUri::parse("file://").is_err());
        assert!(LakeUri::parse("s3://b/../x").is_err());
    }
}
