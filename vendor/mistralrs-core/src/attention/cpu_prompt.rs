//! moe-sovereign patch: attention on the CPU through the tiled kernel of
//! `moe-sovereign-cpu-attention`, which skips the keys the mask hides (the causal upper triangle),
//! keeps each block's scores in the cache, reads K/V in place from the KV cache, and runs on
//! rayon's global pool (mistral.rs's flash kernel has a pool of its own, whose idle threads spin
//! against the global pool's on a small machine). Prompts and decoding steps alike. Only F32
//! activations without softcapping or sinks, and a mask of shape (q_len, kv_len) (leading 1s
//! allowed; without a mask, no sliding window); anything else returns `None` and runs
//! mistral.rs's own path.

use candle_core::{DType, Layout, Result, Storage, Tensor};
use moe_sovereign_cpu_attention::{attention, Inputs, KvStrides, Shape};

use super::SdpaParams;

pub(crate) fn run(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
    params: &SdpaParams,
) -> Result<Option<Tensor>> {
    let all_f32 = [q, k, v].iter().all(|t| t.dtype() == DType::F32);
    if !q.device().is_cpu()
        || !all_f32
        || params.sinks.is_some()
        || params.softcap.is_some_and(|c| c != 1.0)
        || (mask.is_none() && params.sliding_window.is_some())
    {
        return Ok(None);
    }
    let (batch, heads, q_len, head_dim) = q.dims4()?;
    let (k_batch, kv_heads, kv_len, k_dim) = k.dims4()?;
    if v.dims4()? != (k_batch, kv_heads, kv_len, k_dim) || k_batch != batch || k_dim != head_dim {
        return Ok(None);
    }
    let mask = match mask {
        None => None,
        Some(mask) => {
            let dims = mask.dims();
            let rank = dims.len();
            if rank < 2
                || dims[..rank - 2].iter().any(|&d| d != 1)
                || dims[rank - 2..] != [q_len, kv_len]
            {
                return Ok(None);
            }
            Some(mask.to_dtype(DType::F32)?.contiguous()?)
        }
    };
    let q = q.contiguous()?;
    // K and V straight from the cache when their rows are contiguous and laid out alike.
    let (k, v) = match (rows_in_place(k, head_dim), rows_in_place(v, head_dim)) {
        (Some(ks), Some(vs)) if ks == vs => (k.clone(), v.clone()),
        _ => (k.contiguous()?, v.contiguous()?),
    };
    let kv_strides = rows_in_place(&k, head_dim).unwrap_or(KvStrides::packed(Shape {
        batch,
        heads,
        kv_heads,
        q_len,
        kv_len,
        head_dim,
    }));
    let (q_storage, q_layout) = q.storage_and_layout();
    let (k_storage, k_layout) = k.storage_and_layout();
    let (v_storage, v_layout) = v.storage_and_layout();
    let mask_storage = mask.as_ref().map(|m| m.storage_and_layout());
    let inputs = Inputs {
        q: slice(&q_storage, q_layout, Some(q.elem_count()))?,
        k: slice(&k_storage, k_layout, None)?,
        v: slice(&v_storage, v_layout, None)?,
        kv_strides,
        mask: match &mask_storage {
            Some((storage, layout)) => Some(slice(
                storage,
                layout,
                mask.as_ref().map(|m| m.elem_count()),
            )?),
            None => None,
        },
        scale: params.softmax_scale,
    };
    let shape = Shape {
        batch,
        heads,
        kv_heads,
        q_len,
        kv_len,
        head_dim,
    };
    let out = attention(shape, inputs).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    Ok(Some(Tensor::from_vec(
        out,
        (batch, heads, q_len, head_dim),
        q.device(),
    )?))
}

/// The batch and head strides of a (batch, heads, len, head_dim) tensor whose rows are
/// contiguous and laid out one after the other within a head (a KV cache narrowed to its filled
/// rows is); `None` for any other layout.
fn rows_in_place(t: &Tensor, head_dim: usize) -> Option<KvStrides> {
    match t.layout().stride() {
        [batch, head, row, 1] if *row == head_dim => Some(KvStrides {
            batch: *batch,
            head: *head,
        }),
        _ => None,
    }
}

/// The storage's elements from the tensor's first on: `len` of them, or all the rest (K and V,
/// whose heads are spread over the cache by their strides).
fn slice<'a>(storage: &'a Storage, layout: &Layout, len: Option<usize>) -> Result<&'a [f32]> {
    let Storage::Cpu(cpu) = storage else {
        candle_core::bail!("cpu_prompt: tensor not on the CPU")
    };
    let rest = &cpu.as_slice::<f32>()?[layout.start_offset()..];
    Ok(len.map_or(rest, |len| &rest[..len.min(rest.len())]))
}
