//! Dense `u32` ids for string ids (students, questions) read row by row: each distinct id
//! is stored once, rows carry its index; [`Interner::sorted`] renumbers the indices in
//! sorted id order so that layouts do not depend on the order rows arrived in.
//! [`AttemptIds`] and [`FirstAttempts`] implement the lake's rule for a student's first
//! attempt at a question (earliest `completed_at`, then smallest `attempt_id`) over
//! unsorted rows.

use rustc_hash::FxHashMap;

use crate::LakeError;

/// Bytes reserved per attempt id by [`FirstAttempts::with_capacity`] (the demo platform's
/// ids are 12 characters; a longer one only makes the arena grow once more).
const ID_BYTES: usize = 12;

/// Distinct string ids and their first-seen index.
#[derive(Debug, Default)]
pub struct Interner {
    of: FxHashMap<Box<str>, u32>,
}

impl Interner {
    /// The index of `id`, a new one (the number of ids seen so far) the first time.
    pub fn intern(&mut self, id: &str) -> u32 {
        if let Some(&i) = self.of.get(id) {
            return i;
        }
        let next = self.of.len() as u32;
        self.of.insert(id.into(), next);
        next
    }

    /// Number of distinct ids.
    pub fn len(&self) -> usize {
        self.of.len()
    }

    /// Whether no id was interned.
    pub fn is_empty(&self) -> bool {
        self.of.is_empty()
    }

    /// The ids in sorted order and, for each first-seen index, its index in that order.
    pub fn sorted(self) -> (Vec<String>, Vec<u32>) {
        let mut ids: Vec<(Box<str>, u32)> = self.of.into_iter().collect();
        ids.sort_unstable();
        let mut rank = vec![0u32; ids.len()];
        for (r, (_, first)) in ids.iter().enumerate() {
            rank[*first as usize] = r as u32;
        }
        (ids.into_iter().map(|(id, _)| id.into()).collect(), rank)
    }
}

/// Attempt ids kept one after the other in one string (no allocation per attempt),
/// each named by its (start, length): what breaks ties of `completed_at`.
#[derive(Debug, Default)]
pub struct AttemptIds {
    ids: String,
}

impl AttemptIds {
    /// Room for `bytes` bytes of ids.
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            ids: String::with_capacity(bytes),
        }
    }

    /// Keeps `id`; its (start, length). Errors past 4 GiB of ids in one read.
    pub fn push(&mut self, id: &str) -> Result<(u32, u32), LakeError> {
        let start = u32::try_from(self.ids.len()).map_err(|_| {
            LakeError::InvalidInput(
                "more than 4 GiB of attempt ids in one read: use more shards".into(),
            )
        })?;
        self.ids.push_str(id);
        Ok((start, id.len() as u32))
    }

    /// The id kept at `at` (a value [`AttemptIds::push`] returned).
    pub fn get(&self, at: (u32, u32)) -> &str {
        &self.ids[at.0 as usize..(at.0 + at.1) as usize]
    }
}

/// One first attempt kept by [`FirstAttempts`]: the student (an index), the question
/// (the caller's index), what the caller keeps of it, and its `completed_at` (µs).
#[derive(Debug, Clone)]
pub struct FirstAttempt<P> {
    /// Student index: first-seen while offering, sorted-id rank after
    /// [`FirstAttempts::into_sorted`].
    pub student: u32,
    /// Question index, as offered.
    pub question: u32,
    /// What the caller keeps of the attempt (its outcome, its topic, ...).
    pub payload: P,
    /// `completed_at` of the attempt (µs, UTC).
    pub completed_at: i64,
    id: (u32, u32),
}

/// The first attempt of each (student, question) among attempts offered in any order:
/// earliest `completed_at`, then smallest attempt id (then the one offered first).
/// Student ids are interned and the attempt ids live in one [`AttemptIds`] arena; every
/// offered attempt is kept in one vector, sorted and reduced to the firsts at the end.
/// Sorting once holds one 32-byte record per attempt and touches memory in order, where a
/// (student, question) hash map held the records *and* a table as large, written at
/// random (its fresh pages were most of a calibration's page faults).
#[derive(Debug, Default)]
pub struct FirstAttempts<P> {
    students: Interner,
    offered: Vec<FirstAttempt<P>>,
    ids: AttemptIds,
}

impl<P> FirstAttempts<P> {
    /// Room for `attempts` offers (a count the caller knows, e.g. from a prior
    /// aggregation), so the vectors are allocated once.
    pub fn with_capacity(attempts: usize) -> Self {
        Self {
            students: Interner::default(),
            offered: Vec::with_capacity(attempts),
            ids: AttemptIds::with_capacity(attempts.saturating_mul(ID_BYTES)),
        }
    }

    /// Offers one attempt; [`FirstAttempts::into_sorted`] keeps it if it is the first of
    /// its (student, question).
    pub fn offer(
        &mut self,
        student: &str,
        question: u32,
        payload: P,
        completed_at: i64,
        id: &str,
    ) -> Result<(), LakeError> {
        let student = self.students.intern(student);
        let id = self.ids.push(id)?;
        self.offered.push(FirstAttempt {
            student,
            question,
            payload,
            completed_at,
            id,
        });
        Ok(())
    }

    /// The sorted student ids and the first attempts, their student indices renumbered
    /// in sorted id order, sorted by (student, question): a layout independent of the
    /// order the attempts came in.
    pub fn into_sorted(self) -> (Vec<String>, Vec<FirstAttempt<P>>) {
        let (students, rank) = self.students.sorted();
        let (mut kept, ids) = (self.offered, self.ids);
        for a in &mut kept {
            a.student = rank[a.student as usize];
        }
        // the arena offset `id.0` grows with the offer order: the last key keeps the
        // first offered of attempts equal in everything else
        kept.sort_unstable_by(|x, y| {
            (x.student, x.question, x.completed_at)
                .cmp(&(y.student, y.question, y.completed_at))
                .then_with(|| ids.get(x.id).cmp(ids.get(y.id)))
                .then(x.id.0.cmp(&y.id.0))
        });
        kept.dedup_by(|later, first| {
            later.student == first.student && later.question == first.question
        });
        (students, kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_seen_indices_and_their_sorted_ranks() {
        let mut ix = Interner::default();
        let got: Vec<u32> = ["s3", "s1", "s3", "s2", "s1"]
            .iter()
            .map(|id| ix.intern(id))
            .collect();
        assert_eq!(got, [0, 1, 0, 2, 1]);
        assert_eq!(ix.len(), 3);
        let (ids, rank) = ix.sorted();
        assert_eq!(ids, ["s1", "s2", "s3"]);
        // s3 (first seen 0) is third, s1 first, s2 second
        assert_eq!(rank, [2, 0, 1]);
    }

    #[test]
    fn the_first_attempt_is_the_earliest_then_the_smallest_id() {
        let mut first = FirstAttempts::default();
        for (student, question, payload, at, id) in [
            ("s2", 0, 'a', 5, "x9"),
            ("s1", 0, 'b', 7, "x1"),
            ("s2", 0, 'c', 3, "x8"), // earlier: replaces 'a'
            ("s2", 0, 'd', 3, "x7"), // same time, smaller id: replaces 'c'
            ("s2", 0, 'e', 3, "x7"), // a tie in both: the kept one stays
            ("s2", 1, 'f', 9, "x0"),
        ] {
            first.offer(student, question, payload, at, id).unwrap();
        }
        let (ids, kept) = first.into_sorted();
        assert_eq!(ids, ["s1", "s2"]);
        let got: Vec<(u32, u32, char, i64)> = kept
            .iter()
            .map(|a| (a.student, a.question, a.payload, a.completed_at))
            .collect();
        assert_eq!(got, [(0, 0, 'b', 7), (1, 0, 'd', 3), (1, 1, 'f', 9)]);
    }
}
