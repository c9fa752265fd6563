//! Object keys of generated artifacts (reports), relative to the lake root.
//!
//! Artifacts live under their own prefix, beside the tables, in Hive-style folders whose
//! values are escaped like partition values ([`crate::partition::escape_value`]): a
//! student id such as `../x` or `<script>` is one folder name, never a path.
//!
//! - `reports/week_start=YYYY-MM-DD/student_id=<escaped id>/report.html`
//! - `reports/week_start=YYYY-MM-DD/cohort.html`

use crate::error::{LakeError, Result};
use crate::partition;

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
