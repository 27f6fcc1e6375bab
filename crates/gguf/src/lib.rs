//! A GGUF header reader: enough to validate a model file *before* the engine sees it (mistral.rs
//! 0.8.1 panics on architectures it does not know), and to describe it in `models list`.
//!
//! A crate of its own, without the engine, so hostile headers can be fuzzed quickly
//! (`fuzz/`, target `gguf`). `moe_sovereign_local::gguf` re-exports it.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek, SeekFrom};
use std::path::Path;

/// Architectures mistral.rs 0.8.1 loads from GGUF.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &[
    "llama",
    "mistral3",
    "phi2",
    "phi3",
    "starcoder2",
    "qwen2",
    "qwen3",
    "qwen3moe",
];

/// Tokenizer kinds mistral.rs builds from GGUF metadata.
const SUPPORTED_TOKENIZERS: &[&str] = &["llama", "gpt2", "replit"];

/// What a valid model file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgufInfo {
    /// `general.architecture`.
    pub architecture: String,
    /// `general.name`, if any.
    pub name: Option<String>,
    /// From `general.file_type`, e.g. `Q4_1`.
    pub quantization: String,
    /// `<arch>.context_length`.
    pub context_length: Option<u64>,
    /// File size in bytes.
    pub size: u64,
    /// The chat template (Jinja).
    pub chat_template: String,
    /// Where everything is in the file.
    pub layout: Layout,
}

/// The byte layout of a GGUF file, enough to rewrite its tensors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Offset just past the metadata (where the tensor infos begin).
    pub metadata_end: u64,
    /// Offset of `general.file_type`'s u32 value, when it is one.
    pub file_type_at: Option<u64>,
    /// Tensor data alignment.
    pub alignment: u64,
    /// Offset of the tensor data.
    pub data_start: u64,
    /// The tensors, in file order.
    pub tensors: Vec<TensorInfo>,
}

/// One tensor's header entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Name.
    pub name: String,
    /// Dimensions, innermost first.
    pub dims: Vec<u64>,
    /// ggml type id.
    pub kind: u32,
    /// Offset from the data start.
    pub offset: u64,
}

impl TensorInfo {
    /// Elements in the tensor, saturating like [`inspect`]'s check: a hostile header's
    /// `[2^32, 2^32, 0]` is 0 elements, not an overflow.
    pub fn elements(&self) -> u64 {
        self.dims.iter().fold(1u64, |n, &dim| n.saturating_mul(dim))
    }

    /// Bytes of data of a tensor of these dimensions stored as `kind`.
    pub fn bytes_as(&self, kind: u32) -> Option<u64> {
        let (per_block, bytes) = block(kind)?;
        Some(self.elements().div_ceil(per_block).saturating_mul(bytes))
    }
}

/// Why a file is not a usable model. The message is one line, meant for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GgufError(pub String);

fn err<T>(message: impl Into<String>) -> Result<T, GgufError> {
    Err(GgufError(message.into()))
}

#[derive(Debug, Clone)]
enum Meta {
    Int(u64),
    Str(String),
    Other,
}

struct Reader<R> {
    inner: R,
}

impl<R: Read + Seek> Reader<R> {
    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], GgufError> {
        let mut buf = [0u8; N];
        self.inner.read_exact(&mut buf).map_or_else(
            |_| err("the file ends in the middle of its header (truncated?)"),
            |_| Ok(buf),
        )
    }
    fn u32(&mut self) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.bytes()?))
    }
    fn u64(&mut self) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.bytes()?))
    }
    fn skip(&mut self, n: u64) -> Result<(), GgufError> {
        let n = i64::try_from(n).or_else(|_| err("a header field is impossibly large"))?;
        self.inner.seek(SeekFrom::Current(n)).map_or_else(
            |_| err("the file ends in the middle of its header (truncated?)"),
            |_| Ok(()),
        )
    }
    fn string(&mut self, limit: u64) -> Result<Option<String>, GgufError> {
        let len = self.u64()?;
        if len > limit {
            self.skip(len)?;
            return Ok(None);
        }
        let mut buf = vec![0u8; len as usize];
        self.inner
            .read_exact(&mut buf)
            .or_else(|_| err("the file ends in the middle of its header (truncated?)"))?;
        Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
    }
    fn value(&mut self, kind: u32) -> Result<Meta, GgufError> {
        let fixed = |size| Some(size);
        let size = match kind {
            0 | 1 | 7 => fixed(1),
            2 | 3 => fixed(2),
            4..=6 => fixed(4),
            10..=12 => fixed(8),
            8 => None,
            9 => {
                let item = self.u32()?;
                let count = self.u64()?;
                if count > 1 << 32 {
                    return err("a metadata array is impossibly large (corrupt file?)");
                }
                match item {
                    8 => {
                        for _ in 0..count {
                            self.string(0)?;
                        }
                    }
                    9 => return err("nested metadata arrays are not supported"),
                    other => {
                        let size = type_size(other)
                            .ok_or_else(|| GgufError(format!("unknown metadata type {other}")))?;
                        self.skip(size * count)?;
                    }
                }
                return Ok(Meta::Other);
            }
            other => return err(format!("unknown metadata type {other} (corrupt file?)")),
        };
        match (kind, size) {
            (8, None) => Ok(self.string(1 << 20)?.map_or(Meta::Other, Meta::Str)),
            (4, _) => Ok(Meta::Int(u64::from(self.u32()?))),
            (10, _) => Ok(Meta::Int(self.u64()?)),
            (0 | 7, _) => Ok(Meta::Int(u64::from(self.bytes::<1>()?[0]))),
            (2, _) => Ok(Meta::Int(u64::from(u16::from_le_bytes(self.bytes()?)))),
            (5, _) => Ok(Meta::Int(u64::from(u32::from_le_bytes(self.bytes()?)))),
            (11, _) => Ok(Meta::Int(self.u64()?)),
            (_, Some(size)) => {
                self.skip(size)?;
                Ok(Meta::Other)
            }
            _ => Ok(Meta::Other),
        }
    }
}

fn type_size(kind: u32) -> Option<u64> {
    Some(match kind {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        10..=12 => 8,
        _ => return None,
    })
}

/// (elements per block, bytes per block) of ggml tensor types candle can load.
pub fn block(kind: u32) -> Option<(u64, u64)> {
    Some(match kind {
        0 => (1, 4),      // F32
        1 => (1, 2),      // F16
        2 => (32, 18),    // Q4_0
        3 => (32, 20),    // Q4_1
        6 => (32, 22),    // Q5_0
        7 => (32, 24),    // Q5_1
        8 => (32, 34),    // Q8_0
        9 => (32, 36),    // Q8_1
        10 => (256, 84),  // Q2_K
        11 => (256, 110), // Q3_K
        12 => (256, 144), // Q4_K
        13 => (256, 176), // Q5_K
        14 => (256, 210), // Q6_K
        15 => (256, 292), // Q8_K
        30 => (1, 2),     // BF16
        _ => return None,
    })
}

fn quantization(file_type: Option<u64>) -> String {
    match file_type {
        Some(0) => "F32",
        Some(1) => "F16",
        Some(2) => "Q4_0",
        Some(3) => "Q4_1",
        Some(7) => "Q8_0",
        Some(8) => "Q5_0",
        Some(9) => "Q5_1",
        Some(10) => "Q2_K",
        Some(11) => "Q3_K_S",
        Some(12) => "Q3_K_M",
        Some(13) => "Q3_K_L",
        Some(14) => "Q4_K_S",
        Some(15) => "Q4_K_M",
        Some(16) => "Q5_K_S",
        Some(17) => "Q5_K_M",
        Some(18) => "Q6_K",
        Some(32) => "BF16",
        _ => "unknown",
    }
    .to_owned()
}

/// Reads and validates `path`: a GGUF file whose architecture, tokenizer, chat template and
/// tensor types mistral.rs can use, and whose tensor data is all there.
pub fn inspect(path: &Path) -> Result<GgufInfo, GgufError> {
    let file = File::open(path).or_else(|e| err(format!("cannot open {}: {e}", path.display())))?;
    let size = file
        .metadata()
        .or_else(|e| err(format!("cannot read {}: {e}", path.display())))?
        .len();
    let reader = BufReader::with_capacity(1 << 16, file);
    inspect_reader(reader, size, &path.display().to_string())
}

/// [`inspect`] of a file already in memory.
pub fn inspect_bytes(bytes: &[u8]) -> Result<GgufInfo, GgufError> {
    inspect_reader(Cursor::new(bytes), bytes.len() as u64, "the file")
}

/// [`inspect`] of `size` bytes read from `reader` (at its start); `source` names it in
/// messages.
pub fn inspect_reader<R: Read + Seek>(
    reader: R,
    size: u64,
    source: &str,
) -> Result<GgufInfo, GgufError> {
    let mut r = Reader { inner: reader };
    if size < 24 || &r.bytes::<4>()? != b"GGUF" {
        return err("not a GGUF file (no GGUF magic)");
    }
    let version = r.u32()?;
    if !(2..=3).contains(&version) {
        return err(format!(
            "GGUF version {version} is not supported (2 or 3 are)"
        ));
    }
    let tensors = r.u64()?;
    let kvs = r.u64()?;
    if tensors > 1 << 24 || kvs > 1 << 24 {
        return err("the header claims impossibly many entries (corrupt file?)");
    }
    let mut meta = HashMap::new();
    let mut file_type_at = None;
    let position = |r: &mut Reader<R>| {
        r.inner
            .stream_position()
            .or_else(|e| err(format!("cannot read {source}: {e}")))
    };
    for _ in 0..kvs {
        let key = r.string(1 << 16)?.unwrap_or_default();
        let kind = r.u32()?;
        if key == "general.file_type" && kind == 4 {
            file_type_at = Some(position(&mut r)?);
        }
        let value = r.value(kind)?;
        meta.insert(key, value);
    }
    let text = |key: &str| match meta.get(key) {
        Some(Meta::Str(s)) => Some(s.clone()),
        _ => None,
    };
    let int = |key: &str| match meta.get(key) {
        Some(Meta::Int(n)) => Some(*n),
        _ => None,
    };
    let architecture = text("general.architecture")
        .ok_or_else(|| GgufError("no general.architecture in the header".into()))?;
    if !SUPPORTED_ARCHITECTURES.contains(&architecture.as_str()) {
        return err(format!(
            "architecture {architecture:?} is not supported by the local engine (supported: {})",
            SUPPORTED_ARCHITECTURES.join(", ")
        ));
    }
    match text("tokenizer.ggml.model") {
        Some(t) if SUPPORTED_TOKENIZERS.contains(&t.as_str()) => {}
        Some(t) => {
            return err(format!(
                "tokenizer {t:?} is not supported (llama, gpt2 and replit are)"
            ));
        }
        None => return err("the file has no embedded tokenizer (tokenizer.ggml.model)"),
    }
    if !meta.contains_key("tokenizer.ggml.tokens") {
        return err("the file has no tokenizer vocabulary (tokenizer.ggml.tokens)");
    }
    let Some(chat_template) = text("tokenizer.chat_template") else {
        return err(
            "the file has no chat template (tokenizer.chat_template): it is a base model, not a chat model",
        );
    };

    let metadata_end = position(&mut r)?;
    let mut data_end = 0u64;
    let mut infos = Vec::new();
    for _ in 0..tensors {
        let name = r.string(1 << 12)?.unwrap_or_default();
        let dims = r.u32()?;
        if dims > 8 {
            return err(format!(
                "tensor {name:?} has {dims} dimensions (corrupt file?)"
            ));
        }
        let mut elements = 1u64;
        let mut shape = Vec::new();
        for _ in 0..dims {
            let dim = r.u64()?;
            shape.push(dim);
            elements = elements.saturating_mul(dim);
        }
        let kind = r.u32()?;
        let offset = r.u64()?;
        let (per_block, bytes) = block(kind).ok_or_else(|| {
            GgufError(format!(
                "tensor {name:?} uses ggml type {kind}, which the local engine cannot load"
            ))
        })?;
        let nbytes = elements.div_ceil(per_block).saturating_mul(bytes);
        data_end = data_end.max(offset.saturating_add(nbytes));
        infos.push(TensorInfo {
            name,
            dims: shape,
            kind,
            offset,
        });
    }
    let alignment = int("general.alignment").unwrap_or(32).max(1);
    let header_end = position(&mut r)?;
    let data_start = header_end.div_ceil(alignment) * alignment;
    if data_start.saturating_add(data_end) > size {
        return err(format!(
            "the file is truncated: its tensors need {} bytes, it has {size}",
            data_start.saturating_add(data_end)
        ));
    }
    Ok(GgufInfo {
        context_length: int(&format!("{architecture}.context_length")),
        name: text("general.name"),
        quantization: quantization(int("general.file_type")),
        architecture,
        size,
        chat_template,
        layout: Layout {
            metadata_end,
            file_type_at,
            alignment,
            data_start,
            tensors: infos,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal GGUF file: metadata `kv` (string values), one F32 tensor of `elements`, and
    /// `data` bytes of tensor data.
    fn gguf(kv: &[(&str, &str)], elements: u64, data: usize) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend(1u64.to_le_bytes());
        out.extend((kv.len() as u64 + 1).to_le_bytes());
        let string = |out: &mut Vec<u8>, s: &str| {
            out.extend((s.len() as u64).to_le_bytes());
            out.extend(s.as_bytes());
        };
        for (key, value) in kv {
            string(&mut out, key);
            out.extend(8u32.to_le_bytes());
            string(&mut out, value);
        }
        string(&mut out, "tokenizer.ggml.tokens");
        out.extend(9u32.to_le_bytes());
        out.extend(8u32.to_le_bytes());
        out.extend(2u64.to_le_bytes());
        string(&mut out, "<s>");
        string(&mut out, "hi");
        string(&mut out, "token_embd.weight");
        out.extend(1u32.to_le_bytes());
        out.extend(elements.to_le_bytes());
        out.extend(0u32.to_le_bytes());
        out.extend(0u64.to_le_bytes());
        while !out.len().is_multiple_of(32) {
            out.push(0);
        }
        out.extend(vec![0u8; data]);
        out
    }

    fn check(bytes: &[u8]) -> Result<GgufInfo, GgufError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.gguf");
        std::fs::write(&path, bytes).unwrap();
        let from_file = inspect(&path);
        assert_eq!(from_file, inspect_bytes(bytes));
        from_file
    }

    const CHAT: &[(&str, &str)] = &[
        ("general.architecture", "llama"),
        ("tokenizer.ggml.model", "gpt2"),
        ("tokenizer.chat_template", "{{ messages }}"),
    ];

    #[test]
    fn a_complete_llama_file_passes() {
        let info = check(&gguf(CHAT, 8, 32)).unwrap();
        assert_eq!(info.architecture, "llama");
        assert_eq!(info.chat_template, "{{ messages }}");
    }

    #[test]
    fn truncated_files_are_refused() {
        let error = check(&gguf(CHAT, 8, 31)).unwrap_err();
        assert!(error.0.contains("truncated"), "{error}");
        let full = gguf(CHAT, 8, 32);
        let error = check(&full[..60]).unwrap_err();
        assert!(error.0.contains("truncated"), "{error}");
    }

    #[test]
    fn hostile_dimensions_neither_overflow_nor_pass_as_data() {
        // A zero dimension after two huge ones: no data, and no overflow counting it.
        let tensor = TensorInfo {
            name: "t".into(),
            dims: vec![1 << 32, 1 << 32, 0],
            kind: 0,
            offset: 0,
        };
        assert_eq!(tensor.elements(), 0);
        assert_eq!(tensor.bytes_as(8), Some(0));
        let huge = TensorInfo {
            dims: vec![1 << 32, 1 << 32],
            ..tensor
        };
        assert_eq!(huge.bytes_as(0), Some(u64::MAX));
    }

    #[test]
    fn unsupported_architecture_and_missing_template_are_refused() {
        let gemma = [
            ("general.architecture", "gemma3"),
            ("tokenizer.ggml.model", "llama"),
            ("tokenizer.chat_template", "x"),
        ];
        let error = check(&gguf(&gemma, 8, 32)).unwrap_err();
        assert!(
            error
                .0
                .starts_with("architecture \"gemma3\" is not supported"),
            "{error}"
        );
        let base = [
            ("general.architecture", "llama"),
            ("tokenizer.ggml.model", "gpt2"),
        ];
        assert!(
            check(&gguf(&base, 8, 32))
                .unwrap_err()
                .0
                .contains("no chat template")
        );
        assert!(
            check(b"PK\x03\x04 definitely a zip file")
                .unwrap_err()
                .0
                .contains("not a GGUF file")
        );
    }
}
