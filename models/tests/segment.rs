//! The segment rules (DESIGN.md §4): strict at their thresholds, their precedence
//! when several match, the centroid fallback, and the labels' names.

use models::segment::{
    PRECEDENCE, Segment, SegmentFeatures, centroid_label, rule_label, segment_label,
};

/// Features that match no rule: gap 5, sessions 7, hints 1, improvement 0, efficiency 0.55.
fn neutral() -> SegmentFeatures {
    SegmentFeatures {
        gap: 5.0,
        sessions: 7.0,
        hints: 1.0,
        improvement: 0.0,
        efficiency: 0.55,
    }
}

#[test]
fn every_rule_is_strict_at_its_thresholds() {
    assert_eq!(rule_label(&neutral()), None);
    let up = f64::next_up;
    let down = f64::next_down;
    // (segment, features exactly at a threshold, the same a hair beyond it)
    let n = neutral();
    let cases: Vec<(Segment, SegmentFeatures, SegmentFeatures)> = vec![
        // short_frequent: gap < 3 && sessions > 10
        (
            Segment::ShortFrequent,
            SegmentFeatures {
                gap: 3.0,
                sessions: 11.0,
                ..n
            },
            SegmentFeatures {
                gap: down(3.0),
                sessions: 11.0,
                ..n
            },
        ),
        (
            Segment::ShortFrequent,
            SegmentFeatures {
                gap: 2.0,
                sessions: 10.0,
                ..n
            },
            SegmentFeatures {
                gap: 2.0,
                sessions: up(10.0),
                ..n
            },
        ),
        // long_rare: gap > 7 && sessions < 5
        (
            Segment::LongRare,
            SegmentFeatures {
                gap: 7.0,
                sessions: 4.0,
                ..n
            },
            SegmentFeatures {
                gap: up(7.0),
                sessions: 4.0,
                ..n
            },
        ),
        (
            Segment::LongRare,
            SegmentFeatures {
                gap: 8.0,
                sessions: 5.0,
                ..n
            },
            SegmentFeatures {
                gap: 8.0,
                sessions: down(5.0),
                ..n
            },
        ),
        // hint_heavy: hints > 2.0
        (
            Segment::HintHeavy,
            SegmentFeatures { hints: 2.0, ..n },
            SegmentFeatures {
                hints: up(2.0),
                ..n
            },
        ),
        // improving: improvement > 0.3
        (
            Segment::Improving,
            SegmentFeatures {
                improvement: 0.3,
                ..n
            },
            SegmentFeatures {
                improvement: up(0.3),
                ..n
            },
        ),
        // struggling: efficiency < 0.4 && hints > 1.5
        (
            Segment::Struggling,
            SegmentFeatures {
                efficiency: 0.4,
                hints: 1.8,
                ..n
            },
            SegmentFeatures {
                efficiency: down(0.4),
                hints: 1.8,
                ..n
            },
        ),
        (
            Segment::Struggling,
            SegmentFeatures {
                efficiency: 0.3,
                hints: 1.5,
                ..n
            },
            SegmentFeatures {
                efficiency: 0.3,
                hints: up(1.5),
                ..n
            },
        ),
        // efficient: efficiency > 0.7 && hints < 0.5
        (
            Segment::Efficient,
            SegmentFeatures {
                efficiency: 0.7,
                hints: 0.2,
                ..n
            },
            SegmentFeatures {
                efficiency: up(0.7),
                hints: 0.2,
                ..n
            },
        ),
        (
            Segment::Efficient,
            SegmentFeatures {
                efficiency: 0.9,
                hints: 0.5,
                ..n
            },
            SegmentFeatures {
                efficiency: 0.9,
                hints: down(0.5),
                ..n
            },
        ),
    ];
    for (seg, at, beyond) in cases {
        assert!(!seg.matches(&at), "{seg} at {at:?}");
        assert_eq!(rule_label(&at), None, "{seg} at {at:?}");
        assert!(seg.matches(&beyond), "{seg} beyond {beyond:?}");
        assert_eq!(rule_label(&beyond), Some(seg), "{seg} beyond {beyond:?}");
    }
    // NaN matches nothing
    let nan = SegmentFeatures {
        gap: f64::NAN,
        sessions: f64::NAN,
        hints: f64::NAN,
        improvement: f64::NAN,
        efficiency: f64::NAN,
    };
    assert_eq!(rule_label(&nan), None);
}

#[test]
fn overlapping_rules_follow_the_precedence() {
    let n = neutral();
    let cases = [
        // struggling refines hint_heavy
        (
            SegmentFeatures {
                hints: 2.5,
                efficiency: 0.3,
                ..n
            },
            Segment::Struggling,
        ),
        (
            SegmentFeatures {
                hints: 2.5,
                efficiency: 0.3,
                improvement: 0.5,
                gap: 1.0,
                sessions: 20.0,
            },
            Segment::Struggling,
        ),
        (
            SegmentFeatures {
                hints: 2.5,
                improvement: 0.5,
                ..n
            },
            Segment::HintHeavy,
        ),
        (
            SegmentFeatures {
                hints: 2.5,
                gap: 9.0,
                sessions: 2.0,
                ..n
            },
            Segment::HintHeavy,
        ),
        (
            SegmentFeatures {
                improvement: 0.5,
                efficiency: 0.8,
                hints: 0.1,
                ..n
            },
            Segment::Improving,
        ),
        (
            SegmentFeatures {
                improvement: 0.5,
                gap: 1.0,
                sessions: 20.0,
                ..n
            },
            Segment::Improving,
        ),
        (
            SegmentFeatures {
                efficiency: 0.8,
                hints: 0.1,
                gap: 1.0,
                sessions: 20.0,
                ..n
            },
            Segment::Efficient,
        ),
        (
            SegmentFeatures {
                efficiency: 0.8,
                hints: 0.1,
                gap: 9.0,
                sessions: 2.0,
                ..n
            },
            Segment::Efficient,
        ),
        (
            SegmentFeatures {
                efficiency: 0.2,
                hints: 1.8,
                gap: 9.0,
                sessions: 2.0,
                ..n
            },
            Segment::Struggling,
        ),
    ];
    for (f, expected) in cases {
        assert_eq!(rule_label(&f), Some(expected), "{f:?}");
        // the winner is the first matching rule in PRECEDENCE, and others do match
        assert!(
            PRECEDENCE.iter().filter(|s| s.matches(&f)).count() >= 2,
            "{f:?} is no overlap"
        );
    }
    // every rule appears once; steady is not a rule
    for s in [
        Segment::ShortFrequent,
        Segment::LongRare,
        Segment::HintHeavy,
        Segment::Improving,
        Segment::Struggling,
        Segment::Efficient,
    ] {
        assert_eq!(PRECEDENCE.iter().filter(|&&p| p == s).count(), 1);
    }
    assert!(!PRECEDENCE.contains(&Segment::Steady));
}

#[test]
fn unmatched_students_take_the_centroid_label() {
    let n = neutral();
    let hinty_centre = SegmentFeatures { hints: 2.2, ..n };
    // the student matches nothing: the centre's label
    assert_eq!(segment_label(&n, &hinty_centre), Segment::HintHeavy);
    // the student's own rule wins over the centre's
    let improving = SegmentFeatures {
        improvement: 0.6,
        ..n
    };
    assert_eq!(segment_label(&improving, &hinty_centre), Segment::Improving);
    // neither matches: steady
    assert_eq!(centroid_label(&n), Segment::Steady);
    assert_eq!(segment_label(&n, &n), Segment::Steady);
}

#[test]
fn segment_names_round_trip() {
    for (s, name) in [
        (Segment::ShortFrequent, "short_frequent"),
        (Segment::LongRare, "long_rare"),
        (Segment::HintHeavy, "hint_heavy"),
        (Segment::Improving, "improving"),
        (Segment::Struggling, "struggling"),
        (Segment::Efficient, "efficient"),
        (Segment::Steady, "steady"),
    ] {
        assert_eq!(s.as_str(), name);
        assert_eq!(s.to_string(), name);
        assert_eq!(name.parse::<Segment>().unwrap(), s);
        assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{name}\""));
    }
    assert!("busy".parse::<Segment>().is_err());
}
