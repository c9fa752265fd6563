//! The design's student segment labels (DESIGN.md §4): the segment features, the six
//! rules and their precedence, and the centroid fallback.
//!
//! # Segment labels
//!
//! The design's rules (DESIGN.md §4) on the raw (not standardized) features, with the
//! strict inequalities exactly as written: see [`Segment`]. The design gives no order
//! for a row that matches several rules; the order here ([`PRECEDENCE`]) puts how a
//! student learns before how often they come, and among the learning labels the more
//! specific and more actionable first:
//!
//! 1. `struggling` (efficiency < 0.4 and hints > 1.5) — before `hint_heavy`, which it
//!    refines: many hints *and* low efficiency calls for help, many hints alone may not;
//! 2. `hint_heavy` (hints > 2.0);
//! 3. `improving` (improvement > 0.3) — a trend, news for the report whatever the level;
//! 4. `efficient` (efficiency > 0.7 and hints < 0.5);
//! 5. `short_frequent` (gap < 3 and sessions > 10);
//! 6. `long_rare` (gap > 7 and sessions < 5).
//!
//! A row matching no rule gets `None` from [`rule_label`]; the caller then takes its
//! cluster centroid's label ([`centroid_label`]: the same rules on the centre in
//! original units, and `steady` when none matches). [`segment_label`] does both.
//! NaN never matches a rule.

use serde::{Deserialize, Serialize};

use crate::cluster::{ClusterError, Result};

/// Names of the segment features, in the order [`SegmentFeatures::from_slice`] reads.
pub const SEGMENT_FEATURES: [&str; 5] = ["gap", "sessions", "hints", "improvement", "efficiency"];

/// The raw per-student features the segment rules read (DESIGN.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SegmentFeatures {
    /// Mean days between sessions.
    pub gap: f64,
    /// Sessions in the feature window.
    pub sessions: f64,
    /// Hints per item answered.
    pub hints: f64,
    /// Improvement I_t (in [−1, 1]).
    pub improvement: f64,
    /// Efficiency E_t (accuracy × speed factor, in [0, 1]).
    pub efficiency: f64,
}

impl SegmentFeatures {
    /// The features in [`SEGMENT_FEATURES`] order.
    pub fn to_array(&self) -> [f64; 5] {
        [
            self.gap,
            self.sessions,
            self.hints,
            self.improvement,
            self.efficiency,
        ]
    }

    /// Reads the first five values in [`SEGMENT_FEATURES`] order (`None` if fewer).
    pub fn from_slice(v: &[f64]) -> Option<Self> {
        match v {
            [gap, sessions, hints, improvement, efficiency, ..] => Some(Self {
                gap: *gap,
                sessions: *sessions,
                hints: *hints,
                improvement: *improvement,
                efficiency: *efficiency,
            }),
            _ => None,
        }
    }
}

/// A student segment. The six rule labels are DESIGN.md §4's, with strict inequalities
/// exactly as written there; `Steady` is the fallback for a centroid no rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Segment {
    /// gap < 3 and sessions > 10.
    ShortFrequent,
    /// gap > 7 and sessions < 5.
    LongRare,
    /// hints > 2.0.
    HintHeavy,
    /// improvement > 0.3.
    Improving,
    /// efficiency < 0.4 and hints > 1.5.
    Struggling,
    /// efficiency > 0.7 and hints < 0.5.
    Efficient,
    /// No rule matches (centroid fallback).
    Steady,
}

/// Order in which the rules are tried (module docs): the first match wins.
pub const PRECEDENCE: [Segment; 6] = [
    Segment::Struggling,
    Segment::HintHeavy,
    Segment::Improving,
    Segment::Efficient,
    Segment::ShortFrequent,
    Segment::LongRare,
];

impl Segment {
    /// The label as stored: `short_frequent`, `long_rare`, `hint_heavy`, `improving`,
    /// `struggling`, `efficient`, `steady`.
    pub fn as_str(self) -> &'static str {
        match self {
            Segment::ShortFrequent => "short_frequent",
            Segment::LongRare => "long_rare",
            Segment::HintHeavy => "hint_heavy",
            Segment::Improving => "improving",
            Segment::Struggling => "struggling",
            Segment::Efficient => "efficient",
            Segment::Steady => "steady",
        }
    }

    /// Whether this segment's rule holds for `f` (`Steady` has no rule: false).
    pub fn matches(self, f: &SegmentFeatures) -> bool {
        match self {
            Segment::ShortFrequent => f.gap < 3.0 && f.sessions > 10.0,
            Segment::LongRare => f.gap > 7.0 && f.sessions < 5.0,
            Segment::HintHeavy => f.hints > 2.0,
            Segment::Improving => f.improvement > 0.3,
            Segment::Struggling => f.efficiency < 0.4 && f.hints > 1.5,
            Segment::Efficient => f.efficiency > 0.7 && f.hints < 0.5,
            Segment::Steady => false,
        }
    }
}

impl std::fmt::Display for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Segment {
    type Err = ClusterError;
    fn from_str(s: &str) -> Result<Self> {
        PRECEDENCE
            .iter()
            .chain(std::iter::once(&Segment::Steady))
            .find(|seg| seg.as_str() == s)
            .copied()
            .ok_or_else(|| ClusterError::InvalidConfig(format!("unknown segment '{s}'")))
    }
}

/// The first rule in [`PRECEDENCE`] that `f` satisfies, or `None`.
pub fn rule_label(f: &SegmentFeatures) -> Option<Segment> {
    PRECEDENCE.iter().copied().find(|s| s.matches(f))
}

/// Label of a cluster centre in original units: its rule label, else `Steady`.
pub fn centroid_label(centre: &SegmentFeatures) -> Segment {
    rule_label(centre).unwrap_or(Segment::Steady)
}

/// A student's label: their own rule label, else their cluster centre's
/// ([`centroid_label`]).
pub fn segment_label(student: &SegmentFeatures, centre: &SegmentFeatures) -> Segment {
    rule_label(student).unwrap_or_else(|| centroid_label(centre))
}
