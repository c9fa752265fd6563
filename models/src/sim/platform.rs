//! The demo learning platform: a synthetic question bank, a student population with
//! known (true) ability trajectories, engagement and churn, and ~500,000 timestamped
//! attempts over 60 days (with the defaults) for `irtlake demo`.
//!
//! Everything the lake's `attempts` and `questions` tables need (DESIGN §3) is here,
//! together with the truth (item parameters, θ trajectories, churn days) that recovery
//! checks compare against. The simulated platform exercises every downstream model of
//! DESIGN §4: topic-level ability differs from global ability (per-topic offsets), θ
//! grows or declines week by week (growth, I_t), engagement is heavy-tailed (A_t,
//! segments), students churn for good with hazards that depend on their trajectory and
//! engagement (churn model), hints and response times vary by student and item
//! (segments, E_t), and wrong answers are often followed by right ones (R_t).
//!
//! # Time
//!
//! There is no calendar here: time is a **day index** (`0..days`, day 0 is a
//! **Monday**; days with `day % 7` in {5, 6} are the weekend) plus the **second of the
//! day** (`0..86_400`, UTC). The lake maps day 0 to a date of its choosing (a Monday
//! keeps the weekly pattern aligned with ISO weeks, e.g. 2026-01-05).
//!
//! # Generative model (all choices documented here)
//!
//! **Bank.** `subjects × topics_per_subject` topics; the `items` questions are split
//! into contiguous, near-equal blocks per topic (item `i` belongs to topic
//! `i · n_topics / items`). a ~ LogNormal(0, 0.3²) clamped to [0.5, 2.5]; b = topic
//! shift ~ N(0, 0.3²) plus N(0, 0.95²), clamped to [−2.8, 2.8]; 25 % of items are 3PL
//! with c ~ U(0.1, 0.3) (tagged `multiple-choice`), the others 2PL (c = 0, tagged
//! `open`). Exactly `anchors` items are anchors: distributed round-robin over topics
//! and, within a topic, picked at evenly spaced quantiles of b, so anchors cover every
//! subject, topic and the b range; an anchor's a is raised to at least U(1.0, 1.8).
//! **Planted drift**: `drifted_anchors` of them (at most a tenth of the anchors, picked at
//! evenly spaced positions of the anchor list, no random draw) get easier from day
//! `drift_from_day` on: their responses from that day follow b + `drift_b_shift`
//! (default −1.0, as a leaked question would), while the `questions` table keeps the
//! known b. [`SimItem::drift`] says which and when; the calibrations' drift screen
//! should flag exactly those.
//!
//! **Students.** θ0 ~ N(0, 1) is the ability on the start day. Trajectory class:
//! 35 % [`Trajectory::Improving`] (slope U(0.10, 0.25) θ/week), 40 % [`Trajectory::Flat`]
//! (slope N(0, 0.02²) clamped to ±0.04), 25 % [`Trajectory::Declining`] (slope
//! U(−0.20, −0.05)). Global θ at day t: θ0 + slope · max(0, t − start_day) / 7 (see
//! [`SimStudent::theta_at`]). Per-topic offsets ~ N(0, 0.3²): topic θ = global θ +
//! offset. Primary subject uniform. Sessions per week: `sessions_per_week ×
//! LogNormal(−σ²/2, σ²)` with σ = 1 (mean `sessions_per_week`, heavy right tail),
//! clamped to [0.05, 21]. Hint propensity LogNormal(ln 0.3, 0.9²) clamped to
//! [0.01, 4]; speed factor LogNormal(0, 0.25²). Start day: 80 % uniform in the first
//! two weeks, 20 % uniform in [14, ¾·days). Churn: with probability
//! σ(−1.45 + 1.0·declining − 0.5·improving − 0.6·ln(rate / mean rate)) — so declining and
//! low-engagement students churn more — a student stops for good on a churn day
//! uniform in [start + 7, days); no churn if that range is empty.
//!
//! **Sessions.** On each active day (start_day ≤ d < churn_day or `days`) the number
//! of sessions is Poisson(rate / 7 · f), f = 0.7 on weekends and 1 on weekdays; the
//! start day has at least one session (every student has attempts).
//! Session start: 25 % morning N(10 h, 2 h), 75 % afternoon/evening N(18 h, 2.5 h),
//! clamped to [6 h, 22 h]; a second session the same day starts at least 30 minutes
//! after the previous one ended. A session has 4–15 attempts (uniform); 60 % stay in
//! one topic, 40 % split their attempts over two topics of the same subject. The
//! session's subject is the primary subject with probability 0.8, another one
//! otherwise; topics are uniform within the subject. Attempts follow each other: the
//! next attempt starts 2–15 s after the previous one was completed. An attempt that
//! would complete after midnight ends the session early (rare).
//!
//! **Item choice.** With probability 0.09 a student re-attempts a question already
//! answered in the current topic (not yet seen in this session); with the
//! defaults about 4–5 % of all attempts are re-attempts. Otherwise a new
//! (never answered) question of the topic, weighted 0.25 + exp(−(b − θ_topic)² / 2)
//! (mild targeting). When a topic is exhausted, the student moves to another topic of
//! the same subject with unanswered questions, then to any topic; only a student who
//! has answered the whole bank is forced to re-attempt.
//!
//! **Outcome.** Hints: Poisson(propensity · exp(0.7 · (b − θ_topic))) with the rate
//! capped at 4 and the count at 5, so hints are more likely on items hard for the
//! student. Each hint raises the effective ability by 0.1 (at most 0.3), and the
//! response is correct with probability `ItemParams::p(θ_topic + hint boost)`.
//! Time spent: 45 s · speed · exp(0.25 · (b − θ_topic)) · LogNormal(0, 0.35²) + 6 s
//! per hint, clamped to [3 s, 10 min].
//!
//! **Determinism.** The bank comes from one RNG seeded from `seed`; every student has
//! an own `StdRng` seeded from `seed` mixed with the student index (SplitMix64), and
//! students are simulated in parallel with rayon, so the result does not depend on the
//! number of threads.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal, StandardNormal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::irt::{ItemParams, Model, ResponseMatrix};

/// Error of [`PlatformConfig::validate`] / [`try_simulate_platform`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PlatformError {
    /// A configuration field is out of its allowed range.
    #[error("invalid platform configuration: {field}: {reason}")]
    InvalidConfig {
        /// The offending field of [`PlatformConfig`].
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Size and seed of the simulated platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlatformConfig {
    /// Number of students (default 10,000).
    pub students: usize,
    /// Number of questions in the bank (default 400).
    pub items: usize,
    /// Number of simulated days, day 0 a Monday (default 60).
    pub days: u32,
    /// Seed of every random draw (default 42).
    pub seed: u64,
    /// Number of subjects (default 4).
    pub subjects: usize,
    /// Topics per subject (default 5).
    pub topics_per_subject: usize,
    /// Number of anchor questions (default 50).
    pub anchors: usize,
    /// Mean number of sessions per active week across students (default 0.75, which
    /// gives about 500,000 attempts with the other defaults). Individual rates are
    /// heavy-tailed around it.
    pub sessions_per_week: f64,
    /// Anchors whose difficulty drifts (default 3; at most a tenth of `anchors` drift).
    #[serde(default = "default_drifted_anchors")]
    pub drifted_anchors: usize,
    /// Day from which the drifted anchors answer with the shifted difficulty (default 11:
    /// the day after a weekly calibration of a 60-day demo run with a backfill, so the
    /// next one, on day 17, has a full week of shifted answers).
    #[serde(default = "default_drift_from_day")]
    pub drift_from_day: u32,
    /// Shift of the drifted anchors' true b, θ units (default −1.0: easier).
    #[serde(default = "default_drift_b_shift")]
    pub drift_b_shift: f64,
}

fn default_drifted_anchors() -> usize {
    3
}

fn default_drift_from_day() -> u32 {
    11
}

fn default_drift_b_shift() -> f64 {
    -1.0
}

impl Default for PlatformConfig {
    fn default() -> Self {
        Self {
            students: 10_000,
            items: 400,
            days: 60,
            seed: 42,
            subjects: 4,
            topics_per_subject: 5,
            anchors: 50,
            sessions_per_week: 0.75,
            drifted_anchors: default_drifted_anchors(),
            drift_from_day: default_drift_from_day(),
            drift_b_shift: default_drift_b_shift(),
        }
    }
}

impl PlatformConfig {
    /// Checks every field: at least one student, subject, topic per subject and day;
    /// at least one question per topic; `anchors <= items`; ids fit in `u32`; a finite
    /// positive session rate.
    pub fn validate(&self) -> Result<(), PlatformError> {
        let bad = |field: &'static str, reason: String| {
            Err(PlatformError::InvalidConfig { field, reason })
        };
        if self.students == 0 {
            return bad("students", "must be at least 1".into());
        }
        if self.students > u32::MAX as usize {
            return bad(
                "students",
                format!("must fit in u32, got {}", self.students),
            );
        }
        if self.days == 0 {
            return bad("days", "must be at least 1".into());
        }
        if self.subjects == 0 {
            return bad("subjects", "must be at least 1".into());
        }
        if self.topics_per_subject == 0 {
            return bad("topics_per_subject", "must be at least 1".into());
        }
        let n_topics = self.subjects.saturating_mul(self.topics_per_subject);
        if self.items == 0 {
            return bad("items", "must be at least 1".into());
        }
        if self.items > u32::MAX as usize {
            return bad("items", format!("must fit in u32, got {}", self.items));
        }
        if self.items < n_topics {
            return bad(
                "items",
                format!(
                    "{} questions cannot cover {n_topics} topics (need at least one per topic)",
                    self.items
                ),
            );
        }
        if self.anchors > self.items {
            return bad(
                "anchors",
                format!(
                    "{} anchors exceed the {} questions",
                    self.anchors, self.items
                ),
            );
        }
        if !(self.sessions_per_week.is_finite() && self.sessions_per_week > 0.0) {
            return bad(
                "sessions_per_week",
                format!("must be finite and > 0, got {}", self.sessions_per_week),
            );
        }
        if !(self.drift_b_shift.is_finite() && self.drift_b_shift.abs() <= 5.0) {
            return bad(
                "drift_b_shift",
                format!("must be finite, within ±5, got {}", self.drift_b_shift),
            );
        }
        Ok(())
    }

    /// Number of topics: `subjects × topics_per_subject`.
    pub fn n_topics(&self) -> usize {
        self.subjects * self.topics_per_subject
    }
}

/// A subject (`subj-1`, `subj-2`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimSubject {
    /// Id, `subj-{k}` (1-based).
    pub id: String,
    /// Display name (e.g. `Mathematics`).
    pub name: String,
}

/// A topic of a subject (`topic-{subject}-{k}`, both 1-based).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimTopic {
    /// Id, `topic-{s}-{k}` (1-based subject and topic numbers).
    pub id: String,
    /// Display name (e.g. `Mathematics 3`).
    pub name: String,
    /// Index of the subject in [`Platform::subjects`].
    pub subject: usize,
}

/// A question with its true parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimItem {
    /// Id, `q0001`, … (1-based, at least 4 digits).
    pub id: String,
    /// Index of the subject in [`Platform::subjects`].
    pub subject: usize,
    /// Index of the topic in [`Platform::topics`].
    pub topic: usize,
    /// True item parameters (c = 0 for 2PL items).
    pub params: ItemParams,
    /// The generating model: [`Model::TwoPl`] or [`Model::ThreePl`].
    pub model: Model,
    /// Anchor question (its parameters define the reporting scale).
    pub is_anchor: bool,
    /// Tags for the `questions` table: the topic id, a difficulty band (`easy`
    /// b < −0.5, `medium`, `hard` b > 0.5), the format (`multiple-choice` for 3PL,
    /// `open` for 2PL) and `anchor` for anchors.
    pub tags: Vec<String>,
    /// Planted drift of an anchor: from this day on it answers with b + the shift.
    #[serde(default)]
    pub drift: Option<ItemDrift>,
}

/// A planted change of an item's true difficulty (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ItemDrift {
    /// First day (index) answered with the shifted difficulty.
    pub from_day: u32,
    /// Shift of b, θ units.
    pub b_shift: f64,
}

impl SimItem {
    /// The true parameters in force on `day` (the drifted b from the drift's day on).
    #[inline]
    pub fn params_on(&self, day: f64) -> ItemParams {
        match self.drift {
            Some(d) if day >= f64::from(d.from_day) => ItemParams {
                b: self.params.b + d.b_shift,
                ..self.params
            },
            _ => self.params,
        }
    }
}

/// The trajectory class of a student's true ability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trajectory {
    /// θ grows by 0.10–0.25 per week.
    Improving,
    /// θ stays about constant (|slope| ≤ 0.04 per week).
    Flat,
    /// θ falls by 0.05–0.20 per week.
    Declining,
}

impl Trajectory {
    /// `improving`, `flat` or `declining`.
    pub fn as_str(self) -> &'static str {
        match self {
            Trajectory::Improving => "improving",
            Trajectory::Flat => "flat",
            Trajectory::Declining => "declining",
        }
    }
}

/// A student and the truth about them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimStudent {
    /// Id, `s00001`, … (1-based, at least 5 digits).
    pub id: String,
    /// True global ability on the start day.
    pub theta0: f64,
    /// Trajectory class.
    pub trajectory: Trajectory,
    /// True change of θ per week (θ units / 7 days) from the start day on.
    pub slope_per_week: f64,
    /// True offset of each topic's ability from the global θ (indexed like
    /// [`Platform::topics`]).
    pub topic_offsets: Vec<f64>,
    /// Index of the student's main subject.
    pub primary_subject: usize,
    /// Expected sessions per active week (before the weekend factor).
    pub sessions_per_week: f64,
    /// Expected hints on an item matched to the student's ability (b = θ).
    pub hint_propensity: f64,
    /// Time multiplier (> 1 slower, < 1 faster).
    pub speed: f64,
    /// The sign-up day: the student's first session is on this day.
    pub start_day: u32,
    /// The day the student has left for good: no attempt on this day or later.
    /// `None` for students still active at the end.
    pub churn_day: Option<u32>,
}

impl SimStudent {
    /// True global θ at `day` (fractional days allowed): θ0 + slope · max(0, day −
    /// start_day) / 7.
    pub fn theta_at(&self, day: f64) -> f64 {
        self.theta0 + self.slope_per_week * (day - self.start_day as f64).max(0.0) / 7.0
    }

    /// True ability in topic `topic` at `day`: the global θ plus the topic's offset.
    ///
    /// # Panics
    /// If `topic` is not a topic index of the platform.
    pub fn topic_theta_at(&self, topic: usize, day: f64) -> f64 {
        self.theta_at(day) + self.topic_offsets[topic]
    }

    /// Whether the student churned (has a churn day).
    pub fn is_churned(&self) -> bool {
        self.churn_day.is_some()
    }

    /// The days the student may be active: `start_day..churn_day` (or `..days`).
    pub fn active_days(&self, days: u32) -> std::ops::Range<u32> {
        let end = self.churn_day.unwrap_or(days).min(days);
        self.start_day.min(end)..end
    }
}

/// One answer to one question.
///
/// In [`Platform::attempts`] attempts are sorted by (`day`, `second_of_day`,
/// `student`); `attempt_id` is the 1-based position in that order and `session` ids
/// are numbered 1, 2, … in order of the session's first attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SimAttempt {
    /// Unique id (1-based, chronological).
    pub attempt_id: u64,
    /// Index into [`Platform::students`].
    pub student: u32,
    /// Index into [`Platform::items`].
    pub item: u32,
    /// Unique session id (1-based, chronological by session start).
    pub session: u64,
    /// Day index (0-based; day 0 is a Monday).
    pub day: u32,
    /// Second of the day (UTC) at which the answer was completed (`completed_at`).
    pub second_of_day: u32,
    /// Whether the answer was correct.
    pub correct: bool,
    /// Time spent on the question in milliseconds.
    pub time_spent_ms: u32,
    /// Hints used on the question (0–5).
    pub hints_used: u32,
}

/// The whole simulated platform: bank, population, attempts and the config used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Platform {
    /// The configuration that produced this platform.
    pub config: PlatformConfig,
    /// Subjects.
    pub subjects: Vec<SimSubject>,
    /// Topics, subject-major (topic `s · topics_per_subject + k`).
    pub topics: Vec<SimTopic>,
    /// Questions with true parameters.
    pub items: Vec<SimItem>,
    /// Students with their true abilities and behaviour.
    pub students: Vec<SimStudent>,
    /// Attempts sorted by (day, second_of_day, student).
    pub attempts: Vec<SimAttempt>,
}

impl Platform {
    /// The true parameters of every item, in item order.
    pub fn item_params(&self) -> Vec<ItemParams> {
        self.items.iter().map(|i| i.params).collect()
    }

    /// Number of attempts on each item.
    pub fn attempts_per_item(&self) -> Vec<usize> {
        let mut n = vec![0usize; self.items.len()];
        for a in &self.attempts {
            n[a.item as usize] += 1;
        }
        n
    }

    /// Flags, per attempt (in [`Platform::attempts`] order), whether the student had
    /// already answered that question before (a re-attempt).
    pub fn reattempt_flags(&self) -> Vec<bool> {
        let n_items = self.items.len();
        let mut seen = vec![false; self.students.len() * n_items];
        self.attempts
            .iter()
            .map(|a| {
                let k = a.student as usize * n_items + a.item as usize;
                std::mem::replace(&mut seen[k], true)
            })
            .collect()
    }

    /// The first attempt of each (student, item) pair as `(student, item, correct)`
    /// triplets in chronological order: the calibration data (re-attempts dropped).
    pub fn first_responses(&self) -> Vec<(u32, u32, bool)> {
        self.attempts
            .iter()
            .zip(self.reattempt_flags())
            .filter(|(_, re)| !re)
            .map(|(a, _)| (a.student, a.item, a.correct))
            .collect()
    }

    /// The calibration matrix: first attempts only, all students and items.
    pub fn response_matrix(&self) -> ResponseMatrix {
        ResponseMatrix::from_triplets(
            self.students.len(),
            self.items.len(),
            &self.first_responses(),
        )
        .expect("first responses are unique and in range")
    }
}

/// Simulates the platform described by `config` (deterministic given `config.seed`).
///
/// # Panics
/// If the configuration is invalid (see [`PlatformConfig::validate`]); use
/// [`try_simulate_platform`] to get the error instead.
pub fn simulate_platform(config: &PlatformConfig) -> Platform {
    match try_simulate_platform(config) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

/// Validates `config`, then simulates the platform (see the module docs).
pub fn try_simulate_platform(config: &PlatformConfig) -> Result<Platform, PlatformError> {
    config.validate()?;
    let (subjects, topics) = build_taxonomy(config);
    let items = build_items(config, &topics);
    let students: Vec<SimStudent> = (0..config.students)
        .into_par_iter()
        .map(|s| {
            let mut rng = student_rng(config.seed, s as u64, 0);
            draw_student(config, s, &mut rng)
        })
        .collect();

    let index = BankIndex::new(config, &items);
    let per_student: Vec<Vec<SimAttempt>> = students
        .par_iter()
        .enumerate()
        .map(|(s, st)| {
            let mut rng = student_rng(config.seed, s as u64, 1);
            simulate_student(config, &index, &items, s as u32, st, &mut rng)
        })
        .collect();

    let mut attempts: Vec<SimAttempt> = per_student.into_iter().flatten().collect();
    // Keys are unique: a student's attempts never share a second.
    attempts.par_sort_unstable_by_key(|a| (a.day, a.second_of_day, a.student));
    // Chronological ids; sessions of one student never interleave in time, so a change
    // of the student's local session number marks a new session.
    let mut last_local = vec![u64::MAX; students.len()];
    let mut last_global = vec![0u64; students.len()];
    let mut next_session = 0u64;
    for (k, a) in attempts.iter_mut().enumerate() {
        a.attempt_id = k as u64 + 1;
        let s = a.student as usize;
        if last_local[s] != a.session {
            last_local[s] = a.session;
            next_session += 1;
            last_global[s] = next_session;
        }
        a.session = last_global[s];
    }

    Ok(Platform {
        config: config.clone(),
        subjects,
        topics,
        items,
        students,
        attempts,
    })
}

const SUBJECT_NAMES: [&str; 8] = [
    "Mathematics",
    "Reading",
    "Science",
    "History",
    "Geography",
    "Languages",
    "Computing",
    "Arts",
];

fn build_taxonomy(config: &PlatformConfig) -> (Vec<SimSubject>, Vec<SimTopic>) {
    let subjects: Vec<SimSubject> = (0..config.subjects)
        .map(|s| {
            let base = SUBJECT_NAMES[s % SUBJECT_NAMES.len()];
            let name = if s < SUBJECT_NAMES.len() {
                base.to_string()
            } else {
                format!("{base} {}", s / SUBJECT_NAMES.len() + 1)
            };
            SimSubject {
                id: format!("subj-{}", s + 1),
                name,
            }
        })
        .collect();
    let topics = (0..config.subjects)
        .flat_map(|s| {
            let subj_name = subjects[s].name.clone();
            (0..config.topics_per_subject).map(move |k| SimTopic {
                id: format!("topic-{}-{}", s + 1, k + 1),
                name: format!("{subj_name} {}", k + 1),
                subject: s,
            })
        })
        .collect();
    (subjects, topics)
}

fn build_items(config: &PlatformConfig, topics: &[SimTopic]) -> Vec<SimItem> {
    let mut rng = StdRng::seed_from_u64(splitmix64(config.seed ^ 0x5EED_BA4C_0000_0001));
    let n_topics = topics.len();
    let la = LogNormal::new(0.0, 0.3).expect("valid lognormal");
    let topic_shift: Vec<f64> = (0..n_topics).map(|_| 0.3 * normal(&mut rng)).collect();
    let mut items: Vec<SimItem> = (0..config.items)
        .map(|i| {
            let topic = i * n_topics / config.items;
            let a = Distribution::<f64>::sample(&la, &mut rng).clamp(0.5, 2.5);
            let b = (topic_shift[topic] + 0.95 * normal(&mut rng)).clamp(-2.8, 2.8);
            let three_pl = rng.random::<f64>() < 0.25;
            let (model, c) = if three_pl {
                (Model::ThreePl, rng.random_range(0.1..0.3))
            } else {
                (Model::TwoPl, 0.0)
            };
            SimItem {
                id: format!("q{:04}", i + 1),
                subject: topics[topic].subject,
                topic,
                params: ItemParams { a, b, c },
                model,
                is_anchor: false,
                tags: Vec::new(),
                drift: None,
            }
        })
        .collect();

    // Anchors: round-robin over topics, evenly spaced b-quantiles within each topic.
    let mut by_topic: Vec<Vec<usize>> = vec![Vec::new(); n_topics];
    for (i, it) in items.iter().enumerate() {
        by_topic[it.topic].push(i);
    }
    let mut quota = vec![0usize; n_topics];
    let mut left = config.anchors;
    while left > 0 {
        let before = left;
        for t in 0..n_topics {
            if left > 0 && quota[t] < by_topic[t].len() {
                quota[t] += 1;
                left -= 1;
            }
        }
        debug_assert!(left < before, "anchors <= items guarantees progress");
    }
    for t in 0..n_topics {
        let mut members = by_topic[t].clone();
        members.sort_by(|&x, &y| items[x].params.b.total_cmp(&items[y].params.b));
        let (n, k) = (members.len(), quota[t]);
        for m in 0..k {
            // Distinct positions: floor((m + 0.5) n / k) is strictly increasing for k <= n.
            let pos = ((2 * m + 1) * n) / (2 * k);
            let it = &mut items[members[pos]];
            it.is_anchor = true;
            let a_min: f64 = rng.random_range(1.0..1.8);
            it.params.a = it.params.a.max(a_min);
        }
    }

    // Planted drift: evenly spaced positions of the anchor list, no random draw.
    let anchor_ix: Vec<usize> = (0..items.len()).filter(|&i| items[i].is_anchor).collect();
    let k = config.drifted_anchors.min(anchor_ix.len() / 10);
    for m in 0..k {
        let pos = ((2 * m + 1) * anchor_ix.len()) / (2 * k);
        items[anchor_ix[pos]].drift = Some(ItemDrift {
            from_day: config.drift_from_day,
            b_shift: config.drift_b_shift,
        });
    }

    for it in &mut items {
        let band = if it.params.b < -0.5 {
            "easy"
        } else if it.params.b > 0.5 {
            "hard"
        } else {
            "medium"
        };
        let format = match it.model {
            Model::ThreePl => "multiple-choice",
            _ => "open",
        };
        it.tags = vec![
            topics[it.topic].id.clone(),
            band.to_string(),
            format.to_string(),
        ];
        if it.is_anchor {
            it.tags.push("anchor".to_string());
        }
    }
    items
}

fn draw_student(config: &PlatformConfig, s: usize, rng: &mut StdRng) -> SimStudent {
    let theta0 = normal(rng);
    let u: f64 = rng.random();
    let (trajectory, slope_per_week) = if u < 0.35 {
        (Trajectory::Improving, rng.random_range(0.10..0.25))
    } else if u < 0.75 {
        (Trajectory::Flat, (0.02 * normal(rng)).clamp(-0.04, 0.04))
    } else {
        (Trajectory::Declining, rng.random_range(-0.20..-0.05))
    };
    let topic_offsets = (0..config.n_topics()).map(|_| 0.3 * normal(rng)).collect();
    let primary_subject = rng.random_range(0..config.subjects);
    // Heavy-tailed engagement with mean `config.sessions_per_week`.
    let rel_rate = (normal(rng) - 0.5).exp();
    let sessions_per_week = (config.sessions_per_week * rel_rate).clamp(0.05, 21.0);
    let hint_propensity = (0.3f64.ln() + 0.9 * normal(rng)).exp().clamp(0.01, 4.0);
    let speed = (0.25 * normal(rng)).exp();

    let early_days = config.days.min(14);
    let late_end = (config.days * 3 / 4).max(15).min(config.days);
    let start_day = if rng.random::<f64>() < 0.8 || late_end <= 14 {
        rng.random_range(0..early_days)
    } else {
        rng.random_range(14..late_end)
    };

    let logit = -1.45
        + if trajectory == Trajectory::Declining {
            1.0
        } else {
            0.0
        }
        - if trajectory == Trajectory::Improving {
            0.5
        } else {
            0.0
        }
        - 0.6 * (sessions_per_week / config.sessions_per_week).ln();
    let p_churn = 1.0 / (1.0 + (-logit).exp());
    let churns = rng.random::<f64>() < p_churn;
    let churn_day = (churns && start_day + 7 < config.days)
        .then(|| rng.random_range(start_day + 7..config.days));

    SimStudent {
        id: format!("s{:05}", s + 1),
        theta0,
        trajectory,
        slope_per_week,
        topic_offsets,
        primary_subject,
        sessions_per_week,
        hint_propensity,
        speed,
        start_day,
        churn_day,
    }
}

/// Items grouped by topic and topics by subject, for item choice.
struct BankIndex {
    topics_per_subject: usize,
    /// Items of each topic.
    by_topic: Vec<Vec<u32>>,
}

impl BankIndex {
    fn new(config: &PlatformConfig, items: &[SimItem]) -> Self {
        let mut by_topic = vec![Vec::new(); config.n_topics()];
        for (i, it) in items.iter().enumerate() {
            by_topic[it.topic].push(i as u32);
        }
        Self {
            topics_per_subject: config.topics_per_subject,
            by_topic,
        }
    }
}

/// What a student has answered so far.
struct Memory {
    answered: Vec<bool>,
    answered_in_topic: Vec<usize>,
    total_answered: usize,
}

const DAY_SECONDS: u32 = 86_400;
const REATTEMPT_P: f64 = 0.09;

fn simulate_student(
    config: &PlatformConfig,
    bank: &BankIndex,
    items: &[SimItem],
    s: u32,
    st: &SimStudent,
    rng: &mut StdRng,
) -> Vec<SimAttempt> {
    let n_topics = bank.by_topic.len();
    let mut mem = Memory {
        answered: vec![false; items.len()],
        answered_in_topic: vec![0; n_topics],
        total_answered: 0,
    };
    let mut out = Vec::new();
    let mut local_session = 0u64;
    let mut session_items: Vec<u32> = Vec::with_capacity(16);
    let mut weights: Vec<f64> = Vec::with_capacity(32);

    for day in st.active_days(config.days) {
        let weekend = matches!(day % 7, 5 | 6);
        let lambda = st.sessions_per_week / 7.0 * if weekend { 0.7 } else { 1.0 };
        // A student signs up with a session: the start day always has one.
        let n_sessions = poisson_small(lambda, rng).max(u32::from(day == st.start_day));
        if n_sessions == 0 {
            continue;
        }
        let mut starts: Vec<u32> = (0..n_sessions).map(|_| session_start(rng)).collect();
        starts.sort_unstable();
        let mut earliest_next = 0u32;
        for start in starts {
            let mut t = start.max(earliest_next);
            if t >= DAY_SECONDS - 60 {
                break;
            }
            local_session += 1;
            session_items.clear();
            let n_attempts = rng.random_range(4..=15usize);
            let first_topic = pick_topic(config, bank, st, rng);
            let second_topic = if rng.random::<f64>() < 0.4 && bank.topics_per_subject > 1 {
                let subject = first_topic / bank.topics_per_subject;
                let mut k = rng.random_range(0..bank.topics_per_subject - 1);
                if subject * bank.topics_per_subject + k >= first_topic {
                    k += 1;
                }
                subject * bank.topics_per_subject + k
            } else {
                first_topic
            };
            let split = n_attempts.div_ceil(2);
            let mut topic = first_topic;
            for j in 0..n_attempts {
                if j == split && second_topic != first_topic {
                    topic = second_topic;
                }
                let day_f = day as f64 + t as f64 / DAY_SECONDS as f64;
                let (item, new_topic) = choose_item(
                    bank,
                    items,
                    &mem,
                    &session_items,
                    topic,
                    st,
                    day_f,
                    &mut weights,
                    rng,
                );
                topic = new_topic;
                let it = &items[item as usize];
                let theta = st.topic_theta_at(it.topic, day_f);
                let params = it.params_on(day_f);
                let gap = params.b - theta;
                let hint_rate = (st.hint_propensity * (0.7 * gap).exp()).min(4.0);
                let hints = poisson_small(hint_rate, rng).min(5);
                let boost = (0.1 * hints as f64).min(0.3);
                let correct = rng.random::<f64>() < params.p(theta + boost);
                let noise = (0.35 * normal(rng)).exp();
                let secs = 45.0 * st.speed * (0.25 * gap).exp() * noise + 6.0 * hints as f64;
                let time_spent_ms = (secs * 1000.0).clamp(3_000.0, 600_000.0).round() as u32;
                let completed = t + time_spent_ms.div_ceil(1000);
                if completed >= DAY_SECONDS {
                    break;
                }
                out.push(SimAttempt {
                    attempt_id: 0,
                    student: s,
                    item,
                    session: local_session,
                    day,
                    second_of_day: completed,
                    correct,
                    time_spent_ms,
                    hints_used: hints,
                });
                session_items.push(item);
                if !mem.answered[item as usize] {
                    mem.answered[item as usize] = true;
                    mem.answered_in_topic[it.topic] += 1;
                    mem.total_answered += 1;
                }
                t = completed + rng.random_range(2..=15u32);
            }
            earliest_next = t + 1800;
        }
    }
    out
}

/// The session's first topic: primary subject with probability 0.8 (when there are
/// other subjects), a uniform topic within the subject.
fn pick_topic(
    config: &PlatformConfig,
    bank: &BankIndex,
    st: &SimStudent,
    rng: &mut StdRng,
) -> usize {
    let subject = if config.subjects == 1 || rng.random::<f64>() < 0.8 {
        st.primary_subject
    } else {
        let mut o = rng.random_range(0..config.subjects - 1);
        if o >= st.primary_subject {
            o += 1;
        }
        o
    };
    subject * bank.topics_per_subject + rng.random_range(0..bank.topics_per_subject)
}

/// Picks the next item; returns it and the topic the student is now in (which changes
/// only when the requested topic is exhausted).
#[allow(clippy::too_many_arguments)]
fn choose_item(
    bank: &BankIndex,
    items: &[SimItem],
    mem: &Memory,
    session_items: &[u32],
    topic: usize,
    st: &SimStudent,
    day: f64,
    weights: &mut Vec<f64>,
    rng: &mut StdRng,
) -> (u32, usize) {
    // Deliberate re-attempt of a question answered earlier (not in this session).
    if mem.answered_in_topic[topic] > 0 && rng.random::<f64>() < REATTEMPT_P {
        let cands = bank.by_topic[topic]
            .iter()
            .filter(|&&i| mem.answered[i as usize] && !session_items.contains(&i))
            .count();
        if cands > 0 {
            let pick = rng.random_range(0..cands);
            let item = bank.by_topic[topic]
                .iter()
                .copied()
                .filter(|&i| mem.answered[i as usize] && !session_items.contains(&i))
                .nth(pick)
                .expect("pick < count");
            return (item, topic);
        }
    }
    // A new question: stay in the topic, else move within the subject, else anywhere.
    let topic = if mem.answered_in_topic[topic] < bank.by_topic[topic].len() {
        Some(topic)
    } else {
        let tps = bank.topics_per_subject;
        let subject = topic / tps;
        let open = |t: &usize| mem.answered_in_topic[*t] < bank.by_topic[*t].len();
        let same: Vec<usize> = (subject * tps..(subject + 1) * tps).filter(open).collect();
        if !same.is_empty() {
            Some(same[rng.random_range(0..same.len())])
        } else {
            let any: Vec<usize> = (0..bank.by_topic.len()).filter(open).collect();
            (!any.is_empty()).then(|| any[rng.random_range(0..any.len())])
        }
    };
    let Some(topic) = topic else {
        // The whole bank is answered: forced re-attempt, uniform over the bank.
        let item = rng.random_range(0..items.len()) as u32;
        return (item, items[item as usize].topic);
    };
    let theta = st.topic_theta_at(topic, day);
    weights.clear();
    let mut total = 0.0;
    for &i in &bank.by_topic[topic] {
        let w = if mem.answered[i as usize] {
            0.0
        } else {
            let d = items[i as usize].params.b - theta;
            0.25 + (-0.5 * d * d).exp()
        };
        total += w;
        weights.push(w);
    }
    let mut u = rng.random::<f64>() * total;
    let members = &bank.by_topic[topic];
    let mut chosen = None;
    for (k, &w) in weights.iter().enumerate() {
        if w > 0.0 {
            chosen = Some(members[k]);
            if u < w {
                break;
            }
            u -= w;
        }
    }
    (chosen.expect("the topic has an unanswered item"), topic)
}

/// Session start (second of day): 25 % morning N(10 h, 2 h), 75 % afternoon/evening
/// N(18 h, 2.5 h), clamped to [6 h, 22 h].
fn session_start(rng: &mut StdRng) -> u32 {
    let hours = if rng.random::<f64>() < 0.25 {
        10.0 + 2.0 * normal(rng)
    } else {
        18.0 + 2.5 * normal(rng)
    };
    (hours.clamp(6.0, 22.0) * 3600.0).round() as u32
}

/// A Poisson draw for small rates (Knuth's multiplication method); capped at 64.
fn poisson_small(lambda: f64, rng: &mut StdRng) -> u32 {
    if lambda <= 0.0 {
        return 0;
    }
    let limit = (-lambda).exp();
    let mut k = 0u32;
    let mut p: f64 = rng.random();
    while p > limit && k < 64 {
        k += 1;
        p *= rng.random::<f64>();
    }
    k
}

fn normal(rng: &mut StdRng) -> f64 {
    rng.sample(StandardNormal)
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A per-student RNG independent of thread scheduling: `stream` separates the
/// attribute draws (0) from the attempt draws (1).
fn student_rng(seed: u64, student: u64, stream: u64) -> StdRng {
    StdRng::seed_from_u64(splitmix64(
        splitmix64(seed ^ 0xA076_1D64_78BD_642F).wrapping_add(student.wrapping_mul(2) + stream),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_small_has_the_right_mean() {
        let mut rng = StdRng::seed_from_u64(1);
        let n = 200_000;
        let mean = (0..n)
            .map(|_| poisson_small(0.7, &mut rng) as f64)
            .sum::<f64>()
            / n as f64;
        assert!((mean - 0.7).abs() < 0.01, "mean {mean}");
    }

    #[test]
    fn anchors_are_spread_over_topics() {
        let cfg = PlatformConfig {
            students: 10,
            ..PlatformConfig::default()
        };
        let (_, topics) = build_taxonomy(&cfg);
        let items = build_items(&cfg, &topics);
        let mut per_topic = vec![0; topics.len()];
        for it in items.iter().filter(|i| i.is_anchor) {
            per_topic[it.topic] += 1;
            assert!(it.params.a >= 1.0);
        }
        assert!(per_topic.iter().all(|&n| n == 2 || n == 3), "{per_topic:?}");
        assert_eq!(per_topic.iter().sum::<usize>(), 50);
        // three of the 50 drift (a tenth at most), in three different topics
        let drifted: Vec<&SimItem> = items.iter().filter(|i| i.drift.is_some()).collect();
        assert_eq!(drifted.len(), 3);
        assert!(drifted.iter().all(|i| i.is_anchor));
        let mut t: Vec<usize> = drifted.iter().map(|i| i.topic).collect();
        t.dedup();
        assert_eq!(t.len(), 3);
        let d = drifted[0];
        assert_eq!(d.params_on(10.9).b, d.params.b);
        assert_eq!(d.params_on(11.0).b, d.params.b - 1.0);
        // few anchors: none drift
        let few = PlatformConfig {
            anchors: 9,
            ..cfg.clone()
        };
        assert!(build_items(&few, &topics).iter().all(|i| i.drift.is_none()));
    }
}
