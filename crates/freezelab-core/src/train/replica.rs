//! Data-parallel training: one run on several replicas (in the browser, several workers). Each
//! replica holds the same model, takes its share of every batch, and computes the gradients of
//! its share's loss weighted by the share's size; a [`Reducer`] sums the replicas' gradients in
//! replica order, so every replica applies the same update to the same bits. Only trainable
//! parameters travel: a frozen model exchanges little. Of the word-embedding table only the
//! rows the batch looks up travel: the others' gradients are zero on every replica.

use std::cell::Cell;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;

use burn::module::{Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{IndexingUpdateOp, Int, Tensor, TensorData};

use crate::bert::Classifier;
use crate::device::read_f32;
use crate::fused::Dropouts;
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

/// Adds another replica's values to `sum`. Both come from the same model and the same step, so
/// their lengths agree; when they do not (a replica of another run or model), the sum is
/// refused rather than cut to the shorter.
pub fn add_replica_values(sum: &mut [f32], part: &[f32]) -> Result<()> {
    if sum.len() != part.len() {
        return Err(crate::CoreError::Invalid(format!(
            "the replicas' gradients differ in length ({} and {} values): they train different models",
            sum.len(),
            part.len()
        )));
    }
    sum.iter_mut().zip(part).for_each(|(s, v)| *s += v);
    Ok(())
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

/// One step's exchange: where the sum is made, the step, the word-embedding rows the whole
/// batch looks up (every replica lists the same, from the same batch), and the run's dropout
/// stream as the step began. The last replica's share is never empty, so it tells the others how
/// many masks the step drew: a replica with nothing to compute (a short last batch) draws none,
/// and would otherwise fall behind.
pub struct Exchange<'a> {
    pub reducer: &'a mut (dyn Reducer + 'a),
    pub step: usize,
    pub words: Vec<u32>,
    dropouts: &'a Cell<Dropouts>,
    calls_before: u64,
    last: bool,
}

impl<'a> Exchange<'a> {
    /// `tokens`: the batch's token ids, padding included (in any order, repeated).
    pub fn new(
        replica: &'a mut Replica<'_>,
        step: usize,
        tokens: impl Iterator<Item = u32>,
        dropouts: &'a Cell<Dropouts>,
    ) -> Self {
        let mut words: Vec<u32> = tokens.collect();
        words.sort_unstable();
        words.dedup();
        let last = replica.index + 1 == replica.count;
        Exchange { reducer: &mut *replica.reducer, step, words, dropouts, calls_before: dropouts.get().calls, last }
    }
}

/// The rows of one parameter that travel (dimension 0): the word-embedding table's looked-up rows.
struct Rows {
    param: ParamId,
    ids: Tensor<1, Int>,
    count: usize,
}

impl Rows {
    /// `dims` with only the rows that travel.
    fn shape<const D: usize>(&self, param: ParamId, mut dims: [usize; D]) -> [usize; D] {
        if param == self.param {
            dims[0] = self.count;
        }
        dims
    }
}

/// Every trainable parameter's gradient, flattened in module order (of the word embedding, its
/// looked-up rows); zeros where a parameter got none (a replica with an empty share computed
/// nothing).
struct Flatten<'a> {
    grads: &'a GradientsParams,
    rows: &'a Rows,
    parts: Vec<Tensor<1>>,
}

impl ParamAction for Flatten<'_> {
    fn act<const D: usize>(&mut self, param: &Param<Tensor<D>>, _kind: Kind) {
        let value = param.val();
        if !value.is_require_grad() {
            return;
        }
        let n = self.rows.shape(param.id, value.dims()).iter().product::<usize>();
        let grad = match self.grads.get::<D>(param.id) {
            Some(g) if param.id == self.rows.param => g.select(0, self.rows.ids.clone()).reshape([n as i64]),
            Some(g) => g.reshape([n as i64]),
            None => Tensor::zeros([n], &value.inner().device()),
        };
        self.parts.push(grad);
    }
}

/// Gradients again, from summed flat values in [`Flatten`]'s order (zeros in the rows that did
/// not travel).
struct Unflatten<'a> {
    values: &'a [f32],
    rows: &'a Rows,
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
        let device = value.inner().device();
        let shape = self.rows.shape(param.id, dims);
        let n = shape.iter().product::<usize>();
        let slice = self.values[self.at..self.at + n].to_vec();
        self.at += n;
        let mut grad = Tensor::<D>::from_data(TensorData::new(slice, shape), &device);
        if shape != dims {
            grad = Tensor::zeros(dims, &device).select_assign(0, self.rows.ids.clone(), grad, IndexingUpdateOp::Add);
        }
        self.grads.register(param.id, grad);
    }
}

/// The run's gradients and loss for the exchange's step: this replica's, summed with the others'.
pub(crate) async fn all_reduce(
    model: &Classifier,
    grads: GradientsParams,
    loss: f64,
    exchange: Exchange<'_>,
) -> Result<(GradientsParams, f64)> {
    let device = model.head.weight.val().inner().device();
    let ids: Vec<i64> = exchange.words.iter().map(|&w| w as i64).collect();
    let rows = Rows {
        param: model.bert.embeddings.word.weight.id,
        count: ids.len(),
        ids: Tensor::from_data(TensorData::new(ids, [exchange.words.len()]), &device),
    };
    let parts = walk(model, Flatten { grads: &grads, rows: &rows, parts: Vec::new() }).parts;
    drop(grads);
    let mut values = if parts.is_empty() { Vec::new() } else { read_f32(Tensor::cat(parts, 0)).await? };
    let drawn = exchange.dropouts.get().calls - exchange.calls_before;
    values.push(if exchange.last { drawn as f32 } else { 0.0 });
    // The weighted share losses add up to the batch's mean loss.
    values.push(loss as f32);
    let summed = exchange.reducer.sum(exchange.step, values).await?;
    let (loss, values) = summed.split_last().expect("the loss is the last value");
    let (drawn, values) = values.split_last().expect("the masks drawn come before the loss");
    exchange.dropouts.set(Dropouts { calls: exchange.calls_before + *drawn as u64, ..exchange.dropouts.get() });
    let grads = walk(model, Unflatten { values, rows: &rows, at: 0, grads: GradientsParams::new() }).grads;
    Ok((grads, *loss as f64))
}

#[cfg(test)]
mod tests {
    use super::add_replica_values;

    #[test]
    fn replica_values_add_only_at_equal_lengths() {
        let mut sum = vec![1.0, 2.0];
        add_replica_values(&mut sum, &[0.5, -2.0]).unwrap();
        assert_eq!(sum, [1.5, 0.0]);
        let err = add_replica_values(&mut sum, &[1.0]).unwrap_err().to_string();
        assert!(err.contains("2 and 1 values"), "{err}");
        assert_eq!(sum, [1.5, 0.0]);
    }
}
