//! Rewrites the tensors the engine has no fast CPU kernel for as Q8_0.
//!
//! candle (mistral.rs's tensor library) has AVX2 dot products for Q4_0, Q8_0 and the K-quants,
//! but runs Q4_1, Q5_0 and Q5_1 through scalar loops. Measured on SmolLM2-135M (2 cores):
//! the same model as Q8_0 decodes 1.4× and prefills 1.5× faster than as Q4_1. Q8_0 holds every
//! value of those 4- and 5-bit blocks to within half a step of an 8-bit grid, so the model is
//! effectively unchanged; the file grows to about 1.6×.
//!
//! The rewrite streams one tensor at a time: metadata bytes are copied as they are (with
//! `general.file_type` set to Q8_0), tensor infos get the new types and offsets, data is
//! converted block by block. Memory stays at one tensor.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use half::f16;

use crate::gguf::{GgufError, GgufInfo, block};

const Q4_1: u32 = 3;
const Q5_0: u32 = 6;
const Q5_1: u32 = 7;
const Q8_0: u32 = 8;
/// `general.file_type` of a mostly-Q8_0 file.
const FILE_TYPE_Q8_0: u32 = 7;
const BLOCK: usize = 32;

/// Whether any tensor of the file would run through a scalar kernel.
pub fn worth_converting(info: &GgufInfo) -> bool {
    info.layout
        .tensors
        .iter()
        .any(|t| matches!(t.kind, Q4_1 | Q5_0 | Q5_1))
}

fn io(path: &Path, e: std::io::Error) -> GgufError {
    GgufError(format!("{}: {e}", path.display()))
}

/// Writes `src` (described by `info`) to `dst` with its Q4_1/Q5_0/Q5_1 tensors as Q8_0;
/// returns how many tensors changed. `dst` appears only when complete.
pub fn to_q8_0(src: &Path, info: &GgufInfo, dst: &Path) -> Result<usize, GgufError> {
    let layout = &info.layout;
    let mut input = BufReader::new(File::open(src).map_err(|e| io(src, e))?);
    let temp = moe_sovereign_files::temp_beside(dst).map_err(|e| io(dst, e))?;
    let mut out = BufWriter::new(temp.as_file());

    // Header and metadata, as they are but for the file type.
    let mut head = vec![0u8; layout.metadata_end as usize];
    input.read_exact(&mut head).map_err(|e| io(src, e))?;
    if let Some(at) = layout.file_type_at {
        let at = at as usize;
        head[at..at + 4].copy_from_slice(&FILE_TYPE_Q8_0.to_le_bytes());
    }
    out.write_all(&head).map_err(|e| io(dst, e))?;

    // Tensor infos with new types and offsets.
    let align = |n: u64| n.div_ceil(layout.alignment) * layout.alignment;
    let mut offset = 0u64;
    let mut plan = Vec::new();
    for tensor in &layout.tensors {
        let converts =
            matches!(tensor.kind, Q4_1 | Q5_0 | Q5_1) && tensor.elements() % BLOCK as u64 == 0;
        let kind = if converts { Q8_0 } else { tensor.kind };
        let bytes = tensor
            .bytes_as(kind)
            .ok_or_else(|| GgufError(format!("tensor {} has an unknown type", tensor.name)))?;
        let mut entry = Vec::new();
        entry.extend((tensor.name.len() as u64).to_le_bytes());
        entry.extend(tensor.name.as_bytes());
        entry.extend((tensor.dims.len() as u32).to_le_bytes());
        for dim in &tensor.dims {
            entry.extend(dim.to_le_bytes());
        }
        entry.extend(kind.to_le_bytes());
        entry.extend(offset.to_le_bytes());
        out.write_all(&entry).map_err(|e| io(dst, e))?;
        plan.push((tensor, converts, offset));
        offset = align(offset + bytes);
    }
    let header_end = layout.metadata_end
        + layout
            .tensors
            .iter()
            .map(|t| 8 + t.name.len() as u64 + 4 + 8 * t.dims.len() as u64 + 4 + 8)
            .sum::<u64>();
    let data_start = align(header_end);
    pad(&mut out, data_start - header_end).map_err(|e| io(dst, e))?;

    // Data, one tensor at a time.
    let mut written = 0u64;
    let mut converted = 0;
    for (tensor, converts, new_offset) in plan {
        pad(&mut out, new_offset - written).map_err(|e| io(dst, e))?;
        let bytes = tensor.bytes_as(tensor.kind).unwrap_or_default();
        let mut data = vec![0u8; bytes as usize];
        input
            .seek(SeekFrom::Start(layout.data_start + tensor.offset))
            .and_then(|_| input.read_exact(&mut data))
            .map_err(|e| io(src, e))?;
        let data = if converts {
            converted += 1;
            requantize(tensor.kind, &data)
        } else {
            data
        };
        out.write_all(&data).map_err(|e| io(dst, e))?;
        written = new_offset + data.len() as u64;
    }
    out.flush().map_err(|e| io(dst, e))?;
    drop(out);
    moe_sovereign_files::persist(temp, dst, 0o600).map_err(|e| io(dst, e))?;
    Ok(converted)
}

fn pad(out: &mut impl Write, n: u64) -> std::io::Result<()> {
    out.write_all(&vec![0u8; n as usize])
}

/// `data` of ggml type `kind` (Q4_1, Q5_0 or Q5_1) as Q8_0 blocks.
fn requantize(kind: u32, data: &[u8]) -> Vec<u8> {
    let size = block(kind).map_or(1, |(_, bytes)| bytes as usize);
    let mut out = Vec::with_capacity(data.len() / size * 34);
    let mut values = [0f32; BLOCK];
    for chunk in data.chunks_exact(size) {
        dequantize(kind, chunk, &mut values);
        quantize_q8_0(&values, &mut out);
    }
    out
}

fn half_at(bytes: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([bytes[at], bytes[at + 1]]).to_f32()
}

/// One block of Q4_1 / Q5_0 / Q5_1 as ggml's reference dequantization computes it.
fn dequantize(kind: u32, b: &[u8], y: &mut [f32; BLOCK]) {
    match kind {
        Q4_1 => {
            let (d, m) = (half_at(b, 0), half_at(b, 2));
            for j in 0..16 {
                y[j] = f32::from(b[4 + j] & 0x0f) * d + m;
                y[j + 16] = f32::from(b[4 + j] >> 4) * d + m;
            }
        }
        Q5_0 | Q5_1 => {
            let d = half_at(b, 0);
            let (m, rest) = if kind == Q5_1 {
                (half_at(b, 2), &b[4..])
            } else {
                (0.0, &b[2..])
            };
            let qh = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
            let qs = &rest[4..20];
            let bias = if kind == Q5_0 { 16 } else { 0 };
            for j in 0..16 {
                let high0 = ((qh >> j) << 4) & 0x10;
                let high1 = (qh >> (j + 12)) & 0x10;
                let x0 = (u32::from(qs[j] & 0x0f) | high0) as i32 - bias;
                let x1 = (u32::from(qs[j] >> 4) | high1) as i32 - bias;
                y[j] = x0 as f32 * d + m;
                y[j + 16] = x1 as f32 * d + m;
            }
        }
        _ => y.fill(0.0),
    }
}

/// ggml's reference Q8_0 quantization of one block.
fn quantize_q8_0(x: &[f32; BLOCK], out: &mut Vec<u8>) {
    let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
    let d = amax / 127.0;
    let id = if d == 0.0 { 0.0 } else { 1.0 / d };
    out.extend(f16::from_f32(d).to_le_bytes());
    for v in x {
        out.push(((v * id).round() as i8) as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q8_0_values(block: &[u8]) -> Vec<f32> {
        let d = half_at(block, 0);
        block[2..34]
            .iter()
            .map(|&q| f32::from(q as i8) * d)
            .collect()
    }

    #[test]
    fn q4_1_blocks_survive_to_within_half_a_step() {
        // d = 0.5, m = -2: values -2 + 0.5·q for nibbles q = 0..15.
        let mut block = Vec::new();
        block.extend(f16::from_f32(0.5).to_le_bytes());
        block.extend(f16::from_f32(-2.0).to_le_bytes());
        block.extend((0u8..16).map(|j| (j % 16) | (((15 - j) % 16) << 4)));
        let mut expected = [0f32; BLOCK];
        dequantize(Q4_1, &block, &mut expected);
        assert_eq!(expected[0], -2.0);
        assert_eq!(expected[15], 5.5);
        assert_eq!(expected[16], 5.5);
        let out = requantize(Q4_1, &block);
        assert_eq!(out.len(), 34);
        let step = 5.5 / 127.0;
        for (got, want) in q8_0_values(&out).iter().zip(expected) {
            assert!((got - want).abs() <= step / 2.0 + 1e-3, "{got} vs {want}");
        }
    }

    #[test]
    fn q5_blocks_use_their_high_bits() {
        // Q5_0: d = 1, every value 31 - 16 = 15 (all low nibbles 15, all high bits set).
        let mut q5_0 = Vec::new();
        q5_0.extend(f16::from_f32(1.0).to_le_bytes());
        q5_0.extend(u32::MAX.to_le_bytes());
        q5_0.extend([0xffu8; 16]);
        let mut y = [0f32; BLOCK];
        dequantize(Q5_0, &q5_0, &mut y);
        assert!(y.iter().all(|&v| v == 15.0), "{y:?}");
        // Q5_1: d = 1, m = 1, no high bits, nibbles 0: every value 1.
        let mut q5_1 = Vec::new();
        q5_1.extend(f16::from_f32(1.0).to_le_bytes());
        q5_1.extend(f16::from_f32(1.0).to_le_bytes());
        q5_1.extend(0u32.to_le_bytes());
        q5_1.extend([0u8; 16]);
        dequantize(Q5_1, &q5_1, &mut y);
        assert!(y.iter().all(|&v| v == 1.0), "{y:?}");
        assert!(
            q8_0_values(&requantize(Q5_1, &q5_1))
                .iter()
                .all(|&v| (v - 1.0).abs() < 1e-3)
        );
    }

    #[test]
    fn an_all_zero_block_stays_zero() {
        let block = [0u8; 20];
        let out = requantize(Q4_1, &block);
        assert!(q8_0_values(&out).iter().all(|&v| v == 0.0));
    }
}
