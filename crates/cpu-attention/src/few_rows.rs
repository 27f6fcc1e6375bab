//! The two products of attention for a handful of query rows (a decoding step), as loops over the
//! keys that the compiler vectorises: each key and value row is loaded once for all query rows.

const LANES: usize = 8;

fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0_f32; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for ((lane, x), y) in lanes.iter_mut().zip(x).zip(y) {
            *lane += x * y;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// `scores[r][j] = scale · q[r] · keys[j]`; `q` holds the rows, `keys` the key rows, both of
/// width `d`; `scores` is rows × (keys / d).
pub fn scores(scores: &mut [f32], q: &[f32], keys: &[f32], d: usize, scale: f32) {
    let n = keys.len() / d;
    for (j, key) in keys.chunks_exact(d).enumerate() {
        for (r, q_row) in q.chunks_exact(d).enumerate() {
            scores[r * n + j] = dot(q_row, key) * scale;
        }
    }
}

/// `out[r] = Σ_j weights[r][j] · values[j]`; `out` is rows × d, `weights` rows × (values / d).
pub fn weighted_sum(out: &mut [f32], weights: &[f32], values: &[f32], d: usize) {
    let n = values.len() / d;
    out.fill(0.0);
    for (j, value) in values.chunks_exact(d).enumerate() {
        for (r, out_row) in out.chunks_exact_mut(d).enumerate() {
            let w = weights[r * n + j];
            if w != 0.0 {
                for (o, v) in out_row.iter_mut().zip(value) {
                    *o += w * v;
                }
            }
        }
    }
}
