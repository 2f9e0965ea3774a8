//! What each parameter is, from its place in the module tree: whether it takes weight decay
//! (HF's grouping leaves out biases and every LayerNorm parameter) and whether it is a bias
//! term (BitFit trains only those: linear biases and LayerNorm shifts).

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// A parameter's place, as the optimizer and BitFit read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    pub decays: bool,
    pub bias: bool,
}

impl Kind {
    /// From the innermost (field, container type) of the module path; a parameter with no path
    /// is a plain weight.
    fn of(last: Option<&(String, String)>) -> Self {
        let Some((field, container)) = last else { return Kind { decays: true, bias: false } };
        Kind { decays: field != "bias" && container != "Struct:LayerNorm", bias: field == "bias" || field == "beta" }
    }
}

/// Something done to each float parameter, knowing its kind.
pub trait ParamAction {
    fn act<const D: usize>(&mut self, param: &Param<Tensor<D>>, kind: Kind);
}

/// The module path as (field name, container type) pairs, innermost last.
#[derive(Default)]
struct Path(Vec<(String, String)>);

impl Path {
    fn enter(&mut self, name: &str, container_type: &str) {
        self.0.push((name.to_string(), container_type.to_string()));
    }
    fn kind(&self) -> Kind {
        Kind::of(self.0.last())
    }
}

struct Walk<A> {
    path: Path,
    action: A,
}

/// Runs `action` on every float parameter of `module`.
pub fn walk<M: Module, A: ParamAction>(module: &M, action: A) -> A {
    let mut w = Walk { path: Path::default(), action };
    module.visit(&mut w);
    w.action
}

impl<A: ParamAction> ModuleVisitor for Walk<A> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.0.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.action.act(param, self.path.kind());
    }
}

struct CountBiases(usize);

impl ParamAction for CountBiases {
    fn act<const D: usize>(&mut self, param: &Param<Tensor<D>>, kind: Kind) {
        if kind.bias {
            self.0 += param.val().shape().num_elements();
        }
    }
}

/// Values in the bias terms of `module`.
pub fn bias_count<M: Module>(module: &M) -> usize {
    walk(module, CountBiases(0)).0
}

/// Turns off the gradient of every parameter that is not a bias term.
struct BiasesOnly(Path);

impl ModuleMapper for BiasesOnly {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.0.enter(name, container_type);
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.0 .0.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if self.0.kind().bias {
            param
        } else {
            param.set_require_grad(false)
        }
    }
}

/// `module` with gradients for its bias terms only (BitFit); it stays in training mode, so its
/// dropout still applies.
pub fn biases_only<M: Module>(module: M) -> M {
    module.map(&mut BiasesOnly(Path::default()))
}
