//! Simulated dichotomous response data from known item parameters.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal, Normal, Uniform};

use crate::irt::{ItemParams, ResponseMatrix};

/// A simulated bank: true item parameters, true abilities and the responses.
#[derive(Debug, Clone)]
pub struct SimulatedBank {
    /// True item parameters.
    pub items: Vec<ItemParams>,
    /// True abilities θ of the students.
    pub thetas: Vec<f64>,
    /// Simulated responses.
    pub responses: ResponseMatrix,
}

/// Draws `n_items` item parameters: a ~ LogNormal(0, 0.3²) (clamped to [0.4, 2.5]),
/// b ~ N(0, 1) (clamped to [-2.8, 2.8]), and c ~ U(0.05, 0.3) when `guessing`.
pub fn draw_items(n_items: usize, guessing: bool, rng: &mut StdRng) -> Vec<ItemParams> {
    let la = LogNormal::new(0.0, 0.3).expect("valid lognormal");
    let nb = Normal::new(0.0, 1.0).expect("valid normal");
    let uc = Uniform::new(0.05, 0.3).expect("valid uniform");
    (0..n_items)
        .map(|_| ItemParams {
            a: Distribution::<f64>::sample(&la, rng).clamp(0.4, 2.5),
            b: Distribution::<f64>::sample(&nb, rng).clamp(-2.8, 2.8),
            c: if guessing { uc.sample(rng) } else { 0.0 },
        })
        .collect()
}

/// Draws `n` abilities from N(`mean`, `sd`²).
pub fn draw_thetas(n: usize, mean: f64, sd: f64, rng: &mut StdRng) -> Vec<f64> {
    let d = Normal::new(mean, sd).expect("valid normal");
    (0..n).map(|_| d.sample(rng)).collect()
}

/// Simulates one response of a student with ability `theta` to `item`.
#[inline]
pub fn draw_response(item: &ItemParams, theta: f64, rng: &mut impl Rng) -> bool {
    rng.random::<f64>() < item.p(theta)
}

/// Every student answers every item (complete design).
pub fn simulate_complete(items: &[ItemParams], thetas: &[f64], seed: u64) -> ResponseMatrix {
    let mut rng = StdRng::seed_from_u64(seed);
    let n_items = items.len();
    let mut row_ptr = Vec::with_capacity(thetas.len() + 1);
    let mut its = Vec::with_capacity(thetas.len() * n_items);
    let mut correct = Vec::with_capacity(thetas.len() * n_items);
    row_ptr.push(0);
    for &t in thetas {
        for (i, it) in items.iter().enumerate() {
            its.push(i as u32);
            correct.push(draw_response(it, t, &mut rng));
        }
        row_ptr.push(its.len());
    }
    ResponseMatrix {
        n_items,
        row_ptr,
        items: its,
        correct,
    }
}

/// Each student answers `per_student` items drawn uniformly without replacement
/// (missing by design, as on the platform).
pub fn simulate_sparse(
    items: &[ItemParams],
    thetas: &[f64],
    per_student: usize,
    seed: u64,
) -> ResponseMatrix {
    let mut rng = StdRng::seed_from_u64(seed);
    let n_items = items.len();
    let k = per_student.min(n_items);
    let mut row_ptr = Vec::with_capacity(thetas.len() + 1);
    let mut its = Vec::with_capacity(thetas.len() * k);
    let mut correct = Vec::with_capacity(thetas.len() * k);
    row_ptr.push(0);
    let mut pool: Vec<u32> = (0..n_items as u32).collect();
    for &t in thetas {
        // partial Fisher–Yates: the first k of `pool` are the chosen items
        for j in 0..k {
            let r = rng.random_range(j..n_items);
            pool.swap(j, r);
        }
        let mut chosen: Vec<u32> = pool[..k].to_vec();
        chosen.sort_unstable();
        for i in chosen {
            its.push(i);
            correct.push(draw_response(&items[i as usize], t, &mut rng));
        }
        row_ptr.push(its.len());
    }
    ResponseMatrix {
        n_items,
        row_ptr,
        items: its,
        correct,
    }
}

/// A complete 2PL/3PL bank: `n_students` N(0,1) abilities × `n_items` drawn items.
pub fn complete_bank(
    n_students: usize,
    n_items: usize,
    guessing: bool,
    seed: u64,
) -> SimulatedBank {
    let mut rng = StdRng::seed_from_u64(seed);
    let items = draw_items(n_items, guessing, &mut rng);
    let thetas = draw_thetas(n_students, 0.0, 1.0, &mut rng);
    let responses = simulate_complete(&items, &thetas, seed.wrapping_add(1));
    SimulatedBank {
        items,
        thetas,
        responses,
    }
}

/// A sparse bank: each of `n_students` answers `per_student` of `n_items`.
pub fn sparse_bank(
    n_students: usize,
    n_items: usize,
    per_student: usize,
    guessing: bool,
    seed: u64,
) -> SimulatedBank {
    let mut rng = StdRng::seed_from_u64(seed);
    let items = draw_items(n_items, guessing, &mut rng);
    let thetas = draw_thetas(n_students, 0.0, 1.0, &mut rng);
    let responses = simulate_sparse(&items, &thetas, per_student, seed.wrapping_add(1));
    SimulatedBank {
        items,
        thetas,
        responses,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_rows_have_k_sorted_unique_items_and_are_deterministic() {
        let b1 = sparse_bank(100, 40, 10, false, 7);
        let b2 = sparse_bank(100, 40, 10, false, 7);
        assert_eq!(b1.responses, b2.responses);
        for s in 0..100 {
            let (its, _) = b1.responses.row(s);
            assert_eq!(its.len(), 10);
            assert!(its.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn complete_bank_accuracy_is_plausible() {
        let b = complete_bank(2000, 20, false, 3);
        let acc = b.responses.correct.iter().filter(|&&y| y).count() as f64
            / b.responses.n_responses() as f64;
        // b ~ N(0,1), θ ~ N(0,1): the marginal P(correct) is near 0.5
        assert!((0.4..0.6).contains(&acc), "accuracy {acc}");
    }
}
