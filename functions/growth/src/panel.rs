//! Reading the growth data: students per bucket for the fit sample, weekly θ and
//! weekly accuracy as model rows.

use chrono::NaiveDate;
use datafusion::prelude::SessionContext;
use kpis::WeeklyRecord;
use lake::runs::{StageError, day_param};

const BUCKETS_SQL: &str = include_str!("../../../sql/growth/bucket_students.sql");

/// Students with attempts in at least two weeks of `[first_week, run_date]` per student
/// bucket (index = bucket, [`lake::shard::STUDENT_BUCKETS`] entries).
pub(crate) async fn bucket_counts(
    ctx: &SessionContext,
    first_week: NaiveDate,
    run_date: NaiveDate,
) -> Result<Vec<u64>, StageError> {
    let params = vec![day_param(first_week), day_param(run_date)];
    Ok(lake::shard::bucket_counts(ctx, BUCKETS_SQL, params).await?)
}

/// Weekly θ and accuracy as rows of the growth models: θ rows of the students with at
/// least two weekly θ, accuracy rows of every student; time = week offset from the run
/// date's week.
#[derive(Debug, Default)]
pub(crate) struct Panel {
    /// Student per row.
    pub ids: Vec<String>,
    /// Week offset per row (0 = the run date's week, −1 the one before, …).
    pub time: Vec<f64>,
    /// θ per row.
    pub y: Vec<f64>,
    /// Students with a single weekly θ (left out of the rows).
    pub single_week: usize,
    /// θ of every student with one in the current week (also single-week students).
    pub current: Vec<f64>,
    /// The one week every θ is in, when they all are in one week.
    pub only_week: Option<NaiveDate>,
    /// Accuracy rows, one per student-week with answers (every student): student…
    pub acc_ids: Vec<String>,
    /// … week offset …
    pub acc_time: Vec<f64>,
    /// … right first answers …
    pub acc_correct: Vec<f64>,
    /// … and questions answered.
    pub acc_answered: Vec<f64>,
}

impl Panel {
    /// The rows of the students of `records` (sorted by student and week, as
    /// [`kpis::weekly_records`] returns them) that `keep` keeps.
    pub fn new(records: &[WeeklyRecord], week: NaiveDate, keep: impl Fn(&str) -> bool) -> Self {
        Self::build(records, week, keep, true)
    }

    /// [`Panel::new`] without the accuracy rows (the θ model's fit sample: its students
    /// are many and the accuracy model has its own sample).
    pub fn theta_only(
        records: &[WeeklyRecord],
        week: NaiveDate,
        keep: impl Fn(&str) -> bool,
    ) -> Self {
        Self::build(records, week, keep, false)
    }

    fn build(
        records: &[WeeklyRecord],
        week: NaiveDate,
        keep: impl Fn(&str) -> bool,
        accuracy: bool,
    ) -> Self {
        let mut p = Panel::default();
        let mut first = true;
        let mut start = 0;
        while start < records.len() {
            let id = &records[start].student_id;
            let end = start
                + records[start..]
                    .iter()
                    .take_while(|t| &t.student_id == id)
                    .count();
            let all = &records[start..end];
            start = end;
            if !keep(id) {
                continue;
            }
            for r in all.iter().filter(|_| accuracy) {
                p.acc_ids.push(id.clone());
                p.acc_time.push(offset(r.week_start, week));
                p.acc_correct.push(f64::from(r.correct));
                p.acc_answered.push(f64::from(r.answered));
            }
            let rows: Vec<(NaiveDate, f64)> = all
                .iter()
                .filter_map(|r| r.theta.as_ref().map(|t| (r.week_start, t.value)))
                .collect();
            if rows.is_empty() {
                continue;
            }
            if first {
                p.only_week = Some(rows[0].0);
                first = false;
            }
            for &(w, theta) in &rows {
                if w == week {
                    p.current.push(theta);
                }
                if p.only_week != Some(w) {
                    p.only_week = None;
                }
            }
            if rows.len() < 2 {
                p.single_week += 1;
            } else {
                for &(w, theta) in &rows {
                    p.ids.push(id.clone());
                    p.time.push(offset(w, week));
                    p.y.push(theta);
                }
            }
        }
        p
    }

    /// Students with θ-model rows (≥ 2 weekly θ), in row order.
    pub fn theta_students(&self) -> std::collections::HashSet<&str> {
        self.ids.iter().map(String::as_str).collect()
    }

    /// Students with answers in the current week (the ones with a `weekly_kpi` row of
    /// that week).
    pub fn current_week_students(&self) -> std::collections::HashSet<&str> {
        self.acc_ids
            .iter()
            .zip(&self.acc_time)
            .filter(|(_, t)| **t == 0.0)
            .map(|(id, _)| id.as_str())
            .collect()
    }

    /// Students with accuracy rows in at least two weeks.
    pub fn multi_week_students(&self) -> std::collections::HashSet<&str> {
        self.acc_ids
            .windows(2)
            .filter(|w| w[0] == w[1])
            .map(|w| w[0].as_str())
            .collect()
    }

    /// Mean θ of the current week, if anybody has one.
    pub fn current_mean(&self) -> Option<f64> {
        (!self.current.is_empty())
            .then(|| self.current.iter().sum::<f64>() / self.current.len() as f64)
    }
}

/// Weeks from `week` to `w` (0 for the same week, −1 for the week before, …).
fn offset(w: NaiveDate, week: NaiveDate) -> f64 {
    (w - week).num_days() as f64 / 7.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use models::kpi::Measure;

    fn wt(id: &str, week: &str, v: f64) -> WeeklyRecord {
        WeeklyRecord {
            student_id: id.into(),
            week_start: week.parse().expect("date"),
            theta: Some(Measure {
                value: v,
                se: 0.3,
                n: 10,
            }),
            correct: 7,
            answered: 10,
        }
    }

    #[test]
    fn students_with_two_weeks_become_rows_with_week_offsets() {
        let week: NaiveDate = "2026-02-09".parse().expect("date");
        let all = [
            wt("a", "2026-01-26", 0.1),
            wt("a", "2026-02-09", 0.5),
            wt("b", "2026-02-09", 1.0),
            wt("c", "2026-02-02", -0.2),
            wt("c", "2026-02-09", 0.0),
        ];
        let p = Panel::new(
            &[
                wt("a", "2026-01-26", 0.1),
                wt("a", "2026-02-09", 0.5),
                wt("b", "2026-02-09", 1.0),
                wt("c", "2026-02-02", -0.2),
                wt("c", "2026-02-09", 0.0),
            ],
            week,
            |_| true,
        );
        assert_eq!(p.ids, ["a", "a", "c", "c"]);
        assert_eq!(p.time, [-2.0, 0.0, -1.0, 0.0]);
        assert_eq!(p.y, [0.1, 0.5, -0.2, 0.0]);
        assert_eq!(p.single_week, 1);
        assert_eq!(p.current_mean(), Some(0.5));
        assert_eq!(p.only_week, None);
        let one = Panel::new(
            &[wt("a", "2026-02-02", 0.1), wt("b", "2026-02-02", 0.2)],
            week,
            |_| true,
        );
        assert_eq!(
            (one.ids.len(), one.single_week, one.current_mean()),
            (0, 2, None)
        );
        assert_eq!(one.only_week, "2026-02-02".parse().ok());
        // a subset of the students: their rows only, counted as if read alone
        let bc = Panel::new(&all, week, |id| id != "a");
        assert_eq!((bc.ids.len(), bc.single_week), (2, 1));
        assert_eq!(bc.current_mean(), Some(0.5));
        let b = Panel::new(&all, week, |id| id == "b");
        assert_eq!((b.ids.len(), b.only_week), (0, "2026-02-09".parse().ok()));
        let none = Panel::new(&all, week, |_| false);
        assert_eq!(
            (none.ids.len(), none.single_week, none.only_week),
            (0, 0, None)
        );
    }

    #[test]
    fn every_week_with_answers_is_an_accuracy_row_theta_or_not() {
        let week: NaiveDate = "2026-02-09".parse().expect("date");
        let no_theta = |id: &str, w: &str, correct: u32, answered: u32| WeeklyRecord {
            theta: None,
            correct,
            answered,
            ..wt(id, w, 0.0)
        };
        let records = [
            wt("a", "2026-02-02", 0.1),
            no_theta("a", "2026-02-09", 2, 2),
            no_theta("b", "2026-01-26", 1, 4),
            wt("c", "2026-02-02", -0.2),
            wt("c", "2026-02-09", 0.3),
        ];
        let p = Panel::new(&records, week, |_| true);
        // θ rows: only c has two weekly θ; a has one; b none (not counted single-week).
        assert_eq!(p.ids, ["c", "c"]);
        assert_eq!(p.single_week, 1);
        assert_eq!(p.current_mean(), Some(0.3));
        assert_eq!(p.theta_students(), ["c"].into_iter().collect());
        // Accuracy rows: every student-week.
        assert_eq!(p.acc_ids, ["a", "a", "b", "c", "c"]);
        assert_eq!(p.acc_time, [-1.0, 0.0, -2.0, -1.0, 0.0]);
        assert_eq!(p.acc_correct, [7.0, 2.0, 1.0, 7.0, 7.0]);
        assert_eq!(p.acc_answered, [10.0, 2.0, 4.0, 10.0, 10.0]);
        assert_eq!(p.multi_week_students(), ["a", "c"].into_iter().collect());
        assert_eq!(p.current_week_students(), ["a", "c"].into_iter().collect());
        let theta = Panel::theta_only(&records, week, |_| true);
        assert_eq!((theta.ids, theta.y), (p.ids.clone(), p.y.clone()));
        assert!(theta.acc_ids.is_empty() && theta.acc_time.is_empty());
        let only_b = Panel::new(&records, week, |id| id == "b");
        assert_eq!((only_b.ids.len(), only_b.only_week), (0, None));
        assert_eq!(only_b.acc_ids, ["b"]);
    }
}
