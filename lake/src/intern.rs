//! Dense `u32` ids for string ids (students, questions) read row by row: each distinct id
//! is stored once, rows carry its index; [`Interner::sorted`] renumbers the indices in
//! sorted id order so that layouts do not depend on the order rows arrived in.

use rustc_hash::FxHashMap;

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
}
