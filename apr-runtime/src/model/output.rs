//! What a prediction returns: [`Output`] for one row (borrowing a reusable
//! [`Scratch`]), [`BatchOutput`] for many, and the JSON-ready [`Prediction`].

use serde::Serialize;

/// Reusable buffers for single-row prediction.
///
/// Create one per thread with [`Model::scratch`](super::Model::scratch) and
/// pass it to every [`Model::predict`](super::Model::predict) call: once it
/// has been sized for a model, predicting does not allocate. A scratch made
/// for another model still works; it grows on first use.
#[derive(Debug, Clone, Default)]
pub struct Scratch {
    /// The first activation buffer (every family's result lands in one of
    /// the two).
    pub(super) primary: Vec<f32>,
    /// The second activation buffer (ping-pong partner of `primary`).
    pub(super) secondary: Vec<f32>,
    /// Per-class probabilities when they are not the outputs themselves
    /// (binary logistic regression: `[1 - p, p]`).
    pub(super) probabilities: Vec<f32>,
}

impl Scratch {
    /// A scratch whose buffers can hold `width` values each without growing.
    pub(super) fn with_width(width: usize) -> Self {
        Self {
            primary: Vec::with_capacity(width),
            secondary: Vec::with_capacity(width),
            probabilities: Vec::with_capacity(2),
        }
    }
}

/// The first `len` values of `buf`, growing it (with zeros) when it is
/// shorter. Buffers never shrink, so once a scratch has been used this
/// neither allocates nor writes anything.
pub(super) fn sized(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    let len = len.min(buf.len());
    buf.split_at_mut(len).0
}

/// The result of predicting one row, borrowing the [`Scratch`] it was
/// computed in.
///
/// | family | `class` | `outputs` | `probabilities` |
/// |---|---|---|---|
/// | linear regression | `None` | the `n_out` values | `None` |
/// | binary logistic | `p ≥ 0.5` | `[p]` | `[1 − p, p]` |
/// | multinomial logistic | argmax | softmax | softmax |
/// | decision tree | leaf class | one-hot | one-hot |
/// | random forest | majority vote | votes / trees | votes / trees |
/// | k-means | nearest centroid | squared distances | `None` |
/// | neural network | argmax when the last layer is Softmax | last layer | last layer when Softmax |
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Output<'s> {
    /// The class (or cluster) index, for classifiers, k-means and networks
    /// ending in Softmax.
    pub class: Option<usize>,
    /// The raw output vector.
    pub outputs: &'s [f32],
    /// Per-class probabilities, for classifiers and Softmax-ended networks.
    pub probabilities: Option<&'s [f32]>,
    /// The label of `class`, when the model has labels
    /// ([`Model::labels`](super::Model::labels)).
    pub label: Option<&'s str>,
}

impl<'s> Output<'s> {
    /// The class (or cluster) index, for classifiers, k-means and networks
    /// ending in Softmax.
    pub fn class(&self) -> Option<usize> {
        self.class
    }

    /// The raw output vector.
    pub fn outputs(&self) -> &'s [f32] {
        self.outputs
    }

    /// Per-class probabilities, for classifiers and Softmax-ended networks.
    pub fn probabilities(&self) -> Option<&'s [f32]> {
        self.probabilities
    }

    /// The label of the predicted class, when the model has labels.
    pub fn label(&self) -> Option<&'s str> {
        self.label
    }

    /// The headline answer: the class when there is one, else the value when
    /// there is a single output, else the whole output vector.
    pub fn prediction(&self) -> Prediction {
        match (self.class, self.outputs) {
            (Some(class), _) => Prediction::Class(class),
            (None, [value]) => Prediction::Value(*value),
            (None, values) => Prediction::Values(values.to_vec()),
        }
    }
}

/// The headline answer of one prediction, serialised as a bare number or
/// array (`#[serde(untagged)]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Prediction {
    /// A class or cluster index.
    Class(usize),
    /// The value of a single-output model.
    Value(f32),
    /// The output vector of a multi-output model.
    Values(Vec<f32>),
}

/// The result of [`Model::predict_one`](super::Model::predict_one): an
/// [`Output`] that owns its values.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedOutput {
    class: Option<usize>,
    outputs: Vec<f32>,
    probabilities: Option<Vec<f32>>,
    label: Option<String>,
}

impl OwnedOutput {
    /// The headline answer, as [`Output::prediction`].
    pub fn prediction(&self) -> Prediction {
        self.as_output().prediction()
    }

    /// The class (or cluster) index, for classifiers, k-means and networks
    /// ending in Softmax.
    pub fn class(&self) -> Option<usize> {
        self.class
    }

    /// The raw output vector.
    pub fn outputs(&self) -> &[f32] {
        &self.outputs
    }

    /// Per-class probabilities, for classifiers and Softmax-ended networks.
    pub fn probabilities(&self) -> Option<&[f32]> {
        self.probabilities.as_deref()
    }

    /// The label of the predicted class, when the model has labels.
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }

    /// The same answer as a borrowed [`Output`].
    pub fn as_output(&self) -> Output<'_> {
        Output {
            class: self.class,
            outputs: &self.outputs,
            probabilities: self.probabilities.as_deref(),
            label: self.label.as_deref(),
        }
    }
}

impl From<Output<'_>> for OwnedOutput {
    fn from(output: Output<'_>) -> Self {
        OwnedOutput {
            class: output.class,
            outputs: output.outputs.to_vec(),
            probabilities: output.probabilities.map(<[f32]>::to_vec),
            label: output.label.map(str::to_owned),
        }
    }
}

/// Where a batch's probabilities live.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum BatchProbabilities {
    /// The family has none.
    None,
    /// The outputs are the probabilities (softmax, one-hot, votes / trees).
    SameAsOutputs,
    /// A separate `rows × width` array (binary logistic: `[1 − p, p]`).
    Separate {
        /// Probabilities per row.
        width: usize,
        /// `rows × width` values.
        values: Vec<f32>,
    },
}

/// What a family's batch produces besides its outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BatchLayout {
    /// Outputs per row.
    pub(super) n_outputs: usize,
    /// Whether each row gets a class.
    pub(super) classes: bool,
    /// Where the probabilities live.
    pub(super) probabilities: ProbabilityLayout,
}

/// [`BatchProbabilities`] before the values exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ProbabilityLayout {
    /// The family has none.
    None,
    /// The outputs are the probabilities.
    SameAsOutputs,
    /// A separate array of this many values per row.
    Separate(usize),
}

/// Where one run of rows writes its results: slices of the batch's arrays
/// covering exactly those rows (`classes` and `probabilities` are empty when
/// the layout has none).
#[derive(Debug)]
pub(super) struct RowsOut<'o> {
    /// `rows × n_outputs` values.
    pub(super) outputs: &'o mut [f32],
    /// One per row, or empty.
    pub(super) classes: &'o mut [usize],
    /// `rows × width` values, or empty.
    pub(super) probabilities: &'o mut [f32],
}

/// A batch's result arrays, allocated once for every row, then filled in
/// runs of rows (possibly on several threads) through [`RowsOut`].
pub(super) struct BatchArrays {
    layout: BatchLayout,
    n_rows: usize,
    outputs: Vec<f32>,
    classes: Vec<usize>,
    probabilities: Vec<f32>,
}

impl BatchArrays {
    /// Zeroed arrays for `n_rows` rows of `layout`.
    pub(super) fn new(layout: BatchLayout, n_rows: usize) -> Self {
        let width = match layout.probabilities {
            ProbabilityLayout::Separate(width) => width,
            _ => 0,
        };
        Self {
            layout,
            n_rows,
            outputs: vec![0.0; n_rows.saturating_mul(layout.n_outputs)],
            classes: if layout.classes {
                vec![0; n_rows]
            } else {
                Vec::new()
            },
            probabilities: vec![0.0; n_rows.saturating_mul(width)],
        }
    }

    /// Every row at once.
    pub(super) fn all(&mut self) -> RowsOut<'_> {
        RowsOut {
            outputs: &mut self.outputs,
            classes: &mut self.classes,
            probabilities: &mut self.probabilities,
        }
    }

    /// Consecutive runs of rows, one per length in `lengths` (which must sum
    /// to the batch's rows).
    pub(super) fn split(&mut self, lengths: &[usize]) -> Vec<RowsOut<'_>> {
        let n_out = self.layout.n_outputs;
        let width = self
            .probabilities
            .len()
            .checked_div(self.n_rows)
            .unwrap_or(0);
        let mut outputs = self.outputs.as_mut_slice();
        let mut classes = self.classes.as_mut_slice();
        let mut probabilities = self.probabilities.as_mut_slice();
        let mut runs = Vec::with_capacity(lengths.len());
        for &rows in lengths {
            let (o, o_rest) = std::mem::take(&mut outputs).split_at_mut(rows * n_out);
            let c_len = if self.layout.classes { rows } else { 0 };
            let (c, c_rest) = std::mem::take(&mut classes).split_at_mut(c_len);
            let (p, p_rest) = std::mem::take(&mut probabilities).split_at_mut(rows * width);
            (outputs, classes, probabilities) = (o_rest, c_rest, p_rest);
            runs.push(RowsOut {
                outputs: o,
                classes: c,
                probabilities: p,
            });
        }
        runs
    }

    /// Copies every row of `chunk` (same layout) into rows `start..` of
    /// this batch.
    pub(super) fn place(&mut self, start: usize, chunk: &BatchArrays) {
        let copy = |dst: &mut [f32], src: &[f32], width: usize| {
            let at = start.saturating_mul(width);
            if let Some(dst) = dst.get_mut(at..at.saturating_add(src.len())) {
                dst.copy_from_slice(src);
            }
        };
        let width = |values: &[f32], rows: usize| values.len().checked_div(rows).unwrap_or(0);
        copy(
            &mut self.outputs,
            &chunk.outputs,
            width(&chunk.outputs, chunk.n_rows),
        );
        copy(
            &mut self.probabilities,
            &chunk.probabilities,
            width(&chunk.probabilities, chunk.n_rows),
        );
        if let Some(dst) = self
            .classes
            .get_mut(start..start.saturating_add(chunk.classes.len()))
        {
            dst.copy_from_slice(&chunk.classes);
        }
    }

    /// The finished batch.
    pub(super) fn finish(self) -> BatchOutput {
        let probabilities = match self.layout.probabilities {
            ProbabilityLayout::None => BatchProbabilities::None,
            ProbabilityLayout::SameAsOutputs => BatchProbabilities::SameAsOutputs,
            ProbabilityLayout::Separate(width) => BatchProbabilities::Separate {
                width,
                values: self.probabilities,
            },
        };
        BatchOutput {
            n_rows: self.n_rows,
            n_outputs: self.layout.n_outputs,
            outputs: self.outputs,
            probabilities,
            classes: self.layout.classes.then_some(self.classes),
            labels: None,
        }
    }
}

/// The results of [`Model::predict_batch`](super::Model::predict_batch):
/// one [`Output`] per row.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchOutput {
    pub(super) n_rows: usize,
    pub(super) n_outputs: usize,
    /// `n_rows × n_outputs` values.
    pub(super) outputs: Vec<f32>,
    pub(super) probabilities: BatchProbabilities,
    /// One per row, for families that predict a class.
    pub(super) classes: Option<Vec<usize>>,
    /// The model's class labels, when it has them.
    pub(super) labels: Option<std::sync::Arc<[String]>>,
}

impl BatchOutput {
    /// The number of rows.
    pub fn len(&self) -> usize {
        self.n_rows
    }

    /// Whether the batch had no rows.
    pub fn is_empty(&self) -> bool {
        self.n_rows == 0
    }

    /// The number of outputs per row.
    pub fn n_outputs(&self) -> usize {
        self.n_outputs
    }

    /// Every row's outputs, row after row (`len() × n_outputs()` values).
    pub fn outputs(&self) -> &[f32] {
        &self.outputs
    }

    /// Every row's class, for families that predict one.
    pub fn classes(&self) -> Option<&[usize]> {
        self.classes.as_deref()
    }

    /// Row `i`'s result, or `None` when `i >= len()`.
    pub fn row(&self, i: usize) -> Option<Output<'_>> {
        if i >= self.n_rows {
            return None;
        }
        let outputs = row_slice(&self.outputs, i, self.n_outputs)?;
        let probabilities = match &self.probabilities {
            BatchProbabilities::None => None,
            BatchProbabilities::SameAsOutputs => Some(outputs),
            BatchProbabilities::Separate { width, values } => Some(row_slice(values, i, *width)?),
        };
        let class = match &self.classes {
            Some(classes) => Some(*classes.get(i)?),
            None => None,
        };
        let label = match (&self.labels, class) {
            (Some(labels), Some(class)) => labels.get(class).map(String::as_str),
            _ => None,
        };
        Some(Output {
            class,
            outputs,
            probabilities,
            label,
        })
    }

    /// Every row's result, in order.
    pub fn rows(&self) -> impl Iterator<Item = Output<'_>> + '_ {
        (0..self.n_rows).filter_map(|i| self.row(i))
    }
}

fn row_slice(values: &[f32], row: usize, width: usize) -> Option<&[f32]> {
    let start = row.checked_mul(width)?;
    values.get(start..start.checked_add(width)?)
}

/// The index of the largest value; ties (and NaN) go to the lowest index.
pub(super) fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    let mut best_value = f32::NEG_INFINITY;
    for (i, &v) in values.iter().enumerate() {
        if v > best_value {
            best = i;
            best_value = v;
        }
    }
    best
}

/// The index of the smallest value; ties (and NaN) go to the lowest index.
pub(super) fn argmin(values: &[f32]) -> usize {
    let mut best = 0;
    let mut best_value = f32::INFINITY;
    for (i, &v) in values.iter().enumerate() {
        if v < best_value {
            best = i;
            best_value = v;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prediction_follows_the_rule() {
        let one = [2.5];
        let many = [1.0, 2.0];
        let out = Output {
            class: None,
            outputs: &one,
            probabilities: None,
            label: None,
        };
        assert_eq!(out.prediction(), Prediction::Value(2.5));
        let out = Output {
            class: None,
            outputs: &many,
            probabilities: None,
            label: None,
        };
        assert_eq!(out.prediction(), Prediction::Values(vec![1.0, 2.0]));
        let out = Output {
            class: Some(1),
            outputs: &many,
            probabilities: Some(&many),
            label: None,
        };
        assert_eq!(out.prediction(), Prediction::Class(1));
        assert_eq!(
            serde_json::to_string(&out.prediction()).ok().as_deref(),
            Some("1")
        );
        assert_eq!(
            serde_json::to_string(&Prediction::Values(vec![1.0, 2.5]))
                .ok()
                .as_deref(),
            Some("[1.0,2.5]")
        );
    }

    #[test]
    fn argmax_and_argmin_break_ties_low() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0]), 1);
        assert_eq!(argmin(&[2.0, 1.0, 1.0]), 1);
        assert_eq!(argmax(&[f32::NAN, 0.5]), 1);
        assert_eq!(argmax(&[]), 0);
    }

    #[test]
    fn batch_rows_slice_correctly() {
        let batch = BatchOutput {
            n_rows: 2,
            n_outputs: 1,
            outputs: vec![0.25, 0.75],
            probabilities: BatchProbabilities::Separate {
                width: 2,
                values: vec![0.75, 0.25, 0.25, 0.75],
            },
            classes: Some(vec![0, 1]),
            labels: None,
        };
        assert_eq!(batch.len(), 2);
        let row = batch.row(1).map(|r| {
            (
                r.class,
                r.outputs.to_vec(),
                r.probabilities.map(<[f32]>::to_vec),
            )
        });
        assert_eq!(row, Some((Some(1), vec![0.75], Some(vec![0.25, 0.75]))));
        assert!(batch.row(2).is_none());
        assert_eq!(batch.rows().count(), 2);
    }
}
