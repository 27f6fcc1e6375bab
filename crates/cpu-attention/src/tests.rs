use super::*;

/// A small deterministic generator (xorshift), values in [-2, 2).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 * 4.0 - 2.0
        })
        .collect()
}

/// Causal mask for `q_len` new rows after `kv_len - q_len` cached ones, optionally limited to the
/// last `window` keys.
fn causal(q_len: usize, kv_len: usize, window: Option<usize>) -> Vec<f32> {
    let past = kv_len - q_len;
    let mut mask = vec![0.0; q_len * kv_len];
    for i in 0..q_len {
        for j in 0..kv_len {
            let future = j > past + i;
            let too_old = window.is_some_and(|w| past + i >= j + w);
            if future || too_old {
                mask[i * kv_len + j] = f32::NEG_INFINITY;
            }
        }
    }
    mask
}

/// The textbook formula in f64, one score matrix per head.
fn reference(shape: Shape, inputs: Inputs<'_>) -> Vec<f64> {
    let Shape {
        batch,
        heads,
        kv_heads,
        q_len,
        kv_len,
        head_dim: d,
    } = shape;
    let mut out = vec![0.0; batch * heads * q_len * d];
    for b in 0..batch {
        for h in 0..heads {
            let kv = (b * kv_heads + h / (heads / kv_heads)) * kv_len * d;
            let qh = (b * heads + h) * q_len * d;
            for i in 0..q_len {
                let scores: Vec<f64> = (0..kv_len)
                    .map(|j| {
                        let dot: f64 = (0..d)
                            .map(|t| {
                                f64::from(inputs.q[qh + i * d + t])
                                    * f64::from(inputs.k[kv + j * d + t])
                            })
                            .sum();
                        dot * f64::from(inputs.scale)
                            + inputs.mask.map_or(0.0, |m| f64::from(m[i * kv_len + j]))
                    })
                    .collect();
                let top = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                if top == f64::NEG_INFINITY {
                    continue;
                }
                let weights: Vec<f64> = scores.iter().map(|s| (s - top).exp()).collect();
                let total: f64 = weights.iter().sum();
                for t in 0..d {
                    out[qh + i * d + t] = (0..kv_len)
                        .map(|j| weights[j] / total * f64::from(inputs.v[kv + j * d + t]))
                        .sum();
                }
            }
        }
    }
    out
}

/// Random q, k and v for `shape`, packed.
fn qkv(shape: Shape, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let kv = shape.batch * shape.kv_heads * shape.kv_len * shape.head_dim;
    (
        values(
            shape.batch * shape.heads * shape.q_len * shape.head_dim,
            seed,
        ),
        values(kv, seed + 1),
        values(kv, seed + 2),
    )
}

fn check(shape: Shape, mask: Option<Vec<f32>>) {
    let (q, k, v) = qkv(shape, 1);
    let inputs = Inputs {
        q: &q,
        k: &k,
        v: &v,
        kv_strides: KvStrides::packed(shape),
        mask: mask.as_deref(),
        scale: 1.0 / (shape.head_dim as f32).sqrt(),
    };
    let got = attention(shape, inputs).expect("valid shapes");
    let want = reference(shape, inputs);
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            (f64::from(*g) - w).abs() < 1e-4,
            "element {i}: {g} vs {w} ({shape:?})"
        );
    }
}

fn shape(batch: usize, heads: usize, kv_heads: usize, q_len: usize, kv_len: usize) -> Shape {
    Shape {
        batch,
        heads,
        kv_heads,
        q_len,
        kv_len,
        head_dim: 16,
    }
}

#[test]
fn a_causal_prompt_with_grouped_heads_matches_the_formula() {
    // 150 rows: two full blocks and a partial one.
    check(shape(1, 4, 2, 150, 150), Some(causal(150, 150, None)));
}

#[test]
fn a_prompt_after_cached_tokens_sees_the_whole_past() {
    check(shape(1, 3, 1, 70, 200), Some(causal(70, 200, None)));
}

#[test]
fn a_sliding_window_hides_the_far_past() {
    check(shape(1, 2, 2, 130, 130), Some(causal(130, 130, Some(40))));
}

#[test]
fn without_a_mask_every_key_is_seen_in_every_batch_entry() {
    check(shape(2, 2, 1, 33, 47), None);
}

#[test]
fn a_mask_with_holes_inside_the_visible_span_is_applied() {
    let mut mask = causal(80, 80, None);
    for (i, m) in mask.iter_mut().enumerate() {
        if i % 7 == 2 && i % 80 != 0 {
            *m = f32::NEG_INFINITY;
        }
    }
    check(shape(1, 2, 1, 80, 80), Some(mask));
}

#[test]
fn a_row_that_sees_nothing_gets_zeros() {
    let mut mask = causal(10, 10, None);
    mask[..10].fill(f32::NEG_INFINITY);
    check(shape(1, 1, 1, 10, 10), Some(mask.clone()));
    let q = values(160, 4);
    let out = attention(
        shape(1, 1, 1, 10, 10),
        Inputs {
            q: &q,
            k: &q,
            v: &q,
            kv_strides: KvStrides::packed(shape(1, 1, 1, 10, 10)),
            mask: Some(&mask),
            scale: 1.0,
        },
    )
    .expect("valid shapes");
    assert!(out[..16].iter().all(|x| *x == 0.0));
    assert!(out[16..].iter().any(|x| *x != 0.0));
}

#[test]
fn wrong_lengths_and_head_counts_are_errors() {
    let q = values(16, 5);
    let inputs = Inputs {
        q: &q,
        k: &q,
        v: &q,
        kv_strides: KvStrides::packed(shape(1, 1, 1, 1, 1)),
        mask: None,
        scale: 1.0,
    };
    assert!(matches!(
        attention(shape(1, 1, 1, 2, 1), inputs),
        Err(Error::Length {
            what: "q",
            got: 16,
            want: 32
        })
    ));
    assert!(matches!(
        attention(shape(1, 3, 2, 1, 1), inputs),
        Err(Error::Heads { .. })
    ));
    assert!(matches!(
        attention(shape(1, 1, 0, 1, 1), inputs),
        Err(Error::Heads { .. })
    ));
    let empty = attention(
        shape(1, 1, 1, 1, 0),
        Inputs {
            k: &[],
            v: &[],
            ..inputs
        },
    )
    .expect("no keys");
    assert_eq!(empty, vec![0.0; 16]);
}

/// Keys and values inside a KV cache with room for `cap` rows per head; the spare rows hold NaN,
/// so reading one would show in the output.
fn in_cache(packed: &[f32], shape: Shape, cap: usize) -> Vec<f32> {
    let d = shape.head_dim;
    let mut cache = vec![f32::NAN; shape.batch * shape.kv_heads * cap * d];
    for (head, rows) in packed.chunks(shape.kv_len * d).enumerate() {
        cache[head * cap * d..][..rows.len()].copy_from_slice(rows);
    }
    cache
}

#[test]
fn keys_and_values_are_read_in_place_from_a_cache_with_spare_rows() {
    // A decoding step (one query row, no mask) and a prompt continuing a cached one; small
    // enough to run on the calling thread and large enough for the pool.
    for (shape, mask) in [
        (shape(2, 4, 2, 1, 37), None),
        (shape(1, 4, 2, 1, 3000), None),
        (shape(1, 2, 1, 20, 90), Some(causal(20, 90, None))),
    ] {
        let cap = shape.kv_len + 13;
        let (q, k, v) = qkv(shape, 7);
        let packed = Inputs {
            q: &q,
            k: &k,
            v: &v,
            kv_strides: KvStrides::packed(shape),
            mask: mask.as_deref(),
            scale: 0.25,
        };
        let (k_cache, v_cache) = (in_cache(&k, shape, cap), in_cache(&v, shape, cap));
        let cached = Inputs {
            k: &k_cache,
            v: &v_cache,
            kv_strides: KvStrides {
                batch: shape.kv_heads * cap * shape.head_dim,
                head: cap * shape.head_dim,
            },
            ..packed
        };
        let want = reference(shape, packed);
        let got = attention(shape, cached).expect("valid shapes");
        for (g, w) in got.iter().zip(&want) {
            assert!((f64::from(*g) - w).abs() < 1e-4, "{g} vs {w} ({shape:?})");
        }
        let short = Inputs {
            k: &k_cache[..k_cache.len() - 14 * shape.head_dim],
            ..cached
        };
        assert!(matches!(
            attention(shape, short),
            Err(Error::Length { what: "k", .. })
        ));
    }
}
