//! The standard normal distribution and sample quantiles, one implementation each for
//! every model: erfc (Cody's rational approximations, relative error about 1e-16), Φ,
//! Φ⁻¹ (Wichura's AS 241, about 1e-16, R's `qnorm`), and the type-7 sample quantile
//! (R's default `quantile`, numpy's default `percentile`).

use std::f64::consts::SQRT_2;

/// Cody's rational approximations (W. J. Cody, "Rational Chebyshev approximations for
/// the error function", *Mathematics of Computation* 23 (1969), 631–638; the
/// coefficients of the SPECFUN routine CALERF, Cody 1990, the algorithm behind R's
/// `pnorm`). erf(x) ≈ x·A(x²)/B(x²) on |x| ≤ 0.46875:
const ERF_A: [f64; 5] = [
    3.161_123_743_870_565_6,
    113.864_154_151_050_16,
    377.485_237_685_302,
    3_209.377_589_138_469_4,
    0.185_777_706_184_603_15,
];
const ERF_B: [f64; 4] = [
    23.601_290_952_344_122,
    244.024_637_934_444_17,
    1_282.616_526_077_372_3,
    2_844.236_833_439_171,
];
/// e^(x²)·erfc(x) ≈ C(x)/D(x) on 0.46875 < x ≤ 4.
const ERFC_C: [f64; 9] = [
    0.564_188_496_988_670_1,
    8.883_149_794_388_377,
    66.119_190_637_141_63,
    298.635_138_197_400_1,
    881.952_221_241_769,
    1_712.047_612_634_070_7,
    2_051.078_377_826_071_6,
    1_230.339_354_797_997_2,
    2.153_115_354_744_038_3e-8,
];
const ERFC_D: [f64; 8] = [
    15.744_926_110_709_835,
    117.693_950_891_312_5,
    537.181_101_862_009_9,
    1_621.389_574_566_690_2,
    3_290.799_235_733_459_7,
    4_362.619_090_143_247,
    3_439.367_674_143_721_6,
    1_230.339_354_803_749_5,
];
/// x·e^(x²)·erfc(x) ≈ 1/√π − P(1/x²)/(x²·Q(1/x²)) for x > 4.
const ERFC_P: [f64; 6] = [
    0.305_326_634_961_232_34,
    0.360_344_899_949_804_4,
    0.125_781_726_111_229_25,
    0.016_083_785_148_742_28,
    6.587_491_615_298_378e-4,
    0.016_315_387_137_302_098,
];
const ERFC_Q: [f64; 5] = [
    2.568_520_192_289_822,
    1.872_952_849_923_460_5,
    0.527_905_102_951_428_4,
    0.060_518_341_312_441_32,
    0.002_335_204_976_268_691_8,
];
/// 1/√π.
const FRAC_1_SQRT_PI: f64 = 0.564_189_583_547_756_3;
/// erfc(x) underflows to 0 in `f64` from this argument on (Cody's XBIG for IEEE double).
const ERFC_ZERO_FROM: f64 = 26.543;

/// Horner evaluation of Cody's numerator and denominator: `num` starts at
/// `top·z`, `den` at `z`, then `(num + a_i)·z`, `(den + b_i)·z` for the leading terms.
fn cody_ratio(top: f64, a: &[f64], b: &[f64], z: f64) -> (f64, f64) {
    let (mut num, mut den) = (top * z, z);
    for (ai, bi) in a.iter().zip(b) {
        num = (num + ai) * z;
        den = (den + bi) * z;
    }
    (num, den)
}

/// e^(−y²) computed as e^(−t²)·e^(−(y−t)(y+t)) with t = y rounded down to a multiple of
/// 1/16, so that the rounding error of y² is not amplified (Cody's CALERF). e^(−t²) comes
/// from [`exp_minus_sixteenths`] (the same expression, evaluated once per t), which halves
/// the exponentials of an erfc; y ≥ 0.
fn exp_minus_square(y: f64) -> f64 {
    let steps = (y * 16.0).trunc();
    let t = steps / 16.0;
    let head = exp_minus_sixteenths()
        .get(steps as usize)
        .copied()
        .unwrap_or_else(|| (-t * t).exp());
    head * (-(y - t) * (y + t)).exp()
}

/// Sixteenths of the range where erfc is not 0: t = k/16 for k in 0 ..= 16 · 26.543.
const SIXTEENTHS: usize = 425;

/// e^(−t²) at t = k/16, k = 0 .. [`SIXTEENTHS`], computed on first use exactly as
/// [`exp_minus_square`] would (k/16 is exact, so the values are bit for bit the same).
fn exp_minus_sixteenths() -> &'static [f64; SIXTEENTHS] {
    static TABLE: std::sync::OnceLock<[f64; SIXTEENTHS]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        std::array::from_fn(|k| {
            let t = k as f64 / 16.0;
            (-t * t).exp()
        })
    })
}

/// The complementary error function erfc(x) = 1 − erf(x) = (2/√π) ∫ₓ^∞ e^(−t²) dt, by
/// Cody's rational Chebyshev approximations (see [`ERF_A`]): near-minimax on
/// |x| ≤ 0.46875 (erf), 0.46875 < |x| ≤ 4 and |x| > 4, relative error about 1e-16
/// (Cody: 18 significant digits before rounding); erfc(−x) = 2 − erfc(x). Constant time
/// (no series or continued fraction to converge), which matters where Φ is evaluated
/// per student and posterior draw. NaN gives NaN; erfc(x) = 0 from x = 26.543 on.
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    let y = x.abs();
    if y <= 0.46875 {
        let z = if y > 1.11e-16 { y * y } else { 0.0 };
        let (num, den) = cody_ratio(ERF_A[4], &ERF_A[..3], &ERF_B[..3], z);
        return 1.0 - x * (num + ERF_A[3]) / (den + ERF_B[3]);
    }
    let tail = if y <= 4.0 {
        let (num, den) = cody_ratio(ERFC_C[8], &ERFC_C[..7], &ERFC_D[..7], y);
        (num + ERFC_C[7]) / (den + ERFC_D[7]) * exp_minus_square(y)
    } else if y < ERFC_ZERO_FROM {
        let z = 1.0 / (y * y);
        let (num, den) = cody_ratio(ERFC_P[5], &ERFC_P[..4], &ERFC_Q[..4], z);
        let r = z * (num + ERFC_P[4]) / (den + ERFC_Q[4]);
        (FRAC_1_SQRT_PI - r) / y * exp_minus_square(y)
    } else {
        0.0
    };
    if x < 0.0 { 2.0 - tail } else { tail }
}

/// The standard normal CDF Φ(x) = erfc(−x/√2)/2 (accurate in both tails).
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / SQRT_2)
}

/// Quantile `q` of ascending `sorted` by linear interpolation between order statistics
/// (numpy's default `percentile`, which Prophet uses).
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    let h = (n - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Standard normal quantile Φ⁻¹(p) for p in (0, 1) (Wichura 1988, algorithm AS 241,
/// about 1e-16 relative accuracy; the algorithm behind R's `qnorm`).
#[allow(clippy::excessive_precision)]
pub fn normal_quantile(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        let r = 0.180625 - q * q;
        return q
            * (((((((r * 2509.0809287301226727 + 33430.575583588128105) * r
                + 67265.770927008700853)
                * r
                + 45921.953931549871457)
                * r
                + 13731.693765509461125)
                * r
                + 1971.5909503065514427)
                * r
                + 133.14166789178437745)
                * r
                + 3.387132872796366608)
            / (((((((r * 5226.495278852545925 + 28729.085735721942674) * r
                + 39307.89580009271061)
                * r
                + 21213.794301586595867)
                * r
                + 5394.1960214247511077)
                * r
                + 687.1870074920579083)
                * r
                + 42.313330701600911252)
                * r
                + 1.0);
    }
    let mut r = if q < 0.0 { p } else { 1.0 - p };
    r = (-r.ln()).sqrt();
    let val = if r <= 5.0 {
        r -= 1.6;
        (((((((r * 7.7454501427834140764e-4 + 0.0227238449892691845833) * r
            + 0.24178072517745061177)
            * r
            + 1.27045825245236838258)
            * r
            + 3.64784832476320460504)
            * r
            + 5.7694972214606914055)
            * r
            + 4.6303378461565452959)
            * r
            + 1.42343711074968357734)
            / (((((((r * 1.05075007164441684324e-9 + 5.475938084995344946e-4) * r
                + 0.0151986665636164571966)
                * r
                + 0.14810397642748007459)
                * r
                + 0.68976733498510000455)
                * r
                + 1.6763848301838038494)
                * r
                + 2.05319162663775882187)
                * r
                + 1.0)
    } else {
        r -= 5.0;
        (((((((r * 2.01033439929228813265e-7 + 2.71155556874348757815e-5) * r
            + 0.0012426609473880784386)
            * r
            + 0.026532189526576123093)
            * r
            + 0.29656057182850489123)
            * r
            + 1.7848265399172913358)
            * r
            + 5.4637849111641143699)
            * r
            + 6.6579046435011037772)
            / (((((((r * 2.04426310338993978564e-15 + 1.4215117583164458887e-7) * r
                + 1.8463183175100546818e-5)
                * r
                + 7.868691311456132591e-4)
                * r
                + 0.0148753612908506148525)
                * r
                + 0.13692988092273580531)
                * r
                + 0.59983220655588793769)
                * r
                + 1.0)
    };
    if q < 0.0 { -val } else { val }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabled_exp_minus_square_is_the_direct_formula_bit_for_bit() {
        let direct = |y: f64| {
            let t = (y * 16.0).trunc() / 16.0;
            (-t * t).exp() * (-(y - t) * (y + t)).exp()
        };
        let mut ys: Vec<f64> = (0..=430 * 16).map(|k| f64::from(k) / 256.0).collect();
        ys.extend((0..=2000).map(|k| f64::from(k) * 0.013_37));
        ys.extend([0.0, 0.0625, 4.0, 26.5, 26.542_999, 26.543, 27.0, 1e3]);
        for y in ys {
            assert_eq!(exp_minus_square(y).to_bits(), direct(y).to_bits(), "at {y}");
        }
    }

    #[test]
    fn erfc_small_and_large_arguments_agree_with_reference() {
        // CPython 3 math.erfc (C library) values
        let cases = [
            (0.0, 1.0),
            (0.5, 0.4795001221869535),
            (1.9999, 0.004679802092970608),
            (2.0, 0.004677734981047265),
            (5.0, 1.5374597944280351e-12),
        ];
        for (x, want) in cases {
            let got = erfc(x);
            assert!(
                ((got - want) / want).abs() < 1e-15,
                "erfc({x}) = {got}, want {want}"
            );
        }
        assert!(erfc(f64::NAN).is_nan());
        assert_eq!(erfc(40.0), 0.0);
        assert_eq!(erfc(-40.0), 2.0);
    }

    /// erfc by its defining expansions, slow and independent of Cody's coefficients:
    /// the series of erf without cancellation below 2 (Abramowitz & Stegun 7.1.6), the
    /// Laplace continued fraction from 2 on (A&S 7.1.14), 200 terms.
    fn erfc_by_definition(x: f64) -> f64 {
        use std::f64::consts::{FRAC_2_SQRT_PI, PI};
        if x < 0.0 {
            return 2.0 - erfc_by_definition(-x);
        }
        if x < 2.0 {
            let x2 = x * x;
            let (mut term, mut sum, mut n) = (x, x, 0.0_f64);
            loop {
                n += 1.0;
                term *= 2.0 * x2 / (2.0 * n + 1.0);
                sum += term;
                if term <= sum * 1e-17 {
                    break;
                }
            }
            1.0 - FRAC_2_SQRT_PI * (-x2).exp() * sum
        } else {
            let mut f = x;
            for k in (1..=200).rev() {
                f = x + (k as f64 * 0.5) / f;
            }
            (-x * x).exp() / (f * PI.sqrt())
        }
    }

    /// Cody's approximation agrees with the expansions across [−6, 26.5] (its branches'
    /// boundaries included) and is monotone there. The tolerance, 2e-13 relative, is the
    /// expansions' own error, not Cody's: the series loses digits to cancellation near 2
    /// (1 − 0.995), and e^(−x²) amplifies the rounding of x² by x² at large x (≈ 7e-14
    /// at 26); against the C library's values above the agreement is 1e-15.
    #[test]
    fn erfc_agrees_with_its_expansions_everywhere() {
        let mut worst: f64 = 0.0;
        let mut last = f64::INFINITY;
        for k in 0..=32_500 {
            let x = -6.0 + k as f64 * 0.001;
            let (got, want) = (erfc(x), erfc_by_definition(x));
            worst = worst.max(((got - want) / want).abs());
            assert!(got <= last, "erfc not decreasing at {x}");
            last = got;
        }
        for x in [0.46875, 0.468_750_000_1, 4.0, 4.000_000_1, 26.0] {
            let (got, want) = (erfc(x), erfc_by_definition(x));
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst < 2e-13, "worst relative difference {worst:e}");
    }

    #[test]
    fn normal_quantile_matches_reference_values() {
        // R's qnorm to 16 digits
        for (p, z) in [
            (0.5, 0.0),
            (0.9, 1.2815515655446004),
            (0.975, 1.959963984540054),
            (0.995, 2.5758293035489004),
            (1e-10, -6.361340902404056),
            (0.1, -1.2815515655446004),
        ] {
            let got = normal_quantile(p);
            assert!(
                (got - z).abs() <= 1e-14 * z.abs().max(1.0),
                "p {p}: {got} vs {z}"
            );
        }
        assert_eq!(normal_quantile(0.0), f64::NEG_INFINITY);
        assert_eq!(normal_quantile(1.0), f64::INFINITY);
    }

    #[test]
    fn quantiles_interpolate_as_numpy() {
        // numpy.percentile([1, 2, 3, 4, 10], [10, 90]) = [1.4, 7.6]; ([1, 2, 3], 25) = 1.5
        let v = [1.0, 2.0, 3.0, 4.0, 10.0];
        assert!((quantile_sorted(&v, 0.1) - 1.4).abs() < 1e-12);
        assert!((quantile_sorted(&v, 0.9) - 7.6).abs() < 1e-12);
        assert!((quantile_sorted(&[1.0, 2.0, 3.0], 0.25) - 1.5).abs() < 1e-12);
        assert_eq!(quantile_sorted(&[5.0], 0.3), 5.0);
        assert!(quantile_sorted(&[], 0.5).is_nan());
    }

    #[test]
    fn normal_quantile_inverts_the_cdf() {
        for p in [1e-12, 1e-6, 0.01, 0.2, 0.5, 0.7, 0.975, 0.999_99] {
            let x = normal_quantile(p);
            assert!(((normal_cdf(x) - p) / p).abs() < 1e-12, "p = {p}");
        }
    }
}
