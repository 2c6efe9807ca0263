//! [`AprWriter`]: builds v2 containers exactly in the layout of
//! `apr-format.md` §1.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::codec::encode_f32;
use super::dtype::DType;
use super::error::FormatError;
use super::header::{align64, Flags, Header, HEADER_LEN};
use super::index::MAX_DIMS;
use super::schema;

/// A tensor waiting to be written.
#[derive(Debug, Clone)]
struct PendingTensor {
    dtype: DType,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

/// Builder for v2 containers.
///
/// Writes the 64-byte header (row-major flag set, header CRC), the JSON
/// metadata zero-padded to 64, the index sorted by name and zero-padded to
/// 64, each tensor 64-aligned and zero-padded, then the footer CRC.
///
/// The metadata always carries the keys aprender writes (`model_type`,
/// `license`, `data_source`, `data_license`, `total_size`, `param_count`);
/// keys set with [`AprWriter::metadata`] override them.
///
/// ```
/// use apr_runtime::format::{AprWriter, DType};
/// let mut writer = AprWriter::new();
/// writer
///     .model_type("KMeans")
///     .metadata("n_clusters", serde_json::json!(2));
/// writer.add_f32("centroids", &[2, 2], &[0.0, 0.0, 1.0, 1.0])?;
/// writer.add_tensor("labels", DType::U8, &[3], vec![0, 1, 1])?;
/// let bytes = writer.to_bytes();
/// assert_eq!(&bytes[..4], b"APR\0");
/// # Ok::<(), apr_runtime::format::FormatError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct AprWriter {
    metadata: Map<String, Value>,
    tensors: BTreeMap<String, PendingTensor>,
}

impl AprWriter {
    /// An empty container.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets metadata `model_type`.
    pub fn model_type(&mut self, t: &str) -> &mut Self {
        self.metadata(schema::MODEL_TYPE, Value::from(t))
    }

    /// Sets metadata `labels`: one label per class (or cluster), in class
    /// order. A model then answers each class with its label
    /// ([`Model::labels`](crate::model::Model::labels)); a count that does not
    /// match the model's classes is refused when the model is loaded.
    pub fn labels<S: AsRef<str>>(&mut self, labels: &[S]) -> &mut Self {
        let labels = labels.iter().map(|l| Value::from(l.as_ref())).collect();
        self.metadata(schema::LABELS, Value::Array(labels))
    }

    /// Sets metadata `feature_names`: one distinct name per input feature, in
    /// input order. Events may then send rows as objects keyed by name
    /// ([`Model::feature_names`](crate::model::Model::feature_names)).
    pub fn feature_names<S: AsRef<str>>(&mut self, names: &[S]) -> &mut Self {
        let names = names.iter().map(|n| Value::from(n.as_ref())).collect();
        self.metadata(schema::FEATURE_NAMES, Value::Array(names))
    }

    /// Sets a metadata key (replacing an earlier value).
    pub fn metadata(&mut self, key: &str, value: Value) -> &mut Self {
        self.metadata.insert(key.to_string(), value);
        self
    }

    /// Adds an F32 tensor; `data.len()` must equal the product of `shape`.
    pub fn add_f32(
        &mut self,
        name: &str,
        shape: &[usize],
        data: &[f32],
    ) -> Result<&mut Self, FormatError> {
        let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.add_tensor(name, DType::F32, shape, bytes)
    }

    /// Adds f32 values stored as `dtype`, converted or quantized the way
    /// aprender does it (F16/BF16 round to nearest even; integers round and
    /// saturate; APR-Q8 one scale `max|x|/127`; APR-Q4 an f16 scale
    /// `max|x|/7` per block of 32). Q4_K and Q6_K cannot be written:
    /// [`FormatError::UnsupportedDType`].
    pub fn add_f32_as(
        &mut self,
        name: &str,
        dtype: DType,
        shape: &[usize],
        data: &[f32],
    ) -> Result<&mut Self, FormatError> {
        let bytes = encode_f32(dtype, data).ok_or_else(|| FormatError::UnsupportedDType {
            name: name.to_string(),
            dtype,
        })?;
        let numel = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
        if numel != Some(data.len()) {
            return Err(FormatError::SizeMismatch {
                name: name.to_string(),
                dtype,
                shape: shape.iter().map(|&d| d as u64).collect(),
                expected: numel.and_then(|n| dtype.stored_size(n)).unwrap_or(u64::MAX),
                found: bytes.len() as u64,
            });
        }
        self.add_tensor(name, dtype, shape, bytes)
    }

    /// Adds a tensor of any dtype from its stored bytes, which must be
    /// exactly `dtype.stored_size(numel)` long.
    pub fn add_tensor(
        &mut self,
        name: &str,
        dtype: DType,
        shape: &[usize],
        bytes: Vec<u8>,
    ) -> Result<&mut Self, FormatError> {
        if u16::try_from(name.len()).is_err() {
            return Err(FormatError::NameTooLong { length: name.len() });
        }
        if shape.len() > MAX_DIMS {
            return Err(FormatError::TooManyDims {
                name: name.to_string(),
                ndim: shape.len(),
            });
        }
        let dims: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
        let expected = shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .and_then(|numel| dtype.stored_size(numel));
        let Some(expected) = expected else {
            return Err(FormatError::ElementCountOverflow {
                name: name.to_string(),
                dtype,
                shape: dims,
            });
        };
        if expected != bytes.len() as u64 {
            return Err(FormatError::SizeMismatch {
                name: name.to_string(),
                dtype,
                shape: dims,
                expected,
                found: bytes.len() as u64,
            });
        }
        if self.tensors.contains_key(name) {
            return Err(FormatError::DuplicateTensor {
                name: name.to_string(),
            });
        }
        self.tensors.insert(
            name.to_string(),
            PendingTensor {
                dtype,
                shape: shape.to_vec(),
                bytes,
            },
        );
        Ok(self)
    }

    /// The metadata object [`AprWriter::to_bytes`] writes: aprender's
    /// always-present keys, overridden by the keys set on this writer.
    pub fn metadata_object(&self) -> Map<String, Value> {
        let total_size: u64 = self.tensors.values().map(|t| t.bytes.len() as u64).sum();
        let param_count: u64 = self
            .tensors
            .values()
            .map(|t| t.shape.iter().map(|&d| d as u64).product::<u64>())
            .sum();
        let mut map = Map::new();
        map.insert("model_type".into(), Value::from(""));
        map.insert("license".into(), Value::Null);
        map.insert("data_source".into(), Value::Null);
        map.insert("data_license".into(), Value::Null);
        map.insert("total_size".into(), Value::from(total_size));
        map.insert("param_count".into(), Value::from(param_count));
        for (key, value) in &self.metadata {
            map.insert(key.clone(), value.clone());
        }
        map
    }

    /// The complete file: header, metadata, index, data, footer CRC.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising a map with string keys cannot fail.
        let json = serde_json::to_vec(&self.metadata_object()).unwrap_or_else(|_| b"{}".to_vec());

        let mut index = Vec::new();
        let mut data_len = 0u64;
        for (name, tensor) in &self.tensors {
            // Names are at most u16::MAX bytes and ndim at most 8 (add_tensor).
            index.extend_from_slice(&(name.len() as u16).to_le_bytes());
            index.extend_from_slice(name.as_bytes());
            index.push(tensor.dtype.code());
            index.push(tensor.shape.len() as u8);
            for &dim in &tensor.shape {
                index.extend_from_slice(&(dim as u64).to_le_bytes());
            }
            let size = tensor.bytes.len() as u64;
            index.extend_from_slice(&data_len.to_le_bytes());
            index.extend_from_slice(&size.to_le_bytes());
            data_len = data_len.saturating_add(align64(size).unwrap_or(u64::MAX));
        }

        let metadata_offset = HEADER_LEN as u64;
        let tensor_index_offset =
            metadata_offset + align64(json.len() as u64).unwrap_or(u64::MAX - 63);
        let data_offset =
            tensor_index_offset.saturating_add(align64(index.len() as u64).unwrap_or(0));
        let header = Header {
            version_major: 2,
            version_minor: 0,
            flags: Flags(Flags::ROW_MAJOR),
            tensor_count: u32::try_from(self.tensors.len()).unwrap_or(u32::MAX),
            metadata_offset,
            metadata_size: u32::try_from(json.len()).unwrap_or(u32::MAX),
            tensor_index_offset,
            data_offset,
            header_crc: 0,
        };

        let total = usize::try_from(data_offset.saturating_add(data_len).saturating_add(4))
            .unwrap_or(usize::MAX);
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&header.encode());
        out.extend_from_slice(&json);
        pad_to_64(&mut out);
        out.extend_from_slice(&index);
        pad_to_64(&mut out);
        for tensor in self.tensors.values() {
            out.extend_from_slice(&tensor.bytes);
            pad_to_64(&mut out);
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }
}

fn pad_to_64(out: &mut Vec<u8>) {
    let padded = out.len().div_ceil(64) * 64;
    out.resize(padded, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_tensors() {
        let mut writer = AprWriter::new();
        assert!(matches!(
            writer.add_f32("w", &[2, 2], &[1.0]),
            Err(FormatError::SizeMismatch { .. })
        ));
        assert!(matches!(
            writer.add_f32("w", &[1; 9], &[1.0]),
            Err(FormatError::TooManyDims { ndim: 9, .. })
        ));
        assert!(matches!(
            writer.add_tensor("w", DType::F64, &[usize::MAX, 2], vec![]),
            Err(FormatError::ElementCountOverflow { .. })
        ));
        let long = "x".repeat(70_000);
        assert!(matches!(
            writer.add_f32(&long, &[1], &[1.0]),
            Err(FormatError::NameTooLong { length: 70_000 })
        ));
        assert!(writer.add_f32("w", &[1], &[1.0]).is_ok());
        assert!(matches!(
            writer.add_f32("w", &[1], &[1.0]),
            Err(FormatError::DuplicateTensor { .. })
        ));
    }

    #[test]
    fn layout_is_aligned_and_checksummed() {
        let mut writer = AprWriter::new();
        writer.model_type("LinearRegression");
        assert!(writer.add_f32("weight", &[1, 3], &[1.0, 2.0, 3.0]).is_ok());
        assert!(writer.add_f32("bias", &[1], &[0.5]).is_ok());
        let bytes = writer.to_bytes();
        assert_eq!(&bytes[..4], b"APR\0");
        assert_eq!(u16::from_le_bytes([bytes[6], bytes[7]]), Flags::ROW_MAJOR);
        assert_eq!((bytes.len() - 4) % 64, 0);
        let (body, footer) = bytes.split_at(bytes.len() - 4);
        assert_eq!(footer, crc32fast::hash(body).to_le_bytes());
        let header = Header::decode(bytes.first_chunk::<64>().unwrap_or(&[0; 64]));
        assert_eq!(header.metadata_offset, 64);
        assert_eq!(header.tensor_index_offset % 64, 0);
        assert_eq!(header.data_offset % 64, 0);
        assert_eq!(header.tensor_count, 2);
    }
}
