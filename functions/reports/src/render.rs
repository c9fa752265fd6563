//! HTML rendering with `minijinja` templates (`templates/*.html`, compiled into the
//! binary).
//!
//! Every template name ends in `.html`, so minijinja escapes every value it prints
//! (`<`, `>`, `&`, quotes, `/`): an id or topic named `<script>…` is shown as text,
//! in HTML and inside the inline SVG alike. Undefined values are errors
//! ([`UndefinedBehavior::Strict`]), so a misspelt label cannot render as an empty string.
//!
//! The page makes no request of its own: CSS and SVG are inline, and a
//! Content-Security-Policy (`default-src 'none'`) forbids anything else. The only script
//! is [`HOOK_SCRIPT`], allowed by its SHA-256 hash; the page does not need it (it reads
//! the same with JavaScript off).

use std::sync::LazyLock;

use minijinja::{Environment, UndefinedBehavior, context};
use sha2::{Digest, Sha256};

use crate::labels::Labels;
use crate::view::{CohortView, StudentView};

/// A check hook for tests and tools, run once the page has loaded: it writes on `<html>`
/// whether the page is wider than the window (`data-overflow`), how many SVGs it has
/// (`data-charts`) and how many of them have zero width or height (`data-zero-charts`),
/// the first element sticking out on the right when it does (`data-overflow-el`), how
/// many elements hide part of their content behind a horizontal scroll (`data-clipped`:
/// a table wider than its scrolling box) and the first of them (`data-clipped-el`), the
/// page height (`data-height`) and any script error (`data-js-error`). It changes
/// nothing visible.
pub const HOOK_SCRIPT: &str = "addEventListener('error',function(e){document.documentElement.setAttribute('data-js-error',String(e.message))});\
addEventListener('load',function(){var d=document.documentElement,w=window.innerWidth,n=0,z=0,o='';\
document.querySelectorAll('svg').forEach(function(s){var r=s.getBoundingClientRect();n++;if(!(r.width>0&&r.height>0))z++;});\
var f=d.scrollWidth>w;if(f)document.querySelectorAll('body *').forEach(function(e){if(!o&&e.getBoundingClientRect().right>w+0.5)o=e.tagName+'.'+(e.getAttribute('class')||'');});\
d.setAttribute('data-overflow',String(f));d.setAttribute('data-overflow-el',o);\
var c=0,ce='';document.querySelectorAll('body *').forEach(function(e){if(e.scrollWidth>e.clientWidth+1&&getComputedStyle(e).overflowX!='visible'){c++;if(!ce)ce=e.tagName+'.'+(e.getAttribute('class')||'');}});\
d.setAttribute('data-clipped',String(c));d.setAttribute('data-clipped-el',ce);\
d.setAttribute('data-charts',String(n));d.setAttribute('data-zero-charts',String(z));\
d.setAttribute('data-height',String(Math.ceil(d.scrollHeight)));});";

/// Rendering failed (a template bug, never bad data).
#[derive(Debug, thiserror::Error)]
#[error("rendering {template}: {source:#}")]
pub struct RenderError {
    /// The template.
    pub template: &'static str,
    /// What went wrong.
    #[source]
    pub source: minijinja::Error,
}

static ENV: LazyLock<Result<Environment<'static>, minijinja::Error>> = LazyLock::new(|| {
    // `Environment::new` is deprecated without minijinja's `serde` feature (the
    // workspace enables builtins, macros and multi_template only); rendering serde
    // values works the same in 2.x. Enabling `serde` there removes this allow.
    #[allow(deprecated)]
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.add_template("base.html", include_str!("../templates/base.html"))?;
    env.add_template("charts.html", include_str!("../templates/charts.html"))?;
    env.add_template("student.html", include_str!("../templates/student.html"))?;
    env.add_template("cohort.html", include_str!("../templates/cohort.html"))?;
    Ok(env)
});

static CSP_SCRIPT: LazyLock<String> =
    LazyLock::new(|| format!("sha256-{}", base64(&Sha256::digest(HOOK_SCRIPT.as_bytes()))));

/// Standard base64 with padding (RFC 4648 §4), for the CSP hash.
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * k)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn render(template: &'static str, t: &Labels, r: minijinja::Value) -> Result<String, RenderError> {
    let err = |source| RenderError { template, source };
    let env = ENV.as_ref().map_err(|e| {
        err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("loading the templates: {e:#}"),
        ))
    })?;
    env.get_template(template)
        .and_then(|tpl| {
            tpl.render(context! {
                t => minijinja::Value::from_serialize(t),
                r => r,
                hook => HOOK_SCRIPT,
                csp_script => CSP_SCRIPT.as_str(),
            })
        })
        .map_err(err)
}

/// The HTML of a student's report.
pub fn student_html(t: &Labels, view: &StudentView) -> Result<String, RenderError> {
    render("student.html", t, minijinja::Value::from_serialize(view))
}

/// The HTML of the cohort report.
pub fn cohort_html(t: &Labels, view: &CohortView) -> Result<String, RenderError> {
    render("cohort.html", t, minijinja::Value::from_serialize(view))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{
        Attempted, COHORT_KPIS, DistStats, FitRow, ForecastPoint, ItemRow, KpiRow, THETA_BINS,
        TopicTheta, WeekData,
    };
    use crate::labels::{EN, KO};
    use crate::view::{RunInfo, cohort_view, student_view};
    use chrono::{Days, NaiveDate};

    const EVIL: &str = "<script>alert('x')</script>\"&";

    /// A week with one student whose id, topic, subject and segment are hostile.
    fn week() -> WeekData {
        let week = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap_or_default();
        let mut d = WeekData {
            week,
            as_of: week + Days::new(3),
            history_weeks: (0..9).map(|k| week - Days::new(7 * (8 - k))).collect(),
            ..Default::default()
        };
        d.calibration = Some(FitRow {
            run_date: "2026-03-05".into(),
            bank: "all".into(),
            run_id: format!("calibrate-{EVIL}"),
            model: "2pl".into(),
            n_students: 2,
            n_items: 1,
            n_responses: 10,
            n_anchors: 1,
            loglik: Some(-5.0),
            aic: None,
            bic: None,
            iterations: 12,
            converged: true,
            linking_method: "stocking-lord".into(),
            linking_a: Some(1.1),
            linking_b: Some(-0.2),
            n_anchors_used: 1,
        });
        d.fit_history = d.calibration.iter().cloned().collect();
        d.items.push(ItemRow {
            item_id: EVIL.into(),
            a: Some(1.2),
            b: Some(0.3),
            c: Some(0.0),
            excluded_reason: None,
        });
        d.abilities.insert(EVIL.into(), (0.4, 0.3, 10));
        d.abilities.insert("s2".into(), (-0.4, 0.3, 10));
        d.theta_ranks.insert(EVIL.into(), (1, 2));
        d.theta_ranks.insert("s2".into(), (0, 1));
        d.cohort.theta = DistStats::of_values(&[-0.4, 0.4], THETA_BINS);
        d.cohort.students_active = 1;
        d.cohort.segments.insert(EVIL.into(), 1);
        for (k, bins) in COHORT_KPIS {
            let v: Vec<f64> = match k {
                "i_t" => vec![0.2],
                "a_t" => vec![0.4],
                _ => Vec::new(),
            };
            d.cohort
                .kpis
                .insert(k.into(), DistStats::of_values(&v, bins));
        }
        d.week_kpis.insert(
            EVIL.into(),
            KpiRow {
                i_t: Some(0.2),
                a_t: Some(0.4),
                method: Some("accuracy_delta".into()),
                n_responses: 5,
                ..Default::default()
            },
        );
        d.weekly_theta.insert(
            EVIL.into(),
            vec![(week - Days::new(7), 0.1, 0.4), (week, 0.4, 0.3)],
        );
        d.topic_theta.insert(
            EVIL.into(),
            vec![TopicTheta {
                topic_id: EVIL.into(),
                theta: 0.1,
                se: 0.5,
                n_responses: 4,
            }],
        );
        d.segments.insert(EVIL.into(), EVIL.into());
        d.attempts.insert(
            EVIL.into(),
            vec![Attempted {
                question_id: EVIL.into(),
                subject_id: Some(EVIL.into()),
                correct: true,
            }],
        );
        d.forecasts.insert(
            format!("{EVIL}:mean_theta"),
            (1..=3)
                .map(|k| ForecastPoint {
                    day: week + Days::new(3 + k),
                    yhat: 0.1,
                    lo: 0.0,
                    hi: 0.2,
                })
                .collect(),
        );
        d
    }

    fn run() -> RunInfo {
        RunInfo {
            run_id: format!("reports-{EVIL}"),
            generated_at: "2026-03-06 03:00 UTC".into(),
        }
    }

    #[test]
    fn hostile_text_is_escaped_everywhere_in_both_languages() {
        let d = week();
        for (t, lang) in [(&EN, "en"), (&KO, "ko")] {
            let html = student_html(t, &student_view(t, lang, &d, &run(), EVIL)).unwrap();
            let cohort = cohort_html(t, &cohort_view(t, lang, &d, &run())).unwrap();
            for h in [&html, &cohort] {
                assert_eq!(h.matches("<script").count(), 1, "only the hook");
                assert!(!h.contains("alert('x')"));
                assert!(!h.contains(EVIL));
                assert!(h.contains(&format!("lang=\"{lang}\"")));
            }
            let escaped = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;&#x2f;script&gt;&quot;&amp;";
            // id, topic row, topic bullet title, segment, subject, run ids.
            assert!(html.matches(escaped).count() >= 6, "{lang}");
            assert!(cohort.contains(escaped), "{lang}: segment and run id");
        }
        let ko = student_html(&KO, &student_view(&KO, "ko", &d, &run(), EVIL)).unwrap();
        assert!(ko.contains("주간 학습 리포트") && ko.contains("정답률 기준"));
    }

    #[test]
    fn a_student_without_any_data_still_renders() {
        let d = WeekData::default();
        let html = student_html(&EN, &student_view(&EN, "en", &d, &run(), "nobody")).unwrap();
        for text in [
            EN.no_theta,
            EN.kpis_none,
            EN.topics_empty,
            EN.segment_none,
            EN.outlook_none,
        ] {
            assert!(html.contains(&text.replace('\'', "&#x27;")), "{text}");
        }
        let cohort = cohort_html(&EN, &cohort_view(&EN, "en", &d, &run())).unwrap();
        assert!(cohort.contains(EN.forecasts_none));
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), enc);
        }
        assert!(CSP_SCRIPT.starts_with("sha256-") && CSP_SCRIPT.len() == 7 + 44);
    }
}
