//! Which blocks are frozen, and how the others train. The plan is a value: the model's gradient
//! flags, the optimizer's state and learning rates, the prefix cache and the memory report all
//! derive from it, so they cannot disagree.
//!
//! Frozen blocks are feature extractors: no gradients for their weights, no optimizer state,
//! and eval mode (no dropout), so a frozen block computes the same function every epoch. The
//! classification head is always trained, fully, at its own learning rate.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A freeze spec that does not describe a plan for this model.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("freeze plan \"{spec}\": {why}")]
pub struct PlanError {
    pub spec: String,
    pub why: String,
}

/// How the blocks a plan leaves unfrozen train: the modes between frozen and free.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Every parameter of an unfrozen block trains at the encoder's learning rate.
    #[default]
    Freeze,
    /// BitFit (Ben Zaken et al. 2021): only the bias terms of unfrozen blocks train, those of
    /// every linear layer and every LayerNorm's shift (β).
    Bitfit,
    /// Layer-wise learning-rate decay: the top layer trains at the encoder's rate, each block
    /// below at `decay` times the rate of the one above it (layer i at decay^(L−1−i), the
    /// embeddings at decay^L).
    Llrd { decay: f64 },
    /// Gradual unfreezing (ULMFiT, Howard & Ruder 2018): the head alone first, then one more
    /// unfrozen block from the top every `every` steps.
    Gradual { every: usize },
    /// LoRA (Hu et al. 2021): the pretrained weights stay fixed; each unfrozen layer's query and
    /// value projections (every linear with `all_linear`) learn a rank-`rank` update
    /// `alpha / rank · A·B`, merged into the weights on export. The embeddings do not train.
    Lora { rank: usize, alpha: f64, all_linear: bool },
}

impl Mode {
    /// The decay LLRD starts with (the usual range is 0.8–0.95).
    pub const LLRD_DECAY: f64 = 0.9;

    /// Steps between two unfreezings that gradual unfreezing starts with.
    pub const GRADUAL_EVERY: usize = 8;

    /// LoRA's usual rank; its alpha is twice the rank unless set.
    pub const LORA_RANK: usize = 8;

    /// LoRA on the query and value projections at `rank`, alpha 2 × rank.
    pub fn lora(rank: usize) -> Mode {
        Mode::Lora { rank, alpha: 2.0 * rank as f64, all_linear: false }
    }

    /// Every mode at its usual setting: what the page offers.
    pub const ALL: [Mode; 5] = [
        Mode::Freeze,
        Mode::Bitfit,
        Mode::Lora { rank: Self::LORA_RANK, alpha: 2.0 * Self::LORA_RANK as f64, all_linear: false },
        Mode::Llrd { decay: Self::LLRD_DECAY },
        Mode::Gradual { every: Self::GRADUAL_EVERY },
    ];

    /// The mode of an [`id`](Mode::id), LLRD at its usual decay.
    pub fn from_id(id: &str) -> Option<Mode> {
        Self::ALL.into_iter().find(|m| m.id() == id)
    }

    /// Stable identifier: the page's `mode-A` select values, the plan spec's prefix.
    pub fn id(self) -> &'static str {
        match self {
            Mode::Freeze => "freeze",
            Mode::Bitfit => "bitfit",
            Mode::Llrd { .. } => "llrd",
            Mode::Gradual { .. } => "gradual",
            Mode::Lora { .. } => "lora",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Mode::Freeze => "freeze boxes only",
            Mode::Bitfit => "BitFit (biases only)",
            Mode::Llrd { .. } => "layer-wise lr decay",
            Mode::Gradual { .. } => "gradual unfreezing",
            Mode::Lora { .. } => "LoRA (low-rank updates)",
        }
    }

    /// The encoder learning rate to train this mode at, given the rate full fine-tuning uses:
    /// BitFit's few parameters want a larger one (Ben Zaken et al. 2021 used 1e-4 to 1e-3), at
    /// least 1e-3; LoRA's factors at least 5e-4 (Hu et al. used 1e-4 to 1e-3 on GLUE); LLRD's top
    /// layer takes full fine-tuning's.
    pub fn suggested_lr(self, full_lr: f64) -> f64 {
        match self {
            Mode::Bitfit => full_lr.max(Self::BITFIT_LR),
            Mode::Lora { .. } => full_lr.max(Self::LORA_LR),
            Mode::Freeze | Mode::Llrd { .. } | Mode::Gradual { .. } => full_lr,
        }
    }

    pub const BITFIT_LR: f64 = 1e-3;
    pub const LORA_LR: f64 = 5e-4;

    /// Refuses a mode setting outside its range.
    pub fn validate(self) -> Result<(), String> {
        match self {
            Mode::Llrd { decay } if !(decay.is_finite() && decay > 0.0 && decay <= 1.0) => {
                Err(format!("setting llrd_decay: must be a number in (0, 1] (got {decay})"))
            }
            Mode::Gradual { every: 0 } => Err("setting gradual_every: must be at least 1 step (got 0)".into()),
            Mode::Lora { rank: 0, .. } => Err("setting lora_rank: must be at least 1 (got 0)".into()),
            Mode::Lora { alpha, .. } if !(alpha.is_finite() && alpha > 0.0) => {
                Err(format!("setting lora_alpha: must be a positive number (got {alpha})"))
            }
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FreezePlan {
    pub embeddings: bool,
    /// One flag per encoder layer, bottom (0) to top.
    pub layers: Vec<bool>,
    /// How the unfrozen blocks train.
    #[serde(default)]
    pub mode: Mode,
}

impl FreezePlan {
    /// Train everything.
    pub fn none(num_layers: usize) -> Self {
        FreezePlan { embeddings: false, layers: vec![false; num_layers], mode: Mode::Freeze }
    }

    /// Embeddings and the bottom `k` layers frozen (`k = 0`: embeddings only).
    pub fn bottom(num_layers: usize, k: usize) -> Self {
        FreezePlan { embeddings: true, layers: (0..num_layers).map(|i| i < k).collect(), mode: Mode::Freeze }
    }

    /// This plan's frozen blocks, trained in `mode`.
    pub fn with_mode(self, mode: Mode) -> Self {
        FreezePlan { mode, ..self }
    }

    /// Only the head trains.
    pub fn head_only(num_layers: usize) -> Self {
        Self::bottom(num_layers, num_layers)
    }

    /// The sweep, shallow to deep: train all, freeze embeddings, then the bottom 2, 4, … layers,
    /// then head only.
    pub fn sweep(num_layers: usize) -> Vec<Self> {
        let mut plans = vec![Self::none(num_layers), Self::bottom(num_layers, 0)];
        plans.extend((2..num_layers).step_by(2).map(|k| Self::bottom(num_layers, k)));
        plans.push(Self::head_only(num_layers));
        plans
    }

    /// The sweep of the freeze depths, then the modes between frozen and free on the whole
    /// encoder: BitFit, LoRA at rank 8 and LLRD at its usual decay.
    pub fn sweep_modes(num_layers: usize) -> Vec<Self> {
        let mut plans = Self::sweep(num_layers);
        for mode in [Mode::Bitfit, Mode::lora(Mode::LORA_RANK), Mode::Llrd { decay: Mode::LLRD_DECAY }] {
            plans.push(Self::none(num_layers).with_mode(mode));
        }
        plans
    }

    /// Parses `[MODE:]FREEZE`: MODE is `bitfit`, `llrd` or `llrd-D` (decay D, default 0.9),
    /// `gradual` or `gradual-N` (a block every N steps, default 8);
    /// FREEZE is `none`, `emb`, `head-only`, `bottom-K`, or a comma list of `emb`, layer indices
    /// and ranges (`emb,0-3`, `3`, `emb,1,4-5`). A mode alone (`bitfit`) freezes nothing.
    pub fn parse(spec: &str, num_layers: usize) -> Result<Self, PlanError> {
        let spec = spec.trim();
        let (mode, freeze) = match spec.split_once(':') {
            Some((mode, freeze)) => (Some(mode.trim()), freeze),
            None if Self::parse_mode(spec).is_some() => (Some(spec), ""),
            None => (None, spec),
        };
        let mode = match mode {
            Some(m) => Self::parse_mode(m).ok_or_else(|| {
                bad(
                    spec,
                    &format!(
                        "\"{m}\" is not a mode (bitfit, lora, lora-R[-aA][-all], llrd, llrd-D, gradual, gradual-N)"
                    ),
                )
            })?,
            None => Mode::Freeze,
        };
        mode.validate().map_err(|why| bad(spec, &why))?;
        Ok(Self::parse_frozen(freeze.trim(), num_layers).map_err(|e| bad(spec, &e.why))?.with_mode(mode))
    }

    fn parse_mode(m: &str) -> Option<Mode> {
        if let Some(mode) = Mode::from_id(m).filter(|&mode| mode != Mode::Freeze) {
            return Some(mode);
        }
        if let Some(decay) = m.strip_prefix("llrd-") {
            return crate::decimal::parse_f64(decay).map(|decay| Mode::Llrd { decay });
        }
        if let Some(lora) = m.strip_prefix("lora-") {
            // lora-R, then optionally -aALPHA and -all.
            let mut parts = lora.split('-');
            let Mode::Lora { mut alpha, mut all_linear, rank } = Mode::lora(parts.next()?.parse().ok()?) else {
                return None;
            };
            for part in parts {
                match part {
                    "all" => all_linear = true,
                    _ => alpha = crate::decimal::parse_f64(part.strip_prefix('a')?)?,
                }
            }
            return Some(Mode::Lora { rank, alpha, all_linear });
        }
        m.strip_prefix("gradual-")?.parse().ok().map(|every| Mode::Gradual { every })
    }

    fn parse_frozen(spec: &str, num_layers: usize) -> Result<Self, PlanError> {
        match spec {
            "none" | "all" | "" => return Ok(Self::none(num_layers)),
            "head-only" | "head" => return Ok(Self::head_only(num_layers)),
            _ => {}
        }
        if let Some(k) = spec.strip_prefix("bottom-") {
            let k: usize = k.parse().map_err(|_| bad(spec, "bottom-K needs a number"))?;
            if k > num_layers {
                return Err(bad(spec, &format!("the model has {num_layers} layers")));
            }
            return Ok(Self::bottom(num_layers, k));
        }
        let mut plan = Self::none(num_layers);
        for part in spec.split(',').map(str::trim) {
            if part == "emb" || part == "embeddings" {
                plan.embeddings = true;
                continue;
            }
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            let (a, b): (usize, usize) = match (a.trim().parse(), b.trim().parse()) {
                (Ok(a), Ok(b)) if a <= b => (a, b),
                _ => return Err(bad(spec, &format!("\"{part}\" is not emb, a layer or a range"))),
            };
            if b >= num_layers {
                return Err(bad(spec, &format!("layer {b} does not exist (layers 0-{})", num_layers - 1)));
            }
            plan.layers[a..=b].iter_mut().for_each(|f| *f = true);
        }
        Ok(plan)
    }

    /// The number of layers in the frozen prefix, if the embeddings are frozen: layers
    /// `0..k` are all frozen and nothing below layer `k` needs a gradient. `None` when the
    /// embeddings train (backward then runs to the bottom).
    pub fn freeze_line(&self) -> Option<usize> {
        self.embeddings_frozen().then(|| self.layers.iter().take_while(|&&f| f).count())
    }

    /// Whether the embeddings train not at all: ticked, or under LoRA (no linear to adapt).
    pub fn embeddings_frozen(&self) -> bool {
        self.embeddings || matches!(self.mode, Mode::Lora { .. })
    }

    /// Where the prefix cache keeps states, when caching pays: at a line above at least one
    /// encoder layer. At line 0 it would hold every example's embedding output (4·h bytes a
    /// token) to skip a table lookup that costs almost nothing.
    pub fn cache_line(&self) -> Option<usize> {
        self.freeze_line().filter(|&k| k >= 1)
    }

    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Whether nothing below the head trains.
    pub fn is_head_only(&self) -> bool {
        self.embeddings && self.layers.iter().all(|&f| f)
    }

    /// Short form, parseable by [`FreezePlan::parse`]: `none`, `head-only`, `emb,0-3`,
    /// `bitfit`, `llrd-0.9:emb`…
    pub fn label(&self) -> String {
        let frozen = self.frozen_label();
        let mode = match self.mode {
            Mode::Freeze => return frozen,
            Mode::Bitfit => "bitfit".to_string(),
            Mode::Llrd { decay } => format!("llrd-{decay}"),
            Mode::Gradual { every } => format!("gradual-{every}"),
            Mode::Lora { rank, alpha, all_linear } => {
                let alpha = if alpha == 2.0 * rank as f64 { String::new() } else { format!("-a{alpha}") };
                format!("lora-{rank}{alpha}{}", if all_linear { "-all" } else { "" })
            }
        };
        if frozen == "none" {
            mode
        } else {
            format!("{mode}:{frozen}")
        }
    }

    /// Depth of the embeddings (`None`) or layer `i` below the top layer (0 for the top layer).
    fn depth(&self, layer: Option<usize>) -> usize {
        let n = self.num_layers();
        layer.map_or(n, |i| n - 1 - i)
    }

    /// The factor on the encoder's learning rate for the embeddings (`None`) or layer `i`.
    pub fn lr_scale(&self, layer: Option<usize>) -> f64 {
        match self.mode {
            Mode::Llrd { decay } => decay.powi(self.depth(layer) as i32),
            Mode::Freeze | Mode::Bitfit | Mode::Gradual { .. } | Mode::Lora { .. } => 1.0,
        }
    }

    /// Under gradual unfreezing, the step at which the embeddings (`None`) or layer `i` opens;
    /// `None` for a block the boxes freeze, or in any other mode.
    pub fn opens_at(&self, block: Option<usize>) -> Option<usize> {
        let Mode::Gradual { every } = self.mode else { return None };
        let n = self.num_layers();
        let top_down = (0..n).rev().map(Some).chain(std::iter::once(None));
        let mut open = top_down.filter(|&b| !b.map_or(self.embeddings, |i| self.layers[i]));
        open.position(|b| b == block).map(|k| (k + 1) * every)
    }

    /// The blocks that train at `step`: the plan itself, but under gradual unfreezing only the
    /// `step / every` topmost of the blocks the boxes leave unfrozen (the head alone at first).
    /// The result is a plain freeze plan.
    pub fn at_step(&self, step: usize) -> FreezePlan {
        let Mode::Gradual { every } = self.mode else { return self.clone() };
        let mut open = step / every.max(1);
        let mut plan = self.clone().with_mode(Mode::Freeze);
        let top_down = plan.layers.iter_mut().rev().chain(std::iter::once(&mut plan.embeddings));
        for frozen in top_down.filter(|f| !**f) {
            if open > 0 {
                open -= 1;
            } else {
                *frozen = true;
            }
        }
        plan
    }

    fn frozen_label(&self) -> String {
        if !self.embeddings && self.layers.iter().all(|f| !f) {
            return "none".into();
        }
        if self.is_head_only() {
            return "head-only".into();
        }
        let mut parts = Vec::new();
        if self.embeddings {
            parts.push("emb".to_string());
        }
        let mut i = 0;
        while i < self.layers.len() {
            if self.layers[i] {
                let start = i;
                while i + 1 < self.layers.len() && self.layers[i + 1] {
                    i += 1;
                }
                parts.push(if start == i { start.to_string() } else { format!("{start}-{i}") });
            }
            i += 1;
        }
        parts.join(",")
    }
}

/// The one-click plans the page offers per column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Preset {
    /// Train everything.
    All,
    /// Freeze the embeddings only.
    Embeddings,
    /// Freeze the embeddings and the bottom half of the layers.
    BottomHalf,
    /// Train the head only.
    HeadOnly,
}

impl Preset {
    pub const ALL: [Preset; 4] = [Preset::All, Preset::Embeddings, Preset::BottomHalf, Preset::HeadOnly];

    pub fn plan(self, num_layers: usize) -> FreezePlan {
        match self {
            Preset::All => FreezePlan::none(num_layers),
            Preset::Embeddings => FreezePlan::bottom(num_layers, 0),
            Preset::BottomHalf => FreezePlan::bottom(num_layers, num_layers / 2),
            Preset::HeadOnly => FreezePlan::head_only(num_layers),
        }
    }

    /// Stable identifier (the page's `preset-A-{id}` test ids).
    pub fn id(self) -> &'static str {
        match self {
            Preset::All => "all",
            Preset::Embeddings => "emb",
            Preset::BottomHalf => "bottom-half",
            Preset::HeadOnly => "head",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Preset::All => "train all",
            Preset::Embeddings => "freeze embeddings",
            Preset::BottomHalf => "freeze bottom half",
            Preset::HeadOnly => "head only",
        }
    }
}

fn bad(spec: &str, why: &str) -> PlanError {
    PlanError { spec: spec.to_string(), why: why.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_presets_lists_and_ranges() {
        assert_eq!(FreezePlan::parse("none", 6).unwrap(), FreezePlan::none(6));
        assert_eq!(FreezePlan::parse("emb", 6).unwrap(), FreezePlan::bottom(6, 0));
        assert_eq!(FreezePlan::parse("emb,0-3", 6).unwrap(), FreezePlan::bottom(6, 4));
        assert_eq!(FreezePlan::parse("bottom-2", 6).unwrap(), FreezePlan::bottom(6, 2));
        assert_eq!(FreezePlan::parse("head-only", 6).unwrap(), FreezePlan::head_only(6));
        let only3 = FreezePlan::parse("3", 6).unwrap();
        assert_eq!(only3.layers, vec![false, false, false, true, false, false]);
        assert!(!only3.embeddings);
    }

    #[test]
    fn presets_match_their_names() {
        assert_eq!(Preset::All.plan(6), FreezePlan::none(6));
        assert_eq!(Preset::Embeddings.plan(6).label(), "emb");
        assert_eq!(Preset::BottomHalf.plan(6).label(), "emb,0-2");
        assert!(Preset::HeadOnly.plan(6).is_head_only());
    }

    #[test]
    fn sweep_goes_from_all_to_head_only() {
        let labels: Vec<String> = FreezePlan::sweep(6).iter().map(FreezePlan::label).collect();
        assert_eq!(labels, ["none", "emb", "emb,0-1", "emb,0-3", "head-only"]);
        assert_eq!(FreezePlan::sweep(1).len(), 3);
    }

    #[test]
    fn rejects_bad_specs() {
        for spec in ["7", "emb,x", "3-1", "bottom-9", "0-6"] {
            assert!(FreezePlan::parse(spec, 6).is_err(), "{spec}");
        }
    }

    #[test]
    fn freeze_line_is_the_contiguous_frozen_prefix() {
        assert_eq!(FreezePlan::none(6).freeze_line(), None);
        assert_eq!(FreezePlan::bottom(6, 0).freeze_line(), Some(0));
        assert_eq!(FreezePlan::bottom(6, 4).freeze_line(), Some(4));
        assert_eq!(FreezePlan::parse("emb,0,2", 6).unwrap().freeze_line(), Some(1));
        assert_eq!(FreezePlan::parse("0-5", 6).unwrap().freeze_line(), None);
    }

    #[test]
    fn modes_parse_with_or_without_frozen_blocks() {
        assert_eq!(FreezePlan::parse("bitfit", 6).unwrap(), FreezePlan::none(6).with_mode(Mode::Bitfit));
        let llrd = FreezePlan::parse("llrd:emb", 6).unwrap();
        assert_eq!(llrd, FreezePlan::bottom(6, 0).with_mode(Mode::Llrd { decay: 0.9 }));
        assert_eq!(FreezePlan::parse("llrd-0.8", 6).unwrap().mode, Mode::Llrd { decay: 0.8 });
        assert_eq!(FreezePlan::parse("bitfit:emb,0-3", 6).unwrap().freeze_line(), Some(4));
        for spec in
            ["lorax:emb", "llrd-x", "llrd-0", "llrd-1.5", "bitfit:9", "gradual-x", "freeze:emb", "lora-0", "lora-8-b"]
        {
            assert!(FreezePlan::parse(spec, 6).is_err(), "{spec}");
        }
    }

    #[test]
    fn lora_parses_rank_alpha_and_targets_and_freezes_the_embeddings() {
        let plan = FreezePlan::parse("lora", 6).unwrap();
        assert_eq!(plan.mode, Mode::Lora { rank: 8, alpha: 16.0, all_linear: false });
        assert_eq!(plan.freeze_line(), Some(0), "nothing in the embeddings to adapt");
        let custom = FreezePlan::parse("lora-4-a8-all:emb,0-1", 6).unwrap();
        assert_eq!(custom.mode, Mode::Lora { rank: 4, alpha: 8.0, all_linear: true });
        assert_eq!(custom.label(), "lora-4-all:emb,0-1");
        assert_eq!(custom.cache_line(), Some(2));
    }

    #[test]
    fn llrd_scales_each_block_below_the_top() {
        let plan = FreezePlan::parse("llrd-0.5", 3).unwrap();
        let scales: Vec<f64> = [None, Some(0), Some(1), Some(2)].into_iter().map(|b| plan.lr_scale(b)).collect();
        assert_eq!(scales, [0.125, 0.25, 0.5, 1.0]);
        assert!([None, Some(0), Some(2)]
            .into_iter()
            .all(|b| FreezePlan::parse("bitfit", 3).unwrap().lr_scale(b) == 1.0));
        assert_eq!((Mode::Bitfit.suggested_lr(5e-5), Mode::Bitfit.suggested_lr(3e-3)), (1e-3, 3e-3));
        assert_eq!(plan.mode.suggested_lr(5e-5), 5e-5);
    }

    #[test]
    fn gradual_unfreezing_opens_a_block_from_the_top_every_n_steps() {
        let plan = FreezePlan::parse("gradual-2:1", 3).unwrap();
        assert_eq!(plan.mode, Mode::Gradual { every: 2 });
        let labels: Vec<String> = (0..10).step_by(2).map(|s| plan.at_step(s).label()).collect();
        // Layer 1 stays frozen by its box: layer 2 opens, then layer 0, then the embeddings.
        assert_eq!(labels, ["head-only", "emb,0-1", "emb,1", "1", "1"]);
        assert_eq!(plan.at_step(1), plan.at_step(0));
        let opens: Vec<Option<usize>> =
            [None, Some(0), Some(1), Some(2)].into_iter().map(|b| plan.opens_at(b)).collect();
        assert_eq!(opens, [Some(6), Some(4), None, Some(2)]);
        assert_eq!(FreezePlan::parse("llrd", 3).unwrap().at_step(5).mode, Mode::Llrd { decay: 0.9 });
        assert!(FreezePlan::parse("gradual-0", 3).is_err());
        assert_eq!(FreezePlan::parse("gradual", 3).unwrap().label(), "gradual-8");
    }

    #[test]
    fn the_modes_sweep_adds_bitfit_and_llrd() {
        let labels: Vec<String> = FreezePlan::sweep_modes(6).iter().map(FreezePlan::label).collect();
        assert_eq!(labels, ["none", "emb", "emb,0-1", "emb,0-3", "head-only", "bitfit", "lora-8", "llrd-0.9"]);
    }

    #[test]
    fn labels_round_trip() {
        for spec in [
            "none",
            "head-only",
            "emb",
            "emb,0-3",
            "3",
            "emb,1,4-5",
            "bitfit",
            "llrd-0.85:emb,0-1",
            "lora-8",
            "lora-4-a4-all:emb,0-1",
            "gradual-4:emb",
        ] {
            let plan = FreezePlan::parse(spec, 6).unwrap();
            assert_eq!(plan.label(), spec);
            assert_eq!(FreezePlan::parse(&plan.label(), 6).unwrap(), plan);
        }
    }
}
