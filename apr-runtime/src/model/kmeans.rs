//! K-means: the nearest centroid by squared Euclidean distance.

use super::output::{argmin, sized, BatchLayout, Output, ProbabilityLayout, RowsOut, Scratch};
use super::source::{shape_mismatch, TensorSource};
use super::weights::Weights;
use super::ModelError;
use crate::format::schema::kmeans;
use crate::kernels::Kernels;

/// `centroids` `[k, d]`; the scalar bookkeeping tensors aprender stores next
/// to them (`n_clusters`, `inertia`, `max_iter`, ...) are ignored.
pub(super) struct KMeans<'a> {
    pub(super) centroids: Weights<'a>,
    pub(super) k: usize,
    pub(super) d: usize,
}

impl<'a> KMeans<'a> {
    pub(super) fn load(src: &TensorSource<'_, 'a>) -> Result<Self, ModelError> {
        let tensor = src.require(kmeans::CENTROIDS)?;
        let (k, d) = match *tensor.shape() {
            [k, d] if k > 0 && d > 0 => (k, d),
            _ => {
                return Err(shape_mismatch(
                    &tensor,
                    "[k, d] (k centroids of d features, both at least 1)",
                ))
            }
        };
        Ok(Self {
            centroids: src.finite_weights(&tensor)?,
            k,
            d,
        })
    }

    /// Squared distances into `dists` (`k` values); returns the nearest
    /// centroid, ties to the lowest index.
    fn assign(&self, kernels: &Kernels, row: &[f32], dists: &mut [f32]) -> usize {
        (kernels.sq_dists)(&self.centroids, row, dists);
        argmin(dists)
    }

    pub(super) fn predict<'s>(
        &self,
        kernels: &Kernels,
        row: &[f32],
        scratch: &'s mut Scratch,
    ) -> Output<'s> {
        let dists = sized(&mut scratch.primary, self.k);
        let class = self.assign(kernels, row, dists);
        Output {
            class: Some(class),
            outputs: dists,
            probabilities: None,
            label: None,
        }
    }

    pub(super) fn layout(&self) -> BatchLayout {
        BatchLayout {
            n_outputs: self.k,
            classes: true,
            probabilities: ProbabilityLayout::None,
        }
    }

    /// The rows of `rows` into `out` (see [`KMeans::layout`]).
    pub(super) fn predict_rows(&self, kernels: &Kernels, rows: &[f32], out: RowsOut<'_>) {
        for ((row, dists), class) in rows
            .chunks_exact(self.d)
            .zip(out.outputs.chunks_exact_mut(self.k))
            .zip(out.classes.iter_mut())
        {
            *class = self.assign(kernels, row, dists);
        }
    }
}
