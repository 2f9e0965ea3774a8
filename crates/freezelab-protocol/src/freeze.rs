//! Which blocks are frozen. The plan is a value: the model's gradient flags, the optimizer's
//! state, the prefix cache and the memory report all derive from it, so they cannot disagree.
//!
//! Frozen blocks are feature extractors: no gradients for their weights, no optimizer state,
//! and eval mode (no dropout), so a frozen block computes the same function every epoch. The
//! classification head is always trained.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A freeze spec that does not describe a plan for this model.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("freeze plan \"{spec}\": {why}")]
pub struct PlanError {
    pub spec: String,
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FreezePlan {
    pub embeddings: bool,
    /// One flag per encoder layer, bottom (0) to top.
    pub layers: Vec<bool>,
}

impl FreezePlan {
    /// Train everything.
    pub fn none(num_layers: usize) -> Self {
        FreezePlan { embeddings: false, layers: vec![false; num_layers] }
    }

    /// Embeddings and the bottom `k` layers frozen (`k = 0`: embeddings only).
    pub fn bottom(num_layers: usize, k: usize) -> Self {
        FreezePlan { embeddings: true, layers: (0..num_layers).map(|i| i < k).collect() }
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

    /// Parses `none`, `emb`, `head-only`, `bottom-K`, or a comma list of `emb`, layer indices
    /// and ranges (`emb,0-3`, `3`, `emb,1,4-5`).
    pub fn parse(spec: &str, num_layers: usize) -> Result<Self, PlanError> {
        let spec = spec.trim();
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
        self.embeddings.then(|| self.layers.iter().take_while(|&&f| f).count())
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

    /// Short form, parseable by [`FreezePlan::parse`]: `none`, `head-only`, `emb,0-3`…
    pub fn label(&self) -> String {
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
    fn labels_round_trip() {
        for spec in ["none", "head-only", "emb", "emb,0-3", "3", "emb,1,4-5"] {
            let plan = FreezePlan::parse(spec, 6).unwrap();
            assert_eq!(plan.label(), spec);
            assert_eq!(FreezePlan::parse(&plan.label(), 6).unwrap(), plan);
        }
    }
}
