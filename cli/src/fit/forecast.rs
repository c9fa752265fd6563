//! `irtlake fit forecast`: [`models::forecast::forecast_series`] (Prophet-style trend
//! with changepoints + weekly seasonality, exact MAP) on a daily series: one row per
//! day, dates `YYYY-MM-DD` (missing days may be absent, no day twice).

use std::path::PathBuf;

use anyhow::Result;
use models::forecast::{ForecastConfig, MIN_POINTS, forecast_series};
use serde_json::json;

use super::table::{Table, date_of};
use super::{CsvOut, num, out_dir, print_summary, write_json};

/// Options of `irtlake fit forecast`.
#[derive(Debug, clap::Args)]
pub struct ForecastArgs {
    /// CSV with a header, one row per day.
    #[arg(long)]
    pub data: PathBuf,
    /// Date column, YYYY-MM-DD.
    #[arg(long)]
    pub ds: String,
    /// Value column (numeric).
    #[arg(long)]
    pub y: String,
    /// Days to forecast after the last date (1 to 3660).
    #[arg(long, value_parser = crate::bounds::usize_in(1, 3_660))]
    pub horizon: usize,
    /// Coverage of the forecast intervals, in (0, 1).
    #[arg(long, value_parser = crate::bounds::f64_between(0.0, 1.0), default_value_t = 0.8)]
    pub interval: f64,
    /// Coverage of the in-sample interval outside which a day is an anomaly, in (0, 1).
    #[arg(long, value_parser = crate::bounds::f64_between(0.0, 1.0), default_value_t = 0.99)]
    pub anomaly_interval: f64,
    /// Seed of the simulated paths behind the forecast intervals.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output folder: forecast.csv (ds, yhat, yhat_lower, yhat_upper), anomalies.csv
    /// (ds, y, expected, score), fit.json.
    #[arg(long)]
    pub out: PathBuf,
}

/// `irtlake fit forecast`.
pub fn forecast(args: ForecastArgs) -> Result<()> {
    let table = Table::read(&args.data)?;
    let days = table.days(&args.ds)?;
    let values = table.numeric(&args.y)?;
    table.require_rows(
        MIN_POINTS,
        "the forecast (trend and weekly seasonality: two weeks of days)",
    )?;
    let config = ForecastConfig {
        horizon: args.horizon,
        interval_width: args.interval,
        anomaly_width: args.anomaly_interval,
        seed: args.seed,
        ..ForecastConfig::default()
    };
    let out = forecast_series(&days, &values, &config)
        .map_err(|e| anyhow::anyhow!("{}: forecast: {e}", table.path().display()))?;

    out_dir(&args.out)?;
    let mut w = CsvOut::create(
        &args.out,
        "forecast.csv",
        &["ds", "yhat", "yhat_lower", "yhat_upper"],
    )?;
    for p in &out.forecast {
        w.row([
            date_of(p.day).to_string(),
            num(p.yhat),
            num(p.lower),
            num(p.upper),
        ])?;
    }
    w.finish()?;
    let mut w = CsvOut::create(
        &args.out,
        "anomalies.csv",
        &["ds", "y", "expected", "score"],
    )?;
    for p in out.anomalies() {
        w.row([
            date_of(p.day).to_string(),
            num(p.y),
            num(p.yhat),
            num(p.score),
        ])?;
    }
    w.finish()?;
    let model = out.forecast_model();
    let summary = json!({
        "model": "forecast",
        "data": args.data.display().to_string(),
        "n": days.len(),
        "first": date_of(out.fit.days[0]).to_string(),
        "last": date_of(out.fit.days[out.fit.days.len() - 1]).to_string(),
        "horizon": args.horizon,
        "interval": args.interval,
        "anomaly_interval": args.anomaly_interval,
        "anomalies": out.anomalies().count(),
        "refit_without_anomalies": out.refit.is_some(),
        "sigma": model.sigma(),
        "final_slope_per_day": model.final_slope_per_day(),
        "changepoints": model
            .changepoints
            .iter()
            .zip(&model.params.delta)
            .filter(|(_, d)| **d != 0.0)
            .map(|(&day, d)| json!({"ds": date_of(day).to_string(), "rate_change_per_day": d * model.y_scale / model.t_scale}))
            .collect::<Vec<_>>(),
        "iterations": model.iterations,
        "converged": model.converged,
        "seed": args.seed,
    });
    write_json(&args.out, "fit.json", &summary)?;
    print_summary(&summary)
}
