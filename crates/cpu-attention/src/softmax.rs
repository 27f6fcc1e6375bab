//! A row softmax written so that the compiler turns it into AVX2 code (`-C target-cpu=x86-64-v3`):
//! branch-free loops over slices, reductions over eight lanes, and an `exp` of our own (the
//! standard library's is a scalar call per element, which dominated attention on long prompts).

const LANES: usize = 8;

/// `e^x` to within 2 ulp for `x` in [-87.3, 88]; below that range it is 0 (so `-inf` gives 0),
/// above it saturates at `e^88`. Cody-Waite reduction and Cephes' polynomial for `expf`.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding then subtracting 1.5 * 2^23 rounds to the nearest integer; the integer also sits in
    // the low bits of `shifted`, which builds 2^n without a float-to-int conversion.
    const SHIFT: f32 = 12_582_912.0;
    let clamped = x.clamp(-87.3, 88.0);
    let shifted = clamped * LOG2E + SHIFT;
    let n = shifted - SHIFT;
    let r = clamped - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    let two_to_n = f32::from_bits(
        shifted
            .to_bits()
            .wrapping_sub(0x4B40_0000)
            .wrapping_add(127)
            << 23,
    );
    if x < -87.3 { 0.0 } else { e * two_to_n }
}

/// The largest value of `xs` (`-inf` when empty).
fn max(xs: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = xs.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane = if x > *lane { x } else { *lane };
        }
    }
    rest.iter()
        .chain(&lanes)
        .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m })
}

fn sum(xs: &[f32]) -> f32 {
    let mut lanes = [0.0_f32; LANES];
    let chunks = xs.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane += x;
        }
    }
    rest.iter().chain(&lanes).sum()
}

/// Softmax of `scores` in place; with `bias` (the attention mask's row), of `scores + bias`.
/// A row with nothing unmasked (all `-inf`) becomes all zeros.
pub fn softmax_in_place(scores: &mut [f32], bias: Option<&[f32]>) {
    if let Some(bias) = bias {
        for (s, &b) in scores.iter_mut().zip(bias) {
            *s += b;
        }
    }
    let top = max(scores);
    if top == f32::NEG_INFINITY {
        scores.fill(0.0);
        return;
    }
    for s in scores.iter_mut() {
        *s = exp(*s - top);
    }
    let scale = 1.0 / sum(scores);
    for s in scores.iter_mut() {
        *s *= scale;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulp_of_the_standard_one() {
        let mut x = -87.0_f32;
        while x < 88.0 {
            let (ours, std) = (exp(x), x.exp());
            let ulp = (std.to_bits() as i64 - ours.to_bits() as i64).abs();
            assert!(ulp <= 2, "exp({x}) = {ours}, std says {std} ({ulp} ulp)");
            x += 0.0137;
        }
    }

    #[test]
    fn exp_of_minus_infinity_and_tiny_values_is_zero() {
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(-1000.0), 0.0);
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(f32::INFINITY).is_finite());
    }

    #[test]
    fn softmax_matches_the_textbook_formula_with_a_mask() {
        let mut scores: Vec<f32> = (0..21).map(|i| (i as f32 * 0.37).sin() * 4.0).collect();
        let bias: Vec<f32> = (0..21)
            .map(|i| if i % 5 == 3 { f32::NEG_INFINITY } else { 0.0 })
            .collect();
        let expected: Vec<f64> = {
            let x: Vec<f64> = scores
                .iter()
                .zip(&bias)
                .map(|(&s, &b)| f64::from(s + b))
                .collect();
            let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = x.iter().map(|v| (v - m).exp()).collect();
            let total: f64 = e.iter().sum();
            e.iter().map(|v| v / total).collect()
        };
        softmax_in_place(&mut scores, Some(&bias));
        for (got, want) in scores.iter().zip(&expected) {
            assert!((f64::from(*got) - want).abs() < 1e-6, "{got} vs {want}");
        }
        assert_eq!(scores[3], 0.0);
    }

    #[test]
    fn a_fully_masked_row_becomes_zeros() {
        let mut scores = vec![1.0, 2.0, 3.0];
        softmax_in_place(&mut scores, Some(&[f32::NEG_INFINITY; 3]));
        assert_eq!(scores, vec![0.0; 3]);
    }
}
