//! Affine maps (`y = W x + b`): linear regression, logistic regression
//! (binary and multinomial), and every `Linear` layer of a network.

use super::output::{argmax, sized, BatchLayout, Output, ProbabilityLayout, RowsOut, Scratch};
use super::source::{is_scalar, shape_mismatch, vector_len, TensorSource};
use super::weights::{AlignedF32, Weights};
use super::ModelError;
use crate::format::schema::linear as names;
use crate::kernels::{gemm_runs_rows, pack_panels, packed_len, Isa, Kernels};
use std::sync::OnceLock;

/// `y = W x + b` with `W` row-major `n_out × n_in`, borrowed from the file
/// when it is stored as 64-byte aligned F32.
pub(super) struct Dense<'a> {
    pub(super) weight: Weights<'a>,
    pub(super) bias: Option<Weights<'a>>,
    pub(super) n_in: usize,
    pub(super) n_out: usize,
    /// `W` packed into the SIMD gemm's panels, made by the first batch large
    /// enough to pack, never for a layer the gemm runs row by row
    /// ([`gemm_runs_rows`]), and never at load: no cold-start cost, and no
    /// second copy of `W` for a function that only answers single rows.
    /// Every later batch, and every thread of a split batch, reads it
    /// instead of packing `W` again.
    panels: OnceLock<AlignedF32>,
}

impl<'a> Dense<'a> {
    /// The map `W x + b`, `W` being `n_out × n_in`.
    pub(super) fn new(
        weight: Weights<'a>,
        bias: Option<Weights<'a>>,
        n_in: usize,
        n_out: usize,
    ) -> Self {
        Self {
            weight,
            bias,
            n_in,
            n_out,
            panels: OnceLock::new(),
        }
    }

    /// One row: `y` must hold `n_out` values, `x` `n_in`.
    pub(super) fn forward_row(&self, k: &Kernels, x: &[f32], y: &mut [f32]) {
        (k.gemv)(&self.weight, x, self.bias.as_deref(), y);
    }

    /// Many rows: `x` is `rows × n_in`, `y` `rows × n_out`.
    pub(super) fn forward_rows(&self, k: &Kernels, x: &[f32], y: &mut [f32]) {
        let rows = x.len().checked_div(self.n_in).unwrap_or(0);
        if k.isa == Isa::Scalar || gemm_runs_rows(rows, self.n_in, self.n_out) {
            (k.gemm)(
                &self.weight,
                x,
                self.bias.as_deref(),
                y,
                self.n_in,
                self.n_out,
            );
            return;
        }
        let panels = self.panels.get_or_init(|| {
            let mut panels = AlignedF32::zeroed(packed_len(self.n_in, self.n_out));
            pack_panels(&self.weight, self.n_in, self.n_out, &mut panels);
            panels
        });
        (k.gemm_packed)(
            panels,
            &self.weight,
            x,
            self.bias.as_deref(),
            y,
            self.n_in,
            self.n_out,
        );
    }

    /// The weight and bias buffers, for storage accounting.
    pub(super) fn buffers(&self) -> impl Iterator<Item = &Weights<'a>> {
        std::iter::once(&self.weight).chain(self.bias.as_ref())
    }

    /// Multiply-adds per row.
    pub(super) fn multiply_adds(&self) -> usize {
        self.n_in.saturating_mul(self.n_out)
    }
}

/// Reads `weight` (+ optional `bias`) or `coefficients` (+ optional
/// `intercept`), the two namings of an affine model.
pub(super) fn load_affine<'a>(src: &TensorSource<'_, 'a>) -> Result<Dense<'a>, ModelError> {
    if let Some(weight) = src.get(names::WEIGHT) {
        let (n_out, n_in) = match *weight.shape() {
            [n_out, n_in] => (n_out, n_in),
            [n_in] => (1, n_in),
            _ => {
                return Err(shape_mismatch(
                    &weight,
                    "[n_out, n_in] (a 2-D weight matrix)",
                ))
            }
        };
        if n_out == 0 || n_in == 0 {
            return Err(shape_mismatch(
                &weight,
                "[n_out, n_in] with both dimensions at least 1",
            ));
        }
        let bias = src.get(names::BIAS);
        if let Some(bias) = &bias {
            if vector_len(bias) != Some(n_out) {
                return Err(shape_mismatch(
                    bias,
                    format!("[{n_out}] (one bias per output)"),
                ));
            }
        }
        // Shapes first, then values: the weight's, then the bias's.
        let weight_values = src.finite_weights(&weight)?;
        let bias = bias.as_ref().map(|t| src.finite_weights(t)).transpose()?;
        return Ok(Dense::new(weight_values, bias, n_in, n_out));
    }
    let coefficients = src.require(names::COEFFICIENTS)?;
    let n_in = match vector_len(&coefficients) {
        Some(n) if n > 0 => n,
        _ => {
            return Err(shape_mismatch(
                &coefficients,
                "[n_features] (one coefficient per feature)",
            ))
        }
    };
    let intercept = match src.get(names::INTERCEPT) {
        Some(intercept) if !(is_scalar(&intercept) && intercept.numel() == 1) => {
            return Err(shape_mismatch(&intercept, "[1] (a single intercept)"))
        }
        intercept => intercept,
    };
    let weight = src.finite_weights(&coefficients)?;
    let bias = intercept
        .as_ref()
        .map(|t| src.finite_weights(t))
        .transpose()?;
    Ok(Dense::new(weight, bias, n_in, 1))
}

/// Linear regression: the outputs are `W x + b`.
pub(super) struct LinearRegression<'a> {
    pub(super) map: Dense<'a>,
}

impl<'a> LinearRegression<'a> {
    pub(super) fn load(src: &TensorSource<'_, 'a>) -> Result<Self, ModelError> {
        Ok(Self {
            map: load_affine(src)?,
        })
    }

    pub(super) fn predict<'s>(
        &self,
        k: &Kernels,
        row: &[f32],
        scratch: &'s mut Scratch,
    ) -> Output<'s> {
        let y = sized(&mut scratch.primary, self.map.n_out);
        self.map.forward_row(k, row, y);
        Output {
            class: None,
            outputs: y,
            probabilities: None,
            label: None,
        }
    }

    pub(super) fn layout(&self) -> BatchLayout {
        BatchLayout {
            n_outputs: self.map.n_out,
            classes: false,
            probabilities: ProbabilityLayout::None,
        }
    }

    /// The rows of `rows` into `out` (see [`LinearRegression::layout`]).
    pub(super) fn predict_rows(&self, k: &Kernels, rows: &[f32], out: RowsOut<'_>) {
        self.map.forward_rows(k, rows, out.outputs);
    }
}

/// Logistic regression: binary (one output, sigmoid) or multinomial
/// (`k` outputs, softmax).
pub(super) struct LogisticRegression<'a> {
    pub(super) map: Dense<'a>,
}

impl<'a> LogisticRegression<'a> {
    pub(super) fn load(src: &TensorSource<'_, 'a>) -> Result<Self, ModelError> {
        Ok(Self {
            map: load_affine(src)?,
        })
    }

    fn is_binary(&self) -> bool {
        self.map.n_out == 1
    }

    /// The number of classes: 2 for binary, `k` for multinomial.
    pub(super) fn n_classes(&self) -> usize {
        if self.is_binary() {
            2
        } else {
            self.map.n_out
        }
    }

    pub(super) fn predict<'s>(
        &self,
        k: &Kernels,
        row: &[f32],
        scratch: &'s mut Scratch,
    ) -> Output<'s> {
        let Scratch {
            primary,
            probabilities,
            ..
        } = scratch;
        let y = sized(primary, self.map.n_out);
        self.map.forward_row(k, row, y);
        if self.is_binary() {
            (k.sigmoid)(y);
            let p = y.first().copied().unwrap_or(0.0);
            let probs = sized(probabilities, 2);
            probs.copy_from_slice(&[1.0 - p, p]);
            Output {
                class: Some(usize::from(p >= 0.5)),
                outputs: y,
                probabilities: Some(probs),
                label: None,
            }
        } else {
            (k.softmax)(y);
            let y: &'s [f32] = y;
            Output {
                class: Some(argmax(y)),
                outputs: y,
                probabilities: Some(y),
                label: None,
            }
        }
    }

    pub(super) fn layout(&self) -> BatchLayout {
        BatchLayout {
            n_outputs: self.map.n_out,
            classes: true,
            probabilities: if self.is_binary() {
                ProbabilityLayout::Separate(2)
            } else {
                ProbabilityLayout::SameAsOutputs
            },
        }
    }

    /// The rows of `rows` into `out` (see [`LogisticRegression::layout`]).
    pub(super) fn predict_rows(&self, k: &Kernels, rows: &[f32], out: RowsOut<'_>) {
        let RowsOut {
            outputs,
            classes,
            probabilities,
        } = out;
        self.map.forward_rows(k, rows, outputs);
        if self.is_binary() {
            (k.sigmoid)(outputs);
            for ((&p, class), pair) in outputs
                .iter()
                .zip(classes.iter_mut())
                .zip(probabilities.chunks_exact_mut(2))
            {
                *class = usize::from(p >= 0.5);
                pair.copy_from_slice(&[1.0 - p, p]);
            }
        } else {
            for (row, class) in outputs
                .chunks_exact_mut(self.map.n_out.max(1))
                .zip(classes.iter_mut())
            {
                (k.softmax)(row);
                *class = argmax(row);
            }
        }
    }
}
