//! Object keys of generated artifacts (reports), relative to the lake root.
//!
//! Artifacts live under their own prefix, beside the tables, in Hive-style folders whose
//! values are escaped like partition values ([`crate::partition::escape_value`]): a
//! student id such as `../x` or `<script>` is one folder name, never a path.
//!
//! - `reports/week_start=YYYY-MM-DD/student_id=<escaped id>/report.html`
//! - `reports/week_start=YYYY-MM-DD/cohort.html`
//!
//! On S3 a report is stored with [`HTML_CONTENT_TYPE`] and [`REPORT_CACHE_CONTROL`]
//! ([`Lake::put_html`]), so a browser opening its presigned URL shows the page instead
//! of downloading `binary/octet-stream`. Presigned URLs live [`DEFAULT_URL_EXPIRY`]
//! unless the caller says otherwise.

use std::time::Duration;

use bytes::Bytes;
use object_store::{Attribute, Attributes, PutOptions, PutPayload};

use crate::error::{LakeError, Result};
use crate::partition;
use crate::store::Lake;
use crate::uri::LakeUri;

/// Default lifetime of a presigned artifact URL: 1 day — the one default of the CLI
/// (`irtlake report`, `irtlake run`), the reports function (`REPORT_URL_EXPIRY_SECS`
/// unset) and Terraform (`report_url_expiry_seconds`). Not the SigV4 maximum of 7 days
/// ([`crate::MAX_URL_EXPIRY`]): a URL signed with a Lambda's temporary credentials stops
/// working when those expire (hours, not days), so a 7-day promise would not hold in
/// AWS, and a link that leaks ages out sooner. The pipeline signs new links every run.
pub const DEFAULT_URL_EXPIRY: Duration = Duration::from_secs(24 * 3600);

/// `Content-Type` of HTML reports on S3 (a local file has none).
pub const HTML_CONTENT_TYPE: &str = "text/html; charset=utf-8";

/// `Cache-Control` of HTML reports on S3: `private` (a report holds one student's data:
/// no shared cache or CDN may keep it), `max-age=300` (a re-run replaces the report at
/// the same key; a browser shows the new one within 5 minutes).
pub const REPORT_CACHE_CONTROL: &str = "private, max-age=300";

/// Prefix of every report artifact.
pub const REPORTS_PREFIX: &str = "reports";
/// File name of a student's report inside its folder.
pub const STUDENT_REPORT_FILE: &str = "report.html";
/// File name of the cohort report of a week.
pub const COHORT_REPORT_FILE: &str = "cohort.html";

fn segment(column: &str, value: &str) -> Result<String> {
    if value.is_empty() {
        return Err(LakeError::InvalidInput(format!(
            "artifact key: {column} may not be empty"
        )));
    }
    Ok(partition::segment(column, value))
}

/// Key of the weekly report of one student.
pub fn student_report_key(week_start: &str, student_id: &str) -> Result<String> {
    Ok(format!(
        "{REPORTS_PREFIX}/{}/{}/{STUDENT_REPORT_FILE}",
        segment("week_start", week_start)?,
        segment("student_id", student_id)?
    ))
}

/// Key of the cohort (operations) report of a week.
pub fn cohort_report_key(week_start: &str) -> Result<String> {
    Ok(format!(
        "{REPORTS_PREFIX}/{}/{COHORT_REPORT_FILE}",
        segment("week_start", week_start)?
    ))
}

/// The attributes of an HTML artifact on S3: `Content-Type: text/html; charset=utf-8`
/// and `Cache-Control: private, max-age=300` (a local file has none).
fn html_put_options() -> PutOptions {
    PutOptions {
        attributes: Attributes::from_iter([
            (Attribute::ContentType, HTML_CONTENT_TYPE),
            (Attribute::CacheControl, REPORT_CACHE_CONTROL),
        ]),
        ..PutOptions::default()
    }
}

impl Lake {
    /// Stores an HTML artifact at `key` with one atomic put: on S3 with
    /// `Content-Type: text/html; charset=utf-8` and `Cache-Control: private,
    /// max-age=300`; on a local lake as a plain file (files have no content type).
    pub async fn put_html(&self, key: &str, bytes: Bytes) -> Result<()> {
        if let LakeUri::Local(_) = self.uri() {
            // local files carry no attributes: the lake's own staged, fsynced write
            return self.put_object(key, bytes).await;
        }
        self.store()
            .put_opts(
                &self.path(key)?,
                PutPayload::from(bytes),
                html_put_options(),
            )
            .await?;
        Ok(())
    }

    /// Stores many HTML artifacts (`(key, bytes)`, distinct keys) as
    /// [`Lake::put_html`] does each, through [`Lake::put_objects`]: on a local lake made
    /// durable in batches, on S3 several PUTs at a time.
    pub async fn put_html_many(&self, pages: Vec<(String, Bytes)>) -> Result<()> {
        self.put_objects(pages, html_put_options()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_escape_ids_and_refuse_empty_values() {
        assert_eq!(
            student_report_key("2026-03-02", "s00001").unwrap(),
            "reports/week_start=2026-03-02/student_id=s00001/report.html"
        );
        assert_eq!(
            student_report_key("2026-03-02", "../x").unwrap(),
            "reports/week_start=2026-03-02/student_id=%2E%2E%2Fx/report.html"
        );
        let k = student_report_key("2026-03-02", "<script>a/b</script>").unwrap();
        assert_eq!(k.matches('/').count(), 3, "{k}");
        assert!(!k.contains('<'));
        assert_eq!(
            cohort_report_key("2026-03-02").unwrap(),
            "reports/week_start=2026-03-02/cohort.html"
        );
        assert!(student_report_key("2026-03-02", "").is_err());
        assert!(cohort_report_key("").is_err());
    }
}
