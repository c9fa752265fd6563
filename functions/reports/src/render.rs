//! HTML rendering with `minijinja` templates (`templates/*.html`, compiled into the
//! binary).
//!
//! Every template name ends in `.html`, so minijinja escapes every value it prints
//! (`<`, `>`, `&`, quotes, `/`): an id or topic named `<script>…` is shown as text,
//! in HTML and inside the inline SVG alike (the charts' markup, printed with `|safe`,
//! is written by [`crate::svg`] with the same escaping). Undefined values are errors
//! ([`UndefinedBehavior::Strict`]), so a misspelt label cannot render as an empty string.
//!
//! The page makes no request of its own: CSS and SVG are inline, and a
//! Content-Security-Policy (`default-src 'none'; script-src 'none'`) forbids anything
//! else. The page has no script: it reads the same with JavaScript off. (The layout
//! checks of the browser test add their own script to a copy of the page.)

use std::sync::LazyLock;

use minijinja::{Environment, UndefinedBehavior, context};

use crate::labels::Lang;
use crate::view::{CohortView, StudentView};

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
    // workspace enables builtins and multi_template only); rendering serde
    // values works the same in 2.x. Enabling `serde` there removes this allow.
    #[allow(deprecated)]
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.add_template("base.html", include_str!("../templates/base.html"))?;
    env.add_template("student.html", include_str!("../templates/student.html"))?;
    env.add_template("cohort.html", include_str!("../templates/cohort.html"))?;
    Ok(env)
});

/// Each language's labels as a template value, built once: converting the label table
/// (hundreds of strings) for every report was a measurable part of rendering one.
static LABEL_VALUES: LazyLock<[minijinja::Value; 2]> = LazyLock::new(|| {
    [Lang::En, Lang::Ko].map(|lang| minijinja::Value::from_serialize(lang.labels()))
});

fn render(template: &'static str, lang: Lang, r: minijinja::Value) -> Result<String, RenderError> {
    let err = |source| RenderError { template, source };
    let env = ENV.as_ref().map_err(|e| {
        err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("loading the templates: {e:#}"),
        ))
    })?;
    let t = LABEL_VALUES[match lang {
        Lang::En => 0,
        Lang::Ko => 1,
    }]
    .clone();
    env.get_template(template)
        .and_then(|tpl| tpl.render(context! { t => t, r => r }))
        .map_err(err)
}

/// The HTML of a student's report in `lang` (the view built with `lang`'s labels).
pub fn student_html(lang: Lang, view: &StudentView) -> Result<String, RenderError> {
    render("student.html", lang, minijinja::Value::from_serialize(view))
}

/// The HTML of the cohort report in `lang` (the view built with `lang`'s labels).
pub fn cohort_html(lang: Lang, view: &CohortView) -> Result<String, RenderError> {
    render("cohort.html", lang, minijinja::Value::from_serialize(view))
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
        for (l, t, lang) in [(Lang::En, &EN, "en"), (Lang::Ko, &KO, "ko")] {
            let html = student_html(l, &student_view(t, lang, &d, &run(), EVIL)).unwrap();
            let cohort = cohort_html(l, &cohort_view(t, lang, &d, &run())).unwrap();
            for h in [&html, &cohort] {
                assert_eq!(h.matches("<script").count(), 0, "no script");
                assert!(!h.contains("alert('x')"));
                assert!(!h.contains(EVIL));
                assert!(h.contains(&format!("lang=\"{lang}\"")));
            }
            let escaped = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;&#x2f;script&gt;&quot;&amp;";
            // id, topic row, topic bullet title, segment, subject, run ids.
            assert!(html.matches(escaped).count() >= 6, "{lang}");
            assert!(cohort.contains(escaped), "{lang}: segment and run id");
        }
        let ko = student_html(Lang::Ko, &student_view(&KO, "ko", &d, &run(), EVIL)).unwrap();
        assert!(ko.contains("주간 학습 리포트") && ko.contains("정답률 기준"));
    }

    #[test]
    fn a_student_without_any_data_still_renders() {
        let d = WeekData::default();
        let html = student_html(Lang::En, &student_view(&EN, "en", &d, &run(), "nobody")).unwrap();
        for text in [
            EN.no_theta,
            EN.kpis_none,
            EN.topics_empty,
            EN.segment_none,
            EN.outlook_none,
        ] {
            assert!(html.contains(&text.replace('\'', "&#x27;")), "{text}");
        }
        let cohort = cohort_html(Lang::En, &cohort_view(&EN, "en", &d, &run())).unwrap();
        assert!(cohort.contains(EN.forecasts_none));
    }
}
