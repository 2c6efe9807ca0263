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

mod ensemble;
mod error;
mod kmeans;
mod linear;
mod names;
mod output;
mod parallel;
mod pool;
mod preprocess;
mod sequential;
mod source;
mod tree;
mod weights;

use std::cell::RefCell;
use std::fmt;
use std::sync::{Arc, Weak};
use std::sync::{Mutex, PoisonError};

pub use ensemble::{Aggregate, BinaryScore, NodeMode, PostTransform};
pub use error::{ModelError, PredictError};
pub use names::{NamesOrigin, FEATURE_NAMES_KEY, LABELS_KEY};
pub use output::{BatchOutput, Output, OwnedOutput, Prediction, Scratch};
pub use preprocess::{ElementOp, MAX_PREPROCESS_STAGES, PREPROCESS_KEY};
pub use weights::WEIGHT_ALIGNMENT;

use crate::format::schema;
use crate::format::AprFile;
use crate::kernels::{self, Kernels};
use crate::threads::{self, Parallelism, MAX_THREADS, MIN_ROWS_PER_THREAD};
use ensemble::Ensemble;
use kmeans::KMeans;
use linear::{LinearRegression, LogisticRegression};
use names::FeatureNames;
use output::{BatchArrays, BatchLayout, RowsOut};
use preprocess::Preprocess;
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
    /// A tree ensemble with ONNX `TreeEnsemble*` semantics: gradient-boosted
    /// trees, forests and single trees, classifiers and regressors
    /// (`docs/model-families.md`).
    TreeEnsemble,
}

impl ModelFamily {
    /// The metadata `model_type` name of the family.
    pub fn name(self) -> &'static str {
        match self {
            ModelFamily::LinearRegression => schema::linear::LINEAR_REGRESSION,
            ModelFamily::LogisticRegression => schema::linear::LOGISTIC_REGRESSION,
            ModelFamily::DecisionTree => schema::tree::DECISION_TREE,
            ModelFamily::RandomForest => schema::tree::RANDOM_FOREST,
            ModelFamily::KMeans => schema::kmeans::KMEANS,
            ModelFamily::NeuralSequential => schema::sequential::NEURAL_SEQUENTIAL,
            ModelFamily::TreeEnsemble => schema::ensemble::TREE_ENSEMBLE,
        }
    }

    /// The family a metadata `model_type` names. Besides the names
    /// [`ModelFamily::name`] gives, the v1 type names `"DecisionTree"` and
    /// `"RandomForest"` and aprender's `"Sequential"` are accepted.
    pub fn from_model_type(model_type: &str) -> Option<Self> {
        Some(match model_type {
            schema::linear::LINEAR_REGRESSION => ModelFamily::LinearRegression,
            schema::linear::LOGISTIC_REGRESSION => ModelFamily::LogisticRegression,
            schema::tree::DECISION_TREE | schema::tree::DECISION_TREE_APRENDER => {
                ModelFamily::DecisionTree
            }
            schema::tree::RANDOM_FOREST | schema::tree::RANDOM_FOREST_APRENDER => {
                ModelFamily::RandomForest
            }
            schema::kmeans::KMEANS => ModelFamily::KMeans,
            schema::sequential::NEURAL_SEQUENTIAL | schema::sequential::SEQUENTIAL => {
                ModelFamily::NeuralSequential
            }
            schema::ensemble::TREE_ENSEMBLE => ModelFamily::TreeEnsemble,
            _ => return None,
        })
    }
}

impl fmt::Display for ModelFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a model's weights are held: viewed in place in the file's bytes,
/// copied at load because the bytes were not [`WEIGHT_ALIGNMENT`]-aligned, or
/// converted to `f32` at load (for inspection output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WeightStorage {
    /// Weight tensors used in place (F32, 64-byte aligned in memory).
    pub in_place: usize,
    /// F32 weight tensors copied once at load into 64-byte aligned storage,
    /// because the bytes the model was loaded from did not put them on a
    /// 64-byte boundary (e.g. a `std::fs::read` buffer). Load from 64-byte
    /// aligned bytes (as `#[apr_lambda]` embeds them) to avoid the copy.
    pub realigned: usize,
    /// Weight tensors decoded or dequantized once at load (F16, BF16, F64,
    /// APR-Q8, APR-Q4, ...).
    pub converted: usize,
    /// The number of `f32` values across all weight tensors.
    pub parameters: usize,
}

impl WeightStorage {
    fn add(&mut self, buffer: &weights::Weights<'_>) {
        match buffer {
            weights::Weights::InPlace(_) => self.in_place += 1,
            weights::Weights::Realigned(_) => self.realigned += 1,
            weights::Weights::Converted(_) => self.converted += 1,
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
    Ensemble(Ensemble),
}

/// A validated model, ready to predict. Borrows the file's bytes for `'a`
/// (F32 weights are views into them); `Send + Sync`, so one model serves
/// every thread (each with its own [`Scratch`]).
pub struct Model<'a> {
    family: ModelFamily,
    /// Element-wise stages applied to every row before the family.
    preprocess: Preprocess,
    body: Family<'a>,
    n_features: usize,
    n_outputs: usize,
    /// The widest intermediate vector, for sizing a [`Scratch`].
    max_width: usize,
    kernels: &'static Kernels,
    parallelism: Parallelism,
    /// Estimated time to predict one row in a batch, in picoseconds.
    row_cost_ps: usize,
    /// One label per class (or cluster), when known.
    labels: Option<Arc<[String]>>,
    /// One distinct name per feature, when known.
    feature_names: Option<FeatureNames>,
    /// This model, when it is shared ([`Model::into_shared`]): its split
    /// batches then run on the worker pool.
    shared: Weak<Model<'static>>,
}

impl fmt::Debug for Model<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("family", &self.family)
            .field("n_features", &self.n_features)
            .field("n_outputs", &self.n_outputs)
            .field("kernels", &self.kernels.name)
            .field("parallelism", &self.parallelism)
            .field("labels", &self.labels)
            .field("feature_names", &self.feature_names().map(<[String]>::len))
            .finish_non_exhaustive()
    }
}

/// How [`Model::from_file_with`] loads a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadOptions {
    /// Check every weight, bias, threshold, leaf value and centroid for NaN
    /// and infinities ([`ModelError::NonFiniteWeight`]): one pass over the
    /// values, about 0.1 ms per MiB. On by default; `#[apr_lambda]` turns it
    /// off at start-up for the model it embeds, which it checked while the
    /// crate compiled, so that init time stays flat in model size.
    pub verify_finite_weights: bool,
    /// Read class labels from the metadata (`labels`, else `class_names`).
    /// On by default; off when the caller gives its own
    /// ([`Model::with_labels`]), which then win even over metadata that does
    /// not fit the model.
    pub labels_from_metadata: bool,
    /// Read feature names from the metadata (`feature_names`). On by
    /// default; off when the caller gives its own
    /// ([`Model::with_feature_names`]).
    pub feature_names_from_metadata: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            verify_finite_weights: true,
            labels_from_metadata: true,
            feature_names_from_metadata: true,
        }
    }
}

impl<'a> Model<'a> {
    /// Builds the model `file` describes, validating its family, every shape
    /// and every weight value (finite). F32 weights stay in the file's bytes
    /// when they are 64-byte aligned; other dtypes are converted to `f32`
    /// here, once.
    pub fn from_file(file: &AprFile<'a>) -> Result<Self, ModelError> {
        Self::from_file_with(file, LoadOptions::default())
    }

    /// [`Model::from_file`] with `options`.
    pub fn from_file_with(file: &AprFile<'a>, options: LoadOptions) -> Result<Self, ModelError> {
        let family = detect_family(file)?;
        let src = TensorSource::new(file, family, options.verify_finite_weights);
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
            ModelFamily::TreeEnsemble => {
                let m = Ensemble::load(&src)?;
                let (n_in, n_out) = (m.n_features(), m.n_outputs());
                (Family::Ensemble(m), n_in, n_out, n_out)
            }
        };
        let preprocess = Preprocess::load(&src, n_features)?;
        let row_cost_ps = row_cost_ps(&body);
        let model = Self {
            family,
            preprocess,
            body,
            n_features,
            n_outputs,
            max_width,
            kernels: kernels::active(),
            parallelism: Parallelism::Auto,
            row_cost_ps,
            labels: None,
            feature_names: None,
            shared: Weak::new(),
        };
        let metadata = file.metadata();
        let mut model = model;
        if options.labels_from_metadata {
            if let Some(labels) = names::from_metadata(metadata, LABELS_KEY)? {
                model = model.labels_from(labels, NamesOrigin::Metadata)?;
            } else if let Ok(Some(labels)) = names::from_metadata(metadata, names::CLASS_NAMES_KEY)
            {
                // `class_names` is not this format's key: used when it fits
                // the model, ignored otherwise (e.g. on a network that ends
                // in logits rather than Softmax).
                if names::check_labels(
                    &labels,
                    model.n_classes(),
                    model.family.name(),
                    model.n_outputs,
                    NamesOrigin::Metadata,
                )
                .is_ok()
                {
                    model.labels = Some(labels.into());
                }
            }
        }
        if options.feature_names_from_metadata {
            if let Some(names) = names::from_metadata(metadata, FEATURE_NAMES_KEY)? {
                model = model.feature_names_from(names, NamesOrigin::Metadata)?;
            }
        }
        Ok(model)
    }

    /// The same model answering with these class (or cluster) labels, one
    /// per class in class order: [`Output::label`] then names the predicted
    /// class. Replaces any `labels` from the model's metadata.
    ///
    /// # Errors
    /// [`ModelError::LabelCount`] when the count is not the model's number
    /// of classes ([`Model::n_classes`]), or the model predicts no class.
    pub fn with_labels<S: Into<String>>(
        self,
        labels: impl IntoIterator<Item = S>,
    ) -> Result<Self, ModelError> {
        let labels = labels.into_iter().map(Into::into).collect();
        self.labels_from(labels, NamesOrigin::Given)
    }

    fn labels_from(mut self, labels: Vec<String>, origin: NamesOrigin) -> Result<Self, ModelError> {
        names::check_labels(
            &labels,
            self.n_classes(),
            self.family.name(),
            self.n_outputs,
            origin,
        )?;
        self.labels = Some(labels.into());
        Ok(self)
    }

    /// The same model with these feature names, one per feature in input
    /// order: requests may then send rows as objects keyed by name.
    /// Replaces any `feature_names` from the model's metadata.
    ///
    /// # Errors
    /// [`ModelError::FeatureNameCount`] when the count is not
    /// [`Model::n_features`], [`ModelError::DuplicateFeatureName`] when a
    /// name repeats.
    pub fn with_feature_names<S: Into<String>>(
        self,
        names: impl IntoIterator<Item = S>,
    ) -> Result<Self, ModelError> {
        let names = names.into_iter().map(Into::into).collect();
        self.feature_names_from(names, NamesOrigin::Given)
    }

    fn feature_names_from(
        mut self,
        names: Vec<String>,
        origin: NamesOrigin,
    ) -> Result<Self, ModelError> {
        self.feature_names = Some(FeatureNames::new(names, self.n_features, origin)?);
        Ok(self)
    }

    /// The class (or cluster) labels, one per class, when the model has them.
    pub fn labels(&self) -> Option<&[String]> {
        self.labels.as_deref()
    }

    /// The label of class `class`, when the model has labels.
    pub fn label(&self, class: usize) -> Option<&str> {
        self.labels.as_deref()?.get(class).map(String::as_str)
    }

    /// The feature names, one per feature in input order, when the model
    /// has them.
    pub fn feature_names(&self) -> Option<&[String]> {
        self.feature_names.as_ref().map(FeatureNames::names)
    }

    /// The position of the feature called `name`, when the model has
    /// feature names and one of them is `name`.
    pub fn feature_index(&self, name: &str) -> Option<usize> {
        self.feature_names.as_ref()?.position(name)
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

    /// The same model spreading its batches over threads as `parallelism`
    /// says (by default [`Parallelism::Auto`]: up to
    /// [`threads::configured`] threads, for batches large enough to pay).
    #[must_use]
    pub fn with_parallelism(mut self, parallelism: Parallelism) -> Self {
        self.parallelism = parallelism;
        self
    }

    /// How this model spreads its batches over threads.
    pub fn parallelism(&self) -> Parallelism {
        self.parallelism
    }

    /// How many threads a batch of `n_rows` rows runs on: 1 for one row and
    /// for batches too small to gain from more, else up to the
    /// [`Parallelism`] limit, giving each thread at least
    /// [`MIN_ROWS_PER_THREAD`] rows and (except with
    /// [`Parallelism::Exactly`]) at least [`MIN_THREAD_WORK_NS`] of
    /// estimated work. Reads [`threads::configured`] (once per process)
    /// only for a batch that large.
    pub fn batch_threads(&self, n_rows: usize) -> usize {
        let by_rows = n_rows / MIN_ROWS_PER_THREAD;
        if by_rows < 2 {
            return 1;
        }
        let by_work = || {
            let work_ps = n_rows.saturating_mul(self.row_cost_ps);
            work_ps / MIN_THREAD_WORK_NS.saturating_mul(1000)
        };
        let (limit, by_work) = match self.parallelism {
            Parallelism::Exactly(n) => (n, usize::MAX),
            Parallelism::UpTo(n) => (n, by_work()),
            Parallelism::Auto => match by_work() {
                0 | 1 => return 1,
                by_work => (threads::configured().threads, by_work),
            },
        };
        limit.min(by_rows).min(by_work).clamp(1, MAX_THREADS)
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
            Family::Ensemble(m) => m.n_classes(),
        }
    }

    /// How the weights are held (in place vs converted at load).
    pub fn weight_storage(&self) -> WeightStorage {
        let mut storage = WeightStorage::default();
        match &self.body {
            Family::Linear(m) => m.map.buffers().for_each(|b| storage.add(b)),
            Family::Logistic(m) => m.map.buffers().for_each(|b| storage.add(b)),
            Family::Trees(_) => {}
            // Thresholds and leaf weights, decoded into the ensemble's own
            // layout at load (no weight tensor is used in place).
            Family::Ensemble(m) => storage.parameters = m.parameter_count(),
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

    /// Predicts one row of [`Model::n_features`] finite values (tree
    /// ensembles also take NaN as a missing value: [`Model::accepts_missing`]).
    /// The result borrows `scratch`; nothing is allocated once the scratch has been
    /// sized for this model.
    pub fn predict<'s>(
        &'s self,
        row: &[f32],
        scratch: &'s mut Scratch,
    ) -> Result<Output<'s>, PredictError> {
        if row.len() != self.n_features {
            return Err(PredictError::FeatureCount {
                expected: self.n_features,
                found: row.len(),
            });
        }
        if !self.accepts_missing() {
            if let Some(index) = first_non_finite(row) {
                return Err(PredictError::NonFinite { index });
            }
        }
        let mut output = if self.preprocess.is_empty() {
            self.predict_family(row, scratch)?
        } else {
            PREPROCESSED_ROW.with(|cell| match cell.try_borrow_mut() {
                Ok(mut buffer) => {
                    self.preprocess.apply(row, self.n_features, &mut buffer);
                    self.predict_family(&buffer, scratch)
                }
                // Re-entered on this thread: a fresh buffer.
                Err(_) => {
                    let mut buffer = Vec::new();
                    self.preprocess.apply(row, self.n_features, &mut buffer);
                    self.predict_family(&buffer, scratch)
                }
            })?
        };
        output.label = output.class.and_then(|class| self.label(class));
        Ok(output)
    }

    /// Whether rows may hold NaN (a missing value) and infinities: tree
    /// ensembles send a NaN feature down each node's missing-value branch;
    /// every other family refuses non-finite input.
    pub fn accepts_missing(&self) -> bool {
        matches!(self.body, Family::Ensemble(_))
    }

    /// The family's prediction for one (preprocessed) row.
    fn predict_family<'s>(
        &'s self,
        row: &[f32],
        scratch: &'s mut Scratch,
    ) -> Result<Output<'s>, PredictError> {
        let k = self.kernels;
        Ok(match &self.body {
            Family::Linear(m) => m.predict(k, row, scratch),
            Family::Logistic(m) => m.predict(k, row, scratch),
            Family::Trees(m) => m.predict(row, scratch)?,
            Family::KMeans(m) => m.predict(k, row, scratch),
            Family::Sequential(m) => m.predict(k, row, scratch),
            Family::Ensemble(m) => m.predict(row, scratch)?,
        })
    }

    /// Predicts one row of [`Model::n_features`] finite values (or missing
    /// values, as [`Model::predict`]), with no
    /// scratch buffer to manage: the answer is owned. It computes in a
    /// buffer of the calling thread, so concurrent calls (one per thread)
    /// never wait for each other; it allocates only the answer's vectors.
    /// For a hot loop, [`Model::predict`] with a [`Scratch`] allocates
    /// nothing.
    ///
    /// ```
    /// # use apr_runtime::format::AprWriter;
    /// # use apr_runtime::model::{Model, Prediction};
    /// # let mut writer = AprWriter::new();
    /// # writer.model_type("LogisticRegression");
    /// # writer.add_f32("weight", &[2, 2], &[1.0, -1.0, -1.0, 1.0])?;
    /// # let bytes = writer.to_bytes();
    /// let model = Model::from_bytes(&bytes)?.with_labels(["cat", "dog"])?;
    /// let out = model.predict_one(&[0.2, 3.0])?;
    /// assert_eq!(out.class(), Some(1));
    /// assert_eq!(out.label(), Some("dog"));
    /// assert_eq!(out.prediction(), Prediction::Class(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`PredictError::FeatureCount`] and [`PredictError::NonFinite`], as
    /// [`Model::predict`].
    pub fn predict_one(&self, features: &[f32]) -> Result<OwnedOutput, PredictError> {
        ROW_SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => self.predict(features, &mut scratch).map(OwnedOutput::from),
            // Re-entered from inside a prediction on this thread: a fresh buffer.
            Err(_) => self
                .predict(features, &mut Scratch::default())
                .map(OwnedOutput::from),
        })
    }

    /// Predicts `n_rows` rows stored contiguously in `rows`
    /// (`n_rows × n_features` finite values, or missing values as
    /// [`Model::predict`]). Linear models and networks
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
        if !self.accepts_missing() {
            if let Some(position) = first_non_finite(rows) {
                return Err(PredictError::NonFiniteInBatch {
                    row: position.checked_div(n_features).unwrap_or(0),
                    index: position.checked_rem(n_features).unwrap_or(position),
                });
            }
        }
        let mut preprocessed = Vec::new();
        let rows = if self.preprocess.is_empty() {
            rows
        } else {
            self.preprocess.apply(rows, n_features, &mut preprocessed);
            &preprocessed
        };
        let mut arrays = BatchArrays::new(self.batch_layout(), n_rows);
        let mut fresh = Scratch::default();
        let scratch = scratch.unwrap_or(&mut fresh);
        let threads = self.batch_threads(n_rows);
        if threads <= 1 {
            self.predict_rows(rows, n_rows, arrays.all(), scratch)?;
        } else {
            self.predict_split(rows, n_rows, threads, &mut arrays, scratch)?;
        }
        let mut batch = arrays.finish();
        batch.labels = self.labels.clone();
        Ok(batch)
    }

    /// Splits the batch into runs of rows, as even as can be: on the worker
    /// pool for a shared model (two chunks per thread), otherwise one
    /// run per thread on scoped threads ([`parallel::run`]): this thread in
    /// `scratch`, each helper in a scratch this thread keeps for it. The first
    /// error in row order wins, as it would on one thread.
    fn predict_split(
        &self,
        rows: &[f32],
        n_rows: usize,
        threads: usize,
        arrays: &mut BatchArrays,
        scratch: &mut Scratch,
    ) -> Result<(), PredictError> {
        if let Some(shared) = self.shared.upgrade() {
            // A couple of chunks per thread, so that a worker slow to wake
            // (or busy with another invocation) leaves more of them to the
            // caller, but no more: each chunk streams every layer's weights
            // through the cache again. The weights are packed once per layer,
            // not per chunk.
            let chunks = (threads * POOL_CHUNKS_PER_THREAD)
                .min(n_rows / POOL_MIN_CHUNK_ROWS)
                .max(1);
            let bounds = split_bounds(n_rows, chunks, self.kernels.gemm_tile_rows);
            return predict_pooled(&shared, rows, bounds, threads - 1, arrays, scratch);
        }
        let bounds = split_bounds(n_rows, threads, self.kernels.gemm_tile_rows);
        let lengths: Vec<usize> = bounds.windows(2).map(|b| b[1] - b[0]).collect();
        let runs: Vec<Mutex<Run<'_, '_>>> = arrays
            .split(&lengths)
            .into_iter()
            .zip(bounds.windows(2))
            .map(|(out, b)| {
                let input = rows
                    .get(b[0] * self.n_features..b[1] * self.n_features)
                    .unwrap_or_default();
                Mutex::new(Run {
                    input,
                    n_rows: b[1] - b[0],
                    out: Some(out),
                    result: Ok(()),
                })
            })
            .collect();
        let predict_run = |i: usize, scratch: &mut Scratch| {
            if let Some(run) = runs.get(i) {
                let mut run = run.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(out) = run.out.take() {
                    run.result = self.predict_rows(run.input, run.n_rows, out, scratch);
                }
            }
        };
        HELPER_SCRATCH.with(|cell| {
            let mut fresh = Vec::new();
            let mut kept = cell.try_borrow_mut();
            let helpers = match kept.as_mut() {
                Ok(kept) => kept,
                Err(_) => &mut fresh,
            };
            if helpers.len() < threads - 1 {
                helpers.resize_with(threads - 1, Scratch::default);
            }
            parallel::run(
                runs.len(),
                &mut helpers[..threads - 1],
                &mut |i| predict_run(i, scratch),
                &|i, helper_scratch| predict_run(i, helper_scratch),
            );
        });
        runs.into_iter().try_for_each(|run| {
            run.into_inner()
                .unwrap_or_else(PoisonError::into_inner)
                .result
        })
    }

    /// The shape of this model's batch results.
    fn batch_layout(&self) -> BatchLayout {
        match &self.body {
            Family::Linear(m) => m.layout(),
            Family::Logistic(m) => m.layout(),
            Family::Trees(m) => m.layout(),
            Family::KMeans(m) => m.layout(),
            Family::Sequential(m) => m.layout(),
            Family::Ensemble(m) => m.layout(),
        }
    }

    /// Predicts `n_rows` rows (`rows`, already checked) into `out`.
    fn predict_rows(
        &self,
        rows: &[f32],
        n_rows: usize,
        out: RowsOut<'_>,
        scratch: &mut Scratch,
    ) -> Result<(), PredictError> {
        let k = self.kernels;
        match &self.body {
            Family::Linear(m) => m.predict_rows(k, rows, out),
            Family::Logistic(m) => m.predict_rows(k, rows, out),
            Family::Trees(m) => m.predict_rows(rows, out)?,
            Family::KMeans(m) => m.predict_rows(k, rows, out),
            Family::Sequential(m) => m.predict_rows(k, rows, n_rows, out, scratch),
            Family::Ensemble(m) => m.predict_rows(rows, out)?,
        }
        Ok(())
    }
}

impl Model<'static> {
    /// The model, shared by every thread that predicts with it. A batch it
    /// splits across threads ([`Model::batch_threads`]) then runs on a pool
    /// of parked worker threads, started by the first such batch and kept
    /// between batches, instead of threads spawned for each batch: the
    /// rows are copied once for the workers, and a split costs a wake-up
    /// rather than a spawn (`BENCHMARKS.md`, "Batches across threads").
    /// Answers are bit-identical either way. [`LambdaHandler`](crate::lambda::LambdaHandler)
    /// shares its model so.
    #[must_use]
    pub fn into_shared(self) -> Arc<Self> {
        Arc::new_cyclic(|me| Model {
            shared: me.clone(),
            ..self
        })
    }
}

/// The least estimated work, in nanoseconds, worth handing to another
/// thread: spawning and joining a scoped thread costs tens of microseconds
/// (more on a loaded machine), so each thread of a split batch gets at least
/// 100 µs (`BENCHMARKS.md`, "Batches across threads", measures the
/// break-even per family).
pub const MIN_THREAD_WORK_NS: usize = 100_000;

/// Chunks per thread of a batch split on the worker pool: measured
/// against 1, 4 and chunks that shrink as the batch drains (guided
/// scheduling), 2 was the fastest for 256 and 1 024 rows on 2 threads
/// (`BENCHMARKS.md`, "Batches across threads").
const POOL_CHUNKS_PER_THREAD: usize = 2;

/// The fewest rows in one chunk of a pooled batch, before its bounds move to
/// multiples of the tile rows ([`split_bounds`]): what is left is still at
/// least [`crate::kernels::GEMM_MIN_ROWS_FOR_PACKING`], so that every
/// chunk runs the same packed gemm as the whole batch would (the same bits
/// per row). [`MIN_ROWS_PER_THREAD`] keeps the runs of scoped threads so.
const POOL_MIN_CHUNK_ROWS: usize = 16;
/// The fewest rows an even share may have for [`split_bounds`] to keep every
/// run at [`crate::kernels::GEMM_MIN_ROWS_FOR_PACKING`] or more: each of a
/// run's two boundaries moves at most half a tile.
const MIN_SHARE_TO_SPLIT: usize =
    kernels::GEMM_MIN_ROWS_FOR_PACKING + 2 * (kernels::MAX_GEMM_TILE_ROWS / 2);
const _: () =
    assert!(MIN_SHARE_TO_SPLIT <= POOL_MIN_CHUNK_ROWS && MIN_SHARE_TO_SPLIT <= MIN_ROWS_PER_THREAD);

/// Where `parts` runs of `n_rows` rows start, and `n_rows` last: as even as
/// can be with every boundary a multiple of `step` (the gemm's tile rows,
/// taken as at most [`kernels::MAX_GEMM_TILE_ROWS`]), so that only the last
/// run ends in a partial register tile. Each boundary moves at most
/// `step / 2` rows from the even split, so a run is at least
/// `⌊n_rows / parts⌋ − 2⌊step / 2⌋` rows long: at least
/// [`crate::kernels::GEMM_MIN_ROWS_FOR_PACKING`] when the even share is
/// [`MIN_SHARE_TO_SPLIT`] or more, as both callers ensure.
fn split_bounds(n_rows: usize, parts: usize, step: usize) -> Vec<usize> {
    let parts = parts.max(1);
    let step = step.clamp(1, kernels::MAX_GEMM_TILE_ROWS);
    let bounds: Vec<usize> = (0..=parts)
        .map(|p| {
            if p == parts {
                n_rows
            } else {
                ((p * n_rows / parts + step / 2) / step * step).min(n_rows)
            }
        })
        .collect();
    debug_assert!(
        n_rows / parts < MIN_SHARE_TO_SPLIT
            || bounds
                .windows(2)
                .all(|b| b[1] - b[0] >= kernels::GEMM_MIN_ROWS_FOR_PACKING)
    );
    bounds
}

/// [`Model::predict_split`] on the worker pool ([`pool`]): each chunk
/// `bounds[i]..bounds[i + 1]` of rows is predicted into arrays of its own,
/// then copied into `arrays` in order. The first error in row order wins,
/// as on one thread.
fn predict_pooled(
    model: &Arc<Model<'static>>,
    rows: &[f32],
    bounds: Vec<usize>,
    helpers: usize,
    arrays: &mut BatchArrays,
    scratch: &mut Scratch,
) -> Result<(), PredictError> {
    type Slot = Mutex<Option<Result<BatchArrays, PredictError>>>;
    let chunks = bounds.len().saturating_sub(1);
    let slots: Arc<[Slot]> = (0..chunks).map(|_| Mutex::new(None)).collect();
    let task: pool::Task = {
        let model = Arc::clone(model);
        let rows: Arc<[f32]> = Arc::from(rows);
        let slots = Arc::clone(&slots);
        let bounds = bounds.clone();
        let layout = model.batch_layout();
        Arc::new(move |i: usize, scratch: &mut Scratch| {
            let (Some(&start), Some(&end)) = (bounds.get(i), bounds.get(i + 1)) else {
                return;
            };
            let n = model.n_features;
            let input = rows.get(start * n..end * n).unwrap_or_default();
            let mut out = BatchArrays::new(layout, end - start);
            let result = model
                .predict_rows(input, end - start, out.all(), scratch)
                .map(|()| out);
            if let Some(slot) = slots.get(i) {
                *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
            }
        })
    };
    pool::run(chunks, helpers, task, scratch);
    for (chunk, (slot, &start)) in slots.iter().zip(&bounds).enumerate() {
        let result = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
        match result {
            Some(Ok(rows)) => arrays.place(start, &rows),
            Some(Err(err)) => return Err(err),
            // Every chunk ran (`pool::run` returns only then).
            None => return Err(PredictError::Unfinished { chunk }),
        }
    }
    Ok(())
}

/// One run of rows of a split batch, and what became of it.
struct Run<'r, 'o> {
    input: &'r [f32],
    n_rows: usize,
    /// Taken by the thread that predicts the run.
    out: Option<RowsOut<'o>>,
    result: Result<(), PredictError>,
}

thread_local! {
    /// The buffers [`Model::predict_one`] computes in, one per thread.
    static ROW_SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());

    /// The preprocessed row [`Model::predict`] hands to the family, when the
    /// model has preprocessing stages.
    static PREPROCESSED_ROW: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };

    /// The activation buffers this thread lends to the helper threads of its
    /// split batches, kept from batch to batch.
    static HELPER_SCRATCH: RefCell<Vec<Scratch>> = const { RefCell::new(Vec::new()) };
}

/// Estimated picoseconds to predict one row of a batch. The constants fit,
/// within 2x, the single-thread costs per row measured by
/// `benches/parallel.rs` (`break_even`) on the benchmark machine: the
/// 64→256→256→10 MLP 2.2 µs, a 4→32→3 MLP 77 ns, a 4→3 logistic regression
/// 63 ns, 8 centroids × 16 features 27 ns, 50 trees of depth 8 2.5 µs.
fn row_cost_ps(body: &Family<'_>) -> usize {
    /// Per row, whatever the family: checks, output and class writes.
    const ROW_PS: usize = 40_000;
    /// One multiply-add inside a gemm (about 40 G/s).
    const GEMM_MADD_PS: usize = 25;
    /// One multiply-add of a k-means distance.
    const DISTANCE_MADD_PS: usize = 60;
    /// One centroid of a k-means row (loop and reduction overhead).
    const CENTROID_PS: usize = 1_000;
    /// One node visited in a tree walk (a dependent, unpredictable load).
    const NODE_PS: usize = 5_000;
    let work = match body {
        Family::Linear(m) => m.map.multiply_adds().saturating_mul(GEMM_MADD_PS),
        Family::Logistic(m) => m.map.multiply_adds().saturating_mul(GEMM_MADD_PS),
        Family::Sequential(m) => m.multiply_adds().saturating_mul(GEMM_MADD_PS),
        Family::KMeans(m) => m.k.saturating_mul(
            m.d.saturating_mul(DISTANCE_MADD_PS)
                .saturating_add(CENTROID_PS),
        ),
        Family::Trees(m) => m.max_visits().saturating_mul(NODE_PS),
        Family::Ensemble(m) => m.max_visits().saturating_mul(NODE_PS),
    };
    work.saturating_add(ROW_PS)
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
                [schema::linear::WEIGHT] | [schema::linear::BIAS, schema::linear::WEIGHT] => {
                    Ok(ModelFamily::LinearRegression)
                }
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
            ModelFamily::TreeEnsemble,
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

    #[test]
    fn split_bounds_cut_at_tile_rows_and_keep_runs_long() {
        // Steps past the widest tile are taken as the widest tile.
        for (step, cut) in [(1, 1), (4, 4), (5, 5), (6, 6), (20, 6)] {
            let parts_tried = (1..=16).chain([63, 64, 2 * MAX_THREADS]);
            for parts in parts_tried {
                for n_rows in parts * MIN_ROWS_PER_THREAD..parts * MIN_ROWS_PER_THREAD + 200 {
                    let bounds = split_bounds(n_rows, parts, step);
                    assert_eq!(bounds.len(), parts + 1);
                    assert_eq!((bounds[0], bounds[parts]), (0, n_rows));
                    for (i, run) in bounds.windows(2).enumerate() {
                        let len = run[1].checked_sub(run[0]).expect("bounds ascend");
                        let at_least = n_rows / parts - 2 * (cut / 2);
                        assert!(len >= at_least, "{n_rows}/{parts}/{step}: {bounds:?}");
                        assert!(len >= kernels::GEMM_MIN_ROWS_FOR_PACKING);
                        if i + 1 < parts {
                            assert_eq!(len % cut, 0, "{n_rows}/{parts}/{step}: {bounds:?}");
                        }
                    }
                }
            }
        }
    }
}
