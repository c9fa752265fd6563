//! A read-only view of the lake for user SQL (`irtlake sql`).
//!
//! [`Lake::read_only_session`] registers the same tables as [`Lake::session`], but the
//! session's object-store registry holds exactly one store: the lake's, wrapped in a
//! [`ReadOnlyStore`] that refuses every write, copy, rename and delete and every path
//! outside the lake's root. No other URL (`file:///etc`, another bucket) resolves to a
//! store at all. This is the second line of defence: the first is the statement gate of
//! the CLI (only queries are planned), so a statement that slipped through it still
//! cannot write an object or read a file outside the lake.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::execution::object_store::ObjectStoreRegistry;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};
use url::Url;

use crate::error::Result;
use crate::store::Lake;

impl Lake {
    /// A DataFusion session for user queries: every catalog table registered as in
    /// [`Lake::session`], but the only reachable object store is this lake, read-only
    /// and confined to the lake's root (see the module docs). URL tables stay off.
    pub fn read_only_session(&self) -> Result<SessionContext> {
        let store: Arc<dyn ObjectStore> = Arc::new(ReadOnlyStore {
            inner: self.store().clone(),
            root: self.path("")?,
        });
        let registry = Arc::new(LakeOnlyRegistry {
            url: self.store_url().clone(),
            lake: self.uri().to_uri_string(),
            store,
        });
        let runtime = Self::runtime_builder()?
            .with_object_store_registry(registry)
            .build_arc()?;
        let ctx = SessionContext::new_with_config_rt(Self::session_config(), runtime);
        self.register_tables(&ctx)?;
        Ok(ctx)
    }
}

/// An object-store registry that resolves the lake's store URL and nothing else, and
/// ignores registrations.
#[derive(Debug)]
struct LakeOnlyRegistry {
    /// `file:///` or `s3://bucket/`.
    url: Url,
    /// The lake URI, for messages.
    lake: String,
    store: Arc<dyn ObjectStore>,
}

impl ObjectStoreRegistry for LakeOnlyRegistry {
    fn register_store(
        &self,
        _url: &Url,
        _store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        None
    }

    fn get_store(&self, url: &Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        if url.scheme() == self.url.scheme() && url.host_str() == self.url.host_str() {
            Ok(self.store.clone())
        } else {
            Err(datafusion::error::DataFusionError::Plan(format!(
                "{url} is outside the lake: irtlake sql reads only the lake at {}",
                self.lake
            )))
        }
    }
}

/// The lake's store, read-only and confined to the lake root.
#[derive(Debug)]
pub struct ReadOnlyStore {
    inner: Arc<dyn ObjectStore>,
    /// Object path of the lake root; every path read must lie under it.
    root: Path,
}

impl ReadOnlyStore {
    fn refuse_write(&self, operation: &str, path: &Path) -> object_store::Error {
        object_store::Error::PermissionDenied {
            path: path.to_string(),
            source: format!("irtlake sql is read-only: {operation} refused").into(),
        }
    }

    fn check(&self, path: &Path) -> object_store::Result<()> {
        if path.prefix_matches(&self.root) {
            Ok(())
        } else {
            Err(object_store::Error::PermissionDenied {
                path: path.to_string(),
                source: "outside the lake: irtlake sql reads only the lake's tables".into(),
            })
        }
    }

    fn check_prefix(&self, prefix: Option<&Path>) -> object_store::Result<()> {
        match prefix {
            Some(p) => self.check(p),
            None => self.check(&Path::default()),
        }
    }
}

impl fmt::Display for ReadOnlyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReadOnly({})", self.inner)
    }
}

#[async_trait::async_trait]
impl ObjectStore for ReadOnlyStore {
    async fn put_opts(
        &self,
        location: &Path,
        _payload: PutPayload,
        _opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        Err(self.refuse_write("put", location))
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        _opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        Err(self.refuse_write("multipart put", location))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.check(location)?;
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.check(location)?;
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        locations
            .map(|p| {
                p.and_then(|p| {
                    Err(object_store::Error::PermissionDenied {
                        path: p.to_string(),
                        source: "irtlake sql is read-only: delete refused".into(),
                    })
                })
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        match self.check_prefix(prefix) {
            Ok(()) => self.inner.list(prefix),
            Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
        }
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        match self.check_prefix(prefix) {
            Ok(()) => self.inner.list_with_offset(prefix, offset),
            Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
        }
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.check_prefix(prefix)?;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        _from: &Path,
        to: &Path,
        _options: CopyOptions,
    ) -> object_store::Result<()> {
        Err(self.refuse_write("copy", to))
    }

    async fn rename_opts(
        &self,
        _from: &Path,
        to: &Path,
        _options: RenameOptions,
    ) -> object_store::Result<()> {
        Err(self.refuse_write("rename", to))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use object_store::ObjectStoreExt;

    #[tokio::test]
    async fn the_read_only_store_refuses_writes_and_paths_outside_the_lake() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside.txt");
        std::fs::write(&outside, "secret").unwrap();
        let lake = Lake::open(&format!("file://{}", dir.path().join("lake").display())).unwrap();
        lake.store()
            .put(&lake.path("questions/x.parquet").unwrap(), "x".into())
            .await
            .unwrap();
        let ro = ReadOnlyStore {
            inner: lake.store().clone(),
            root: lake.path("").unwrap(),
        };
        let inside = lake.path("questions/x.parquet").unwrap();
        assert_eq!(
            ro.get(&inside).await.unwrap().bytes().await.unwrap(),
            "x".as_bytes()
        );
        assert!(
            ro.list(Some(&lake.path("questions").unwrap()))
                .next()
                .await
                .is_some()
        );
        let out = Path::from_absolute_path(&outside).unwrap();
        assert!(matches!(
            ro.get(&out).await,
            Err(object_store::Error::PermissionDenied { .. })
        ));
        assert!(ro.list(None).next().await.unwrap().is_err());
        assert!(ro.put(&inside, "y".into()).await.is_err());
        assert!(ro.delete(&inside).await.is_err());
        assert!(ro.copy(&inside, &out).await.is_err());
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "secret");
        assert_eq!(
            lake.store()
                .get(&inside)
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap(),
            "x".as_bytes()
        );
    }

    #[tokio::test]
    async fn the_read_only_session_reaches_no_other_store() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(&format!("file://{}", dir.path().join("lake").display())).unwrap();
        let ctx = lake.read_only_session().unwrap();
        let other = datafusion::execution::object_store::ObjectStoreUrl::parse("s3://other-bucket")
            .unwrap();
        assert!(ctx.runtime_env().object_store(&other).is_err());
        let n = ctx
            .sql("SELECT count(*) FROM questions")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        assert_eq!(n[0].num_rows(), 1);
    }
}
