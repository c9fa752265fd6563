//! Wall time of a stage's phases (read, prepare, fit, standard errors, scoring, write,
//! …), in milliseconds, for stage summaries, `fit.json` and `make bench`: where the time
//! of a run goes, without a profiler.
//!
//! A [`Phases`] is started with the work; each [`Phases::mark`] adds the time since the
//! previous mark to a named phase (a phase marked twice accumulates). Serialised as a
//! JSON object `{"read": 12.3, "fit": 80.1, …}` in the order the phases first occurred.
//! Informational only: nothing computed depends on it.

use std::time::Instant;

use serde::ser::{Serialize, SerializeMap, Serializer};

/// Accumulated wall time per named phase (milliseconds, monotonic clock).
#[derive(Debug, Clone)]
pub struct Phases {
    ms: Vec<(&'static str, f64)>,
    last: Instant,
}

impl Default for Phases {
    fn default() -> Self {
        Self::start()
    }
}

impl Phases {
    /// Starts the clock of the first phase now.
    pub fn start() -> Self {
        Self {
            ms: Vec::new(),
            last: Instant::now(),
        }
    }

    /// Adds the time since the previous mark (or the start) to `phase`.
    pub fn mark(&mut self, phase: &'static str) {
        let now = Instant::now();
        let ms = now.duration_since(self.last).as_secs_f64() * 1e3;
        self.last = now;
        self.add(phase, ms);
    }

    /// Splits the time since the previous mark into `parts` measured inside it (e.g. the
    /// engine's own fit / standard-error / scoring times); what the parts do not account
    /// for goes to `rest`.
    pub fn mark_parts(&mut self, parts: &[(&'static str, f64)], rest: &'static str) {
        let now = Instant::now();
        let total = now.duration_since(self.last).as_secs_f64() * 1e3;
        self.last = now;
        let mut inside = 0.0;
        for &(phase, ms) in parts {
            self.add(phase, ms);
            inside += ms;
        }
        self.add(rest, (total - inside).max(0.0));
    }

    /// Adds `ms` to `phase` without touching the clock.
    pub fn add(&mut self, phase: &'static str, ms: f64) {
        match self.ms.iter_mut().find(|(p, _)| *p == phase) {
            Some((_, t)) => *t += ms,
            None => self.ms.push((phase, ms)),
        }
    }

    /// Milliseconds spent in `phase` so far (0 if never marked).
    pub fn get(&self, phase: &str) -> f64 {
        self.ms
            .iter()
            .find(|(p, _)| *p == phase)
            .map_or(0.0, |(_, t)| *t)
    }

    /// The phases and their milliseconds, in first-occurrence order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, f64)> + '_ {
        self.ms.iter().copied()
    }

    /// Sum over all phases (ms).
    pub fn total_ms(&self) -> f64 {
        self.ms.iter().map(|(_, t)| t).sum()
    }
}

impl Serialize for Phases {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.ms.len()))?;
        for (phase, ms) in &self.ms {
            // 0.1 ms resolution: a summary, not a profile
            map.serialize_entry(phase, &((ms * 10.0).round() / 10.0))?;
        }
        map.end()
    }
}

impl std::fmt::Display for Phases {
    /// `read 12.3 ms, fit 80.1 ms, …` for logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (phase, ms)) in self.ms.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{phase} {ms:.1} ms")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_accumulate_in_first_occurrence_order() {
        let mut p = Phases::start();
        p.add("read", 2.0);
        p.add("fit", 5.0);
        p.add("read", 1.25);
        let names: Vec<_> = p.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["read", "fit"]);
        assert_eq!(p.get("read"), 3.25);
        assert_eq!(p.total_ms(), 8.25);
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"read":3.3,"fit":5.0}"#
        );
    }

    #[test]
    fn parts_split_the_interval_and_the_rest_is_kept() {
        let mut p = Phases::start();
        std::thread::sleep(std::time::Duration::from_millis(3));
        p.mark_parts(&[("fit", 1.0)], "prepare");
        assert_eq!(p.get("fit"), 1.0);
        // the sleep lasted at least 3 ms, of which 1 ms was claimed by `fit`
        assert!(p.get("prepare") >= 2.0, "{p}");
        p.mark("write");
        assert!(p.get("write") >= 0.0);
        assert_eq!(p.iter().count(), 3);
    }
}
