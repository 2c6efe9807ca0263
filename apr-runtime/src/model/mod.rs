//! Ready-to-run models built from a validated container.
//!
//! [`Model::from_file`] recognises the family (metadata `model_type` first,
//! then the tensors present; see `apr-format.md` §3), validates every shape,
//! and keeps F32 weights as views into the file's bytes (other dtypes are
//! dequantized once, here). Predicting is arithmetic only, through the
//! kernel table chosen for this CPU ([`kernels::active`]), or any table
//! passed to [`Model::with_kernels`].
//!
//! ```
//! use apr_runtime::format::AprWriter;
//! use apr_runtime::model::{Model, Prediction};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut writer = AprWriter::new();
//! writer.model_type("LinearRegression");
//! writer.add_f32("weight", &[1, 3], &[1.0, 2.0, 3.0])?;
//! writer.add_f32("bias", &[1], &[0.5])?;
//! let bytes = writer.to_bytes();
//!
//! let model = Model::from_bytes(&bytes)?;
//! let mut scratch = model.scratch();
//! let out = model.predict(&[1.0, 1.0, 1.0], &mut scratch)?;
//! assert_eq!(out.prediction(), Prediction::Value(6.5));
//! # Ok(())
//! # }
//! ```

mod error;
mod kmeans;
mod linear;
mod output;
mod sequential;
mod source;
mod tree;

use std::borrow::Cow;
use std::fmt;

pub use error::{ModelError, PredictError};
pub use output::{BatchOutput, Output, Prediction, Scratch};

use crate::format::AprFile;
use crate::kernels::{self, Kernels};
use kmeans::KMeans;
use linear::{LinearRegression, LogisticRegression};
use sequential::Sequential;
use source::TensorSource;
use tree::TreeEnsemble;

/// The model families this runtime serves. `Display` gives the metadata
/// `model_type` name (`"DecisionTreeClassifier"`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelFamily {
    /// `y = W x + b`, one or several outputs.
    LinearRegression,
    /// Logistic regression: binary (sigmoid; `coefficients` + `intercept`,
    /// or a one-row `weight`) or multinomial (softmax over the rows of
    /// `weight` + `bias`).
    LogisticRegression,
    /// One decision tree classifier.
    DecisionTree,
    /// A random forest of decision tree classifiers (majority vote).
    RandomForest,
    /// K-means clustering (nearest centroid).
    KMeans,
    /// A feed-forward neural network (`Linear` layers and activations).
    NeuralSequential,
}

impl ModelFamily {
    /// The metadata `model_type` name of the family.
    pub fn name(self) -> &'static str {
        match self {
            ModelFamily::LinearRegression => "LinearRegression",
            ModelFamily::LogisticRegression => "LogisticRegression",
            ModelFamily::DecisionTree => "DecisionTreeClassifier",
            ModelFamily::RandomForest => "RandomForestClassifier",
            ModelFamily::KMeans => "KMeans",
            ModelFamily::NeuralSequential => "NeuralSequential",
        }
    }

    /// The family a metadata `model_type` names. Besides the names
    /// [`ModelFamily::name`] gives, the v1 type names `"DecisionTree"` and
    /// `"RandomForest"` and aprender's `"Sequential"` are accepted.
    pub fn from_model_type(model_type: &str) -> Option<Self> {
        Some(match model_type {
            "LinearRegression" => ModelFamily::LinearRegression,
            "LogisticRegression" => ModelFamily::LogisticRegression,
            "DecisionTreeClassifier" | "DecisionTree" => ModelFamily::DecisionTree,
            "RandomForestClassifier" | "RandomForest" => ModelFamily::RandomForest,
            "KMeans" => ModelFamily::KMeans,
            "NeuralSequential" | "Sequential" => ModelFamily::NeuralSequential,
            _ => return None,
        })
    }
}

impl fmt::Display for ModelFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a model's weights are held: viewed in place in the file's bytes, or
/// converted to `f32` at load (for inspection output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WeightStorage {
    /// Weight tensors used in place (aligned F32).
    pub in_place: usize,
    /// Weight tensors decoded or dequantized once at load (F16, BF16, F64,
    /// APR-Q8, APR-Q4, ... or unaligned F32).
    pub converted: usize,
    /// The number of `f32` values across all weight tensors.
    pub parameters: usize,
}

impl WeightStorage {
    #[allow(
        clippy::ptr_arg,
        reason = "whether the Cow borrows or owns is what is counted"
    )]
    fn add(&mut self, buffer: &Cow<'_, [f32]>) {
        match buffer {
            Cow::Borrowed(_) => self.in_place += 1,
            Cow::Owned(_) => self.converted += 1,
        }
        self.parameters = self.parameters.saturating_add(buffer.len());
    }
}

enum Family<'a> {
    Linear(LinearRegression<'a>),
    Logistic(LogisticRegression<'a>),
    Trees(TreeEnsemble),
    KMeans(KMeans<'a>),
    Sequential(Sequential<'a>),
}

/// A validated model, ready to predict. Borrows the file's bytes for `'a`
/// (F32 weights are views into them); `Send + Sync`, so one model serves
/// every thread (each with its own [`Scratch`]).
pub struct Model<'a> {
    family: ModelFamily,
    body: Family<'a>,
    n_features: usize,
    n_outputs: usize,
    /// The widest intermediate vector, for sizing a [`Scratch`].
    max_width: usize,
    kernels: &'static Kernels,
}

impl fmt::Debug for Model<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("family", &self.family)
            .field("n_features", &self.n_features)
            .field("n_outputs", &self.n_outputs)
            .field("kernels", &self.kernels.name)
            .finish_non_exhaustive()
    }
}

impl<'a> Model<'a> {
    /// Builds the model `file` describes, validating its family and every
    /// shape. F32 weights stay in the file's bytes; other dtypes are
    /// converted to `f32` here, once.
    pub fn from_file(file: &AprFile<'a>) -> Result<Self, ModelError> {
        let family = detect_family(file)?;
        let src = TensorSource::new(file, family);
        let (body, n_features, n_outputs, max_width) = match family {
            ModelFamily::LinearRegression => {
                let m = LinearRegression::load(&src)?;
                let (n_in, n_out) = (m.map.n_in, m.map.n_out);
                (Family::Linear(m), n_in, n_out, n_out)
            }
            ModelFamily::LogisticRegression => {
                let m = LogisticRegression::load(&src)?;
                let (n_in, n_out) = (m.map.n_in, m.map.n_out);
                (Family::Logistic(m), n_in, n_out, n_out.max(2))
            }
            ModelFamily::DecisionTree | ModelFamily::RandomForest => {
                let m = if family == ModelFamily::DecisionTree {
                    TreeEnsemble::load_tree(&src)?
                } else {
                    TreeEnsemble::load_forest(&src)?
                };
                let (n_in, n_out) = (m.n_features(), m.n_classes());
                (Family::Trees(m), n_in, n_out, n_out)
            }
            ModelFamily::KMeans => {
                let m = KMeans::load(&src)?;
                let (n_in, n_out) = (m.d, m.k);
                (Family::KMeans(m), n_in, n_out, n_out)
            }
            ModelFamily::NeuralSequential => {
                let m = Sequential::load(&src)?;
                let (n_in, n_out, width) = (m.n_in(), m.n_out(), m.max_width());
                (Family::Sequential(m), n_in, n_out, width)
            }
        };
        Ok(Self {
            family,
            body,
            n_features,
            n_outputs,
            max_width,
            kernels: kernels::active(),
        })
    }

    /// Parses `bytes` as a v2 container (footer CRC verified when present)
    /// and builds its model.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, ModelError> {
        Self::from_file(&AprFile::parse(bytes)?)
    }

    /// The same model computing with another kernel table (for example
    /// [`kernels::scalar`], to compare against the reference).
    #[must_use]
    pub fn with_kernels(mut self, kernels: &'static Kernels) -> Self {
        self.kernels = kernels;
        self
    }

    /// The kernel table this model computes with.
    pub fn kernels(&self) -> &'static Kernels {
        self.kernels
    }

    /// The model's family.
    pub fn family(&self) -> ModelFamily {
        self.family
    }

    /// The number of features a row must have.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// The length of [`Output::outputs`]: outputs for regression and
    /// networks, classes for logistic regression (1 for binary, whose
    /// outputs are `[p]`), trees and forests, clusters for k-means.
    pub fn n_outputs(&self) -> usize {
        self.n_outputs
    }

    /// The number of classes for classifiers (2 for binary logistic
    /// regression), clusters for k-means, `None` for regression and networks
    /// that do not end in Softmax.
    pub fn n_classes(&self) -> Option<usize> {
        match &self.body {
            Family::Linear(_) => None,
            Family::Logistic(m) => Some(m.n_classes()),
            Family::Trees(m) => Some(m.n_classes()),
            Family::KMeans(m) => Some(m.k),
            Family::Sequential(m) => m.ends_in_softmax().then_some(self.n_outputs),
        }
    }

    /// How the weights are held (in place vs converted at load).
    pub fn weight_storage(&self) -> WeightStorage {
        let mut storage = WeightStorage::default();
        match &self.body {
            Family::Linear(m) => m.map.buffers().for_each(|b| storage.add(b)),
            Family::Logistic(m) => m.map.buffers().for_each(|b| storage.add(b)),
            Family::Trees(_) => {}
            Family::KMeans(m) => storage.add(&m.centroids),
            Family::Sequential(m) => m
                .dense_layers()
                .flat_map(|d| d.buffers())
                .for_each(|b| storage.add(b)),
        }
        storage
    }

    /// Reusable buffers sized for this model: pass the same scratch to every
    /// [`Model::predict`] call and predicting never allocates.
    pub fn scratch(&self) -> Scratch {
        Scratch::with_width(self.max_width)
    }

    /// Predicts one row of [`Model::n_features`] finite values. The result
    /// borrows `scratch`; nothing is allocated once the scratch has been
    /// sized for this model.
    pub fn predict<'s>(
        &self,
        row: &[f32],
        scratch: &'s mut Scratch,
    ) -> Result<Output<'s>, PredictError> {
        if row.len() != self.n_features {
            return Err(PredictError::FeatureCount {
                expected: self.n_features,
                found: row.len(),
            });
        }
        if let Some(index) = first_non_finite(row) {
            return Err(PredictError::NonFinite { index });
        }
        let k = self.kernels;
        Ok(match &self.body {
            Family::Linear(m) => m.predict(k, row, scratch),
            Family::Logistic(m) => m.predict(k, row, scratch),
            Family::Trees(m) => m.predict(row, scratch)?,
            Family::KMeans(m) => m.predict(k, row, scratch),
            Family::Sequential(m) => m.predict(k, row, scratch),
        })
    }

    /// Predicts `n_rows` rows stored contiguously in `rows`
    /// (`n_rows × n_features` finite values). Linear models and networks
    /// compute the whole batch with matrix–matrix products.
    pub fn predict_batch(&self, rows: &[f32], n_rows: usize) -> Result<BatchOutput, PredictError> {
        self.batch(rows, n_rows, None)
    }

    /// [`Model::predict_batch`], keeping a network's hidden activations in
    /// `scratch` instead of fresh buffers: repeated batches then allocate
    /// only their results (and the page faults of fresh large buffers are
    /// avoided). The scratch keeps the largest batch's buffers
    /// (`n_rows ×` the widest layer).
    pub fn predict_batch_with(
        &self,
        rows: &[f32],
        n_rows: usize,
        scratch: &mut Scratch,
    ) -> Result<BatchOutput, PredictError> {
        self.batch(rows, n_rows, Some(scratch))
    }

    fn batch(
        &self,
        rows: &[f32],
        n_rows: usize,
        scratch: Option<&mut Scratch>,
    ) -> Result<BatchOutput, PredictError> {
        let n_features = self.n_features;
        if n_rows.checked_mul(n_features) != Some(rows.len()) {
            return Err(PredictError::BatchShape {
                n_rows,
                n_features,
                found: rows.len(),
            });
        }
        if let Some(position) = first_non_finite(rows) {
            return Err(PredictError::NonFiniteInBatch {
                row: position.checked_div(n_features).unwrap_or(0),
                index: position.checked_rem(n_features).unwrap_or(position),
            });
        }
        let k = self.kernels;
        Ok(match &self.body {
            Family::Linear(m) => m.predict_batch(k, rows, n_rows),
            Family::Logistic(m) => m.predict_batch(k, rows, n_rows),
            Family::Trees(m) => m.predict_batch(rows, n_rows)?,
            Family::KMeans(m) => m.predict_batch(k, rows, n_rows),
            Family::Sequential(m) => m.predict_batch(k, rows, n_rows, scratch),
        })
    }
}

/// The index of the first NaN or infinity in `values`. The common all-finite
/// case is one branch-free pass (which the compiler vectorises); the index is
/// searched for only when there is one.
fn first_non_finite(values: &[f32]) -> Option<usize> {
    let any = values.iter().fold(false, |any, v| any | !v.is_finite());
    if any {
        values.iter().position(|v| !v.is_finite())
    } else {
        None
    }
}

/// The family `file` holds: metadata `model_type` when present, else a bare
/// `weight` (+ `bias`) is a linear model.
fn detect_family(file: &AprFile<'_>) -> Result<ModelFamily, ModelError> {
    let unsupported = || ModelError::Unsupported {
        model_type: file.model_type().unwrap_or_default().to_owned(),
        tensors: file.tensors().iter().map(|t| t.name.clone()).collect(),
    };
    match file.model_type() {
        Some(model_type) => ModelFamily::from_model_type(model_type).ok_or_else(unsupported),
        None => {
            let names: Vec<&str> = file.tensors().iter().map(|t| t.name.as_str()).collect();
            match names.as_slice() {
                ["weight"] | ["bias", "weight"] => Ok(ModelFamily::LinearRegression),
                _ => Err(unsupported()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Model<'static>>();
        assert_send_sync::<BatchOutput>();
    }

    #[test]
    fn family_names_round_trip() {
        for family in [
            ModelFamily::LinearRegression,
            ModelFamily::LogisticRegression,
            ModelFamily::DecisionTree,
            ModelFamily::RandomForest,
            ModelFamily::KMeans,
            ModelFamily::NeuralSequential,
        ] {
            assert_eq!(
                ModelFamily::from_model_type(&family.to_string()),
                Some(family)
            );
        }
        assert_eq!(
            ModelFamily::from_model_type("RandomForest"),
            Some(ModelFamily::RandomForest)
        );
        assert_eq!(ModelFamily::from_model_type("linearregression"), None);
    }
}
