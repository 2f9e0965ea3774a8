//! Data-parallel training: one run on several replicas (in the browser, several workers). Each
//! replica holds the same model, takes its share of every batch, and computes the gradients of
//! its share's loss weighted by the share's size; a [`Reducer`] sums the replicas' gradients in
//! replica order, so every replica applies the same update to the same bits. Only trainable
//! parameters travel: a frozen model exchanges little.

use std::future::Future;
use std::ops::Range;
use std::pin::Pin;

use burn::module::Param;
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, TensorData};

use crate::bert::Classifier;
use crate::device::read_f32;
use crate::params::{walk, Kind, ParamAction};
use crate::Result;

/// Sums flat gradients across the replicas of a run.
pub trait Reducer {
    /// Hands in this replica's values for `step` and returns the sum over all replicas, added
    /// in replica order (so every replica gets the same bits).
    fn sum(&mut self, step: usize, values: Vec<f32>) -> Pin<Box<dyn Future<Output = Result<Vec<f32>>> + '_>>;

    /// Seconds spent in [`Reducer::sum`] so far, from handing in the values to holding the
    /// sum: the transport, and waiting for replicas that finished their share later.
    fn waited(&self) -> f64;
}

/// Which replica of how many a run is, and how its gradients meet the others'.
pub struct Replica<'a> {
    pub index: usize,
    pub count: usize,
    pub reducer: &'a mut dyn Reducer,
}

impl Replica<'_> {
    /// This replica's contiguous share of a batch of `len` examples (empty when the batch has
    /// fewer examples than there are replicas).
    pub fn share(&self, len: usize) -> Range<usize> {
        self.index * len / self.count..(self.index + 1) * len / self.count
    }
}

/// Every trainable parameter's gradient, flattened in module order; zeros where a parameter
/// got none (a replica with an empty share computed nothing).
struct Flatten<'a> {
    grads: &'a GradientsParams,
    parts: Vec<Tensor<1>>,
}

impl ParamAction for Flatten<'_> {
    fn act<const D: usize>(&mut self, param: &Param<Tensor<D>>, _kind: Kind) {
        let value = param.val();
        if !value.is_require_grad() {
            return;
        }
        let n = value.dims().iter().product::<usize>();
        let grad = match self.grads.get::<D>(param.id) {
            Some(g) => g.reshape([n as i64]),
            None => Tensor::zeros([n], &value.inner().device()),
        };
        self.parts.push(grad);
    }
}

/// Gradients again, from summed flat values in [`Flatten`]'s order.
struct Unflatten<'a> {
    values: &'a [f32],
    at: usize,
    grads: GradientsParams,
}

impl ParamAction for Unflatten<'_> {
    fn act<const D: usize>(&mut self, param: &Param<Tensor<D>>, _kind: Kind) {
        let value = param.val();
        if !value.is_require_grad() {
            return;
        }
        let dims = value.dims();
        let n = dims.iter().product::<usize>();
        let slice = self.values[self.at..self.at + n].to_vec();
        self.at += n;
        let grad = Tensor::<D>::from_data(TensorData::new(slice, dims), &value.inner().device());
        self.grads.register(param.id, grad);
    }
}

/// The run's gradients and loss for `step`: this replica's, summed with the others'.
pub(crate) async fn all_reduce(
    model: &Classifier,
    grads: GradientsParams,
    loss: f64,
    step: usize,
    reducer: &mut (dyn Reducer + '_),
) -> Result<(GradientsParams, f64)> {
    let parts = walk(model, Flatten { grads: &grads, parts: Vec::new() }).parts;
    drop(grads);
    let mut values = if parts.is_empty() { Vec::new() } else { read_f32(Tensor::cat(parts, 0)).await? };
    // The weighted share losses add up to the batch's mean loss.
    values.push(loss as f32);
    let summed = reducer.sum(step, values).await?;
    let (loss, values) = summed.split_last().expect("the loss is the last value");
    let grads = walk(model, Unflatten { values, at: 0, grads: GradientsParams::new() }).grads;
    Ok((grads, *loss as f64))
}
