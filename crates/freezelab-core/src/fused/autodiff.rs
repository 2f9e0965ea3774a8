//! The fused operations under autodiff: the forward pass on the inner backend, keeping only what
//! the handwritten backward needs (GELU its input, layer norm x̂ and 1/σ, softmax its output,
//! dropout nothing but its seed). Untracked calls (a frozen prefix, evaluation) keep nothing.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{binary, unary, Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend};

use super::kernels::AdamWStep;
use super::{FusedBackward, FusedOps, UpdateOps};

#[derive(Debug)]
struct GeluBackward;

impl<B: FusedBackward> Backward<B, 1> for GeluBackward {
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let x = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |g| B::gelu_grad(x, g));
    }
}

#[derive(Debug)]
struct LayerNormBackward;

impl<B: FusedBackward> Backward<B, 3> for LayerNormBackward {
    /// x̂, 1/σ, γ.
    type State = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (xhat, rstd, gamma) = ops.state;
        let grad = grads.consume::<B>(&ops.node);
        let (dx, dgamma, dbeta) = B::layer_norm_grad(grad, xhat, rstd, gamma);
        let [x, gamma, beta] = ops.parents;
        for (parent, g) in [(x, dx), (gamma, dgamma), (beta, dbeta)] {
            if let Some(node) = parent {
                grads.register::<B>(node.id, g);
            }
        }
    }
}

#[derive(Debug)]
struct SoftmaxBackward;

impl<B: FusedBackward> Backward<B, 1> for SoftmaxBackward {
    /// The output and the scale.
    type State = (FloatTensor<B>, f64);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (y, scale) = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |g| B::masked_softmax_grad(y, g, scale));
    }
}

#[derive(Debug)]
struct DropoutBackward;

impl<B: FusedOps> Backward<B, 1> for DropoutBackward {
    /// Probability, seed and offset: the mask is made again, not stored.
    type State = (f64, u64, u32);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (prob, seed, offset) = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |g| B::dropout_hashed(g, prob, seed, offset));
    }
}

#[derive(Debug)]
struct ProductBackward;

impl<B: FusedBackward> Backward<B, 2> for ProductBackward {
    /// The left operand if the right one is tracked, the right one if the left is.
    type State = (Option<FloatTensor<B>>, Option<FloatTensor<B>>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (lhs, rhs) = ops.state;
        let transposed = |t: Option<FloatTensor<B>>| B::float_transpose(t.expect("kept for a tracked operand"));
        binary::<B, _, _>(
            ops.parents,
            ops.node,
            grads,
            |g| B::product(g, transposed(rhs)),
            |g| B::product(transposed(lhs), g),
        );
    }
}

impl<B: FusedBackward, C: CheckpointStrategy> FusedOps for Autodiff<B, C> {
    fn gelu_erf(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match GeluBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let x = x.into_primitive();
                prep.finish(x.clone(), B::gelu_erf(x))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::gelu_erf(x.into_primitive())),
        }
    }

    fn dropout_hashed(x: FloatTensor<Self>, prob: f64, seed: u64, offset: u32) -> FloatTensor<Self> {
        match DropoutBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                prep.finish((prob, seed, offset), B::dropout_hashed(x.into_primitive(), prob, seed, offset))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::dropout_hashed(x.into_primitive(), prob, seed, offset)),
        }
    }

    fn normalize(x: FloatTensor<Self>, w: FloatTensor<Self>, b: FloatTensor<Self>, eps: f64) -> FloatTensor<Self> {
        let nodes = [x.node(), w.node(), b.node()];
        let (x, w, b) = (x.into_primitive(), w.into_primitive(), b.into_primitive());
        match LayerNormBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (y, xhat, rstd) = B::layer_norm_train(x, w.clone(), b, eps);
                prep.finish((xhat, rstd, w), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::normalize(x, w, b, eps)),
        }
    }

    fn softmax_masked(scores: FloatTensor<Self>, bias: FloatTensor<Self>, scale: f64) -> FloatTensor<Self> {
        // The bias is the padding mask's: a constant, so only the scores are a parent.
        let bias = bias.into_primitive();
        match SoftmaxBackward.prepare::<C>([scores.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let y = B::softmax_masked(scores.into_primitive(), bias, scale);
                prep.finish((y.clone(), scale), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::softmax_masked(scores.into_primitive(), bias, scale)),
        }
    }

    fn product(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self> {
        let (lhs_tracked, rhs_tracked) = (lhs.is_tracked(), rhs.is_tracked());
        let nodes = [lhs.node(), rhs.node()];
        let (lhs, rhs) = (lhs.into_primitive(), rhs.into_primitive());
        match ProductBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let state = (rhs_tracked.then(|| lhs.clone()), lhs_tracked.then(|| rhs.clone()));
                prep.finish(state, B::product(lhs, rhs))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::product(lhs, rhs)),
        }
    }
}

/// The update and the clipping norm run on the inner backend's tensors: parameters are leaves,
/// and nothing differentiates an optimizer step.
impl<B: UpdateOps, C: CheckpointStrategy> UpdateOps for Autodiff<B, C> {
    fn adamw_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: AdamWStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let [param, grad, scale, moment_1, moment_2] = [param, grad, scale, moment_1, moment_2].map(Self::inner);
        let (param, moment_1, moment_2) = B::adamw_step(param, grad, scale, moment_1, moment_2, step);
        (Self::from_inner(param), Self::from_inner(moment_1), Self::from_inner(moment_2))
    }

    fn squared_sum_into(x: FloatTensor<Self>, partials: FloatTensor<Self>, row: usize) -> FloatTensor<Self> {
        Self::from_inner(B::squared_sum_into(Self::inner(x), Self::inner(partials), row))
    }
}
