//! Scaled dot-product attention for a prompt on the CPU, `softmax(q·kᵀ·scale + mask)·v`, tiled by
//! blocks of query rows:
//!
//! - keys a row's mask hides entirely (the causal upper triangle, a sliding window's far past) are
//!   never multiplied: each block only reaches from its rows' first to their last visible key, so
//!   a causal prompt costs half the multiplications of a full score matrix;
//! - a block's scores (64 rows × visible keys) stay in a per-thread buffer in the cache, instead
//!   of a score matrix per head written, masked, soft-maxed and read back through memory;
//! - both products go through `gemm` (the kernel candle uses), the softmax through an AVX2-friendly
//!   `exp` (see `softmax`); blocks run in parallel on rayon's pool.
//!
//! Query heads share key/value heads in groups (GQA) without copying them, and keys and values
//! are read in place from a KV cache with spare capacity. A decoding step (one query row) is the
//! same computation with a single block.

mod few_rows;
mod softmax;

use std::cell::RefCell;

use rayon::prelude::*;

pub use softmax::{exp, softmax_in_place};

/// Up to this many query rows (a decoding step's group of heads) a block multiplies with plain
/// loops, which read each key and value row once; `gemm` would first pack them.
const FEW_ROWS: usize = 8;

/// Query rows per block: 64 rows × a few thousand keys of scores fit in L2.
const BLOCK_ROWS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} holds {got} values, the shape needs {want}")]
    Length {
        what: &'static str,
        got: usize,
        want: usize,
    },
    #[error("{heads} query heads cannot share {kv_heads} key/value heads")]
    Heads { heads: usize, kv_heads: usize },
}

/// Sizes of one attention call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub batch: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub q_len: usize,
    pub kv_len: usize,
    pub head_dim: usize,
}

/// Row-major inputs. `q`: (batch, heads, q_len, head_dim); `k`, `v`: (batch, kv_heads, kv_len,
/// head_dim) with the given strides between batch entries and between heads (a KV cache keeps
/// spare rows after each head's `kv_len`; rows themselves are contiguous); `mask`: (q_len,
/// kv_len), added to every head's scores, `-inf` hides a key.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    pub q: &'a [f32],
    pub k: &'a [f32],
    pub v: &'a [f32],
    pub kv_strides: KvStrides,
    pub mask: Option<&'a [f32]>,
    pub scale: f32,
}

/// Elements from one batch entry, and from one head, of `k`/`v` to the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvStrides {
    pub batch: usize,
    pub head: usize,
}

impl KvStrides {
    /// The strides of densely packed (batch, kv_heads, kv_len, head_dim) keys and values.
    pub fn packed(shape: Shape) -> Self {
        let head = shape.kv_len * shape.head_dim;
        Self {
            batch: shape.kv_heads * head,
            head,
        }
    }
}

/// Below this many multiply-adds a call runs on the calling thread: a decoding step's attention
/// over a short context is too small to pay for waking the pool.
const PARALLEL_FROM: usize = 1 << 18;

/// The attention output, (batch, heads, q_len, head_dim) row-major. A query row whose mask hides
/// every key gets zeros.
pub fn attention(shape: Shape, inputs: Inputs<'_>) -> Result<Vec<f32>, Error> {
    let Shape {
        batch,
        heads,
        kv_heads,
        q_len,
        kv_len,
        head_dim: d,
    } = shape;
    if kv_heads == 0 || heads % kv_heads != 0 {
        return Err(Error::Heads { heads, kv_heads });
    }
    let strides = inputs.kv_strides;
    let kv_start =
        |kv_head: usize| kv_head / kv_heads * strides.batch + kv_head % kv_heads * strides.head;
    let kv_needed = match batch * kv_heads {
        0 => 0,
        n => kv_start(n - 1) + kv_len * d,
    };
    check_len("q", inputs.q, batch * heads * q_len * d, false)?;
    check_len("k", inputs.k, kv_needed, true)?;
    check_len("v", inputs.v, kv_needed, true)?;
    if let Some(mask) = inputs.mask {
        check_len("mask", mask, q_len * kv_len, false)?;
    }
    let mut out = vec![0.0_f32; batch * heads * q_len * d];
    if out.is_empty() || kv_len == 0 {
        return Ok(out);
    }
    let spans: Vec<(usize, usize)> = match inputs.mask {
        Some(mask) => mask.chunks_exact(kv_len).map(visible_span).collect(),
        None => vec![(0, kv_len); q_len],
    };
    let group = heads / kv_heads;
    let run_block = |head_index: usize, block_index: usize, block_out: &mut [f32]| {
        let kv_head = head_index / heads * kv_heads + head_index % heads / group;
        let kv_range = kv_start(kv_head)..kv_start(kv_head) + kv_len * d;
        let rows = block_index * BLOCK_ROWS..block_index * BLOCK_ROWS + block_out.len() / d;
        let q_head = &inputs.q[head_index * q_len * d..(head_index + 1) * q_len * d];
        let block = Block {
            q: &q_head[rows.start * d..rows.end * d],
            k: &inputs.k[kv_range.clone()],
            v: &inputs.v[kv_range],
            mask: inputs
                .mask
                .map(|m| &m[rows.start * kv_len..rows.end * kv_len]),
            mask_row_stride: kv_len,
            spans: &spans[rows],
            head_dim: d,
            scale: inputs.scale,
        };
        block.run(block_out);
    };
    // A decoding step: a key/value head's group of query heads is one block, so its keys and
    // values (most of the memory traffic) are read once, not once per query head.
    let group_spans = vec![spans[0]; group];
    let run_group = |kv_head: usize, group_out: &mut [f32]| {
        let kv_range = kv_start(kv_head)..kv_start(kv_head) + kv_len * d;
        let block = Block {
            q: &inputs.q[kv_head * group * d..(kv_head + 1) * group * d],
            k: &inputs.k[kv_range.clone()],
            v: &inputs.v[kv_range],
            mask: inputs.mask,
            mask_row_stride: 0,
            spans: &group_spans,
            head_dim: d,
            scale: inputs.scale,
        };
        block.run(group_out);
    };
    let parallel = batch * heads * q_len * kv_len * d >= PARALLEL_FROM;
    if q_len == 1 {
        if parallel {
            out.par_chunks_mut(group * d)
                .enumerate()
                .for_each(|(i, o)| run_group(i, o));
        } else {
            out.chunks_mut(group * d)
                .enumerate()
                .for_each(|(i, o)| run_group(i, o));
        }
    } else if !parallel {
        for (head_index, head_out) in out.chunks_mut(q_len * d).enumerate() {
            for (block_index, block_out) in head_out.chunks_mut(BLOCK_ROWS * d).enumerate() {
                run_block(head_index, block_index, block_out);
            }
        }
    } else {
        out.par_chunks_mut(q_len * d)
            .enumerate()
            .for_each(|(head_index, head_out)| {
                head_out
                    .par_chunks_mut(BLOCK_ROWS * d)
                    .enumerate()
                    .for_each(|(block_index, block_out)| {
                        run_block(head_index, block_index, block_out)
                    });
            });
    }
    Ok(out)
}

/// `data` must hold `want` values, or at least that many where `at_least`.
fn check_len(what: &'static str, data: &[f32], want: usize, at_least: bool) -> Result<(), Error> {
    let fits = if at_least {
        data.len() >= want
    } else {
        data.len() == want
    };
    if fits {
        Ok(())
    } else {
        Err(Error::Length {
            what,
            got: data.len(),
            want,
        })
    }
}

/// The keys a mask row leaves visible: from the first to the last that is not `-inf`.
fn visible_span(row: &[f32]) -> (usize, usize) {
    let visible = |x: &f32| *x != f32::NEG_INFINITY;
    match (row.iter().position(visible), row.iter().rposition(visible)) {
        (Some(first), Some(last)) => (first, last + 1),
        _ => (0, 0),
    }
}

thread_local! {
    /// A block's scores; kept per thread so that blocks do not allocate.
    static SCORES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Some query rows of one head against that head's keys and values.
struct Block<'a> {
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    mask: Option<&'a [f32]>,
    /// From one row's mask to the next: `kv_len`, or 0 when all rows share one mask row.
    mask_row_stride: usize,
    spans: &'a [(usize, usize)],
    head_dim: usize,
    scale: f32,
}

impl Block<'_> {
    fn run(&self, out: &mut [f32]) {
        let visible = self.spans.iter().filter(|(first, end)| first < end);
        let (Some(lo), Some(hi)) = (
            visible.clone().map(|s| s.0).min(),
            visible.map(|s| s.1).max(),
        ) else {
            return; // every key hidden from every row: zeros
        };
        let (rows, d, n) = (self.spans.len(), self.head_dim, hi - lo);
        SCORES.with_borrow_mut(|scores| {
            scores.clear();
            scores.resize(rows * n, 0.0);
            // scores = q · k[lo..hi]ᵀ · scale
            let keys_t = Matrix {
                data: &self.k[lo * d..hi * d],
                row_stride: 1,
                col_stride: d,
            };
            let q = Matrix {
                data: self.q,
                row_stride: d,
                col_stride: 1,
            };
            if rows <= FEW_ROWS {
                few_rows::scores(scores, self.q, &self.k[lo * d..hi * d], d, self.scale);
            } else {
                matmul(scores, (rows, n, d), q, keys_t, self.scale);
            }
            for (r, row) in scores.chunks_exact_mut(n).enumerate() {
                let (first, end) = self.spans[r];
                if first >= end {
                    row.fill(0.0);
                    continue;
                }
                row[..first - lo].fill(0.0);
                row[end - lo..].fill(0.0);
                let at = r * self.mask_row_stride;
                let bias = self.mask.map(|m| &m[at + first..at + end]);
                softmax_in_place(&mut row[first - lo..end - lo], bias);
            }
            // out = probabilities · v[lo..hi]
            let p = Matrix {
                data: scores,
                row_stride: n,
                col_stride: 1,
            };
            let values = Matrix {
                data: &self.v[lo * d..hi * d],
                row_stride: d,
                col_stride: 1,
            };
            if rows <= FEW_ROWS {
                few_rows::weighted_sum(out, scores, &self.v[lo * d..hi * d], d);
            } else {
                matmul(out, (rows, d, n), p, values, 1.0);
            }
        });
    }
}

/// A read-only matrix view by strides.
#[derive(Clone, Copy)]
struct Matrix<'a> {
    data: &'a [f32],
    row_stride: usize,
    col_stride: usize,
}

impl Matrix<'_> {
    /// Whether every element of a `rows` × `cols` matrix lies inside `data`.
    fn covers(&self, rows: usize, cols: usize) -> bool {
        rows == 0
            || cols == 0
            || (rows - 1) * self.row_stride + (cols - 1) * self.col_stride < self.data.len()
    }
}

/// `dst` (m × n, row-major) = `scale` · `lhs` (m × k) · `rhs` (k × n), single-threaded.
#[allow(unsafe_code)]
fn matmul(dst: &mut [f32], (m, n, k): (usize, usize, usize), lhs: Matrix, rhs: Matrix, scale: f32) {
    assert!(
        dst.len() >= m * n && lhs.covers(m, k) && rhs.covers(k, n),
        "matmul out of bounds"
    );
    let stride = |s: usize| s as isize;
    // SAFETY: the assertion above keeps every element gemm reads or writes inside the slices;
    // `dst` is borrowed mutably, so nothing else aliases it.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            stride(n),
            false,
            lhs.data.as_ptr(),
            stride(lhs.col_stride),
            stride(lhs.row_stride),
            rhs.data.as_ptr(),
            stride(rhs.col_stride),
            stride(rhs.row_stride),
            0.0,
            scale,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests;
