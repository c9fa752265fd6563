//! Anchor drift screening: which anchors no longer behave as their known parameters say,
//! by the robust z statistic (Huynh & Meyer, 2010, "Use of robust z in detecting
//! unstable items in item response theory models", *Practical Assessment, Research &
//! Evaluation* 15(2)), applied iteratively around the linking.
//!
//! With the current constants (A, B), each anchor's estimate moved to the anchor scale
//! (a/A, A·b + B) is compared with its known parameters expressed in the calibrated
//! model: d_b = b* − b_ref and d_a = ln(a*/a_ref). When the model has no guessing
//! parameter (Rasch, 2PL) and the known item has c > 0, (a_ref, b_ref) is the 2PL whose
//! curve is closest to the known 3PL curve (least squares over the linking grid,
//! weighted by its weights): a 2PL estimate of a 3PL item has a lower b and a by
//! construction, which is model misfit, not drift. The Rasch model's slopes are not
//! estimated, so only b is screened there. Over the anchors still in use, z = (d − median d) /
//! (0.74 · IQR d) for each of d_b and d_a (0.74·IQR estimates the SD of a normal sample
//! without letting the outliers inflate it). An anchor is flagged when
//! |z| > `z_threshold` **and** the difference is large enough to matter (|d_b| ≥
//! `min_b_shift`, or |d_a| ≥ `min_log_a_ratio`) **and**, when the estimate's standard
//! error is known, larger than `min_se_ratio` standard errors (SE(b*) = A·SE(b),
//! SE(ln a*) = SE(a)/a): a small calibration's noisy anchors are not "drift". Flagged
//! anchors are dropped, the
//! constants recomputed from the others, and the screen repeated until no anchor is
//! newly flagged. If fewer than `min_anchors` would remain, the calibration is refused.
//!
//! Why not Huynh & Meyer's 1.645: it flags 10 % of perfectly stable anchors in every run
//! by construction (5 of 50, then more as the IQR shrinks each round) — on a daily
//! schedule that would discard good anchors every day. 2.7 keeps the per-anchor false
//! flag rate of a normal sample near 0.7 %, and the practical-size floors (0.3 θ units
//! on b, a 1.5× change of a) keep a large bank, whose tiny estimation errors make z large
//! for negligible differences, from dropping anchors that still link well. The IQR is
//! floored at 0.01 θ units so that noise-free anchors do not give infinite z.
//!
//! Why 5 standard errors: the robust z compares anchors with one another, and in a large
//! calibration the anchors' differences are so tight that an item's ordinary misfit
//! (the demo platform's hints make some items easier than their parameters say) reaches
//! |z| ≈ 6 at 3–4 standard errors. Five standard errors (two-sided p ≈ 6e-7) keeps the
//! expected number of false flags from sampling error below one in a year of daily
//! calibrations of five banks of 50 anchors (two tests each); the SE used is the
//! estimate's own (the reference's and the linking's errors are not in it, another
//! reason for a strict cut). On the demo, the planted −1.0 shifts reach 6–16 standard
//! errors from the second weekly calibration after the shift, the other anchors at most
//! 3.7.
//!
//! A shift younger than the window is diluted in the whole-window estimate; the
//! time-split test ([`super::recent_shifts`], passed in as `recent`) reads the recent
//! answers on their own, and an anchor it flags is left out from the first round.

use super::curves::levenberg_marquardt_2;
use super::recent::RecentShift;
use super::{LinkingConstants, LinkingMethod, link};
use crate::irt::{IrtError, ItemParams, Model, Quadrature, Result};
use crate::numeric::logistic;
use crate::numeric::quantile_sorted;

/// Rules of the drift screen (see the module docs). Defaults: z > 2.7, |d_b| ≥ 0.3,
/// |ln a ratio| ≥ ln 1.5, beyond 5 standard errors, at least 5 anchors, at most 10
/// rounds; the time-split test needs 30 answers in each period and 4 standard errors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DriftRules {
    /// |robust z| above this flags (with the size floors below).
    pub z_threshold: f64,
    /// Smallest |b difference| (θ units) that can flag.
    pub min_b_shift: f64,
    /// Smallest |ln(a*/a_known)| that can flag.
    pub min_log_a_ratio: f64,
    /// A difference must exceed this many standard errors of the estimate to flag
    /// (when the standard error is known).
    pub min_se_ratio: f64,
    /// Fewest anchors the link may rest on after screening; fewer refuses the bank.
    pub min_anchors: usize,
    /// Most screening rounds (each drops the newly flagged and re-links).
    pub max_rounds: usize,
    /// Fewest answers in each period for the time-split test of an anchor
    /// ([`super::recent_shifts`]).
    pub min_split_answers: usize,
    /// The time-split test's shift must exceed this many of its standard errors.
    pub min_split_se_ratio: f64,
}

impl Default for DriftRules {
    fn default() -> Self {
        DriftRules {
            z_threshold: 2.7,
            min_b_shift: 0.3,
            min_log_a_ratio: 1.5f64.ln(),
            min_se_ratio: 5.0,
            min_anchors: 5,
            max_rounds: 10,
            min_split_answers: 30,
            min_split_se_ratio: 4.0,
        }
    }
}

impl DriftRules {
    /// Checks the rules: positive finite threshold and floors, at least 2 anchors and
    /// 1 round.
    pub fn validate(&self) -> Result<()> {
        let ok = self.z_threshold.is_finite()
            && self.z_threshold > 0.0
            && self.min_b_shift.is_finite()
            && self.min_b_shift >= 0.0
            && self.min_log_a_ratio.is_finite()
            && self.min_log_a_ratio >= 0.0
            && self.min_se_ratio.is_finite()
            && self.min_se_ratio >= 0.0
            && self.min_anchors >= 2
            && self.max_rounds >= 1
            && self.min_split_answers >= 1
            && self.min_split_se_ratio.is_finite()
            && self.min_split_se_ratio >= 0.0;
        if ok {
            Ok(())
        } else {
            Err(IrtError::InvalidConfig(format!(
                "drift rules need z > 0, size floors >= 0, min_anchors >= 2, rounds >= 1, min_split_answers >= 1: {self:?}"
            )))
        }
    }
}

/// One anchor's comparison in the final round.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnchorDrift {
    /// Known parameters on the anchor scale.
    pub reference: ItemParams,
    /// The known item in the calibrated model (its 2PL projection when the model has no
    /// c and the known c > 0; else `reference`): what the estimate is compared with.
    pub compared_with: ItemParams,
    /// The estimate moved to the anchor scale with the final constants.
    pub estimate: ItemParams,
    /// b* − b_known, θ units.
    pub diff_b: f64,
    /// ln(a*/a_known).
    pub log_a_ratio: f64,
    /// Robust z of `diff_b` among the anchors used by the final link.
    pub z_b: f64,
    /// Robust z of `log_a_ratio` among the anchors used by the final link.
    pub z_a: f64,
    /// Whether the anchor was flagged (and left out of the link).
    pub flagged: bool,
    /// The round that flagged it (1 = first screen), 0 when not flagged by the estimate
    /// screen (not flagged, or flagged by the time-split test before the first round).
    pub round: usize,
    /// The time-split test of the anchor ([`super::recent_shifts`]; `None`: not run or
    /// too few answers in a period). Flagged there, the anchor is left out from the
    /// first round on.
    pub recent: Option<RecentShift>,
}

/// A link after screening: the constants from the anchors kept, and every anchor's
/// comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct ScreenedLink {
    /// Constants from the anchors that were not flagged.
    pub constants: LinkingConstants,
    /// One entry per anchor, in the input order.
    pub anchors: Vec<AnchorDrift>,
    /// Anchors the final link used.
    pub n_used: usize,
    /// Screening rounds run (the last one flagged nothing, unless `max_rounds` ended it).
    pub rounds: usize,
}

/// (median, robust SD = max(0.74·IQR, 0.0074)) of `values`; quantiles by linear
/// interpolation between order statistics (R's default, type 7).
pub(super) fn robust_centre_spread(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    let q = |p: f64| quantile_sorted(&v, p);
    (q(0.5), (0.74 * (q(0.75) - q(0.25))).max(0.74 * 0.01))
}

/// The anchors a screen compares, all slices in the same anchor order.
#[derive(Debug, Clone, Copy)]
pub struct ScreenAnchors<'a> {
    /// Estimates on the new scale.
    pub new: &'a [ItemParams],
    /// The estimates' standard errors on the new scale (an empty slice, or `None`
    /// entries, when unknown).
    pub new_se: &'a [Option<ItemParams>],
    /// Known parameters on the base scale.
    pub base: &'a [ItemParams],
    /// The anchors' time-split tests (an empty slice when not run); those it flags are
    /// left out of every round.
    pub recent: &'a [Option<RecentShift>],
}

/// Links `anchors.new` to `anchors.base` with `method`, screening the anchors for drift
/// (see the module docs). Errors: the errors of [`link`], invalid
/// rules, a method that is not a post-hoc link (`none`, `fixed`), or fewer than
/// `rules.min_anchors` anchors left (the message names the flagged ones by position).
pub fn screen_and_link(
    method: LinkingMethod,
    anchors: &ScreenAnchors<'_>,
    model: Model,
    quad: &Quadrature,
    rules: &DriftRules,
) -> Result<ScreenedLink> {
    let ScreenAnchors {
        new,
        new_se,
        base,
        recent,
    } = *anchors;
    rules.validate()?;
    check_screen_inputs(method, anchors)?;
    let n = new.len();
    let compared: Vec<ItemParams> = base.iter().map(|p| in_model(p, model, quad)).collect();
    let screen_a = model != Model::Rasch;
    let recent_at = |i: usize| recent.get(i).copied().flatten();
    let flagged_recent = |i: usize| recent_at(i).is_some_and(|r| r.flagged);
    let mut flagged_in = vec![0usize; n];
    let mut rounds = 0;
    loop {
        rounds += 1;
        let kept: Vec<usize> = (0..n)
            .filter(|&i| flagged_in[i] == 0 && !flagged_recent(i))
            .collect();
        // the time-split test's flags alone may leave too few (checked once: later
        // rounds stop before going below the minimum)
        if kept.len() < n && kept.len() < rules.min_anchors {
            return Err(refused(
                &(0..n).filter(|&i| !kept.contains(&i)).collect::<Vec<_>>(),
                n,
                kept.len(),
                rules,
                |i| {
                    format!(
                        "#{i} (recent b shift {:+.2})",
                        recent_at(i).map_or(0.0, |r| r.shift)
                    )
                },
            ));
        }
        let (kn, kb): (Vec<ItemParams>, Vec<ItemParams>) =
            kept.iter().map(|&i| (new[i], base[i])).unzip();
        let constants = link(method, &kn, &kb, quad)?;
        let diffs: Vec<(f64, f64)> = (0..n)
            .map(|i| {
                let moved = constants.item(&new[i]);
                (moved.b - compared[i].b, (moved.a / compared[i].a).ln())
            })
            .collect();
        let (mb, sb) = robust_centre_spread(kept.iter().map(|&i| diffs[i].0));
        let (ma, sa) = robust_centre_spread(kept.iter().map(|&i| diffs[i].1));
        let z = |i: usize| ((diffs[i].0 - mb) / sb, (diffs[i].1 - ma) / sa);
        // standard errors of (b*, ln a*); 0 when unknown
        let se = |i: usize| {
            new_se
                .get(i)
                .copied()
                .flatten()
                .map_or((0.0, 0.0), |s| (constants.a * s.b, s.a / new[i].a))
        };
        let newly: Vec<usize> = kept
            .iter()
            .copied()
            .filter(|&i| {
                let (zb, za) = z(i);
                let (se_b, se_a) = se(i);
                let (db, da) = (diffs[i].0.abs(), diffs[i].1.abs());
                (zb.abs() > rules.z_threshold
                    && db >= rules.min_b_shift
                    && db > rules.min_se_ratio * se_b)
                    || (screen_a
                        && za.abs() > rules.z_threshold
                        && da >= rules.min_log_a_ratio
                        && da > rules.min_se_ratio * se_a)
            })
            .collect();
        if newly.is_empty() || rounds >= rules.max_rounds {
            let anchors = (0..n)
                .map(|i| {
                    let (z_b, z_a) = z(i);
                    AnchorDrift {
                        reference: base[i],
                        compared_with: compared[i],
                        estimate: constants.item(&new[i]),
                        diff_b: diffs[i].0,
                        log_a_ratio: diffs[i].1,
                        z_b,
                        z_a,
                        flagged: flagged_in[i] > 0 || flagged_recent(i),
                        round: flagged_in[i],
                        recent: recent_at(i),
                    }
                })
                .collect();
            return Ok(ScreenedLink {
                constants,
                anchors,
                n_used: kept.len(),
                rounds,
            });
        }
        if kept.len() - newly.len() < rules.min_anchors {
            let all_flagged: Vec<usize> = (0..n)
                .filter(|&i| flagged_in[i] > 0 || flagged_recent(i) || newly.contains(&i))
                .collect();
            return Err(refused(
                &all_flagged,
                n,
                kept.len() - newly.len(),
                rules,
                |i| {
                    let (zb, za) = z(i);
                    format!(
                        "#{i} (b diff {:+.2}, z {zb:+.1}; ln a ratio {:+.2}, z {za:+.1})",
                        diffs[i].0, diffs[i].1
                    )
                },
            ));
        }
        for i in newly {
            flagged_in[i] = rounds;
        }
    }
}

/// A screen needs a post-hoc method, the same anchors on both scales and, when given, a
/// time-split test per anchor.
fn check_screen_inputs(method: LinkingMethod, anchors: &ScreenAnchors<'_>) -> Result<()> {
    if matches!(method, LinkingMethod::None | LinkingMethod::Fixed) {
        return Err(IrtError::InvalidConfig(format!(
            "drift screening needs a post-hoc linking method, not {method}"
        )));
    }
    if anchors.new.len() != anchors.base.len() {
        return Err(IrtError::InvalidConfig(format!(
            "drift screening needs the same anchors on both scales: {} vs {}",
            anchors.new.len(),
            anchors.base.len()
        )));
    }
    if !anchors.recent.is_empty() && anchors.recent.len() != anchors.new.len() {
        return Err(IrtError::InvalidConfig(format!(
            "drift screening: {} time-split tests for {} anchors",
            anchors.recent.len(),
            anchors.new.len()
        )));
    }
    Ok(())
}

/// A known item as the calibrated `model` can express it: its 2PL projection when the
/// model has no c and the item has c > 0 (see the module docs), else itself.
fn in_model(item: &ItemParams, model: Model, quad: &Quadrature) -> ItemParams {
    match model {
        Model::ThreePl => *item,
        Model::Rasch | Model::TwoPl if item.c > 0.0 => project_2pl(item, quad),
        Model::Rasch | Model::TwoPl => *item,
    }
}

/// The refusal of a screen that flagged `flagged` (described by `describe`) of `n`
/// anchors, leaving `left`.
fn refused(
    flagged: &[usize],
    n: usize,
    left: usize,
    rules: &DriftRules,
    describe: impl Fn(usize) -> String,
) -> IrtError {
    let named: Vec<String> = flagged.iter().map(|&i| describe(i)).collect();
    IrtError::AnchorDrift(format!(
        "{} of {n} anchors flagged ({}), leaving {left} — fewer than the {} the link \
         needs; the bank is not linked",
        flagged.len(),
        named.join(", "),
        rules.min_anchors
    ))
}

/// The 2PL (a′, b′) whose curve is closest to `item`'s: least squares over `grid`'s
/// nodes weighted by its weights, by Levenberg–Marquardt over (ln a′, b′) from (a, b).
fn project_2pl(item: &ItemParams, grid: &Quadrature) -> ItemParams {
    let target: Vec<f64> = grid.nodes.iter().map(|&t| item.p(t)).collect();
    let eval = |(la, b): (f64, f64)| {
        let a = la.exp();
        let (mut f, mut g, mut h) = (0.0, [0.0; 2], [0.0; 3]);
        for ((&t, &w), &y) in grid.nodes.iter().zip(&grid.weights).zip(&target) {
            let p = logistic(a * (t - b));
            let dp = p * (1.0 - p);
            let (j1, j2) = (dp * a * (t - b), -dp * a);
            let r = p - y;
            f += w * r * r;
            g[0] += w * r * j1;
            g[1] += w * r * j2;
            h[0] += w * j1 * j1;
            h[1] += w * j1 * j2;
            h[2] += w * j2 * j2;
        }
        (f, g, h)
    };
    // the last accepted point: a projection that stops early is still the best found
    let x = levenberg_marquardt_2(eval, (item.a.ln(), item.b)).x;
    ItemParams::new(x.0.exp(), x.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Too many drifted anchors for the minimum: the bank is refused, naming them.
    #[test]
    fn too_few_anchors_left_refuses_the_link() {
        let base: Vec<ItemParams> = (0..6)
            .map(|j| ItemParams::new(1.0 + 0.1 * j as f64, -1.0 + 0.4 * j as f64))
            .collect();
        let mut new = base.clone();
        new[1].b += 1.0;
        new[4].b -= 1.0;
        let quad = Quadrature::default();
        let rules = DriftRules::default();
        let anchors = ScreenAnchors {
            new: &new,
            new_se: &[],
            base: &base,
            recent: &[],
        };
        let err = screen_and_link(
            LinkingMethod::StockingLord,
            &anchors,
            Model::TwoPl,
            &quad,
            &rules,
        )
        .unwrap_err();
        let IrtError::AnchorDrift(message) = err else {
            panic!("expected AnchorDrift, got {err:?}");
        };
        assert!(
            message.contains("#1 ") && message.contains("#4 ") && message.contains("leaving 4"),
            "{message}"
        );
        // with a minimum of 4 the link goes on without them, on the exact constants
        let rules = DriftRules {
            min_anchors: 4,
            ..rules
        };
        let s = screen_and_link(
            LinkingMethod::StockingLord,
            &anchors,
            Model::TwoPl,
            &quad,
            &rules,
        )
        .unwrap();
        assert_eq!(s.n_used, 4);
        assert!(
            (s.constants.a - 1.0).abs() < 1e-8 && s.constants.b.abs() < 1e-8,
            "{s:?}"
        );
        let flagged: Vec<bool> = s.anchors.iter().map(|a| a.flagged).collect();
        assert_eq!(flagged, [false, true, false, false, true, false]);
    }

    /// Anchors the time-split test flags are left out from the first round, reported
    /// flagged with round 0; too few left refuses the bank, naming their recent shift.
    #[test]
    fn recently_drifted_anchors_are_left_out_from_the_first_round() {
        let base: Vec<ItemParams> = (0..6)
            .map(|j| ItemParams::new(1.0 + 0.1 * j as f64, -1.0 + 0.4 * j as f64))
            .collect();
        let shift = |s: f64, flagged: bool| {
            Some(RecentShift {
                n_earlier: 200,
                n_recent: 100,
                b_earlier: 0.0,
                b_recent: s,
                shift: s,
                se: 0.1,
                z: s / 0.1,
                flagged,
            })
        };
        let recent = [
            None,
            shift(-1.0, true),
            shift(0.05, false),
            None,
            shift(-0.9, true),
            None,
        ];
        let anchors = ScreenAnchors {
            new: &base,
            new_se: &[],
            base: &base,
            recent: &recent,
        };
        let quad = Quadrature::default();
        let link = |min_anchors| {
            let rules = DriftRules {
                min_anchors,
                ..DriftRules::default()
            };
            screen_and_link(
                LinkingMethod::StockingLord,
                &anchors,
                Model::TwoPl,
                &quad,
                &rules,
            )
        };
        let s = link(4).unwrap();
        assert_eq!(s.n_used, 4);
        let flags: Vec<(bool, usize)> = s.anchors.iter().map(|a| (a.flagged, a.round)).collect();
        assert_eq!(
            flags,
            [
                (false, 0),
                (true, 0),
                (false, 0),
                (false, 0),
                (true, 0),
                (false, 0)
            ]
        );
        assert_eq!(s.anchors[1].recent, recent[1]);
        let IrtError::AnchorDrift(message) = link(5).unwrap_err() else {
            panic!("expected AnchorDrift");
        };
        assert!(
            message.contains("#1 (recent b shift -1.00)") && message.contains("leaving 4"),
            "{message}"
        ); // a time-split test per anchor, or none
        let short = ScreenAnchors {
            recent: &recent[..3],
            ..anchors
        };
        let rules = DriftRules::default();
        assert!(matches!(
            screen_and_link(
                LinkingMethod::StockingLord,
                &short,
                Model::TwoPl,
                &quad,
                &rules
            ),
            Err(IrtError::InvalidConfig(_))
        ));
    }

    #[test]
    fn robust_spread_ignores_outliers() {
        // 0.74 · IQR of 1..=9 (type 7: q1 = 3, q3 = 7) is 2.96; an outlier moves neither
        let (m, s) = robust_centre_spread((1..=9).map(f64::from));
        assert_eq!((m, s), (5.0, 0.74 * 4.0));
        let (m2, s2) = robust_centre_spread((1..=8).map(f64::from).chain([1000.0]));
        assert_eq!((m2, s2), (5.0, 0.74 * 4.0));
        // identical values: the floor
        let (_, s3) = robust_centre_spread([0.2; 5].into_iter());
        assert!((s3 - 0.0074).abs() < 1e-15);
    }
}
