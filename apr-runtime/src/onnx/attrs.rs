//! Reading a node's attributes and constant tensors, with every mismatch
//! an [`OnnxError`] naming the node and the attribute.

use super::proto::{attribute_type as at, data_type as dt, AttributeProto, NodeProto, TensorProto};
use super::OnnxError;

/// The most elements a constant tensor may declare (the converter holds
/// them in memory; real models of the supported families are far smaller).
const MAX_ELEMENTS: usize = 1 << 28;

/// A node seen by the converter: its proto, its position and its opset.
pub(super) struct NodeCtx<'n> {
    pub(super) node: &'n NodeProto,
    pub(super) index: usize,
    pub(super) opset: i64,
}

impl<'n> NodeCtx<'n> {
    /// The node's name, or `#index` when it has none.
    pub(super) fn name(&self) -> String {
        if self.node.name.is_empty() {
            format!("#{}", self.index)
        } else {
            self.node.name.clone()
        }
    }

    /// The node's domain as ONNX documents name it.
    pub(super) fn domain(&self) -> &str {
        match self.node.domain.as_str() {
            "" => "ai.onnx",
            d => d,
        }
    }

    /// An [`OnnxError::Node`] about this node.
    pub(super) fn err(&self, reason: impl Into<String>) -> OnnxError {
        OnnxError::Node {
            node: self.name(),
            op_type: self.node.op_type.clone(),
            domain: self.domain().to_owned(),
            reason: reason.into(),
        }
    }

    fn attr(
        &self,
        name: &str,
        kind: i32,
        kind_name: &str,
    ) -> Result<Option<&'n AttributeProto>, OnnxError> {
        let Some(attr) = self.node.attribute.iter().find(|a| a.name == name) else {
            return Ok(None);
        };
        if !attr.ref_attr_name.is_empty() {
            return Err(self.err(format!(
                "attribute `{name}` refers to a function attribute, which only functions have"
            )));
        }
        // Type 0 (UNDEFINED) comes from very old writers: trust the field.
        if attr.r#type != 0 && attr.r#type != kind {
            return Err(self.err(format!("attribute `{name}` is not {kind_name}")));
        }
        Ok(Some(attr))
    }

    /// An INT attribute.
    pub(super) fn int(&self, name: &str) -> Result<Option<i64>, OnnxError> {
        Ok(self.attr(name, at::INT, "an INT")?.map(|a| a.i))
    }

    /// A FLOAT attribute.
    pub(super) fn float(&self, name: &str) -> Result<Option<f32>, OnnxError> {
        Ok(self.attr(name, at::FLOAT, "a FLOAT")?.map(|a| a.f))
    }

    /// A STRING attribute (UTF-8).
    pub(super) fn string(&self, name: &str) -> Result<Option<String>, OnnxError> {
        match self.attr(name, at::STRING, "a STRING")? {
            None => Ok(None),
            Some(a) => Ok(Some(self.utf8(name, &a.s)?)),
        }
    }

    /// An INTS attribute.
    pub(super) fn ints(&self, name: &str) -> Result<Option<&'n [i64]>, OnnxError> {
        Ok(self
            .attr(name, at::INTS, "INTS")?
            .map(|a| a.ints.as_slice()))
    }

    /// A FLOATS attribute, or its `{name}_as_tensor` form (float values;
    /// doubles are refused, as onnxruntime refuses a double tensor beside
    /// float inputs).
    pub(super) fn floats(&self, name: &str) -> Result<Option<Vec<f32>>, OnnxError> {
        if let Some(a) = self.attr(name, at::FLOATS, "FLOATS")? {
            return Ok(Some(a.floats.clone()));
        }
        let tensor_name = format!("{name}_as_tensor");
        let Some(a) = self.attr(&tensor_name, at::TENSOR, "a TENSOR")? else {
            return Ok(None);
        };
        let Some(t) = &a.t else {
            return Err(self.err(format!("attribute `{tensor_name}` holds no tensor")));
        };
        let constant =
            Constant::from_proto(t).map_err(|r| self.err(format!("`{tensor_name}`: {r}")))?;
        match constant.data {
            Data::F32(v) => Ok(Some(v)),
            Data::F64(_) => Err(self.err(format!(
                "attribute `{tensor_name}` holds doubles; onnxruntime computes this operator in \
                 double only for double inputs, which apr-lambda does not take"
            ))),
            _ => Err(self.err(format!("attribute `{tensor_name}` is not a float tensor"))),
        }
    }

    /// A STRINGS attribute (UTF-8).
    pub(super) fn strings(&self, name: &str) -> Result<Option<Vec<String>>, OnnxError> {
        match self.attr(name, at::STRINGS, "STRINGS")? {
            None => Ok(None),
            Some(a) => a
                .strings
                .iter()
                .map(|s| self.utf8(name, s))
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
        }
    }

    /// A TENSOR attribute.
    pub(super) fn tensor(&self, name: &str) -> Result<Option<Constant>, OnnxError> {
        match self.attr(name, at::TENSOR, "a TENSOR")? {
            None => Ok(None),
            Some(a) => {
                let t =
                    a.t.as_ref()
                        .ok_or_else(|| self.err(format!("attribute `{name}` holds no tensor")))?;
                Constant::from_proto(t)
                    .map(Some)
                    .map_err(|r| self.err(format!("attribute `{name}`: {r}")))
            }
        }
    }

    /// A required attribute: `found` or an error naming it.
    pub(super) fn required<T>(&self, name: &str, found: Option<T>) -> Result<T, OnnxError> {
        found.ok_or_else(|| self.err(format!("the required attribute `{name}` is missing")))
    }

    fn utf8(&self, name: &str, bytes: &[u8]) -> Result<String, OnnxError> {
        String::from_utf8(bytes.to_vec()).map_err(|_| {
            self.err(format!(
                "attribute `{name}` holds a string that is not UTF-8"
            ))
        })
    }

    /// The node's `i`-th input name, when present and not empty.
    pub(super) fn input(&self, i: usize) -> Option<&'n str> {
        self.node
            .input
            .get(i)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }
}

/// The values of a constant tensor.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Data {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    Str(Vec<String>),
}

/// A constant tensor (an initializer or a `Constant` node's value).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Constant {
    pub(super) dims: Vec<usize>,
    pub(super) data: Data,
}

impl Constant {
    /// Decodes `t`, checking that its data holds exactly its shape's
    /// element count.
    pub(super) fn from_proto(t: &TensorProto) -> Result<Self, String> {
        if t.data_location == 1 || !t.external_data.is_empty() {
            return Err(format!(
                "tensor `{}` keeps its data in an external file",
                t.name
            ));
        }
        let dims = t
            .dims
            .iter()
            .map(|&d| usize::try_from(d).map_err(|_| format!("dimension {d} is negative")))
            .collect::<Result<Vec<_>, _>>()?;
        let numel = dims
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .filter(|&n| n <= MAX_ELEMENTS)
            .ok_or_else(|| format!("shape {dims:?} holds more than {MAX_ELEMENTS} elements"))?;
        let raw = &t.raw_data;
        let fixed = |width: usize| -> Result<Vec<&[u8]>, String> {
            if raw.len() != numel * width {
                return Err(format!(
                    "raw data holds {} bytes, but shape {dims:?} needs {}",
                    raw.len(),
                    numel * width
                ));
            }
            Ok(raw.chunks_exact(width).collect())
        };
        let check = |len: usize| {
            if len == numel {
                Ok(())
            } else {
                Err(format!(
                    "holds {len} values, but shape {dims:?} needs {numel}"
                ))
            }
        };
        let data = match t.data_type {
            dt::FLOAT if !raw.is_empty() => Data::F32(
                fixed(4)?
                    .into_iter()
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
            dt::FLOAT => {
                check(t.float_data.len())?;
                Data::F32(t.float_data.clone())
            }
            dt::DOUBLE if !raw.is_empty() => Data::F64(
                fixed(8)?
                    .into_iter()
                    .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect(),
            ),
            dt::DOUBLE => {
                check(t.double_data.len())?;
                Data::F64(t.double_data.clone())
            }
            dt::INT64 if !raw.is_empty() => Data::I64(
                fixed(8)?
                    .into_iter()
                    .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect(),
            ),
            dt::INT64 => {
                check(t.int64_data.len())?;
                Data::I64(t.int64_data.clone())
            }
            dt::INT32 if !raw.is_empty() => Data::I64(
                fixed(4)?
                    .into_iter()
                    .map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                    .collect(),
            ),
            dt::INT32 => {
                check(t.int32_data.len())?;
                Data::I64(t.int32_data.iter().map(|&v| i64::from(v)).collect())
            }
            dt::STRING => {
                check(t.string_data.len())?;
                Data::Str(
                    t.string_data
                        .iter()
                        .map(|s| String::from_utf8(s.clone()).map_err(|_| "a string is not UTF-8".to_owned()))
                        .collect::<Result<Vec<_>, _>>()?,
                )
            }
            other => {
                return Err(format!(
                    "element type {} is not one the converter reads (FLOAT, DOUBLE, INT32, INT64, STRING)",
                    dt::name(other)
                ))
            }
        };
        Ok(Constant { dims, data })
    }

    /// The values as `f32` (doubles rounded), for a float operand; `None`
    /// for integers and strings.
    pub(super) fn as_f32(&self) -> Option<Vec<f32>> {
        match &self.data {
            Data::F32(v) => Some(v.clone()),
            Data::F64(v) => Some(v.iter().map(|&x| x as f32).collect()),
            _ => None,
        }
    }

    /// The number of elements.
    pub(super) fn len(&self) -> usize {
        match &self.data {
            Data::F32(v) => v.len(),
            Data::F64(v) => v.len(),
            Data::I64(v) => v.len(),
            Data::Str(v) => v.len(),
        }
    }
}
