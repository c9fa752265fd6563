//! IRT engine benchmark (run by `make bench`):
//! 1. 2PL on a production-shaped sparse bank, 10,000 students × 400 items, 50 answered
//!    each (≈500,000 responses): wall time of calibration + EAP scoring, EM cycles, and
//!    ns per (response × node × cycle);
//! 2. 2PL on a complete 5,000 × 60 bank, written to `OUT/complete_5000x60.csv` (a 0/1
//!    matrix, one row per student) so that a peer (Python `girth`) fits the same data in
//!    the same run; our time is printed for the ratio.
//!
//! Usage: `bench_irt OUT_DIR`. Prints one JSON object per line.

use std::io::Write;
use std::time::Instant;

use models::irt::{FitConfig, Model, ScoringConfig, calibrate, score_students};
use models::sim::responses::{complete_bank, sparse_bank};

fn fit_and_score(
    bank: &models::sim::SimulatedBank,
    compute_se: bool,
) -> (f64, models::irt::FitResult) {
    let t0 = Instant::now();
    let mut config = FitConfig::new(Model::TwoPl);
    config.compute_se = compute_se;
    let fit = calibrate(&bank.responses, &config).expect("calibration");
    let items: Vec<_> = fit
        .items
        .iter()
        .map(|f| f.excluded.is_none().then_some(f.params))
        .collect();
    let scores =
        score_students(&bank.responses, &items, &ScoringConfig::default()).expect("scoring");
    assert_eq!(scores.len(), bank.thetas.len());
    (t0.elapsed().as_secs_f64(), fit)
}

fn main() {
    let out = std::path::PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "bench-out".into()),
    );
    std::fs::create_dir_all(&out).expect("create output folder");
    let threads = rayon::current_num_threads();

    let sparse = sparse_bank(10_000, 400, 50, false, 2024);
    let n = sparse.responses.n_responses();
    // best of 3: the machine is shared; the minimum is the least disturbed run
    let mut best: Option<(f64, models::irt::FitResult)> = None;
    for _ in 0..3 {
        let r = fit_and_score(&sparse, true);
        if best.as_ref().is_none_or(|b| r.0 < b.0) {
            best = Some(r);
        }
    }
    let (secs, fit) = best.expect("three runs");
    let nodes = 61.0;
    let ns_per = secs * 1e9 / (n as f64 * nodes * fit.iterations as f64);
    println!(
        "{}",
        serde_json::json!({
            "bench": "irtlake_2pl_sparse_10000x400x50", "responses": n, "threads": threads,
            "seconds": secs, "em_cycles": fit.iterations, "converged": fit.converged,
            "ns_per_response_node_cycle": ns_per, "target_seconds": 1.5,
        })
    );

    let complete = complete_bank(5_000, 60, false, 77);
    let mut w = std::io::BufWriter::new(
        std::fs::File::create(out.join("complete_5000x60.csv")).expect("create csv"),
    );
    for s in 0..complete.thetas.len() {
        let (_, ys) = complete.responses.row(s);
        let line: Vec<&str> = ys.iter().map(|&y| if y { "1" } else { "0" }).collect();
        writeln!(w, "{}", line.join(",")).expect("write csv");
    }
    drop(w);
    // The peer estimates parameters and EAP abilities without standard errors: time the
    // same work here (and, for information, the run with the full observed-information SEs).
    let best_of = |se: bool| {
        let mut best = (f64::INFINITY, 0);
        for _ in 0..3 {
            let (s, f) = fit_and_score(&complete, se);
            if s < best.0 {
                best = (s, f.iterations);
            }
        }
        best
    };
    let (secs, cycles) = best_of(false);
    let (secs_se, _) = best_of(true);
    println!(
        "{}",
        serde_json::json!({
            "bench": "irtlake_2pl_complete_5000x60", "seconds": secs, "em_cycles": cycles,
            "seconds_with_full_se": secs_se,
            "threads": threads, "data": out.join("complete_5000x60.csv"),
        })
    );
}
