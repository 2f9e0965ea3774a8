//! The page's runs, each in a signal of its own: a training step rewrites its own run, so what
//! shows another run (the other column, a history row) is not recomputed; the list itself
//! changes only when a run is added or removed.

use leptos::prelude::*;

use crate::run::RunView;

/// A run's place in the list: its id (which never changes) and its signal. `Arc` signals are not
/// owned by the component that happened to create them, so a run outlives any view.
#[derive(Clone)]
struct Slot {
    id: u32,
    view: ArcRwSignal<RunView>,
}

#[derive(Clone, Copy)]
pub struct Runs(RwSignal<Vec<Slot>>);

impl Runs {
    pub fn new() -> Self {
        Runs(RwSignal::new(Vec::new()))
    }

    fn slot(&self, id: u32) -> Option<ArcRwSignal<RunView>> {
        self.0.with(|list| list.iter().find(|s| s.id == id).map(|s| s.view.clone()))
    }

    /// Run `id`; tracks that run (and the list), not the others.
    pub fn get(&self, id: u32) -> Option<RunView> {
        self.slot(id).map(|view| view.get())
    }

    /// The runs for which `keep` holds, oldest first. Tracks every run: views put it in a memo.
    pub fn filter(&self, keep: impl Fn(&RunView) -> bool) -> Vec<RunView> {
        self.0.with(|list| list.iter().filter_map(|s| s.view.with(|r| keep(r).then(|| r.clone()))).collect())
    }

    /// Every run, oldest first, without tracking.
    pub fn all_untracked(&self) -> Vec<RunView> {
        self.0.with_untracked(|list| list.iter().map(|s| s.view.get_untracked()).collect())
    }

    /// Whether any run satisfies `test` (tracks every run).
    pub fn any(&self, test: impl Fn(&RunView) -> bool) -> bool {
        self.0.with(|list| list.iter().any(|s| s.view.with(&test)))
    }

    pub fn push(&self, run: RunView) {
        self.0.update(|list| list.push(Slot { id: run.id, view: ArcRwSignal::new(run) }));
    }

    /// Puts `runs` (saved earlier) before the ones of this visit.
    pub fn prepend(&self, runs: Vec<RunView>) {
        self.0.update(|list| {
            let mut all: Vec<Slot> =
                runs.into_iter().map(|run| Slot { id: run.id, view: ArcRwSignal::new(run) }).collect();
            all.append(list);
            *list = all;
        });
    }

    /// Changes run `id` in place: only what reads that run hears of it.
    pub fn update(&self, id: u32, f: impl FnOnce(&mut RunView)) {
        if let Some(view) = self.0.with_untracked(|list| list.iter().find(|s| s.id == id).map(|s| s.view.clone())) {
            view.update(f);
        }
    }

    /// Changes every run for which `pick` holds.
    pub fn update_where(&self, pick: impl Fn(&RunView) -> bool, f: impl Fn(&mut RunView)) {
        self.0.with_untracked(|list| {
            for s in list.iter().filter(|s| s.view.with_untracked(&pick)) {
                s.view.update(&f);
            }
        });
    }

    /// Drops the runs for which `keep` does not hold.
    pub fn retain(&self, keep: impl Fn(&RunView) -> bool) {
        self.0.update(|list| list.retain(|s| s.view.with_untracked(&keep)));
    }

    pub fn ids_untracked(&self) -> Vec<u32> {
        self.0.with_untracked(|list| list.iter().map(|s| s.id).collect())
    }
}

impl Default for Runs {
    fn default() -> Self {
        Self::new()
    }
}
