//! Calibration on the anchor scale: fit, link, score — the one orchestration shared by
//! the `calibrate` stage and `irtlake irt fit`.
//!
//! 1. Fit the model by MML-EM ([`irt::calibrate`]); with [`LinkingMethod::Fixed`] the
//!    anchors are held at their known parameters inside EM and the latent mean and SD
//!    are estimated.
//! 2. Link: for mean/mean, mean/sigma, Stocking–Lord and Haebara the constants A, B are
//!    computed from the anchors' estimates against their known parameters (excluded
//!    anchors are left out), and every item and score is mapped θ* = Aθ + B,
//!    a* = a/A, b* = Ab + B, c* = c; SE(a*) = SE(a)/A, SE(b*) = A·SE(b), SE(θ*) = A·SE(θ).
//!    For `fixed` the fit is already on the anchor scale and (A, B) = (latent SD,
//!    latent mean) are reported.
//! 3. Score every student by EAP with the calibration's latent distribution as prior.
//!    Students outside the calibration sample are scored the same way, with the same
//!    items, prior and transformation, by [`LinkedCalibration::score`]: a student's θ does
//!    not depend on whether they were in the sample the items were fitted on.
//!
//! Automatic choice (`link = None`): Stocking–Lord with at least [`MIN_ANCHORS_AUTO`]
//! anchors, else unlinked.

use std::time::Instant;

use crate::irt::{
    self, FitConfig, FitResult, IrtError, ItemFit, ItemParams, ResponseMatrix, Result, Score,
    ScoringConfig,
};
use crate::linking::{self, LinkingConstants, LinkingMethod};

/// Anchors needed for the automatic Stocking–Lord linking.
pub const MIN_ANCHORS_AUTO: usize = 5;
/// Anchors needed for an explicitly requested linking method.
pub const MIN_ANCHORS_EXPLICIT: usize = 2;

/// A calibration on its final scale.
#[derive(Debug, Clone)]
pub struct LinkedCalibration {
    /// The EM fit as estimated (free scale, or anchor scale for `fixed`).
    pub fit: FitResult,
    /// Linking method applied (`None` when unlinked).
    pub method: LinkingMethod,
    /// θ* = Aθ + B (identity when unlinked).
    pub constants: LinkingConstants,
    /// Anchors the constants rest on (after drift screening).
    pub n_anchors_used: usize,
    /// The drift screen of each estimated anchor, `(item index, comparison)`, for the
    /// post-hoc linking methods when screening was asked for (empty otherwise).
    pub drift: Vec<(usize, linking::AnchorDrift)>,
    /// Screening rounds run (0 without screening).
    pub drift_rounds: usize,
    /// Items on the final scale (excluded items keep their placeholders).
    pub items: Vec<ItemFit>,
    /// EAP score per student on the final scale (`None`: no usable response).
    pub scores: Vec<Option<Score>>,
    /// Wall time of the linking (constants and the items' transformation), ms.
    pub link_ms: f64,
    /// Wall time of scoring the calibrated students, ms.
    pub scoring_ms: f64,
    /// Scoring prior and nodes (the calibration's latent distribution, fit scale).
    scoring: ScoringConfig,
    /// Usable items on the fit scale (`None`: excluded), as scored.
    usable: Vec<Option<ItemParams>>,
    /// Whether scores are mapped θ* = Aθ + B after scoring.
    transform: bool,
}

impl LinkedCalibration {
    /// Whether the calibration was put on the anchor scale (its method is not `none`).
    pub fn is_linked(&self) -> bool {
        !matches!(self.method, LinkingMethod::None)
    }

    /// Wall time of each phase, in milliseconds: `prepare`, `fit` (EM), `se` (standard
    /// errors), `link`, `scoring` (see [`irt::FitTimings`]).
    pub fn phases_ms(&self) -> [(&'static str, f64); 5] {
        let t = self.fit.timings;
        [
            ("prepare", t.prepare_ms),
            ("fit", t.em_ms),
            ("se", t.se_ms),
            ("link", self.link_ms),
            ("scoring", self.scoring_ms),
        ]
    }

    /// EAP scores on the final scale of any students' responses to this calibration's
    /// items (`responses.n_items` must equal the number of calibrated items, item `i`
    /// being the calibration's item `i`), exactly as the calibrated students were scored:
    /// same prior, nodes, excluded items and linking. `None` for a student without a
    /// response to an estimated item.
    pub fn score(&self, responses: &ResponseMatrix) -> Result<Vec<Option<Score>>> {
        let mut scores = irt::score_students(responses, &self.usable, &self.scoring)?;
        if self.transform {
            for s in scores.iter_mut().flatten() {
                s.theta = self.constants.theta(s.theta);
                s.se = self.constants.se(s.se);
            }
        }
        Ok(scores)
    }
}

/// Item fit of one item of a calibration (see [`irt::itemfit`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ItemFitStats {
    /// S-X² with df and p (`None`: excluded item, df ≤ 0, or no S-X² for this test; the
    /// reason is [`ItemFitReport::s_x2_note`]).
    pub s_x2: Option<irt::SX2>,
    /// Infit/outfit mean squares (`None`: excluded item or no scored response).
    pub mean_squares: Option<irt::MeanSquares>,
}

/// Item fit of a calibration: one entry per item, and why S-X² is missing when it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemFitReport {
    /// Per item, in the calibration's order.
    pub items: Vec<ItemFitStats>,
    /// Why no item has an S-X² (e.g. no student answered every item), if so.
    pub s_x2_note: Option<String>,
}

/// Largest test (estimated and fixed items) S-X² is computed for: its Lord–Wingersky
/// recursions cost n³ × 61 operations.
pub const S_X2_MAX_ITEMS: usize = 300;
/// Fewest students who answered every item for S-X² to be computed (fewer: no S-X²,
/// with a note): on a sparse bank the few who answered everything are the heaviest
/// users, no sample of the population the items are fitted on.
pub const S_X2_MIN_COMPLETE: usize = 200;

impl LinkedCalibration {
    /// Item fit of this calibration on `responses` (the matrix it was fitted on):
    /// S-X² on the fit scale with the fitted latent normal, counting each item's
    /// estimated parameters (0 for a fixed anchor) and the estimated latent parameters
    /// in df, over the students who answered every usable item (as mirt's `na.rm =
    /// TRUE`); infit/outfit with each student's EAP θ, which a linear change of scale
    /// leaves unchanged.
    pub fn item_fit(&self, responses: &ResponseMatrix) -> Result<ItemFitReport> {
        let fit = &self.fit;
        // fit-scale parameters of the items scored (an item excluded after the fit, e.g.
        // for a non-positive slope, is out of the test as it is out of the scoring)
        let usable: Vec<Option<ItemParams>> = fit
            .items
            .iter()
            .zip(&self.items)
            .map(|(f, i)| i.excluded.is_none().then_some(f.params))
            .collect();
        let per_item = match fit.model {
            irt::Model::Rasch => 1,
            irt::Model::TwoPl => 2,
            irt::Model::ThreePl => 3,
        };
        let free_of = |i: &irt::ItemFit| {
            if i.fixed || i.excluded.is_some() {
                0
            } else {
                per_item
            }
        };
        let free: Vec<usize> = self.items.iter().map(free_of).collect();
        // the latent parameters are what the fit estimated beyond its items'
        let estimated: usize = fit.items.iter().map(free_of).sum();
        let latent_params = fit.n_parameters.saturating_sub(estimated);
        let n_test = usable.iter().flatten().count();
        let mut note = None;
        let s_x2 = if n_test > S_X2_MAX_ITEMS {
            note = Some(format!(
                "S-X2 is computed for tests of at most {S_X2_MAX_ITEMS} items; this one has {n_test}"
            ));
            vec![None; usable.len()]
        } else {
            let config = irt::SX2Config {
                latent_mean: fit.latent_mean,
                latent_sd: fit.latent_sd,
                latent_params,
                min_complete: S_X2_MIN_COMPLETE,
            };
            match irt::s_x2(responses, &usable, &free, &config) {
                Ok(v) => v,
                Err(IrtError::InvalidConfig(reason)) => {
                    note = Some(reason);
                    vec![None; usable.len()]
                }
                Err(e) => return Err(e),
            }
        };
        let final_items: Vec<Option<ItemParams>> = self
            .items
            .iter()
            .map(|i| i.excluded.is_none().then_some(i.params))
            .collect();
        let theta: Vec<Option<f64>> = self.scores.iter().map(|s| s.map(|s| s.theta)).collect();
        let ms = irt::mean_squares(responses, &final_items, &theta)?;
        Ok(ItemFitReport {
            items: s_x2
                .into_iter()
                .zip(ms)
                .map(|(s_x2, mean_squares)| ItemFitStats { s_x2, mean_squares })
                .collect(),
            s_x2_note: note,
        })
    }
}

/// The linking method for a request and the anchors available.
pub fn choose_method(requested: Option<LinkingMethod>, n_anchors: usize) -> Result<LinkingMethod> {
    match requested {
        None if n_anchors >= MIN_ANCHORS_AUTO => Ok(LinkingMethod::StockingLord),
        None | Some(LinkingMethod::None) => Ok(LinkingMethod::None),
        Some(m) if n_anchors < MIN_ANCHORS_EXPLICIT => Err(IrtError::InvalidConfig(format!(
            "link = {m} needs at least {MIN_ANCHORS_EXPLICIT} anchors with known parameters among the calibrated items; found {n_anchors}"
        ))),
        Some(m) => Ok(m),
    }
}

/// EAP scoring on a calibration's **final** scale, from what is stored of it: its
/// linking method and constants (A, B), its quadrature and its latent distribution
/// N(μ, σ²) on the fit scale. For a calibration linked after the fit (mean/mean,
/// mean/sigma, Stocking–Lord, Haebara) the nodes become A·x + B and the prior
/// N(Aμ + B, (Aσ)²); `fixed` and unlinked calibrations are on their final scale already.
/// With the final-scale items (a/A, Ab + B, c) the posterior is the calibration's own
/// posterior under θ* = Aθ + B, so [`irt::score_students`] with this configuration gives
/// what [`LinkedCalibration::score`] gives (A·θ + B, A·SE) up to rounding.
pub fn final_scale_scoring(
    method: LinkingMethod,
    constants: LinkingConstants,
    quadrature: &irt::Quadrature,
    latent_mean: f64,
    latent_sd: f64,
) -> Result<ScoringConfig> {
    let map = match method {
        LinkingMethod::None | LinkingMethod::Fixed => LinkingConstants::IDENTITY,
        _ => constants,
    };
    let nodes = &quadrature.nodes;
    let (lo, hi) = match (nodes.first(), nodes.last()) {
        (Some(&lo), Some(&hi)) => (map.theta(lo), map.theta(hi)),
        _ => return Err(IrtError::InvalidConfig("empty quadrature".into())),
    };
    Ok(ScoringConfig {
        quadrature: irt::Quadrature::new(nodes.len(), lo, hi)?,
        prior_mean: map.theta(latent_mean),
        prior_sd: map.se(latent_sd),
        theta_bounds: (lo, hi),
        ..ScoringConfig::default()
    })
}

/// Fits, links and scores (see the module docs). `anchors` are `(item index, known
/// parameters)`; `config.fixed` is set here for `fixed` linking. Anchors are screened for
/// drift with the default [`linking::DriftRules`] (see [`calibrate_linked_with`]).
pub fn calibrate_linked(
    responses: &ResponseMatrix,
    config: FitConfig,
    anchors: &[(usize, ItemParams)],
    link: Option<LinkingMethod>,
) -> Result<LinkedCalibration> {
    calibrate_linked_with(
        responses,
        config,
        anchors,
        link,
        Some(&linking::DriftRules::default()),
    )
}

/// [`calibrate_linked`] with the drift screen's rules, or `None` for no screening (every
/// estimated anchor carries the link). With a post-hoc method (mean/mean, mean/sigma,
/// Stocking–Lord, Haebara) the anchors are screened by [`linking::screen_and_link`]:
/// flagged anchors are left out of the constants, and too few left refuses the bank.
/// `fixed` holds the anchors inside EM, where there is no free estimate to compare:
/// it is not screened.
pub fn calibrate_linked_with(
    responses: &ResponseMatrix,
    config: FitConfig,
    anchors: &[(usize, ItemParams)],
    link: Option<LinkingMethod>,
    screen: Option<&linking::DriftRules>,
) -> Result<LinkedCalibration> {
    calibrate_linked_screened(responses, None, config, anchors, link, screen)
}

/// [`calibrate_linked_with`] that also tests each anchor for drift over time when
/// `recent` holds the recent period's answers (a subset of `responses`, same rows):
/// [`linking::recent_shifts`] compares the anchor's b on those answers with its b on
/// the earlier ones, and an anchor it flags is left out of the link from the first
/// round. Only with a post-hoc method and `screen` given.
pub fn calibrate_linked_screened(
    responses: &ResponseMatrix,
    recent: Option<&ResponseMatrix>,
    mut config: FitConfig,
    anchors: &[(usize, ItemParams)],
    link: Option<LinkingMethod>,
    screen: Option<&linking::DriftRules>,
) -> Result<LinkedCalibration> {
    for (i, p) in anchors {
        if *i >= responses.n_items {
            return Err(IrtError::InvalidConfig(format!(
                "anchor index {i} out of range ({} items)",
                responses.n_items
            )));
        }
        p.validate(*i)?;
    }
    let method = choose_method(link, anchors.len())?;
    if method == LinkingMethod::Fixed {
        let mut fixed = vec![None; responses.n_items];
        for (i, p) in anchors {
            fixed[*i] = Some(*p);
        }
        config.fixed = fixed;
    }
    let fit = irt::calibrate(responses, &config)?;
    let linking_started = Instant::now();
    // An estimated slope <= 0 means the item works the wrong way round on this data
    // (miskeyed, drifted, or too sparse): it is excluded from scoring and linking with
    // its reason; `fit` keeps the raw estimate.
    let mut items = fit.items.clone();
    for it in items
        .iter_mut()
        .filter(|f| f.excluded.is_none() && !f.fixed)
    {
        if !(it.params.a.is_finite() && it.params.a > 0.0) {
            it.excluded = Some(irt::Exclusion::NonPositiveSlope);
        }
    }
    let mut drift = Vec::new();
    let mut drift_rounds = 0;
    let (constants, n_anchors_used) = match method {
        LinkingMethod::None => (LinkingConstants::IDENTITY, 0),
        LinkingMethod::Fixed => (
            LinkingConstants {
                a: fit.latent_sd,
                b: fit.latent_mean,
            },
            anchors.len(),
        ),
        m => {
            let split = recent.map(|r| (responses, r));
            let link = post_hoc_link(m, &items, anchors, &fit, &config, screen, split)?;
            drift = link.drift;
            drift_rounds = link.rounds;
            (link.constants, link.n_used)
        }
    };
    let transform = !matches!(method, LinkingMethod::None | LinkingMethod::Fixed);
    let usable: Vec<Option<ItemParams>> = items
        .iter()
        .map(|f| f.excluded.is_none().then_some(f.params))
        .collect();
    let scoring = ScoringConfig {
        quadrature: config.quadrature.clone(),
        prior_mean: fit.latent_mean,
        prior_sd: fit.latent_sd,
        theta_bounds: (
            config.quadrature.nodes[0],
            config.quadrature.nodes[config.quadrature.len() - 1],
        ),
        ..ScoringConfig::default()
    };
    if transform {
        for it in items
            .iter_mut()
            .filter(|f| f.excluded.is_none() && !f.fixed)
        {
            it.params = constants.item(&it.params);
            it.se = it.se.map(|s| ItemParams {
                a: s.a / constants.a,
                b: s.b * constants.a,
                c: s.c,
            });
        }
    }
    let scoring_started = Instant::now();
    let mut cal = LinkedCalibration {
        fit,
        method,
        constants,
        n_anchors_used,
        drift,
        drift_rounds,
        items,
        scores: Vec::new(),
        link_ms: ms_between(linking_started, scoring_started),
        scoring_ms: 0.0,
        scoring,
        usable,
        transform,
    };
    cal.scores = cal.score(responses)?;
    cal.scoring_ms = ms_between(scoring_started, Instant::now());
    Ok(cal)
}

/// A post-hoc link (mean/mean, mean/sigma, Stocking–Lord, Haebara) and its screen.
struct PostHocLink {
    constants: LinkingConstants,
    n_used: usize,
    drift: Vec<(usize, linking::AnchorDrift)>,
    rounds: usize,
}

/// Links the estimated anchors of `items` (fit scale) to their known parameters with
/// `method`, screened with `screen` when given — and, when `split` = (all responses,
/// recent responses) is given, with the time-split test of each anchor first.
/// Excluded anchors (including those with a non-positive slope on this data) cannot
/// carry the scale; fewer than [`MIN_ANCHORS_EXPLICIT`] estimated is an error.
fn post_hoc_link(
    method: LinkingMethod,
    items: &[ItemFit],
    anchors: &[(usize, ItemParams)],
    fit: &FitResult,
    config: &FitConfig,
    screen: Option<&linking::DriftRules>,
    split: Option<(&ResponseMatrix, &ResponseMatrix)>,
) -> Result<PostHocLink> {
    let estimated: Vec<usize> = anchors
        .iter()
        .filter(|(i, _)| items[*i].excluded.is_none())
        .map(|(i, _)| *i)
        .collect();
    let (new, base): (Vec<ItemParams>, Vec<ItemParams>) = anchors
        .iter()
        .filter(|(i, _)| items[*i].excluded.is_none())
        .map(|(i, known)| (items[*i].params, *known))
        .unzip();
    if new.len() < MIN_ANCHORS_EXPLICIT {
        return Err(IrtError::InvalidConfig(format!(
            "link = {method}: only {} anchor(s) could be estimated with a positive slope (the others were excluded)",
            new.len()
        )));
    }
    let quad = &config.quadrature;
    let Some(rules) = screen else {
        return Ok(PostHocLink {
            constants: linking::link(method, &new, &base, quad)?,
            n_used: new.len(),
            drift: Vec::new(),
            rounds: 0,
        });
    };
    // the screen's floor: never more than the anchors there are
    let rules = linking::DriftRules {
        min_anchors: rules.min_anchors.min(new.len()).max(MIN_ANCHORS_EXPLICIT),
        ..*rules
    };
    let se: Vec<Option<ItemParams>> = estimated.iter().map(|&i| items[i].se).collect();
    let recent = match split {
        Some((responses, recent)) => {
            // A of the unscreened link: the size floor is in anchor-scale units, and a
            // drifted anchor moves A far less than the floor
            let a_scale = linking::link(method, &new, &base, quad)?.a;
            let usable: Vec<Option<ItemParams>> = items
                .iter()
                .map(|f| f.excluded.is_none().then_some(f.params))
                .collect();
            linking::recent_shifts(
                responses,
                recent,
                &usable,
                &estimated,
                quad,
                (fit.latent_mean, fit.latent_sd),
                a_scale,
                &rules,
            )?
        }
        None => Vec::new(),
    };
    let screened = linking::screen_and_link(
        method,
        &linking::ScreenAnchors {
            new: &new,
            new_se: &se,
            base: &base,
            recent: &recent,
        },
        config.model,
        quad,
        &rules,
    )?;
    Ok(PostHocLink {
        constants: screened.constants,
        n_used: screened.n_used,
        drift: estimated.into_iter().zip(screened.anchors).collect(),
        rounds: screened.rounds,
    })
}

fn ms_between(from: Instant, to: Instant) -> f64 {
    to.duration_since(from).as_secs_f64() * 1e3
}

/// Parses a prior on c as written on the command line and in stage events:
/// `none` → `None`; `beta:A,B` (A, B > 0) → a Beta(A, B) prior.
pub fn parse_prior_c(s: &str) -> Result<Option<irt::BetaPrior>> {
    if s.trim().eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let parsed = s
        .trim()
        .strip_prefix("beta:")
        .and_then(|r| r.split_once(','))
        .and_then(|(a, b)| Some((a.trim().parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?)));
    match parsed {
        Some((alpha, beta))
            if alpha.is_finite() && beta.is_finite() && alpha > 0.0 && beta > 0.0 =>
        {
            Ok(Some(irt::BetaPrior { alpha, beta }))
        }
        _ => Err(IrtError::InvalidConfig(format!(
            "prior on c '{s}': expected none or beta:A,B with A, B > 0"
        ))),
    }
}

/// A calibrated item considered as an anchor.
#[derive(Debug, Clone, PartialEq)]
pub struct AnchorCandidate {
    /// Parameters on the anchor scale.
    pub params: ItemParams,
    /// Standard errors of a and b (`None` if unknown).
    pub se_a: Option<f64>,
    /// Standard error of b.
    pub se_b: Option<f64>,
    /// Responses the estimate rests on.
    pub n_responses: usize,
    /// Topic (or any grouping to spread the anchors over).
    pub group: String,
}

/// Rules for [`select_anchors`]. Defaults: ≥ 200 responses, a ≥ 0.5, |b| ≤ 3,
/// SE(a) ≤ 0.25, SE(b) ≤ 0.25.
#[derive(Debug, Clone, PartialEq)]
pub struct AnchorRules {
    /// Fewest responses.
    pub min_responses: usize,
    /// Smallest discrimination.
    pub min_a: f64,
    /// Largest |b|.
    pub max_abs_b: f64,
    /// Largest SE of a.
    pub max_se_a: f64,
    /// Largest SE of b.
    pub max_se_b: f64,
}

impl Default for AnchorRules {
    fn default() -> Self {
        Self {
            min_responses: 200,
            min_a: 0.5,
            max_abs_b: 3.0,
            max_se_a: 0.25,
            max_se_b: 0.25,
        }
    }
}

/// Picks up to `k` anchors from `candidates` (indices into it, each with the reason it
/// was chosen): only candidates passing `rules`; the eligible b range is cut into `k`
/// strata of equal count and one anchor is taken per stratum, preferring the group
/// (topic) with the fewest anchors so far, then the smallest SE(b). So anchors cover
/// the difficulty range and the topics, and are the most precisely estimated there.
pub fn select_anchors(
    candidates: &[AnchorCandidate],
    k: usize,
    rules: &AnchorRules,
) -> Vec<(usize, String)> {
    let mut eligible: Vec<usize> = (0..candidates.len())
        .filter(|&i| {
            let c = &candidates[i];
            c.n_responses >= rules.min_responses
                && c.params.a >= rules.min_a
                && c.params.b.abs() <= rules.max_abs_b
                && c.se_a.is_some_and(|s| s <= rules.max_se_a)
                && c.se_b.is_some_and(|s| s <= rules.max_se_b)
        })
        .collect();
    if k == 0 || eligible.is_empty() {
        return Vec::new();
    }
    eligible.sort_by(|&x, &y| candidates[x].params.b.total_cmp(&candidates[y].params.b));
    let k = k.min(eligible.len());
    let mut per_group: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut chosen = Vec::with_capacity(k);
    for s in 0..k {
        let lo = s * eligible.len() / k;
        let hi = (s + 1) * eligible.len() / k;
        let stratum = &eligible[lo..hi];
        let Some(&best) = stratum.iter().min_by(|&&x, &&y| {
            let gx = per_group
                .get(candidates[x].group.as_str())
                .copied()
                .unwrap_or(0);
            let gy = per_group
                .get(candidates[y].group.as_str())
                .copied()
                .unwrap_or(0);
            gx.cmp(&gy).then(
                candidates[x]
                    .se_b
                    .unwrap_or(f64::INFINITY)
                    .total_cmp(&candidates[y].se_b.unwrap_or(f64::INFINITY)),
            )
        }) else {
            continue;
        };
        let c = &candidates[best];
        let g = per_group.entry(c.group.as_str()).or_insert(0);
        *g += 1;
        chosen.push((
            best,
            format!(
                "b stratum {}/{} [{:.2}, {:.2}]; anchor {} of {}; a {:.2}, SE(b) {:.3}, {} responses",
                s + 1,
                k,
                candidates[stratum[0]].params.b,
                candidates[stratum[stratum.len() - 1]].params.b,
                *g,
                c.group,
                c.params.a,
                c.se_b.unwrap_or(f64::NAN),
                c.n_responses
            ),
        ));
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(a: f64, b: f64, se_b: f64, group: &str) -> AnchorCandidate {
        AnchorCandidate {
            params: ItemParams::new(a, b),
            se_a: Some(0.1),
            se_b: Some(se_b),
            n_responses: 500,
            group: group.into(),
        }
    }

    #[test]
    fn anchors_follow_the_rules_and_spread_over_b_and_groups() {
        let mut c = vec![
            cand(0.3, 0.0, 0.05, "t1"), // a too small
            cand(1.0, 3.5, 0.05, "t1"), // |b| too large
            cand(1.0, 0.0, 0.5, "t1"),  // SE(b) too large
        ];
        for i in 0..20 {
            let b = -2.0 + 4.0 * i as f64 / 19.0;
            c.push(cand(
                1.0,
                b,
                0.05 + 0.001 * i as f64,
                if i % 2 == 0 { "t1" } else { "t2" },
            ));
        }
        let picked = select_anchors(&c, 4, &AnchorRules::default());
        assert_eq!(picked.len(), 4);
        assert!(picked.iter().all(|(i, _)| *i >= 3));
        let bs: Vec<f64> = picked.iter().map(|(i, _)| c[*i].params.b).collect();
        // one per quarter of the b range
        assert!(bs[0] < -1.0 && bs[3] > 1.0, "{bs:?}");
        let t1 = picked.iter().filter(|(i, _)| c[*i].group == "t1").count();
        assert_eq!(t1, 2, "spread over groups");
        assert!(select_anchors(&c[..3], 4, &AnchorRules::default()).is_empty());
    }

    #[test]
    fn prior_c_parsing() {
        assert_eq!(parse_prior_c("none").unwrap(), None);
        assert_eq!(
            parse_prior_c("beta:5,17").unwrap(),
            Some(irt::BetaPrior {
                alpha: 5.0,
                beta: 17.0
            })
        );
        assert!(parse_prior_c("beta:0,17").is_err());
        assert!(parse_prior_c("gamma:1,1").is_err());
    }

    #[test]
    fn automatic_linking_needs_five_anchors_and_explicit_two() {
        assert_eq!(choose_method(None, 5).unwrap(), LinkingMethod::StockingLord);
        assert_eq!(choose_method(None, 4).unwrap(), LinkingMethod::None);
        assert_eq!(
            choose_method(Some(LinkingMethod::Haebara), 2).unwrap(),
            LinkingMethod::Haebara
        );
        assert!(choose_method(Some(LinkingMethod::Fixed), 1).is_err());
        assert_eq!(
            choose_method(Some(LinkingMethod::None), 50).unwrap(),
            LinkingMethod::None
        );
    }

    #[test]
    fn students_outside_the_calibration_are_scored_as_its_own_students() {
        use crate::sim::responses::{draw_items, draw_thetas, simulate_complete};
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let items = draw_items(20, false, &mut rng);
        let thetas = draw_thetas(1200, 0.3, 1.2, &mut rng);
        let all = simulate_complete(&items, &thetas, 3);
        let rows = |lo: usize, hi: usize| {
            let mut t = Vec::new();
            for s in lo..hi {
                let (its, ys) = all.row(s);
                t.extend(its.iter().zip(ys).map(|(&i, &y)| ((s - lo) as u32, i, y)));
            }
            ResponseMatrix::from_triplets(hi - lo, all.n_items, &t).unwrap()
        };
        let (fit_part, rest) = (rows(0, 1000), rows(1000, 1200));
        let anchors: Vec<(usize, ItemParams)> = items[..6].iter().copied().enumerate().collect();
        let cal = calibrate_linked(
            &fit_part,
            FitConfig::new(irt::Model::TwoPl),
            &anchors,
            Some(LinkingMethod::StockingLord),
        )
        .unwrap();
        // Re-scoring the calibrated students reproduces their scores exactly…
        assert_eq!(cal.score(&fit_part).unwrap(), cal.scores);
        // …and other students land on the same (linked) scale as their θ.
        let scores = cal.score(&rest).unwrap();
        let est: Vec<f64> = scores.iter().map(|s| s.unwrap().theta).collect();
        let mean = est.iter().sum::<f64>() / est.len() as f64;
        // true mean 0.3; 200 students with SD 1.2: SE of the mean ≈ 0.09
        assert!((mean - 0.3).abs() < 0.3, "mean θ of the others {mean}");
        let identity = calibrate_linked(
            &fit_part,
            FitConfig::new(irt::Model::TwoPl),
            &anchors,
            Some(LinkingMethod::None),
        )
        .unwrap();
        let raw = identity.score(&rest).unwrap();
        // The linked scores are the unlinked ones mapped by θ* = Aθ + B.
        for (l, r) in scores.iter().zip(&raw) {
            let (l, r) = (l.unwrap(), r.unwrap());
            assert!((l.theta - cal.constants.theta(r.theta)).abs() < 1e-9);
            assert!((l.se - cal.constants.se(r.se)).abs() < 1e-9);
        }
    }

    #[test]
    fn an_anchor_that_drifted_to_a_negative_slope_is_left_out_of_the_linking_set() {
        use crate::sim::responses::{draw_items, draw_thetas, simulate_complete};
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let mut items = draw_items(30, false, &mut rng);
        let known: Vec<ItemParams> = items[..8].to_vec();
        // Item 0 drifted: on this form it discriminates the wrong way round.
        items[0] = ItemParams {
            a: -1.2,
            ..items[0]
        };
        let thetas = draw_thetas(3000, 0.0, 1.0, &mut rng);
        let responses = simulate_complete(&items, &thetas, 12);
        let anchors: Vec<(usize, ItemParams)> = known.into_iter().enumerate().collect();
        let cal = calibrate_linked(
            &responses,
            FitConfig::new(irt::Model::TwoPl),
            &anchors,
            Some(LinkingMethod::StockingLord),
        )
        .unwrap();
        assert!(
            cal.fit.items[0].params.a < 0.0,
            "the drifted anchor is estimated negative"
        );
        assert_eq!(
            cal.items[0].excluded,
            Some(irt::Exclusion::NonPositiveSlope)
        );
        assert!(cal.items[1..].iter().all(|f| f.excluded.is_none()));
        assert_eq!(cal.n_anchors_used, 7);
        // Same population as the base scale: A = 1, B = 0 up to sampling error
        // (7 anchors, 3000 students: SE of A and B about 0.03).
        assert!(
            (cal.constants.a - 1.0).abs() < 0.1,
            "A = {}",
            cal.constants.a
        );
        assert!(cal.constants.b.abs() < 0.1, "B = {}", cal.constants.b);
    }

    #[test]
    fn final_scale_scoring_reproduces_the_linked_scores() {
        use crate::sim::responses::{draw_items, draw_thetas, simulate_complete};
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let items = draw_items(20, false, &mut rng);
        let thetas = draw_thetas(800, 0.3, 1.2, &mut rng);
        let responses = simulate_complete(&items, &thetas, 4);
        let anchors: Vec<(usize, ItemParams)> = items[..6].iter().copied().enumerate().collect();
        for method in [
            LinkingMethod::StockingLord,
            LinkingMethod::Fixed,
            LinkingMethod::None,
        ] {
            let config = FitConfig::new(irt::Model::TwoPl);
            let quadrature = config.quadrature.clone();
            let cal = calibrate_linked(&responses, config, &anchors, Some(method)).unwrap();
            let stored: Vec<Option<ItemParams>> = cal
                .items
                .iter()
                .map(|f| f.excluded.is_none().then_some(f.params))
                .collect();
            let scoring = final_scale_scoring(
                cal.method,
                cal.constants,
                &quadrature,
                cal.fit.latent_mean,
                cal.fit.latent_sd,
            )
            .unwrap();
            let again = irt::score_students(&responses, &stored, &scoring).unwrap();
            for (a, b) in cal.scores.iter().zip(&again) {
                let (a, b) = (a.unwrap(), b.unwrap());
                assert!((a.theta - b.theta).abs() < 1e-9, "{method}: {a:?} {b:?}");
                assert!((a.se - b.se).abs() < 1e-9, "{method}: {a:?} {b:?}");
                assert_eq!(a.n_responses, b.n_responses);
            }
        }
    }
}
