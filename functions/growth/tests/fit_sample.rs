//! The growth models fitted on the stage's fit sample (a prefix of student buckets)
//! agree with the fits on every student within the sampling error, on simulated growth
//! data with known parameters; and a student's forecast does not depend on which other
//! students are forecast with it.

// Test code: unwrap on fixtures is how a test says "this must hold".
#![allow(clippy::unwrap_used)]

use lake::shard::{STUDENT_BUCKETS, Shard, student_bucket};
use models::growth::{
    BayesConfig, BayesPriors, GrowthData, GrowthSimSpec, LmmConfig, VarianceComponents, fit_bayes,
    fit_lmm, simulate,
};

const BETA: [f64; 2] = [0.2, 0.05];
const VARIANCE: VarianceComponents = VarianceComponents {
    sd_intercept: 0.8,
    sd_slope: 0.1,
    corr: 0.3,
    sd_residual: 0.4,
};

/// 20,000 students over 9 weeks (times 0 … 8, 30% of student-weeks missing), ids
/// `s000000…`.
fn data() -> (Vec<String>, Vec<f64>, Vec<f64>) {
    let sim = simulate(
        &GrowthSimSpec {
            n_groups: 20_000,
            n_times: 9,
            p_missing: 0.3,
            beta: BETA,
            variance: VARIANCE,
        },
        11,
    )
    .unwrap();
    let ids = sim.group.iter().map(|g| format!("s{g:06}")).collect();
    (ids, sim.time, sim.y)
}

/// The rows of the students in `part`.
fn rows_of(
    part: Shard,
    (ids, time, y): &(Vec<String>, Vec<f64>, Vec<f64>),
) -> (Vec<String>, Vec<f64>, Vec<f64>) {
    let keep: Vec<usize> = (0..ids.len()).filter(|&r| part.contains(&ids[r])).collect();
    (
        keep.iter().map(|&r| ids[r].clone()).collect(),
        keep.iter().map(|&r| time[r]).collect(),
        keep.iter().map(|&r| y[r]).collect(),
    )
}

fn sample_of(ids: &[String], cap: u64) -> Shard {
    let mut counts = vec![0u64; STUDENT_BUCKETS as usize];
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        if seen.insert(id) {
            counts[student_bucket(id, 0) as usize] += 1;
        }
    }
    Shard::fit_sample(&counts, cap)
}

/// For a sample nested in the full data, an estimate's difference from the full
/// estimate has variance SE_sample² − SE_full²; every cohort-level parameter must lie
/// within 4 such standard errors (a 4-SD band: false alarm 6e-5 per parameter) — for
/// REML the fixed effects with their SEs, for the Bayesian model the hyper-parameters
/// (fixed effects and variance components) with their posterior SDs — and the truth
/// within 4 SEs of the sample's estimate.
#[test]
fn cohort_parameters_fitted_on_the_bucket_sample_are_within_sampling_error() {
    let all = data();
    let sample = sample_of(&all.0, 5_000);
    let part = rows_of(sample, &all);
    let (full_data, _) = GrowthData::from_ids(&all.0, &all.1, &all.2).unwrap();
    let (part_data, keys) = GrowthData::from_ids(&part.0, &part.1, &part.2).unwrap();
    let n = keys.len();
    assert!(
        (2_500..=5_000).contains(&n) && sample.count > 1,
        "{n} students in {sample:?}"
    );
    let within = |what: &str, full: (f64, f64), part: (f64, f64), truth: f64| {
        let se_diff = (part.1.powi(2) - full.1.powi(2)).sqrt();
        let z = (part.0 - full.0) / se_diff;
        eprintln!(
            "{what}: full {:.4} (SE {:.4}), sample {:.4} (SE {:.4}, n = {n}): {z:.2} SE apart",
            full.0, full.1, part.0, part.1
        );
        assert!(se_diff > 0.0 && z.abs() <= 4.0, "{what}");
        assert!((part.0 - truth).abs() <= 4.0 * part.1, "{what} vs truth");
    };

    let reml = LmmConfig::default();
    let (f, p) = (
        fit_lmm(&full_data, &reml).unwrap(),
        fit_lmm(&part_data, &reml).unwrap(),
    );
    within(
        "REML intercept",
        (f.intercept.estimate, f.intercept.se),
        (p.intercept.estimate, p.intercept.se),
        BETA[0],
    );
    within(
        "REML slope",
        (f.slope.estimate, f.slope.se),
        (p.slope.estimate, p.slope.se),
        BETA[1],
    );

    let cfg = BayesConfig {
        chains: 2,
        warmup: 300,
        draws: 300,
        seed: 5,
        ..BayesConfig::default()
    };
    let priors = BayesPriors::default();
    let (f, p) = (
        fit_bayes(&full_data, &priors, &cfg).unwrap(),
        fit_bayes(&part_data, &priors, &cfg).unwrap(),
    );
    for (name, truth) in [
        ("beta0", BETA[0]),
        ("beta1", BETA[1]),
        ("sd_intercept", VARIANCE.sd_intercept),
        ("sd_slope", VARIANCE.sd_slope),
        ("corr", VARIANCE.corr),
        ("sigma", VARIANCE.sd_residual),
    ] {
        let (a, b) = (f.param(name).unwrap(), p.param(name).unwrap());
        within(
            &format!("Bayes {name}"),
            (a.mean, a.sd),
            (b.mean, b.sd),
            truth,
        );
    }
}

/// Forecasts of one shard's students with a fit of other students: the same, bit for
/// bit, as those students get when forecast together with everyone (the fitted data's
/// shift), whatever the shard.
#[test]
fn a_forecast_depends_on_the_students_own_rows_only() {
    let all = data();
    let sample = sample_of(&all.0, 3_000);
    let part = rows_of(sample, &all);
    let (part_data, _) = GrowthData::from_ids(&part.0, &part.1, &part.2).unwrap();
    let cfg = BayesConfig {
        chains: 2,
        warmup: 100,
        draws: 100,
        seed: 3,
        ..BayesConfig::default()
    };
    let fit = fit_bayes(&part_data, &BayesPriors::default(), &cfg).unwrap();
    let forecast = |rows: &(Vec<String>, Vec<f64>, Vec<f64>)| {
        let (d, keys) =
            GrowthData::from_ids_with_shift(&rows.0, &rows.1, &rows.2, fit.y_shift()).unwrap();
        let f = fit.forecast_data(&d, 4.0, 0.7);
        keys.into_iter()
            .zip(f)
            .map(|(k, f)| (k, (f.p_goal.to_bits(), f.mean.to_bits(), f.u0.to_bits())))
            .collect::<std::collections::HashMap<_, _>>()
    };
    let everyone = forecast(&all);
    let mut covered = 0;
    for k in 0..4 {
        let shard = forecast(&rows_of(Shard::new(k, 4).unwrap(), &all));
        covered += shard.len();
        for (id, v) in &shard {
            assert_eq!(everyone[id], *v, "{id} in shard {k} of 4");
        }
    }
    assert_eq!(covered, everyone.len());
    // The fitted students' forecasts are the fit's own.
    let own = fit.forecast(4.0, 0.7);
    let (_, keys) = GrowthData::from_ids(&part.0, &part.1, &part.2).unwrap();
    for (k, f) in keys.iter().zip(&own) {
        assert_eq!(everyone[k].0, f.p_goal.to_bits(), "{k}");
    }
}
