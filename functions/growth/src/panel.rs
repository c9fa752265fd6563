//! Reading the growth data: students per bucket for the fit sample, and weekly θ as
//! model rows.

use chrono::NaiveDate;
use datafusion::prelude::SessionContext;
use kpis::WeeklyTheta;
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

/// Weekly θ as rows of the growth models: students with at least two weekly θ, time =
/// week offset from the run date's week.
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
}

impl Panel {
    /// The rows of the students of `thetas` (sorted by student and week, as
    /// [`kpis::weekly_thetas`] returns them) that `keep` keeps.
    pub fn new(thetas: &[WeeklyTheta], week: NaiveDate, keep: impl Fn(&str) -> bool) -> Self {
        let mut p = Panel::default();
        let mut first = true;
        let mut start = 0;
        while start < thetas.len() {
            let id = &thetas[start].student_id;
            let end = start
                + thetas[start..]
                    .iter()
                    .take_while(|t| &t.student_id == id)
                    .count();
            let rows = &thetas[start..end];
            start = end;
            if !keep(id) {
                continue;
            }
            if first {
                p.only_week = Some(rows[0].week_start);
                first = false;
            }
            for t in rows {
                if t.week_start == week {
                    p.current.push(t.theta.value);
                }
                if p.only_week != Some(t.week_start) {
                    p.only_week = None;
                }
            }
            if rows.len() < 2 {
                p.single_week += 1;
            } else {
                for t in rows {
                    p.ids.push(id.clone());
                    p.time.push((t.week_start - week).num_days() as f64 / 7.0);
                    p.y.push(t.theta.value);
                }
            }
        }
        p
    }

    /// Mean θ of the current week, if anybody has one.
    pub fn current_mean(&self) -> Option<f64> {
        (!self.current.is_empty())
            .then(|| self.current.iter().sum::<f64>() / self.current.len() as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use models::kpi::Measure;

    fn wt(id: &str, week: &str, v: f64) -> WeeklyTheta {
        WeeklyTheta {
            student_id: id.into(),
            week_start: week.parse().expect("date"),
            theta: Measure {
                value: v,
                se: 0.3,
                n: 10,
            },
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
}
