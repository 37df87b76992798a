//! GGUF (llama.cpp's single-file model format, v2 and v3): a bounds-checked reader and a small F32 writer.
//!
//! The reader keeps the file's bytes and parses only the header (metadata and tensor table); tensor data
//! is dequantised on request, so a 100 MB model costs one copy of its bytes until a tensor is asked for.
//! Every count and length in the header is checked against the bytes that remain before anything is
//! allocated, so a corrupt or hostile file gives an error naming what was being read, never a panic or a
//! huge allocation.
//!
//! Layout (all little-endian): magic `GGUF`, u32 version, u64 tensor count, u64 metadata count, the
//! metadata key/value pairs, the tensor infos (name, n_dims, dims with ne0 first, u32 type, u64 offset),
//! padding to `general.alignment` (default 32), then the tensor data, each tensor at its offset from the
//! start of that data section.
//!
//! Tensors decode to f32 from F32, F16, BF16, the legacy quants Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and the
//! K-quants Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K, bit-identically to ggml (see [`dequantize`]).

use std::collections::HashMap;
use std::fmt;

/// Alignment of the data section and of each tensor when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml's GGML_MAX_DIMS: no tensor has more dimensions.
pub const MAX_DIMS: u32 = 4;
/// Nesting limit for array metadata values: real files use one level; the limit keeps the recursion bounded.
const MAX_ARRAY_DEPTH: usize = 8;

/// Why a GGUF file could not be read, or a value in it could not be returned as asked.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("not a GGUF file: the first bytes are {found:02x?}, expected \"GGUF\"")]
    BadMagic { found: Vec<u8> },
    #[error("unsupported GGUF version {0} (this reader supports versions 2 and 3)")]
    UnsupportedVersion(u32),
    #[error("truncated file: {what} needs {needed} bytes at byte {offset}, but the file has {len} bytes")]
    Truncated { what: String, offset: u64, needed: u64, len: u64 },
    #[error("{what}: count {count} cannot fit in the {remaining} bytes left after byte {offset}")]
    CountTooLarge { what: String, count: u64, remaining: u64, offset: u64 },
    #[error("{what} at byte {offset}: {reason}")]
    Invalid { what: String, offset: u64, reason: String },
    #[error("metadata key {0:?} is missing")]
    MissingKey(String),
    #[error("metadata key {key:?}: expected {expected}, found {found}")]
    WrongType { key: String, expected: &'static str, found: String },
    #[error("no tensor named {0:?}")]
    NoTensor(String),
    #[error("tensor {name}: data ends at byte {end} but the file has {len} bytes")]
    TensorOutOfBounds { name: String, end: u64, len: u64 },
    #[error("tensor {name}: type {dtype} (ggml type {id}) is not supported")]
    UnsupportedType { name: String, dtype: GgmlType, id: u32 },
    #[error("tensor {name}: {reason}")]
    BadTensor { name: String, reason: String },
    #[error("cannot write GGUF: {0}")]
    Write(String),
}

/// A metadata value. GGUF arrays are homogeneous; the reader keeps them as a list of values.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(Vec<MetaValue>),
}

impl MetaValue {
    /// GGUF's type code for this value.
    pub fn type_id(&self) -> u32 {
        match self {
            MetaValue::U8(_) => 0,
            MetaValue::I8(_) => 1,
            MetaValue::U16(_) => 2,
            MetaValue::I16(_) => 3,
            MetaValue::U32(_) => 4,
            MetaValue::I32(_) => 5,
            MetaValue::F32(_) => 6,
            MetaValue::Bool(_) => 7,
            MetaValue::String(_) => 8,
            MetaValue::Array(_) => 9,
            MetaValue::U64(_) => 10,
            MetaValue::I64(_) => 11,
            MetaValue::F64(_) => 12,
        }
    }

    /// A short name of the type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            MetaValue::U8(_) => "u8",
            MetaValue::I8(_) => "i8",
            MetaValue::U16(_) => "u16",
            MetaValue::I16(_) => "i16",
            MetaValue::U32(_) => "u32",
            MetaValue::I32(_) => "i32",
            MetaValue::U64(_) => "u64",
            MetaValue::I64(_) => "i64",
            MetaValue::F32(_) => "f32",
            MetaValue::F64(_) => "f64",
            MetaValue::Bool(_) => "bool",
            MetaValue::String(_) => "string",
            MetaValue::Array(_) => "array",
        }
    }

    /// The value as a signed integer, for any integer type that fits in i64.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            MetaValue::U8(v) => Some(v.into()),
            MetaValue::I8(v) => Some(v.into()),
            MetaValue::U16(v) => Some(v.into()),
            MetaValue::I16(v) => Some(v.into()),
            MetaValue::U32(v) => Some(v.into()),
            MetaValue::I32(v) => Some(v.into()),
            MetaValue::U64(v) => i64::try_from(v).ok(),
            MetaValue::I64(v) => Some(v),
            _ => None,
        }
    }

    /// The value as an unsigned integer, for any non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            MetaValue::U64(v) => Some(v),
            _ => self.as_i64().and_then(|v| u64::try_from(v).ok()),
        }
    }

    /// The value as f32, for F32 and F64 (rounded).
    pub fn as_f32(&self) -> Option<f32> {
        match *self {
            MetaValue::F32(v) => Some(v),
            MetaValue::F64(v) => Some(v as f32),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::String(s) => Some(s),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            MetaValue::Array(items) => match items.first() {
                Some(first) => format!("array of {} ({} items)", first.type_name(), items.len()),
                None => "empty array".to_string(),
            },
            other => other.type_name().to_string(),
        }
    }
}

/// ggml tensor types (the `ggml_type` enum's numbers). Types this reader cannot dequantise are still
/// named, so that errors say what a file holds; numbers it does not know are kept in `Other`.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2_K,
    Q3_K,
    Q4_K,
    Q5_K,
    Q6_K,
    Q8_K,
    I8,
    I16,
    I32,
    I64,
    F64,
    BF16,
    Other(u32),
}

impl GgmlType {
    pub fn from_id(id: u32) -> GgmlType {
        match id {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            2 => GgmlType::Q4_0,
            3 => GgmlType::Q4_1,
            6 => GgmlType::Q5_0,
            7 => GgmlType::Q5_1,
            8 => GgmlType::Q8_0,
            9 => GgmlType::Q8_1,
            10 => GgmlType::Q2_K,
            11 => GgmlType::Q3_K,
            12 => GgmlType::Q4_K,
            13 => GgmlType::Q5_K,
            14 => GgmlType::Q6_K,
            15 => GgmlType::Q8_K,
            24 => GgmlType::I8,
            25 => GgmlType::I16,
            26 => GgmlType::I32,
            27 => GgmlType::I64,
            28 => GgmlType::F64,
            30 => GgmlType::BF16,
            other => GgmlType::Other(other),
        }
    }

    pub fn id(self) -> u32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q4_0 => 2,
            GgmlType::Q4_1 => 3,
            GgmlType::Q5_0 => 6,
            GgmlType::Q5_1 => 7,
            GgmlType::Q8_0 => 8,
            GgmlType::Q8_1 => 9,
            GgmlType::Q2_K => 10,
            GgmlType::Q3_K => 11,
            GgmlType::Q4_K => 12,
            GgmlType::Q5_K => 13,
            GgmlType::Q6_K => 14,
            GgmlType::Q8_K => 15,
            GgmlType::I8 => 24,
            GgmlType::I16 => 25,
            GgmlType::I32 => 26,
            GgmlType::I64 => 27,
            GgmlType::F64 => 28,
            GgmlType::BF16 => 30,
            GgmlType::Other(id) => id,
        }
    }

    /// (elements per block, bytes per block), from ggml's type traits. Known even for types that cannot
    /// be dequantised yet, so that every tensor's extent can be checked against the file when it is parsed.
    pub fn block_layout(self) -> Option<(u64, u64)> {
        const QK_K: u64 = 256;
        Some(match self {
            GgmlType::F32 | GgmlType::I32 => (1, 4),
            GgmlType::F16 | GgmlType::BF16 | GgmlType::I16 => (1, 2),
            GgmlType::I8 => (1, 1),
            GgmlType::I64 | GgmlType::F64 => (1, 8),
            GgmlType::Q4_0 => (32, 18),
            GgmlType::Q4_1 => (32, 20),
            GgmlType::Q5_0 => (32, 22),
            GgmlType::Q5_1 => (32, 24),
            GgmlType::Q8_0 => (32, 34),
            GgmlType::Q8_1 => (32, 36),
            GgmlType::Q2_K => (QK_K, 84),
            GgmlType::Q3_K => (QK_K, 110),
            GgmlType::Q4_K => (QK_K, 144),
            GgmlType::Q5_K => (QK_K, 176),
            GgmlType::Q6_K => (QK_K, 210),
            GgmlType::Q8_K => (QK_K, 292),
            GgmlType::Other(_) => return None,
        })
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GgmlType::Other(_) => write!(f, "unknown"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// One entry of the tensor table.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// GGUF order: ne0 (the contiguous, innermost dimension) first.
    pub dims: Vec<u64>,
    pub dtype: GgmlType,
    /// Offset from the start of the data section (not from the start of the file).
    pub offset: u64,
}

impl TensorInfo {
    /// Number of elements (the product of the dims; checked when the file is parsed).
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Shape in row-major order, outermost first: the GGUF dims reversed, i.e. Hugging Face's [out, in].
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }
}

/// A parsed GGUF file: metadata and tensor table, plus the bytes from which tensors are decoded lazily.
pub struct Gguf {
    bytes: Vec<u8>,
    version: u32,
    alignment: u64,
    data_start: u64,
    metadata: Vec<(String, MetaValue)>,
    meta_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
}

impl fmt::Debug for Gguf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gguf")
            .field("version", &self.version)
            .field("bytes", &self.bytes.len())
            .field("metadata", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

/// A read position over the file that checks every read against the end and names what it was reading.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<&'a [u8], GgufError> {
        if n > self.remaining() as u64 {
            return Err(GgufError::Truncated {
                what: what(),
                offset: self.pos as u64,
                needed: n,
                len: self.buf.len() as u64,
            });
        }
        let n = n as usize;
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N], GgufError> {
        let bytes = self.take(N as u64, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A count of items each at least `min_item_bytes` long: refused if they cannot fit in what is left,
    /// so that no allocation is sized from an unchecked number.
    fn count(&mut self, min_item_bytes: u64, what: &dyn Fn() -> String) -> Result<u64, GgufError> {
        let offset = self.pos as u64;
        let count = self.u64(what)?;
        let remaining = self.remaining() as u64;
        if count.checked_mul(min_item_bytes).is_none_or(|need| need > remaining) {
            return Err(GgufError::CountTooLarge { what: what(), count, remaining, offset });
        }
        Ok(count)
    }

    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String, GgufError> {
        let len = self.u64(&|| format!("{} (string length)", what()))?;
        let offset = self.pos as u64;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|e| GgufError::Invalid {
            what: what(),
            offset,
            reason: format!("string is not valid UTF-8 ({e})"),
        })
    }

    fn value(&mut self, type_id: u32, depth: usize, what: &dyn Fn() -> String) -> Result<MetaValue, GgufError> {
        Ok(match type_id {
            0 => MetaValue::U8(self.array::<1>(what)?[0]),
            1 => MetaValue::I8(i8::from_le_bytes(self.array(what)?)),
            2 => MetaValue::U16(u16::from_le_bytes(self.array(what)?)),
            3 => MetaValue::I16(i16::from_le_bytes(self.array(what)?)),
            4 => MetaValue::U32(u32::from_le_bytes(self.array(what)?)),
            5 => MetaValue::I32(i32::from_le_bytes(self.array(what)?)),
            6 => MetaValue::F32(f32::from_le_bytes(self.array(what)?)),
            7 => {
                let offset = self.pos as u64;
                match self.array::<1>(what)?[0] {
                    0 => MetaValue::Bool(false),
                    1 => MetaValue::Bool(true),
                    b => {
                        return Err(GgufError::Invalid {
                            what: what(),
                            offset,
                            reason: format!("bool byte is {b}, expected 0 or 1"),
                        });
                    }
                }
            }
            8 => MetaValue::String(self.string(what)?),
            9 => {
                let offset = self.pos as u64;
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(GgufError::Invalid {
                        what: what(),
                        offset,
                        reason: format!("arrays nested deeper than {MAX_ARRAY_DEPTH}"),
                    });
                }
                let elem_type = self.u32(&|| format!("{} (array element type)", what()))?;
                let min = min_value_bytes(elem_type).ok_or_else(|| GgufError::Invalid {
                    what: what(),
                    offset,
                    reason: format!("unknown array element type {elem_type}"),
                })?;
                let n = self.count(min, &|| format!("{} (array length)", what()))?;
                let mut items = Vec::with_capacity(n as usize);
                for i in 0..n {
                    items.push(self.value(elem_type, depth + 1, &|| format!("{} element {i}", what()))?);
                }
                MetaValue::Array(items)
            }
            10 => MetaValue::U64(u64::from_le_bytes(self.array(what)?)),
            11 => MetaValue::I64(i64::from_le_bytes(self.array(what)?)),
            12 => MetaValue::F64(f64::from_le_bytes(self.array(what)?)),
            other => {
                return Err(GgufError::Invalid {
                    what: what(),
                    offset: self.pos as u64,
                    reason: format!("unknown metadata value type {other}"),
                });
            }
        })
    }
}

/// The fewest bytes a value of this type occupies (strings and arrays: their u64 length; an array adds
/// its element type). None for an unknown type.
fn min_value_bytes(type_id: u32) -> Option<u64> {
    Some(match type_id {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        8 => 8,
        9 => 12,
        10..=12 => 8,
        _ => return None,
    })
}

impl Gguf {
    /// Parses the header of a GGUF v2/v3 file and checks that every tensor's data lies inside `bytes`.
    pub fn parse(bytes: Vec<u8>) -> Result<Gguf, GgufError> {
        let mut c = Cursor { buf: &bytes, pos: 0 };
        let len = bytes.len() as u64;
        let magic = c
            .take(4, &|| "magic".to_string())
            .map_err(|_| GgufError::BadMagic { found: bytes.iter().take(4).copied().collect() })?;
        if magic != b"GGUF" {
            return Err(GgufError::BadMagic { found: magic.to_vec() });
        }
        let version = c.u32(&|| "version".to_string())?;
        if !(2..=3).contains(&version) {
            return Err(GgufError::UnsupportedVersion(version));
        }
        // A tensor info is at least: name length (8) + n_dims (4) + type (4) + offset (8).
        let n_tensors = c.u64(&|| "tensor count".to_string())?;
        let n_kv_offset = c.pos as u64;
        let n_kv = c.u64(&|| "metadata count".to_string())?;
        let remaining = c.remaining() as u64;
        // A key/value pair is at least: key length (8) + value type (4) + 1 byte of value.
        if n_kv.checked_mul(13).is_none_or(|n| n > remaining) {
            return Err(GgufError::CountTooLarge {
                what: "metadata count".to_string(),
                count: n_kv,
                remaining,
                offset: n_kv_offset,
            });
        }
        if n_tensors.checked_mul(24).is_none_or(|n| n > remaining) {
            return Err(GgufError::CountTooLarge {
                what: "tensor count".to_string(),
                count: n_tensors,
                remaining,
                offset: 8,
            });
        }

        let mut metadata = Vec::with_capacity(n_kv as usize);
        let mut meta_index = HashMap::with_capacity(n_kv as usize);
        for i in 0..n_kv {
            let key_offset = c.pos as u64;
            let key = c.string(&|| format!("metadata entry {i} (key)"))?;
            let type_id = c.u32(&|| format!("metadata key {key:?} (value type)"))?;
            let value = c.value(type_id, 0, &|| format!("metadata key {key:?}"))?;
            if meta_index.insert(key.clone(), metadata.len()).is_some() {
                return Err(GgufError::Invalid {
                    what: format!("metadata key {key:?}"),
                    offset: key_offset,
                    reason: "duplicate key".to_string(),
                });
            }
            metadata.push((key, value));
        }

        let alignment = match meta_index.get("general.alignment").map(|&i| &metadata[i].1) {
            None => DEFAULT_ALIGNMENT,
            Some(v) => match v.as_u64() {
                Some(a) if a > 0 && a.is_power_of_two() => a,
                _ => {
                    return Err(GgufError::Invalid {
                        what: "metadata key \"general.alignment\"".to_string(),
                        offset: 0,
                        reason: format!("expected a power of two, found {v:?}"),
                    });
                }
            },
        };

        let mut tensors = Vec::with_capacity(n_tensors as usize);
        let mut tensor_index = HashMap::with_capacity(n_tensors as usize);
        for i in 0..n_tensors {
            let info_offset = c.pos as u64;
            let name = c.string(&|| format!("tensor info {i} (name)"))?;
            let n_dims = c.u32(&|| format!("tensor {name} (n_dims)"))?;
            if n_dims > MAX_DIMS {
                return Err(GgufError::Invalid {
                    what: format!("tensor {name}"),
                    offset: info_offset,
                    reason: format!("{n_dims} dimensions, at most {MAX_DIMS} are allowed"),
                });
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for d in 0..n_dims {
                dims.push(c.u64(&|| format!("tensor {name} (dim {d})"))?);
            }
            let dtype = GgmlType::from_id(c.u32(&|| format!("tensor {name} (type)"))?);
            let offset = c.u64(&|| format!("tensor {name} (offset)"))?;
            let bad =
                |reason: String| GgufError::Invalid { what: format!("tensor {name}"), offset: info_offset, reason };
            dims.iter()
                .try_fold(1u64, |acc, &d| acc.checked_mul(d))
                .filter(|&n| usize::try_from(n).is_ok() && i64::try_from(n).is_ok())
                .ok_or_else(|| bad(format!("element count of dims {dims:?} overflows")))?;
            if offset % alignment != 0 {
                return Err(bad(format!("data offset {offset} is not a multiple of the alignment {alignment}")));
            }
            if let Some((block, _)) = dtype.block_layout() {
                let ne0 = dims.first().copied().unwrap_or(1);
                if ne0 % block != 0 {
                    return Err(bad(format!(
                        "first dimension {ne0} is not a multiple of the {dtype} block size {block}"
                    )));
                }
            }
            if tensor_index.insert(name.clone(), tensors.len()).is_some() {
                return Err(bad("duplicate tensor name".to_string()));
            }
            tensors.push(TensorInfo { name, dims, dtype, offset });
        }

        let data_start = (c.pos as u64).div_ceil(alignment) * alignment;
        let gguf = Gguf { bytes, version, alignment, data_start, metadata, meta_index, tensors, tensor_index };
        // Check every tensor's extent now, so that a truncated file fails at once, naming the tensor.
        for t in &gguf.tensors {
            if t.dtype.block_layout().is_some() {
                gguf.tensor_range(t)?;
            } else {
                let start = data_start.checked_add(t.offset).filter(|&s| s <= len);
                if start.is_none() {
                    return Err(GgufError::TensorOutOfBounds {
                        name: t.name.clone(),
                        end: data_start.saturating_add(t.offset),
                        len,
                    });
                }
            }
        }
        Ok(gguf)
    }

    /// The file format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Alignment of the data section (`general.alignment`, default 32).
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Byte offset of the data section in the file.
    pub fn data_start(&self) -> u64 {
        self.data_start
    }

    /// The raw bytes of the file.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// All metadata, in file order.
    pub fn metadata_entries(&self) -> &[(String, MetaValue)] {
        &self.metadata
    }

    pub fn metadata(&self, key: &str) -> Option<&MetaValue> {
        self.meta_index.get(key).map(|&i| &self.metadata[i].1)
    }

    fn require(&self, key: &str) -> Result<&MetaValue, GgufError> {
        self.metadata(key).ok_or_else(|| GgufError::MissingKey(key.to_string()))
    }

    fn wrong(key: &str, expected: &'static str, found: &MetaValue) -> GgufError {
        GgufError::WrongType { key: key.to_string(), expected, found: found.describe() }
    }

    /// An integer of any GGUF integer type, as u64 (negative values are an error).
    pub fn get_u64(&self, key: &str) -> Result<u64, GgufError> {
        let v = self.require(key)?;
        v.as_u64().ok_or_else(|| Self::wrong(key, "a non-negative integer", v))
    }

    /// An integer of any GGUF integer type, as i64.
    pub fn get_i64(&self, key: &str) -> Result<i64, GgufError> {
        let v = self.require(key)?;
        v.as_i64().ok_or_else(|| Self::wrong(key, "an integer", v))
    }

    /// An F32 or F64 value, as f32.
    pub fn get_f32(&self, key: &str) -> Result<f32, GgufError> {
        let v = self.require(key)?;
        v.as_f32().ok_or_else(|| Self::wrong(key, "a float", v))
    }

    pub fn get_bool(&self, key: &str) -> Result<bool, GgufError> {
        match self.require(key)? {
            MetaValue::Bool(b) => Ok(*b),
            v => Err(Self::wrong(key, "a bool", v)),
        }
    }

    pub fn get_str(&self, key: &str) -> Result<&str, GgufError> {
        let v = self.require(key)?;
        v.as_str().ok_or_else(|| Self::wrong(key, "a string", v))
    }

    pub fn get_array(&self, key: &str) -> Result<&[MetaValue], GgufError> {
        match self.require(key)? {
            MetaValue::Array(items) => Ok(items),
            v => Err(Self::wrong(key, "an array", v)),
        }
    }

    /// An array of strings, borrowed (a vocabulary has tens of thousands).
    pub fn get_str_array(&self, key: &str) -> Result<Vec<&str>, GgufError> {
        let v = self.require(key)?;
        let items = match v {
            MetaValue::Array(items) => items,
            _ => return Err(Self::wrong(key, "an array of strings", v)),
        };
        items.iter().map(|i| i.as_str().ok_or_else(|| Self::wrong(key, "an array of strings", v))).collect()
    }

    /// An array of integers of any integer type, as i64.
    pub fn get_i64_array(&self, key: &str) -> Result<Vec<i64>, GgufError> {
        let v = self.require(key)?;
        let items = match v {
            MetaValue::Array(items) => items,
            _ => return Err(Self::wrong(key, "an array of integers", v)),
        };
        items.iter().map(|i| i.as_i64().ok_or_else(|| Self::wrong(key, "an array of integers", v))).collect()
    }

    /// Tensor names in file order.
    pub fn tensor_names(&self) -> impl Iterator<Item = &str> {
        self.tensors.iter().map(|t| t.name.as_str())
    }

    /// The tensor table, in file order.
    pub fn tensor_infos(&self) -> &[TensorInfo] {
        &self.tensors
    }

    pub fn tensor_info(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// Byte range of a tensor's data in the file; errors for types whose size is unknown, or data past
    /// the end of the file.
    fn tensor_range(&self, t: &TensorInfo) -> Result<std::ops::Range<usize>, GgufError> {
        let len = self.bytes.len() as u64;
        let (block, block_bytes) = t.dtype.block_layout().ok_or_else(|| GgufError::UnsupportedType {
            name: t.name.clone(),
            dtype: t.dtype,
            id: t.dtype.id(),
        })?;
        let overflow = || GgufError::BadTensor { name: t.name.clone(), reason: "data size overflows".to_string() };
        let size = (t.n_elements() / block).checked_mul(block_bytes).ok_or_else(overflow)?;
        let start = self.data_start.checked_add(t.offset).ok_or_else(overflow)?;
        let end = start.checked_add(size).ok_or_else(overflow)?;
        if end > len {
            return Err(GgufError::TensorOutOfBounds { name: t.name.clone(), end, len });
        }
        Ok(start as usize..end as usize)
    }

    /// The raw (possibly quantised) bytes of a tensor.
    pub fn tensor_data(&self, name: &str) -> Result<&[u8], GgufError> {
        let t = self.tensor_info(name).ok_or_else(|| GgufError::NoTensor(name.to_string()))?;
        Ok(&self.bytes[self.tensor_range(t)?])
    }

    /// A tensor dequantised to f32, with its shape in row-major order outermost first (the GGUF dims
    /// reversed: GGUF's [576, 49152] token_embd comes back as [49152, 576], Hugging Face's [out, in]).
    pub fn tensor_f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), GgufError> {
        let t = self.tensor_info(name).ok_or_else(|| GgufError::NoTensor(name.to_string()))?;
        let data = &self.bytes[self.tensor_range(t)?];
        let n = t.n_elements() as usize;
        let values = dequantize(t.dtype, data, n).ok_or_else(|| GgufError::UnsupportedType {
            name: t.name.clone(),
            dtype: t.dtype,
            id: t.dtype.id(),
        })?;
        Ok((t.shape(), values))
    }
}

/// Dequantises `n` elements of `dtype` from `data`. None when `data` is not exactly `n / block` blocks, or
/// for a type without a decoder (Q8_1, which only exists inside ggml's matmuls, and the integer types).
///
/// Every value is computed with the f32 operations of ggml's reference `dequantize_row_*`, in its order
/// (e.g. Q4_K: `(d * sc) * q - dmin * m`), and f16 → f32 is exact, so the results are bit-identical to
/// ggml's and gguf-py's, not merely close.
pub fn dequantize(dtype: GgmlType, data: &[u8], n: usize) -> Option<Vec<f32>> {
    let (block, block_bytes) = dtype.block_layout()?;
    let (block, block_bytes) = (block as usize, block_bytes as usize);
    if !n.is_multiple_of(block) || data.len() != n / block * block_bytes {
        return None;
    }
    // Unquantised types in one pass; quantised ones block by block (the indirect call is per block).
    let decode_block: fn(&[u8], &mut Vec<f32>) = match dtype {
        GgmlType::F32 => {
            return Some(data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect());
        }
        GgmlType::F16 => return Some(data.chunks_exact(2).map(|b| f16_at(b, 0)).collect()),
        GgmlType::BF16 => {
            return Some(
                data.chunks_exact(2)
                    .map(|b| half::bf16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32())
                    .collect(),
            );
        }
        GgmlType::Q4_0 => dequant_q4_0,
        GgmlType::Q4_1 => dequant_q4_1,
        GgmlType::Q5_0 => dequant_q5_0,
        GgmlType::Q5_1 => dequant_q5_1,
        GgmlType::Q8_0 => dequant_q8_0,
        GgmlType::Q2_K => dequant_q2_k,
        GgmlType::Q3_K => dequant_q3_k,
        GgmlType::Q4_K => dequant_q4_k,
        GgmlType::Q5_K => dequant_q5_k,
        GgmlType::Q6_K => dequant_q6_k,
        GgmlType::Q8_K => dequant_q8_k,
        _ => return None,
    };
    let mut out = Vec::with_capacity(n);
    for b in data.chunks_exact(block_bytes) {
        decode_block(b, &mut out);
    }
    Some(out)
}

// Each `dequant_*` decodes one block (its length is checked by `dequantize`) and appends its values in
// element order. Layouts are ggml's `block_*` structs, fields in the order named.

/// The 32 unsigned quants of a Q4/Q5 block in element order: element j < 16 is the low nibble of qs[j],
/// element j + 16 its high nibble; Q5's bit j of `qh` is bit 4 of element j (Q4 passes 0).
fn legacy_quants(qs: &[u8], qh: u32) -> impl Iterator<Item = u8> + '_ {
    (0..32).map(move |j| ((qs[j % 16] >> (4 * (j / 16))) & 0x0f) | ((((qh >> j) & 1) as u8) << 4))
}

/// Q4_0 (d, qs[16]): `(q - 8) d`.
fn dequant_q4_0(b: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(b, 0);
    out.extend(legacy_quants(&b[2..18], 0).map(|q| (q as i32 - 8) as f32 * d));
}

/// Q4_1 (d, m, qs[16]): `q d + m`.
fn dequant_q4_1(b: &[u8], out: &mut Vec<f32>) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    out.extend(legacy_quants(&b[4..20], 0).map(|q| q as f32 * d + m));
}

/// Q5_0 (d, qh: u32, qs[16]): `(q - 16) d`.
fn dequant_q5_0(b: &[u8], out: &mut Vec<f32>) {
    let (d, qh) = (f16_at(b, 0), u32::from_le_bytes([b[2], b[3], b[4], b[5]]));
    out.extend(legacy_quants(&b[6..22], qh).map(|q| (q as i32 - 16) as f32 * d));
}

/// Q5_1 (d, m, qh: u32, qs[16]): `q d + m`.
fn dequant_q5_1(b: &[u8], out: &mut Vec<f32>) {
    let (d, m, qh) = (f16_at(b, 0), f16_at(b, 2), u32::from_le_bytes([b[4], b[5], b[6], b[7]]));
    out.extend(legacy_quants(&b[8..24], qh).map(|q| q as f32 * d + m));
}

/// Q8_0 (d, qs: i8[32]): `q d`.
fn dequant_q8_0(b: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(b, 0);
    out.extend(b[2..34].iter().map(|&q| (q as i8) as f32 * d));
}

/// Q8_K (d: f32, qs: i8[256], bsums: i16[16]): `d q`; the block sums only speed up ggml's dot products.
fn dequant_q8_k(b: &[u8], out: &mut Vec<f32>) {
    let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    out.extend(b[4..260].iter().map(|&q| d * (q as i8) as f32));
}

/// The 16 two-bit quants of sub-block s (0..16) of Q2_K/Q3_K: the values of half s / 8 of the super-block
/// come from qs[32 (s / 8)..][..32], whose bytes hold four 2-bit planes; sub-block s reads plane (s / 2) % 4
/// of bytes 16 (s % 2)..16 (s % 2) + 16.
fn two_bit_quants(qs: &[u8], s: usize) -> impl Iterator<Item = u8> + '_ {
    let shift = 2 * ((s / 2) % 4);
    qs[32 * (s / 8) + 16 * (s % 2)..][..16].iter().map(move |&q| (q >> shift) & 3)
}

/// Q2_K (scales[16], qs[64], d, dmin): 16 sub-blocks of 16; scale byte s holds the sub-block's 4-bit scale
/// (low nibble) and min (high): `(d sc) q - dmin m`.
fn dequant_q2_k(b: &[u8], out: &mut Vec<f32>) {
    let (scales, qs, d, dmin) = (&b[..16], &b[16..80], f16_at(b, 80), f16_at(b, 82));
    for (s, &sc) in scales.iter().enumerate() {
        let (dl, ml) = (d * (sc & 0x0f) as f32, dmin * (sc >> 4) as f32);
        out.extend(two_bit_quants(qs, s).map(|q| dl * q as f32 - ml));
    }
}

/// Q3_K (hmask[32], qs[64], scales[12], d): 16 sub-blocks of 16 with 6-bit scales offset by 32:
/// `(d (sc - 32)) q`, where q is the 2-bit quant minus 4 unless its hmask bit is set. Sub-block s takes bit
/// s / 2 of hmask[16 (s % 2)..][..16]; its scale is the nibble s / 8 of scales[s % 8] with bits 2 (s / 4)..
/// of scales[8 + s % 4] on top.
fn dequant_q3_k(b: &[u8], out: &mut Vec<f32>) {
    let (hmask, qs, scales, d) = (&b[..32], &b[32..96], &b[96..108], f16_at(b, 108));
    for s in 0..16 {
        let low = (scales[s % 8] >> (4 * (s / 8))) & 0x0f;
        let high = (scales[8 + s % 4] >> (2 * (s / 4))) & 3;
        let dl = d * ((low | (high << 4)) as i32 - 32) as f32;
        let hmask = &hmask[16 * (s % 2)..][..16];
        out.extend(two_bit_quants(qs, s).zip(hmask).map(|(q, &m)| {
            let offset = if (m >> (s / 2)) & 1 == 1 { 0 } else { 4 };
            dl * (q as i32 - offset) as f32
        }));
    }
}

/// Scale and min (6 bits each) of sub-block j (0..8) of Q4_K/Q5_K, packed in 12 bytes: for j < 4 the low 6
/// bits of bytes j (scale) and j + 4 (min); for j >= 4 the nibbles of byte j + 4 (low: scale, high: min)
/// with the top 2 bits of bytes j - 4 (scale) and j (min) above them.
fn scale_min_k4(scales: &[u8], j: usize) -> (u8, u8) {
    if j < 4 {
        (scales[j] & 63, scales[j + 4] & 63)
    } else {
        ((scales[j + 4] & 0x0f) | ((scales[j - 4] >> 6) << 4), (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4))
    }
}

/// Q4_K and Q5_K (d, dmin, scales[12], Q5_K's qh[32], qs[128]): 8 sub-blocks of 32, `(d sc) q - dmin m`.
/// Sub-blocks 2i and 2i + 1 are the low and high nibbles of qs[32 i..][..32]; Q5_K's fifth bit of element l
/// of sub-block s is bit s of qh[l].
fn dequant_k4(b: &[u8], qh: Option<&[u8]>, qs: &[u8], out: &mut Vec<f32>) {
    let (d, dmin, scales) = (f16_at(b, 0), f16_at(b, 2), &b[4..16]);
    for s in 0..8 {
        let (sc, m) = scale_min_k4(scales, s);
        let (d1, m1) = (d * sc as f32, dmin * m as f32);
        let (qs, shift) = (&qs[32 * (s / 2)..][..32], 4 * (s % 2));
        out.extend((0..32).map(|l| {
            let high = qh.map_or(0, |qh| (qh[l] >> s) & 1);
            let q = ((qs[l] >> shift) & 0x0f) | (high << 4);
            d1 * q as f32 - m1
        }));
    }
}

fn dequant_q4_k(b: &[u8], out: &mut Vec<f32>) {
    dequant_k4(b, None, &b[16..144], out);
}

fn dequant_q5_k(b: &[u8], out: &mut Vec<f32>) {
    dequant_k4(b, Some(&b[16..48]), &b[48..176], out);
}

/// Q6_K (ql[128], qh[64], scales: i8[16], d): 16 sub-blocks of 16, `(d sc) (q - 32)` with 6-bit q. Half h
/// of the super-block uses ql[64 h..][..64], qh[32 h..][..32] and scales[8 h..]; in it, quarter k (values
/// l = 0..32) takes nibble k / 2 of ql[l + 32 (k % 2)] as its low bits, bits 2k..2k + 2 of qh[l] as its
/// high bits, and scale 2k + l / 16.
fn dequant_q6_k(b: &[u8], out: &mut Vec<f32>) {
    let (ql, qh, scales, d) = (&b[..128], &b[128..192], &b[192..208], f16_at(b, 208));
    for h in 0..2 {
        let (ql, qh, scales) = (&ql[64 * h..][..64], &qh[32 * h..][..32], &scales[8 * h..][..8]);
        for k in 0..4 {
            out.extend((0..32).map(|l| {
                let low = (ql[l + 32 * (k % 2)] >> (4 * (k / 2))) & 0x0f;
                let q = (low | (((qh[l] >> (2 * k)) & 3) << 4)) as i32 - 32;
                d * (scales[2 * k + l / 16] as i8) as f32 * q as f32
            }));
        }
    }
}

fn f16_at(b: &[u8], at: usize) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

/// Writes a GGUF v3 file with F32 tensors, alignment 32 (or `general.alignment` if the metadata sets a
/// power of two). Shapes are row-major, outermost first, and are written reversed as GGUF dims.
///
/// # Panics
/// On inputs that are programming errors rather than data: see [`try_write_gguf`] for the checked form.
pub fn write_gguf(metadata: &[(String, MetaValue)], tensors: &[(String, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    match try_write_gguf(metadata, tensors) {
        Ok(bytes) => bytes,
        Err(e) => panic!("{e}"),
    }
}

/// [`write_gguf`], returning an error for a shape that does not match its data, more than 4 dims, a
/// mixed-type array or a duplicate name.
pub fn try_write_gguf(
    metadata: &[(String, MetaValue)],
    tensors: &[(String, Vec<usize>, Vec<f32>)],
) -> Result<Vec<u8>, GgufError> {
    let alignment = metadata
        .iter()
        .find(|(k, _)| k == "general.alignment")
        .and_then(|(_, v)| v.as_u64())
        .filter(|a| *a > 0 && a.is_power_of_two())
        .unwrap_or(DEFAULT_ALIGNMENT) as usize;
    let mut out = Vec::new();
    out.extend_from_slice(b"GGUF");
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
    let mut seen = std::collections::HashSet::new();
    for (key, value) in metadata {
        if !seen.insert(key.as_str()) {
            return Err(GgufError::Write(format!("duplicate metadata key {key:?}")));
        }
        write_str(&mut out, key);
        out.extend_from_slice(&value.type_id().to_le_bytes());
        write_value(&mut out, key, value)?;
    }
    let mut offset = 0usize;
    let mut seen = std::collections::HashSet::new();
    for (name, shape, data) in tensors {
        if !seen.insert(name.as_str()) {
            return Err(GgufError::Write(format!("duplicate tensor name {name:?}")));
        }
        if shape.len() > MAX_DIMS as usize {
            return Err(GgufError::Write(format!("tensor {name}: {} dims, at most {MAX_DIMS}", shape.len())));
        }
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(GgufError::Write(format!(
                "tensor {name}: shape {shape:?} has {n} elements but {} values were given",
                data.len()
            )));
        }
        write_str(&mut out, name);
        out.extend_from_slice(&(shape.len() as u32).to_le_bytes());
        for &d in shape.iter().rev() {
            out.extend_from_slice(&(d as u64).to_le_bytes());
        }
        out.extend_from_slice(&GgmlType::F32.id().to_le_bytes());
        out.extend_from_slice(&(offset as u64).to_le_bytes());
        offset = (offset + 4 * n).div_ceil(alignment) * alignment;
    }
    out.resize(out.len().div_ceil(alignment) * alignment, 0);
    for (_, _, data) in tensors {
        for v in data {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.resize(out.len().div_ceil(alignment) * alignment, 0);
    }
    Ok(out)
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn write_value(out: &mut Vec<u8>, key: &str, value: &MetaValue) -> Result<(), GgufError> {
    match value {
        MetaValue::U8(v) => out.push(*v),
        MetaValue::I8(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::Bool(v) => out.push(u8::from(*v)),
        MetaValue::String(s) => write_str(out, s),
        MetaValue::Array(items) => {
            // An empty array is written as an array of u8: GGUF needs some element type.
            let elem_type = items.first().map_or(0, MetaValue::type_id);
            out.extend_from_slice(&elem_type.to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for item in items {
                if item.type_id() != elem_type {
                    return Err(GgufError::Write(format!(
                        "metadata key {key:?}: array mixes {} and {}",
                        items[0].type_name(),
                        item.type_name()
                    )));
                }
                write_value(out, key, item)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made by tests/fixtures/make_fixtures.py with gguf-py (see there); alignment 64.
    const FIXTURE: &[u8] = include_bytes!("../../tests/fixtures/quant_types.gguf");
    const FIXTURE_VALUES: &str = include_str!("../../tests/fixtures/quant_types.json");

    #[test]
    fn dequantises_every_supported_type_like_gguf_py() {
        let g = Gguf::parse(FIXTURE.to_vec()).unwrap();
        assert_eq!(g.version(), 3);
        assert_eq!(g.alignment(), 64);
        assert_eq!(g.get_str("fixture.note").unwrap(), "made by make_fixtures.py");
        assert_eq!(g.get_i64_array("fixture.ints").unwrap(), vec![1, -2, 3]);
        let expected: serde_json::Value = serde_json::from_str(FIXTURE_VALUES).unwrap();
        let expected = expected.as_object().unwrap();
        assert_eq!(g.tensor_names().count(), expected.len());
        for (name, want) in expected {
            let (shape, values) = g.tensor_f32(name).unwrap();
            let want_shape: Vec<usize> =
                want["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
            assert_eq!(shape, want_shape, "{name}");
            let want_values: Vec<f32> =
                want["values"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
            assert_eq!(values, want_values, "{name}");
        }
        let info = g.tensor_info("t.q4_1").unwrap();
        assert_eq!(info.dims, vec![64, 2, 2]);
        assert_eq!(info.dtype, GgmlType::Q4_1);
        assert_eq!(info.offset % 64, 0);
    }

    #[test]
    fn quant_formulas_by_hand() {
        // Q4_0: d = 0.5; byte j holds element j (low nibble) and element j + 16 (high nibble); x = (q - 8) d.
        let mut b = half::f16::from_f32(0.5).to_le_bytes().to_vec();
        b.extend((0u8..16).map(|j| j | ((15 - j) << 4)));
        let x = dequantize(GgmlType::Q4_0, &b, 32).unwrap();
        assert_eq!(x[0], -4.0);
        assert_eq!(x[15], 3.5);
        assert_eq!(x[16], 3.5);
        assert_eq!(x[31], -4.0);
        // Q4_1: x = q d + m.
        let mut b = half::f16::from_f32(2.0).to_le_bytes().to_vec();
        b.extend(half::f16::from_f32(-1.0).to_le_bytes());
        b.extend((0u8..16).map(|j| j | (j << 4)));
        let x = dequantize(GgmlType::Q4_1, &b, 32).unwrap();
        assert_eq!((x[0], x[1], x[17], x[31]), (-1.0, 1.0, 1.0, 29.0));
        // Q8_0: signed bytes times d.
        let mut b = half::f16::from_f32(0.25).to_le_bytes().to_vec();
        b.extend((0..32).map(|j: i32| (j - 16) as i8 as u8));
        let x = dequantize(GgmlType::Q8_0, &b, 32).unwrap();
        assert_eq!((x[0], x[16], x[31]), (-4.0, 0.0, 3.75));
        // Wrong length or a type without a decoder: no decode.
        assert!(dequantize(GgmlType::Q8_0, &b[..33], 32).is_none());
        assert!(dequantize(GgmlType::Q8_1, &[0; 36], 32).is_none());
        assert!(dequantize(GgmlType::Other(99), &[0; 36], 32).is_none());
    }

    fn sample_metadata() -> Vec<(String, MetaValue)> {
        vec![
            ("general.architecture".into(), MetaValue::String("llama".into())),
            ("a.u8".into(), MetaValue::U8(7)),
            ("a.i8".into(), MetaValue::I8(-7)),
            ("a.u16".into(), MetaValue::U16(700)),
            ("a.i16".into(), MetaValue::I16(-700)),
            ("a.u32".into(), MetaValue::U32(70_000)),
            ("a.i32".into(), MetaValue::I32(-70_000)),
            ("a.u64".into(), MetaValue::U64(1 << 40)),
            ("a.i64".into(), MetaValue::I64(-(1 << 40))),
            ("a.f32".into(), MetaValue::F32(1.5)),
            ("a.f64".into(), MetaValue::F64(-2.25)),
            ("a.bool".into(), MetaValue::Bool(true)),
            ("a.strs".into(), MetaValue::Array(vec![MetaValue::String("x y".into()), MetaValue::String("é".into())])),
            ("a.empty".into(), MetaValue::Array(vec![])),
            (
                "a.nested".into(),
                MetaValue::Array(vec![MetaValue::Array(vec![MetaValue::I32(1)]), MetaValue::Array(vec![])]),
            ),
        ]
    }

    fn sample_tensors() -> Vec<(String, Vec<usize>, Vec<f32>)> {
        vec![
            ("w".into(), vec![3, 2], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
            ("b".into(), vec![5], vec![0.5, -0.5, 1e-8, f32::MAX, -0.0]),
            ("s".into(), vec![2, 1, 3, 1], (0..6).map(|i| i as f32).collect()),
        ]
    }

    #[test]
    fn writer_round_trips() {
        let meta = sample_metadata();
        let tensors = sample_tensors();
        let bytes = write_gguf(&meta, &tensors);
        let g = Gguf::parse(bytes).unwrap();
        assert_eq!(g.metadata_entries(), &meta[..]);
        assert_eq!(g.get_u64("a.u32").unwrap(), 70_000);
        assert_eq!(g.get_u64("a.u8").unwrap(), 7);
        assert_eq!(g.get_i64("a.i64").unwrap(), -(1 << 40));
        assert_eq!(g.get_f32("a.f64").unwrap(), -2.25);
        assert!(g.get_bool("a.bool").unwrap());
        assert_eq!(g.get_str_array("a.strs").unwrap(), vec!["x y", "é"]);
        assert_eq!(g.tensor_names().collect::<Vec<_>>(), vec!["w", "b", "s"]);
        assert_eq!(g.tensor_info("w").unwrap().dims, vec![2, 3]);
        for (name, shape, data) in &tensors {
            let (s, d) = g.tensor_f32(name).unwrap();
            assert_eq!(&s, shape);
            assert_eq!(
                d.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                data.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
            assert_eq!(g.tensor_info(name).unwrap().offset % 32, 0);
        }
        assert_eq!(g.data_start() % 32, 0);
    }

    #[test]
    fn writer_refuses_inconsistent_input() {
        let e = try_write_gguf(&[], &[("w".into(), vec![2, 2], vec![1.0; 3])]).unwrap_err();
        assert_eq!(e.to_string(), "cannot write GGUF: tensor w: shape [2, 2] has 4 elements but 3 values were given");
        let mixed = MetaValue::Array(vec![MetaValue::U8(1), MetaValue::Bool(true)]);
        assert!(try_write_gguf(&[("k".into(), mixed)], &[]).is_err());
    }

    #[test]
    fn typed_getters_report_key_and_type() {
        let g = Gguf::parse(write_gguf(&sample_metadata(), &[])).unwrap();
        assert_eq!(
            g.get_u64("a.i8").unwrap_err().to_string(),
            "metadata key \"a.i8\": expected a non-negative integer, found i8"
        );
        assert_eq!(g.get_str("missing").unwrap_err().to_string(), "metadata key \"missing\" is missing");
        assert_eq!(g.get_f32("a.u8").unwrap_err().to_string(), "metadata key \"a.u8\": expected a float, found u8");
        assert_eq!(
            g.get_i64_array("a.strs").unwrap_err().to_string(),
            "metadata key \"a.strs\": expected an array of integers, found array of string (2 items)"
        );
        assert!(matches!(g.tensor_f32("nope"), Err(GgufError::NoTensor(_))));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let g = Gguf::parse(FIXTURE.to_vec()).unwrap();
        let last = g.tensor_info("t.q4_1").unwrap();
        let end = g.data_start() + last.offset + last.n_elements() / 32 * 20;
        // gguf-py pads the file after the last tensor; the padding is not needed.
        for len in 0..FIXTURE.len() {
            assert_eq!(Gguf::parse(FIXTURE[..len].to_vec()).is_ok(), len as u64 >= end, "prefix of {len} bytes");
        }
        let cut = end as usize - 10;
        let e = Gguf::parse(FIXTURE[..cut].to_vec()).unwrap_err();
        assert_eq!(e.to_string(), format!("tensor t.q4_1: data ends at byte {end} but the file has {cut} bytes"));
        // Counts are checked against the bytes left before anything is read or allocated.
        let e = Gguf::parse(FIXTURE[..30].to_vec()).unwrap_err();
        assert_eq!(e.to_string(), "metadata count: count 4 cannot fit in the 6 bytes left after byte 16");
        let name_at = FIXTURE.windows(6).position(|w| w == b"t.q8_0").unwrap();
        let e = Gguf::parse(FIXTURE[..name_at + 2].to_vec()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "truncated file: tensor info 3 (name) needs 6 bytes at byte {name_at}, but the file has {} bytes",
                name_at + 2
            )
        );
    }

    #[test]
    fn corrupt_headers_are_errors() {
        let good = write_gguf(&sample_metadata(), &sample_tensors());
        let with = |at: usize, b: &[u8]| {
            let mut v = good.clone();
            v[at..at + b.len()].copy_from_slice(b);
            Gguf::parse(v).unwrap_err().to_string()
        };
        assert!(with(0, b"GGML").starts_with("not a GGUF file"));
        assert_eq!(with(4, &1u32.to_le_bytes()), "unsupported GGUF version 1 (this reader supports versions 2 and 3)");
        assert!(with(8, &u64::MAX.to_le_bytes()).starts_with("tensor count: count 18446744073709551615 cannot fit"));
        assert!(with(16, &(1u64 << 40).to_le_bytes()).starts_with("metadata count: count"));
        // The first key's length.
        let e = with(24, &(1u64 << 50).to_le_bytes());
        assert!(e.starts_with("truncated file: metadata entry 0 (key) needs 1125899906842624 bytes"), "{e}");
        // v2 files have the same layout.
        let mut v2 = good.clone();
        v2[4..8].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(Gguf::parse(v2).unwrap().version(), 2);
    }

    /// Builds a file (no metadata, alignment 32) whose tensor infos (name, GGUF dims, type id, offset) are
    /// given raw, followed by `data` at the start of the data section.
    fn raw_gguf(infos: &[(&str, &[u64], u32, u64)], data: &[u8]) -> Vec<u8> {
        let mut v = b"GGUF".to_vec();
        v.extend(3u32.to_le_bytes());
        v.extend((infos.len() as u64).to_le_bytes());
        v.extend(0u64.to_le_bytes());
        for (name, dims, dtype, offset) in infos {
            write_str(&mut v, name);
            v.extend((dims.len() as u32).to_le_bytes());
            for d in *dims {
                v.extend(d.to_le_bytes());
            }
            v.extend(dtype.to_le_bytes());
            v.extend(offset.to_le_bytes());
        }
        v.resize(v.len().div_ceil(32) * 32, 0);
        v.extend_from_slice(data);
        v
    }

    /// A file with one tensor, `blk.3.attn_q.weight`, and `data_len` zero bytes of data.
    fn one_tensor(dims: &[u64], dtype: u32, offset: u64, data_len: usize) -> Vec<u8> {
        raw_gguf(&[("blk.3.attn_q.weight", dims, dtype, offset)], &vec![0; data_len])
    }

    #[test]
    fn tensor_table_is_checked() {
        let ok = one_tensor(&[32, 2], 2, 0, 36);
        let g = Gguf::parse(ok).unwrap();
        assert_eq!(g.tensor_f32("blk.3.attn_q.weight").unwrap().0, vec![2, 32]);
        let err = |v: Vec<u8>| Gguf::parse(v).unwrap_err().to_string();
        assert!(err(one_tensor(&[1; 5], 0, 0, 4)).ends_with("5 dimensions, at most 4 are allowed"));
        assert!(err(one_tensor(&[u64::MAX, 3], 0, 0, 4)).contains("overflows"));
        assert!(err(one_tensor(&[16], 2, 0, 18)).contains("not a multiple of the Q4_0 block size 32"));
        assert!(err(one_tensor(&[4], 0, 8, 64)).contains("data offset 8 is not a multiple of the alignment 32"));
        let e = err(one_tensor(&[32, 2], 2, 0, 35));
        assert!(e.starts_with("tensor blk.3.attn_q.weight: data ends at byte") && e.ends_with("bytes"), "{e}");
        assert!(err(one_tensor(&[4], 0, u64::MAX - 31, 16)).contains("blk.3.attn_q.weight"));
        // A known type without a decoder parses (its extent is checked) and fails on decode, naming it.
        let g = Gguf::parse(one_tensor(&[32], 9, 0, 36)).unwrap();
        assert_eq!(
            g.tensor_f32("blk.3.attn_q.weight").unwrap_err().to_string(),
            "tensor blk.3.attn_q.weight: type Q8_1 (ggml type 9) is not supported"
        );
        let g = Gguf::parse(one_tensor(&[256], 99, 0, 144)).unwrap();
        assert_eq!(
            g.tensor_f32("blk.3.attn_q.weight").unwrap_err().to_string(),
            "tensor blk.3.attn_q.weight: type unknown (ggml type 99) is not supported"
        );
    }

    /// Overwrites 1 to 4 random bytes of `good`, `times` times, and decodes every tensor of each copy that
    /// still parses: errors are fine, panics are not, and a decoded tensor has as many values as its shape.
    fn corrupt_and_decode(good: &[u8], times: usize) {
        // xorshift64: a fixed sequence without a dependency.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..times {
            let mut v = good.to_vec();
            for _ in 0..1 + next() % 4 {
                let at = (next() % v.len() as u64) as usize;
                v[at] = next() as u8;
            }
            if let Ok(g) = Gguf::parse(v) {
                let names: Vec<String> = g.tensor_names().map(String::from).collect();
                for n in names {
                    if let Ok((shape, values)) = g.tensor_f32(&n) {
                        assert_eq!(values.len(), shape.iter().product::<usize>(), "{n}");
                    }
                }
            }
        }
    }

    #[test]
    fn random_corruption_never_panics() {
        corrupt_and_decode(&write_gguf(&sample_metadata(), &sample_tensors()), 3000);
    }

    /// Made by scripts/make-kquant-fixture.py with gguf-py: per type, three random blocks (raw bytes in hex)
    /// and the f32 bit patterns that `gguf.quants.dequantize` gives for them.
    const KQUANTS: &str = include_str!("../../tests/fixtures/kquants.json");

    /// One type of the fixture: three blocks and the values gguf-py decodes them to.
    struct QuantCase {
        name: String,
        dtype: GgmlType,
        block: usize,
        bytes: Vec<u8>,
        bits: Vec<u32>,
    }

    fn quant_cases() -> Vec<QuantCase> {
        let v: serde_json::Value = serde_json::from_str(KQUANTS).unwrap();
        let case = |(name, t): (&String, &serde_json::Value)| {
            let hex = t["bytes"].as_str().unwrap();
            QuantCase {
                name: name.clone(),
                dtype: GgmlType::from_id(t["id"].as_u64().unwrap() as u32),
                block: t["block"].as_u64().unwrap() as usize,
                bytes: (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect(),
                bits: t["bits"].as_array().unwrap().iter().map(|b| b.as_u64().unwrap() as u32).collect(),
            }
        };
        v["types"].as_object().unwrap().iter().map(case).collect()
    }

    /// A file with each fixture type as a tensor of shape [3, block] named after the type; its data ends
    /// the file, so every shorter prefix is truncated.
    fn quant_file(cases: &[QuantCase]) -> Vec<u8> {
        let dims: Vec<[u64; 2]> = cases.iter().map(|c| [c.block as u64, 3]).collect();
        let mut data = Vec::new();
        let mut infos = Vec::new();
        for (c, dims) in cases.iter().zip(&dims) {
            data.resize(data.len().div_ceil(32) * 32, 0);
            infos.push((c.name.as_str(), &dims[..], c.dtype.id(), data.len() as u64));
            data.extend_from_slice(&c.bytes);
        }
        raw_gguf(&infos, &data)
    }

    fn assert_bits(what: &str, got: &[f32], want: &[u32]) {
        assert_eq!(got.len(), want.len(), "{what}: value count");
        if let Some(i) = got.iter().zip(want).position(|(g, w)| g.to_bits() != *w) {
            panic!("{what}: value {i} is {} but gguf-py gives {}", got[i], f32::from_bits(want[i]));
        }
    }

    #[test]
    fn dequantises_k_quants_and_q5_bit_exactly_like_gguf_py() {
        let cases = quant_cases();
        let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
        for required in ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"] {
            assert!(names.contains(&required), "{required} is missing from the fixture");
        }
        for c in &cases {
            assert_eq!(c.dtype.to_string(), c.name);
            assert_eq!(c.dtype.block_layout().unwrap().0 as usize, c.block, "{}", c.name);
            assert_bits(&c.name, &dequantize(c.dtype, &c.bytes, 3 * c.block).unwrap(), &c.bits);
        }
        let g = Gguf::parse(quant_file(&cases)).unwrap();
        for c in &cases {
            let (shape, values) = g.tensor_f32(&c.name).unwrap();
            assert_eq!(shape, vec![3, c.block]);
            assert_bits(&c.name, &values, &c.bits);
        }
    }

    #[test]
    fn k_quant_layouts_by_hand() {
        let f16 = |x: f32| half::f16::from_f32(x).to_le_bytes();
        // Q4_K/Q5_K: 6-bit scales and mins, the high two bits of sub-blocks 4..8 in the top bits of bytes 0..8.
        let (sc, m) = ([1u8, 17, 33, 63, 5, 21, 40, 62], [2u8, 18, 34, 60, 7, 23, 48, 61]);
        let mut scales = [0u8; 12];
        for j in 0..4 {
            scales[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
            scales[j + 4] = m[j] | ((m[j + 4] >> 4) << 6);
            scales[j + 8] = (sc[j + 4] & 0x0f) | ((m[j + 4] & 0x0f) << 4);
        }
        let head: Vec<u8> = [f16(1.0), f16(0.5)].concat().into_iter().chain(scales).collect();
        // Every byte of qs is 0x31: q is 1 in even sub-blocks (low nibbles), 3 in odd ones.
        let q4: Vec<u8> = head.iter().copied().chain([0x31; 128]).collect();
        let x = dequantize(GgmlType::Q4_K, &q4, 256).unwrap();
        for (i, v) in x.iter().enumerate() {
            let s = i / 32;
            assert_eq!(*v, sc[s] as f32 * [1.0, 3.0][s % 2] - 0.5 * m[s] as f32, "Q4_K value {i}");
        }
        // Q5_K: qh bit s of byte l is bit 4 of element l of sub-block s; set in odd sub-blocks only.
        let q5: Vec<u8> = head.iter().copied().chain([0b1010_1010; 32]).chain([0x31; 128]).collect();
        let x = dequantize(GgmlType::Q5_K, &q5, 256).unwrap();
        for (i, v) in x.iter().enumerate() {
            let s = i / 32;
            assert_eq!(*v, sc[s] as f32 * [1.0, 19.0][s % 2] - 0.5 * m[s] as f32, "Q5_K value {i}");
        }
        // Q6_K: scale s covers values 16 s..16 s + 16; all quants 0 (q - 32 = -32) except three.
        let mut b = vec![0u8; 210];
        b[0] = 0xab; // value 0: low nibble 11; value 64: high nibble 10
        b[128] = 0b1100_0000; // value 96: high bits 3 over ql[32]'s high nibble 0
        for s in 0..16 {
            b[192 + s] = (s as i8 - 8) as u8;
        }
        b[208..].copy_from_slice(&f16(1.0));
        let x = dequantize(GgmlType::Q6_K, &b, 256).unwrap();
        assert_eq!((x[0], x[1], x[64], x[96]), (-8.0 * -21.0, -8.0 * -32.0, -4.0 * -22.0, -2.0 * 16.0));
        assert_eq!((x[16], x[255]), (-7.0 * -32.0, 7.0 * -32.0));
        // Q8_K (not decoded by gguf-py): f32 d, then 256 signed bytes; the 16 block sums are not read.
        let mut b = 0.5f32.to_le_bytes().to_vec();
        b.extend((0..256).map(|j: i32| (j - 128) as i8 as u8));
        b.extend([0xff; 32]);
        let x = dequantize(GgmlType::Q8_K, &b, 256).unwrap();
        assert_eq!((x[0], x[128], x[255]), (-64.0, 0.0, 63.5));
    }

    #[test]
    fn truncated_or_corrupt_k_quant_files_are_errors() {
        let file = quant_file(&quant_cases());
        for len in 0..file.len() {
            assert!(Gguf::parse(file[..len].to_vec()).is_err(), "prefix of {len} bytes");
        }
        corrupt_and_decode(&file, 2000);
        let err = |v: Vec<u8>| Gguf::parse(v).unwrap_err().to_string();
        let e = err(one_tensor(&[128, 2], 12, 0, 144));
        assert!(e.ends_with("first dimension 128 is not a multiple of the Q4_K block size 256"), "{e}");
        // One byte short of two Q6_K blocks (the data section starts at byte 96).
        let e = err(one_tensor(&[256, 2], 14, 0, 419));
        assert_eq!(e, "tensor blk.3.attn_q.weight: data ends at byte 516 but the file has 515 bytes");
        // Absurd sizes fail from the header alone, before anything is allocated.
        let e = err(one_tensor(&[256, 1 << 40], 13, 0, 176));
        assert_eq!(e, "tensor blk.3.attn_q.weight: data ends at byte 193514046488672 but the file has 272 bytes");
        assert!(err(one_tensor(&[256, 1 << 54], 15, 0, 292)).contains("data ends at byte 5260204364768739424 "));
        assert!(err(one_tensor(&[256, u64::MAX / 256], 10, 0, 84)).contains("overflows"));
    }
}
