//! IRT engine benchmark (run by `make bench`):
//! 1. 2PL on a production-shaped sparse bank, 10,000 students × 400 items, 50 answered
//!    each (≈500,000 responses): wall time of calibration + EAP scoring, EM cycles, and
//!    ns per (response × node × cycle);
//! 2. 2PL on a complete 5,000 × 60 bank, written to `OUT/complete_5000x60.csv` (a 0/1
//!    matrix, one row per student) so that a peer (Python `girth`) fits the same data in
//!    the same run; our time is printed for the ratio;
//! 3. 3PL on a complete 5,000 × 40 bank with a Beta(5, 17) prior on c, standard errors
//!    included (issue 18's target: ≤ 0.3 s; R mirt takes 2.1 s without SEs), with the
//!    fit's phase breakdown (prepare, EM, SEs);
//! 4. the sparse bank of (1) written as a long CSV, `OUT/sparse_10000x400x50.csv`
//!    (`student_id,question_id,correct`), for `irtlake irt fit` end to end
//!    (`bench/irt_fit.py`) and for the girth peer on the same data.
//!
//! Usage: `bench_irt OUT_DIR`. Prints one JSON object per line.

use std::io::Write;
use std::time::Instant;

use models::irt::{BetaPrior, FitConfig, Model, ScoringConfig, calibrate, score_students};
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

    let three = complete_bank(5_000, 40, true, 78);
    let mut best: Option<(f64, models::irt::FitResult)> = None;
    for _ in 0..3 {
        let t0 = Instant::now();
        let mut config = FitConfig::new(Model::ThreePl);
        config.priors.c = Some(BetaPrior {
            alpha: 5.0,
            beta: 17.0,
        });
        let fit = calibrate(&three.responses, &config).expect("3PL calibration");
        let secs = t0.elapsed().as_secs_f64();
        if best.as_ref().is_none_or(|b| secs < b.0) {
            best = Some((secs, fit));
        }
    }
    let (secs, fit) = best.expect("three runs");
    println!(
        "{}",
        serde_json::json!({
            "bench": "irtlake_3pl_complete_5000x40", "seconds": secs, "em_cycles": fit.iterations,
            "converged": fit.converged, "se_method": fit.se_method, "phases_ms": fit.timings,
            "threads": threads, "target_seconds": 0.3, "mirt_seconds_without_se": 2.1,
        })
    );

    let path = out.join("sparse_10000x400x50.csv");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&path).expect("create csv"));
    writeln!(w, "student_id,question_id,correct").expect("write csv");
    for s in 0..sparse.thetas.len() {
        let (its, ys) = sparse.responses.row(s);
        for (i, y) in its.iter().zip(ys) {
            writeln!(w, "s{s:05},q{i:03},{}", u8::from(*y)).expect("write csv");
        }
    }
    drop(w);
}
