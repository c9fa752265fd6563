//! LSAT Section 7: 1000 examinees × 5 dichotomous items, as the 32 response patterns
//! with their frequencies published by Bock & Lieberman (1970), "Fitting a response
//! model for n dichotomously scored items", *Psychometrika* 35, 179–197 (Table 1), and
//! shipped as the `LSAT7` data set of R's `mirt` and `ltm`. Small enough to be a figure,
//! so the LSAT7 checks run on every clone; the values fitted by mirt stay in the
//! reference folder (`tests/reference.rs`).

#![allow(dead_code)]

use models::irt::ResponseMatrix;

/// (responses to Item.1 … Item.5, number of examinees with that pattern), in the
/// published order; the frequencies add up to 1000.
pub const LSAT7_PATTERNS: [([u8; 5], u32); 32] = [
    ([0, 0, 0, 0, 0], 12),
    ([0, 0, 0, 0, 1], 19),
    ([0, 0, 0, 1, 0], 1),
    ([0, 0, 0, 1, 1], 7),
    ([0, 0, 1, 0, 0], 3),
    ([0, 0, 1, 0, 1], 19),
    ([0, 0, 1, 1, 0], 3),
    ([0, 0, 1, 1, 1], 17),
    ([0, 1, 0, 0, 0], 10),
    ([0, 1, 0, 0, 1], 5),
    ([0, 1, 0, 1, 0], 3),
    ([0, 1, 0, 1, 1], 7),
    ([0, 1, 1, 0, 0], 7),
    ([0, 1, 1, 0, 1], 23),
    ([0, 1, 1, 1, 0], 8),
    ([0, 1, 1, 1, 1], 28),
    ([1, 0, 0, 0, 0], 7),
    ([1, 0, 0, 0, 1], 39),
    ([1, 0, 0, 1, 0], 11),
    ([1, 0, 0, 1, 1], 34),
    ([1, 0, 1, 0, 0], 14),
    ([1, 0, 1, 0, 1], 51),
    ([1, 0, 1, 1, 0], 15),
    ([1, 0, 1, 1, 1], 90),
    ([1, 1, 0, 0, 0], 6),
    ([1, 1, 0, 0, 1], 25),
    ([1, 1, 0, 1, 0], 7),
    ([1, 1, 0, 1, 1], 35),
    ([1, 1, 1, 0, 0], 18),
    ([1, 1, 1, 0, 1], 136),
    ([1, 1, 1, 1, 0], 32),
    ([1, 1, 1, 1, 1], 308),
];

/// LSAT7 as a response matrix: items in the order Item.1 … Item.5, examinees pattern
/// by pattern in the published order (all examinees with one pattern are adjacent).
pub fn lsat7_matrix() -> ResponseMatrix {
    let mut triplets = Vec::with_capacity(5000);
    let mut student = 0u32;
    for (pattern, count) in LSAT7_PATTERNS {
        for _ in 0..count {
            for (item, &y) in pattern.iter().enumerate() {
                triplets.push((student, item as u32, y == 1));
            }
            student += 1;
        }
    }
    ResponseMatrix::from_triplets(student as usize, 5, &triplets)
        .expect("the LSAT7 table forms a valid response matrix")
}

/// The response pattern of every examinee of `lsat7_matrix()`, in its student order.
pub fn lsat7_student_patterns() -> Vec<[u8; 5]> {
    LSAT7_PATTERNS
        .iter()
        .flat_map(|&(p, n)| std::iter::repeat_n(p, n as usize))
        .collect()
}
