//! Every piece of text the reports show, in one table: one row per label with its
//! English and Korean text side by side.
//!
//! The table is a macro so that a label missing in one language is a compile error, and
//! Rust code and templates read labels by name (`t.kpi_activity` in a template). Text
//! with `{name}` placeholders is filled by [`fill`]. Labels are plain text: the
//! templates escape them like any other value.

use serde::Serialize;

/// Languages of the reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// English (default).
    En,
    /// Korean.
    Ko,
}

impl Lang {
    /// Parses `en` or `ko` (case-insensitive).
    pub fn parse(s: &str) -> Option<Lang> {
        match s.to_ascii_lowercase().as_str() {
            "en" => Some(Lang::En),
            "ko" => Some(Lang::Ko),
            _ => None,
        }
    }

    /// The BCP 47 tag (`<html lang>`).
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ko => "ko",
        }
    }

    /// The labels of this language.
    pub fn labels(self) -> &'static Labels {
        match self {
            Lang::En => &EN,
            Lang::Ko => &KO,
        }
    }
}

macro_rules! labels {
    ($($key:ident: $en:expr, $ko:expr;)*) => {
        /// The text of the reports in one language (see the module docs).
        #[derive(Debug, Clone, Serialize)]
        pub struct Labels {
            $(
                #[doc = concat!("English: \"", $en, "\"")]
                pub $key: &'static str,
            )*
        }
        /// English labels.
        pub const EN: Labels = Labels { $($key: $en,)* };
        /// Korean labels.
        pub const KO: Labels = Labels { $($key: $ko,)* };
        /// Every label as `(name, English, Korean)`, for checks.
        pub const ALL: &[(&str, &str, &str)] = &[$((stringify!($key), $en, $ko),)*];
    };
}

labels! {
    // Page frame.
    product: "irtlake", "irtlake";
    student_report: "Weekly learning report", "주간 학습 리포트";
    cohort_report: "Weekly cohort report", "주간 코호트 리포트";
    student: "Student", "학생";
    week_of: "Week of {week}", "{week} 주";
    as_of: "data up to {day}", "{day}까지의 데이터";
    generated: "Generated {ts} · run {run}", "생성 {ts} · 실행 {run}";
    not_available: "not available", "정보 없음";
    // Why a KPI of the week is missing (under its card).
    missing_i_t: "not available: needs answers this week and the week before", "정보 없음: 이번 주와 지난주 모두 답안이 필요합니다";
    missing_r_t: "not available: no wrong answer this week to recover from", "정보 없음: 이번 주에 틀린 답이 없습니다";
    missing_s: "not available: the churn model has not scored this student", "정보 없음: 이탈 모델이 이 학생을 평가하지 않았습니다";
    missing_p: "not available: no growth forecast for this student this week", "정보 없음: 이번 주 이 학생의 성장 예측이 없습니다";
    no_data: "No data yet.", "아직 데이터가 없습니다.";
    contents: "Contents", "목차";
    // Ability.
    ability: "Ability (θ)", "능력 (θ)";
    theta_now: "Current θ", "현재 θ";
    se: "SE", "표준오차";
    percentile: "Percentile in cohort", "코호트 내 백분위";
    level: "Level", "수준";
    responses: "responses", "응답";
    theta_source: "From the calibration of {day} ({n} responses in the last 60 days). SE is the standard error: the true θ is within ±1 SE about two times in three.",
        "{day} 보정 결과 (최근 60일 응답 {n}개). 표준오차(SE): 실제 θ가 ±1 SE 안에 있을 확률은 약 3분의 2입니다.";
    no_theta: "No θ yet: answer a few more calibrated questions.", "아직 θ가 없습니다. 보정된 문항을 조금 더 풀어 보세요.";
    trend: "θ by week", "주별 θ";
    trend_desc: "Weekly θ (line) with a band of ±1 SE, and the goal (dashed).", "주별 θ(선)와 ±1 SE 범위(띠), 목표(점선).";
    trend_band: "±1 SE", "±1 SE";
    weekly_theta: "weekly θ", "주별 θ";
    goal: "goal", "목표";
    goal_line: "Goal θ {goal} by the week of {week}.", "{week} 주까지 목표 θ {goal}.";
    no_goal: "No goal set this week (the growth model was not run or not published).", "이번 주 목표가 없습니다 (성장 모형이 실행되지 않았거나 발표되지 않음).";
    trend_empty: "Too few answers per week for a weekly θ.", "주별 θ를 계산하기에 주별 응답이 부족합니다.";
    level_0: "Beginning", "입문";
    level_1: "Developing", "발전";
    level_2: "Proficient", "숙달";
    level_3: "Advanced", "우수";
    level_4: "Expert", "탁월";
    level_note: "Levels cut the θ scale at −1.5, −0.5, 0.5 and 1.5 (the anchor scale, where the reference group has mean 0 and SD 1).",
        "수준은 θ 척도를 −1.5, −0.5, 0.5, 1.5에서 나눕니다 (기준 집단이 평균 0, 표준편차 1인 앵커 척도).";
    // KPIs.
    kpis: "This week", "이번 주";
    kpis_none: "No activity this week: the KPIs need at least one answer in the week.", "이번 주 활동이 없습니다. 지표는 주중 응답이 하나 이상 있어야 계산됩니다.";
    kpi_improvement: "Improvement (I)", "향상 (I)";
    kpi_improvement_help: "Change of θ since last week, weighed by how much you practised and how sure the estimate is (−1 to +1).",
        "지난주 대비 θ 변화를 연습량과 추정의 확실성으로 보정한 값 (−1 ~ +1).";
    kpi_method_theta: "from θ", "θ 기준";
    kpi_method_accuracy: "from accuracy (too few calibrated items for θ)", "정답률 기준 (θ를 위한 보정 문항 부족)";
    kpi_activity: "Activity (A)", "활동 (A)";
    kpi_activity_help: "Study sessions this week, out of 5.", "이번 주 학습 세션 수 (5회 기준).";
    kpi_efficiency: "Efficiency (E)", "효율 (E)";
    kpi_efficiency_help: "Accuracy, lowered when you take longer than a typical answer.", "정답률. 평균보다 오래 걸리면 낮아집니다.";
    kpi_recovery: "Recovery (R)", "회복 (R)";
    kpi_recovery_help: "Share of mistakes followed by a right answer next time in the same topic.", "틀린 뒤 같은 주제의 다음 문제를 맞힌 비율.";
    kpi_churn: "Risk of stopping (S)", "이탈 위험 (S)";
    kpi_churn_help: "Chance of going 14 days without practice, within the next 14 days.", "앞으로 14일 안에 14일 동안 학습하지 않을 확률.";
    kpi_goal: "Goal chance (P)", "목표 달성 확률 (P)";
    kpi_goal_help: "Chance of reaching the goal θ by the target week.", "목표 주까지 목표 θ에 도달할 확률.";
    kpi_goal_theta: "from your weekly θ", "주별 θ 기준";
    kpi_goal_accuracy: "from accuracy (fewer than two weeks with θ)", "정답률 기준 (θ가 있는 주가 2주 미만)";
    kpi_weeks: "last {n} weeks", "최근 {n}주";
    // Topics.
    topics: "Topics", "주제별 실력";
    topics_help: "θ per topic, weakest first. The dot is the topic θ, the line ±1 SE, the tick your overall θ.",
        "주제별 θ (약한 주제부터). 점은 주제 θ, 선은 ±1 SE, 눈금은 전체 θ입니다.";
    topic: "Topic", "주제";
    topics_empty: "No topic θ yet (a topic needs 3 answers).", "아직 주제별 θ가 없습니다 (주제당 3문항 필요).";
    weakest: "focus", "보완";
    strongest: "strength", "강점";
    // Difficulty.
    difficulty: "Difficulty of this week's questions", "이번 주 문항 난이도";
    difficulty_desc: "Questions answered this week by difficulty (b), right and wrong, against your θ.", "이번 주 푼 문항의 난이도(b)별 정답·오답 수와 현재 θ.";
    difficulty_help: "A question as hard as your θ is answered right about half the time; easier ones (left) more often.",
        "θ와 같은 난이도의 문항은 약 절반을 맞히고, 더 쉬운 문항(왼쪽)은 더 자주 맞힙니다.";
    difficulty_uncal: "{n} question(s) without a calibrated difficulty are not shown.", "보정된 난이도가 없는 문항 {n}개는 표시되지 않습니다.";
    difficulty_empty: "No calibrated questions answered this week.", "이번 주 푼 보정 문항이 없습니다.";
    right: "right", "정답";
    wrong: "wrong", "오답";
    questions: "questions", "문항";
    your_theta: "your θ", "내 θ";
    // Segment.
    segment: "Learning pattern", "학습 패턴";
    segment_none: "Not enough history for a learning pattern yet.", "학습 패턴을 정하기에 아직 기록이 부족합니다.";
    seg_short_frequent: "Short and frequent", "짧고 잦은 학습";
    seg_short_frequent_help: "Practises often: under 3 days between sessions and more than 10 sessions.", "자주 학습합니다: 세션 간격 3일 미만, 세션 10회 초과.";
    seg_long_rare: "Long gaps", "긴 공백";
    seg_long_rare_help: "More than a week between sessions and fewer than 5 sessions. Short, regular practice helps most.", "세션 간격이 일주일을 넘고 세션이 5회 미만입니다. 짧고 규칙적인 학습이 가장 도움이 됩니다.";
    seg_hint_heavy: "Hint-heavy", "힌트 의존";
    seg_hint_heavy_help: "More than 2 hints per question. Try a question first, then use a hint.", "문항당 힌트 2개 초과. 먼저 풀어 본 뒤 힌트를 사용해 보세요.";
    seg_improving: "Improving", "향상 중";
    seg_improving_help: "Weekly improvement above 0.3 on average: keep going.", "주간 향상 지수 평균 0.3 초과: 계속 이어가세요.";
    seg_struggling: "Struggling", "어려움";
    seg_struggling_help: "Low efficiency (under 0.4) with many hints (over 1.5 per question). Easier questions first may help.", "효율이 낮고(0.4 미만) 힌트가 많습니다(문항당 1.5개 초과). 쉬운 문항부터 풀면 도움이 됩니다.";
    seg_efficient: "Efficient", "효율적";
    seg_efficient_help: "High efficiency (over 0.7) with few hints (under 0.5 per question).", "효율이 높고(0.7 초과) 힌트가 적습니다(문항당 0.5개 미만).";
    seg_steady: "Steady", "꾸준함";
    seg_steady_help: "No single pattern stands out: close to a typical learner.", "두드러진 패턴이 없습니다: 일반적인 학습자와 비슷합니다.";
    seg_other_help: "A segment of the latest clustering.", "최근 군집 분석의 세그먼트입니다.";
    // Forecast.
    outlook: "Subject outlook", "과목 전망";
    outlook_desc: "Cohort mean θ in the subject by day, the 28-day forecast with its 80% interval, and your θ.", "과목의 일별 코호트 평균 θ, 28일 예측과 80% 구간, 내 θ.";
    outlook_line: "In {subject} (your main subject this week) the cohort's mean θ is {now}; the forecast for {day} is {yhat} (80%: {lo} to {hi}).",
        "{subject} (이번 주 주요 과목)의 코호트 평균 θ는 {now}이며, {day} 예측은 {yhat} (80%: {lo} ~ {hi})입니다.";
    outlook_active: "Active students per day in {subject}: forecast {yhat} on {day}.", "{subject} 일별 활동 학생 수: {day} 예측 {yhat}명.";
    outlook_none: "No forecast for your subject this week.", "이번 주 과목 예측이 없습니다.";
    history: "history", "실적";
    forecast: "forecast", "예측";
    interval80: "80% interval", "80% 구간";
    anomaly: "anomaly", "이상치";
    cohort_mean: "cohort mean", "코호트 평균";
    // Linking.
    linking: "Linking / equating", "척도 연계 / 동등화";
    linking_help: "θ and difficulties are put on the anchor scale by θ* = Aθ + B, so weeks and calibrations compare.", "θ와 난이도는 θ* = Aθ + B로 앵커 척도에 연계되어 주와 보정 간 비교가 가능합니다.";
    calibration_run: "Calibration run", "보정 실행";
    calibration_date: "Calibration date", "보정 날짜";
    model: "Model", "모형";
    linking_method: "Linking method", "연계 방법";
    linking_a: "A (scale)", "A (척도)";
    linking_b: "B (location)", "B (위치)";
    anchors_used: "Anchors used", "사용된 앵커";
    converged: "Converged", "수렴";
    yes: "yes", "예";
    no: "no", "아니오";
    no_calibration: "No calibration on or before this week.", "이번 주 이전의 보정이 없습니다.";
    // Cohort report.
    overview: "Overview", "개요";
    students_active: "Students active this week", "이번 주 활동 학생";
    students_with_theta: "Students with θ", "θ가 있는 학생";
    mean_theta: "Mean θ", "평균 θ";
    calibration_health: "Calibration health", "보정 상태";
    calibration_help: "Latest calibration of each bank. Excluded items could not be estimated (all right, all wrong or too few answers).",
        "은행별 최근 보정. 제외 문항은 추정할 수 없는 문항입니다 (전부 정답, 전부 오답 또는 응답 부족).";
    bank: "Bank", "문항 은행";
    students: "Students", "학생";
    items: "Items", "문항";
    excluded: "Excluded", "제외";
    iterations: "Iterations", "반복";
    loglik: "Log-likelihood", "로그우도";
    exclusions: "Exclusions", "제외 사유";
    no_exclusions: "No item excluded.", "제외된 문항이 없습니다.";
    misfit: "Misfitting items", "부적합 문항";
    misfit_help: "Items of the latest calibrations whose answers depart from the model: S-X² p below 0.01 (Orlando & Thissen), or an infit or outfit mean square outside 0.7–1.3.",
        "최근 보정에서 응답이 모형과 어긋나는 문항: S-X² p < 0.01 (Orlando & Thissen) 또는 infit/outfit 평균제곱이 0.7–1.3 밖.";
    no_misfit: "No misfitting item.", "부적합 문항이 없습니다.";
    misfit_sx2: "S-X² {v} on {df} df (p {p})", "S-X² {v}, 자유도 {df} (p {p})";
    misfit_noisy: "{stat} {v}: answers noisier than the model expects", "{stat} {v}: 모형의 예상보다 응답이 불규칙함";
    misfit_steep: "{stat} {v}: answers more predictable than the model expects", "{stat} {v}: 모형의 예상보다 응답이 결정적임";
    anchor_drift: "Anchor drift", "앵커 문항 변동";
    anchor_drift_help: "Anchors whose estimate, moved to the anchor scale, no longer matches their known difficulty (robust z of Huynh & Meyer, 2010, beyond 5 standard errors), or whose difficulty on the calibration's most recent answers moved away from its earlier answers (Lord's Wald test, beyond 4 standard errors): flagged anchors are left out of the linking. Δb by calibration, * where flagged, with the recent shift where the second test flagged it.",
        "앵커 척도로 옮긴 추정치가 알려진 난이도와 더 이상 맞지 않거나 (Huynh & Meyer, 2010의 로버스트 z, 표준오차 5배 초과), 보정의 최근 응답에서 난이도가 이전 응답과 달라진 앵커 문항 (Lord의 Wald 검정, 표준오차 4배 초과): 감지된 앵커는 연결에서 제외됩니다. 보정별 Δb, * 표시는 감지, 두 번째 검정이 감지한 경우 최근 변화를 함께 표시.";
    recent: "recent", "최근";
    no_anchor_drift: "No anchor flagged.", "감지된 앵커 문항이 없습니다.";
    anchor: "Anchor", "앵커";
    first_flagged: "First flagged", "처음 감지";
    flagged_runs: "Flagged runs", "감지 횟수";
    drift_history: "Δb by calibration", "보정별 Δb";
    fit_history: "Item fit by run (bank all)", "실행별 문항 적합 (전체 은행)";
    fit_history_desc: "Misfitting items and anchors flagged by the drift screen in each calibration of the whole bank.",
        "전체 은행 보정별 부적합 문항 수와 변동 감지 앵커 수.";
    loglik_trend: "Log-likelihood per response by run (bank all)", "실행별 응답당 로그우도 (전체 은행)";
    loglik_trend_desc: "Mean log-likelihood per response of each calibration of the whole bank; a drop flags a worse fit.",
        "전체 은행 보정별 응답당 평균 로그우도. 하락은 적합도가 나빠졌다는 신호입니다.";
    run_date: "Run date", "실행 날짜";
    test_information: "Test information (bank all)", "검사 정보 (전체 은행)";
    test_information_desc: "Fisher information of the calibrated bank by θ; SE(θ) ≈ 1/√I.", "θ별 보정 문항 은행의 피셔 정보. SE(θ) ≈ 1/√I.";
    information: "information", "정보";
    info_peak: "Most precise at θ = {theta} (I = {info}, SE ≈ {se}).", "θ = {theta}에서 가장 정밀합니다 (I = {info}, SE ≈ {se}).";
    linking_over_time: "Linking constants over time", "시간에 따른 연계 상수";
    linking_over_time_desc: "A and B of each calibration of the whole bank.", "전체 은행 각 보정의 A와 B.";
    kpi_distributions: "KPI distributions this week", "이번 주 지표 분포";
    kpi_distributions_help: "Students per value band; n = students with a value.", "값 구간별 학생 수. n = 값이 있는 학생 수.";
    theta_distribution: "θ of the cohort", "코호트 θ 분포";
    mean: "mean", "평균";
    median: "median", "중앙값";
    churn_km: "Retention (Kaplan–Meier)", "유지율 (카플란–마이어)";
    churn_km_desc: "Share of students still active by days since their first day; a student who stops for 14 days counts as churned.",
        "첫날 이후 경과 일수별 활동 유지 비율. 14일간 학습하지 않으면 이탈로 봅니다.";
    days: "days", "일";
    retained: "still active", "유지";
    km_summary: "{n} students, {events} churned; concordance of the risk model {c}.", "학생 {n}명, 이탈 {events}명; 위험 모형의 일치도 {c}.";
    km_median: "Median time to churn: {d} days.", "이탈까지 중앙 시간: {d}일.";
    km_none: "No churn model this week.", "이번 주 이탈 모형이 없습니다.";
    km_axis: "days since first seen in the window", "기간 내 첫 활동 이후 일수";
    km_day0: "{n} students ({share}) never came back after their first day: the curve drops at day 0.", "학생 {n}명({share})이 첫날 이후 돌아오지 않았습니다: 0일에서 곡선이 떨어집니다.";
    segment_sizes: "Segments", "세그먼트";
    segment_sizes_desc: "Students per learning pattern in the latest segmentation.", "최근 세그먼트 분석의 학습 패턴별 학생 수.";
    forecasts: "Forecasts and anomalies", "예측과 이상치";
    forecasts_help: "Daily cohort series per subject, 28 days ahead with 80% intervals; red points fell outside the 99% interval.",
        "과목별 일별 코호트 시계열, 80% 구간의 28일 예측. 빨간 점은 99% 구간을 벗어난 값입니다.";
    forecasts_none: "No forecasts this week.", "이번 주 예측이 없습니다.";
    series_active_students: "active students", "활동 학생 수";
    series_mean_theta: "mean θ", "평균 θ";
    theta_axis: "θ (logits)", "θ (로짓)";
    series_mean_i_t: "mean improvement (I)", "평균 향상 (I)";
    anomalies_n: "{n} anomalies", "이상치 {n}개";
    anomalies_1: "1 anomaly", "이상치 1개";
    print_note: "Printed reports keep the charts; open the file in a browser for tooltips.", "인쇄해도 차트가 유지됩니다. 도움말은 브라우저에서 파일을 열어 확인하세요.";
}

/// Replaces each `{name}` in `template` with its value.
pub fn fill(template: &str, args: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (name, value) in args {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

/// The display name and meaning of a segment label (`segments` stage).
pub fn segment_text(labels: &Labels, label: &str) -> (String, &'static str) {
    let (name, help) = match label {
        "short_frequent" => (labels.seg_short_frequent, labels.seg_short_frequent_help),
        "long_rare" => (labels.seg_long_rare, labels.seg_long_rare_help),
        "hint_heavy" => (labels.seg_hint_heavy, labels.seg_hint_heavy_help),
        "improving" => (labels.seg_improving, labels.seg_improving_help),
        "struggling" => (labels.seg_struggling, labels.seg_struggling_help),
        "efficient" => (labels.seg_efficient, labels.seg_efficient_help),
        "steady" => (labels.seg_steady, labels.seg_steady_help),
        _ => return (label.to_string(), labels.seg_other_help),
    };
    (name.to_string(), help)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_exists_in_both_languages_with_the_same_placeholders() {
        let placeholders = |s: &str| {
            let mut v: Vec<String> = s
                .split('{')
                .skip(1)
                .filter_map(|p| p.split_once('}').map(|(n, _)| n.to_string()))
                .collect();
            v.sort();
            v
        };
        for (key, en, ko) in ALL {
            assert!(!en.trim().is_empty() && !ko.trim().is_empty(), "{key}");
            assert_eq!(placeholders(en), placeholders(ko), "{key}");
        }
        assert_eq!(Lang::parse("KO"), Some(Lang::Ko));
        assert_eq!(Lang::parse("fr"), None);
        assert_eq!(
            fill(EN.week_of, &[("week", "2026-03-02")]),
            "Week of 2026-03-02"
        );
        assert_eq!(segment_text(&KO, "efficient").0, "효율적");
        assert_eq!(segment_text(&EN, "<x>").0, "<x>");
    }
}
