//! Hugging Face safetensors: a reader of checkpoints (f32, f16 and bf16; one file or the shards of an index)
//! as a [`WeightSource`], and the f32 writer of the export format that transformers and transformers.js load.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

use safetensors::tensor::{Dtype, Metadata, SafeTensors, TensorView};

use super::{WeightError, WeightSource};
use crate::model::llama::NamedTensor;

/// Serialises named tensors (read back from the device asynchronously) as f32 safetensors bytes.
pub async fn to_safetensors(
    tensors: Vec<NamedTensor>,
    metadata: HashMap<String, String>,
) -> Result<Vec<u8>, WeightError> {
    let mut owned = Vec::with_capacity(tensors.len());
    for (name, shape, t) in tensors {
        let data = t.into_data_async().await.map_err(|e| WeightError::Read(format!("{name}: {e:?}")))?;
        let bytes: Vec<u8> = data.iter::<f32>().flat_map(f32::to_le_bytes).collect();
        owned.push((name, shape, bytes));
    }
    let views: Vec<(String, TensorView<'_>)> = owned
        .iter()
        .map(|(name, shape, bytes)| {
            let view = TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map_err(|e| WeightError::Read(format!("{name}: {e}")))?;
            Ok((name.clone(), view))
        })
        .collect::<Result<_, WeightError>>()?;
    safetensors::serialize(views, Some(metadata)).map_err(|e| WeightError::Read(e.to_string()))
}

/// One safetensors file. The `safetensors` crate parses and checks its header before anything else is
/// allocated: at most 100 MB of JSON, offsets contiguous, each tensor's byte length equal to its shape times
/// its dtype (with overflow checks), and the tensors covering the rest of the file exactly, so a truncated
/// or padded file fails here. Tensors are decoded to f32 on request.
pub struct SafetensorsFile<'a> {
    bytes: &'a [u8],
    /// Where the data section starts: after the 8-byte header length and the header.
    data_start: usize,
    metadata: Metadata,
}

impl std::fmt::Debug for SafetensorsFile<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafetensorsFile").field("bytes", &self.bytes.len()).field("tensors", &self.names()).finish()
    }
}

impl<'a> SafetensorsFile<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self, WeightError> {
        let (header_len, metadata) =
            SafeTensors::read_metadata(bytes).map_err(|e| WeightError::Safetensors(e.to_string()))?;
        Ok(Self { data_start: 8 + header_len, bytes, metadata })
    }

    /// Tensor names in file order.
    pub fn names(&self) -> Vec<String> {
        self.metadata.offset_keys()
    }

    /// The shape of `name`, if the file holds it.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.metadata.info(name).map(|i| i.shape.as_slice())
    }

    /// The `__metadata__` strings of the header.
    pub fn metadata(&self) -> Option<&HashMap<String, String>> {
        self.metadata.metadata().as_ref()
    }

    /// The values of `name` as f32 (f16 and bf16 widened exactly), or `None` when the file lacks it.
    pub fn tensor_f32(&self, name: &str) -> Result<Option<Vec<f32>>, WeightError> {
        let Some(info) = self.metadata.info(name) else { return Ok(None) };
        let (start, end) = info.data_offsets;
        // The header check guarantees the range; `get` keeps even a broken guarantee from panicking.
        let data = self
            .bytes
            .get(self.data_start + start..self.data_start + end)
            .ok_or_else(|| WeightError::Safetensors(format!("tensor {name}: data outside the file")))?;
        let values = match info.dtype {
            Dtype::F32 => data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            Dtype::F16 => data.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            Dtype::BF16 => data.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            other => return Err(WeightError::Dtype { name: name.to_string(), dtype: format!("{other:?}") }),
        };
        Ok(Some(values))
    }
}

/// The tensors of a checkpoint by Hugging Face name, across its files (one `model.safetensors`, or the
/// shards of an index), borrowing their bytes. It records which tensors the model read, so that a loader
/// can name the unused ones instead of silently dropping them.
#[derive(Debug)]
pub struct SafetensorsSource<'a> {
    /// The file errors name when a tensor is in no file (the weights file, or the shard index); `None` for
    /// one unnamed file, whose errors name only the tensor.
    label: Option<String>,
    files: Vec<(String, SafetensorsFile<'a>)>,
    location: HashMap<String, usize>,
    used: RefCell<BTreeSet<String>>,
}

impl<'a> SafetensorsSource<'a> {
    /// One file's bytes, unnamed.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, WeightError> {
        Self::build(None, vec![(String::new(), SafetensorsFile::parse(bytes)?)])
    }

    /// Files given as (file name, parsed file); `label` names the checkpoint in errors. A tensor stored in
    /// two files is an error.
    pub fn new(label: &str, files: Vec<(String, SafetensorsFile<'a>)>) -> Result<Self, WeightError> {
        Self::build(Some(label.to_string()), files)
    }

    fn build(label: Option<String>, files: Vec<(String, SafetensorsFile<'a>)>) -> Result<Self, WeightError> {
        let mut location: HashMap<String, usize> = HashMap::new();
        for (i, (file, st)) in files.iter().enumerate() {
            for name in st.names() {
                if let Some(&j) = location.get(&name) {
                    let e = WeightError::Safetensors(format!("tensor {name} is in both {} and {file}", files[j].0));
                    return Err(match &label {
                        Some(l) => e.in_file(l),
                        None => e,
                    });
                }
                location.insert(name, i);
            }
        }
        Ok(Self { label, files, location, used: RefCell::default() })
    }

    /// `e` located in `file` (nothing to add for an unnamed source).
    fn locate(&self, e: WeightError, file: &str) -> WeightError {
        if self.label.is_some() { e.in_file(file) } else { e }
    }

    /// The file that holds `name`.
    pub fn file_of(&self, name: &str) -> Option<&str> {
        self.location.get(name).map(|&i| self.files[i].0.as_str())
    }

    /// Every tensor name, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.location.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Tensors never read through [`WeightSource::tensor`], sorted.
    pub fn unused(&self) -> Vec<String> {
        let used = self.used.borrow();
        self.names().into_iter().filter(|n| !used.contains(*n)).map(String::from).collect()
    }

    /// Shape and f32 values of `name`, whatever its shape.
    pub fn get(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), WeightError> {
        let label = self.label.as_deref().unwrap_or_default();
        let missing = || self.locate(WeightError::Missing { name: name.to_string() }, label);
        let &i = self.location.get(name).ok_or_else(missing)?;
        let (file, st) = &self.files[i];
        let shape = st.shape(name).ok_or_else(missing)?.to_vec();
        let values = st.tensor_f32(name).map_err(|e| self.locate(e, file))?.ok_or_else(missing)?;
        Ok((shape, values))
    }
}

impl WeightSource for SafetensorsSource<'_> {
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, WeightError> {
        // The shape is checked before the data is decoded: a wrong header costs no allocation.
        if let Some(&i) = self.location.get(name) {
            let (file, st) = &self.files[i];
            let got = st.shape(name).unwrap_or_default();
            if got != shape {
                let e = WeightError::Shape { name: name.to_string(), expected: shape.to_vec(), got: got.to_vec() };
                return Err(self.locate(e, file));
            }
        }
        let (_, values) = self.get(name)?;
        self.used.borrow_mut().insert(name.to_string());
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
        let views: Vec<(String, TensorView<'_>)> =
            tensors.iter().map(|(n, d, s, b)| (n.to_string(), TensorView::new(*d, s.clone(), b).unwrap())).collect();
        safetensors::serialize(views, None).unwrap()
    }

    #[test]
    fn reads_f32_f16_bf16_exactly() {
        let vals = [1.5f32, -0.25, 3.0e-5, 65504.0];
        let f32b: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        let f16b: Vec<u8> = vals.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect();
        let bf16b: Vec<u8> = vals.iter().flat_map(|&v| half::bf16::from_f32(v).to_le_bytes()).collect();
        let bytes = file(&[
            ("a", Dtype::F32, vec![2, 2], f32b),
            ("b", Dtype::F16, vec![4], f16b),
            ("c", Dtype::BF16, vec![4], bf16b),
            ("d", Dtype::I32, vec![1], vec![0; 4]),
        ]);
        let st = SafetensorsFile::parse(&bytes).unwrap();
        assert_eq!(st.tensor_f32("a").unwrap().unwrap(), vals);
        let f16: Vec<f32> = vals.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
        assert_eq!(st.tensor_f32("b").unwrap().unwrap(), f16);
        let bf16: Vec<f32> = vals.iter().map(|&v| half::bf16::from_f32(v).to_f32()).collect();
        assert_eq!(st.tensor_f32("c").unwrap().unwrap(), bf16);
        assert_eq!(st.tensor_f32("e").unwrap(), None);
        let e = st.tensor_f32("d").unwrap_err().to_string();
        assert_eq!(e, "tensor d has dtype I32; f32, f16 and bf16 can be read");
    }

    #[test]
    fn truncated_or_corrupt_files_are_errors() {
        let bytes = file(&[("a", Dtype::F32, vec![3], vec![0; 12])]);
        for cut in [0, 7, 8, 20, bytes.len() - 1] {
            let e = SafetensorsFile::parse(&bytes[..cut]).unwrap_err();
            assert!(e.to_string().starts_with("safetensors: "), "{cut}: {e}");
        }
        // A header length of 2^63 is refused before anything is allocated.
        let mut huge = bytes.clone();
        huge[..8].copy_from_slice(&(1u64 << 63).to_le_bytes());
        assert!(SafetensorsFile::parse(&huge).is_err());
        // A shape whose byte size overflows is refused.
        let header = br#"{"a":{"dtype":"F32","shape":[4611686018427387904,8],"data_offsets":[0,0]}}"#;
        let mut evil = (header.len() as u64).to_le_bytes().to_vec();
        evil.extend_from_slice(header);
        assert!(SafetensorsFile::parse(&evil).is_err());
    }

    #[test]
    fn source_names_file_and_tensor_and_tracks_use() {
        let one = file(&[("x.weight", Dtype::F32, vec![2], vec![0; 8]), ("y.weight", Dtype::F32, vec![1], vec![0; 4])]);
        let two = file(&[("z.weight", Dtype::F32, vec![1], vec![0; 4])]);
        let files = vec![
            ("a.safetensors".to_string(), SafetensorsFile::parse(&one).unwrap()),
            ("b.safetensors".to_string(), SafetensorsFile::parse(&two).unwrap()),
        ];
        let src = SafetensorsSource::new("index.json", files).unwrap();
        assert_eq!(src.tensor("z.weight", &[1]).unwrap(), vec![0.0]);
        assert_eq!(
            src.tensor("x.weight", &[3]).unwrap_err().to_string(),
            "a.safetensors: tensor x.weight has shape [2], the model expects [3]"
        );
        assert_eq!(
            src.tensor("w.weight", &[3]).unwrap_err().to_string(),
            "index.json: tensor w.weight is missing from the weights file"
        );
        assert_eq!(src.unused(), ["x.weight", "y.weight"]);
        let dup = vec![
            ("a.safetensors".to_string(), SafetensorsFile::parse(&one).unwrap()),
            ("c.safetensors".to_string(), SafetensorsFile::parse(&one).unwrap()),
        ];
        let e = SafetensorsSource::new("index.json", dup).unwrap_err().to_string();
        assert!(e.contains("is in both a.safetensors and c.safetensors"), "{e}");
        // One unnamed file: errors name the tensor only.
        let single = SafetensorsSource::parse(&one).unwrap();
        assert_eq!(single.names(), ["x.weight", "y.weight"]);
        assert_eq!(
            single.tensor("q.weight", &[1]).unwrap_err().to_string(),
            "tensor q.weight is missing from the weights file"
        );
    }
}
