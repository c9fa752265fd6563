//! The forecast chart of one series, drawn by both reports (the student's subject
//! outlook and the cohort report's forecasts).

use crate::charts::{self, Chart, Frame};
use crate::data::WeekData;
use crate::labels::Labels;

use super::format::{date_ticks, dnum, finite_range, num};

/// A forecast chart of one series: history, forecast band and line, anomalies, with
/// `y_label` as the title of its y axis (what the series counts or measures).
pub fn forecast_chart(
    t: &Labels,
    d: &WeekData,
    series: &str,
    title: &str,
    y_label: &str,
    reference: Option<(f64, String)>,
) -> Option<Chart> {
    let fc = d.forecasts.get(series)?;
    let hist = d.history.get(series).map(Vec::as_slice).unwrap_or(&[]);
    let an = d.anomalies.get(series).map(Vec::as_slice).unwrap_or(&[]);
    let first = hist
        .first()
        .map(|h| h.0)
        .into_iter()
        .chain(fc.first().map(|f| f.day))
        .chain(an.iter().map(|a| a.day))
        .min()?;
    let last = fc.last().map(|f| f.day)?;
    let mut ys: Vec<f64> = hist.iter().map(|h| h.1).collect();
    ys.extend(fc.iter().flat_map(|f| [f.lo, f.hi]));
    ys.extend(an.iter().map(|a| a.value));
    ys.extend(reference.as_ref().map(|r| r.0));
    let (ymin, ymax) = finite_range(&ys);
    let hist_pts: Vec<_> = hist.iter().map(|&(day, v)| (dnum(day), Some(v))).collect();
    let band: Vec<_> = fc.iter().map(|f| (dnum(f.day), f.lo, f.hi)).collect();
    let yhat: Vec<_> = fc.iter().map(|f| (dnum(f.day), Some(f.yhat))).collect();
    let anomalies: Vec<_> = an
        .iter()
        .map(|a| {
            (
                dnum(a.day),
                a.value,
                format!(
                    "{} {}: {} ({} {})",
                    t.anomaly,
                    a.day,
                    num(Some(a.value), 2),
                    t.forecast,
                    num(Some(a.expected), 2)
                ),
            )
        })
        .collect();
    let desc = format!(
        "{title}: {} {}\u{2013}{}, {} {}\u{2013}{}",
        t.history,
        hist.first().map(|h| h.0.to_string()).unwrap_or_default(),
        hist.last().map(|h| h.0.to_string()).unwrap_or_default(),
        t.forecast,
        fc.first().map(|f| f.day.to_string()).unwrap_or_default(),
        last
    );
    let mut f = Frame::new(
        title,
        charts::HEIGHT,
        (dnum(first), dnum(last)),
        (ymin, ymax),
    )
    .x_ticks(date_ticks(first, last, 7))
    .y_label(y_label)
    .desc(desc)
    .band(&band, "fband")
    .line(&hist_pts, "hist")
    .line(&yhat, "fline")
    .dots(&anomalies, 3.5, "anomaly")
    .legend("hist", t.history)
    .legend("fline", t.forecast)
    .legend("fband", t.interval80);
    if !anomalies.is_empty() {
        f = f.legend("anomaly", t.anomaly);
    }
    if let Some((y, label)) = reference {
        f = f.hrule(y, "you", label);
    }
    Some(f.build())
}
