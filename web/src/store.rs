//! Finished runs kept in the browser (IndexedDB), so they survive a reload and a browser
//! restart. Every failure, a full quota included, is reported in the page; a run that could not
//! be saved stays in the page's history until the tab closes.

use std::collections::HashSet;

use leptos::prelude::*;
use rexie::{ObjectStore, Rexie, TransactionMode, TransactionResult};
use wasm_bindgen::JsValue;

use crate::state::{Lab, RunView};

const DATABASE: &str = "freezelab";
const RUNS: &str = "runs";

fn describe(e: rexie::Error) -> String {
    match e {
        // rexie's own message is "idb error"; the inner one names the DOM exception.
        rexie::Error::IdbError(inner) => inner.to_string(),
        other => other.to_string(),
    }
}

async fn open() -> Result<Rexie, String> {
    Rexie::builder(DATABASE)
        .version(1)
        .add_object_store(ObjectStore::new(RUNS).key_path("id"))
        .build()
        .await
        .map_err(describe)
}

/// Runs `f` on the runs store in one transaction and waits until it is committed.
async fn write<F, Fut>(f: F) -> Result<(), String>
where
    F: FnOnce(rexie::Store) -> Fut,
    Fut: std::future::Future<Output = rexie::Result<()>>,
{
    let db = open().await?;
    let tx = db.transaction(&[RUNS], TransactionMode::ReadWrite).map_err(describe)?;
    let store = tx.store(RUNS).map_err(describe)?;
    f(store).await.map_err(describe)?;
    match tx.done().await.map_err(describe)? {
        TransactionResult::Committed => Ok(()),
        TransactionResult::Aborted => Err("the browser aborted the write".into()),
    }
}

pub async fn save(run: &RunView) -> Result<(), String> {
    let value = serde_wasm_bindgen::to_value(run).map_err(|e| e.to_string())?;
    write(|store| async move { store.put(&value, None).await.map(drop) }).await
}

pub async fn delete(id: u32) -> Result<(), String> {
    write(|store| async move { store.delete(JsValue::from(id)).await }).await
}

pub async fn clear() -> Result<(), String> {
    write(|store| async move { store.clear().await }).await
}

/// Every saved run, oldest first. Records that no longer read as runs are skipped and counted.
pub async fn load() -> Result<(Vec<RunView>, usize), String> {
    let db = open().await?;
    let tx = db.transaction(&[RUNS], TransactionMode::ReadOnly).map_err(describe)?;
    let values = tx.store(RUNS).map_err(describe)?.get_all(None, None).await.map_err(describe)?;
    let mut runs = Vec::new();
    let mut unreadable = 0;
    for value in values {
        match serde_wasm_bindgen::from_value::<RunView>(value) {
            Ok(run) => runs.push(run),
            Err(_) => unreadable += 1,
        }
    }
    runs.sort_by_key(|r| r.id);
    Ok((runs, unreadable))
}

/// Restores the saved runs into `lab`, then saves every run that finishes from now on.
pub fn keep(lab: Lab) {
    let saved = StoredValue::new(HashSet::<u32>::new());
    leptos::task::spawn_local(async move {
        match load().await {
            Ok((runs, unreadable)) => {
                restore(lab, runs, &saved);
                if unreadable > 0 {
                    lab.error(format!("{unreadable} saved runs could not be read and were left out"));
                }
            }
            Err(e) => lab.error(format!("saved runs could not be read: {e}")),
        }
        Effect::new(move || {
            let new: Vec<RunView> = lab.runs.with(|runs| {
                runs.iter().filter(|r| r.finished() && !saved.with_value(|s| s.contains(&r.id))).cloned().collect()
            });
            for run in new {
                saved.update_value(|s| {
                    s.insert(run.id);
                });
                leptos::task::spawn_local(async move {
                    if let Err(e) = save(&run).await {
                        lab.error(format!("run #{} could not be saved in this browser: {e}", run.id));
                    }
                });
            }
        });
    });
}

/// Saved runs join the history before anything new; run numbers continue after them, and the
/// newest run trained in each column is shown again.
fn restore(lab: Lab, runs: Vec<RunView>, saved: &StoredValue<HashSet<u32>>) {
    let Some(last) = runs.last().map(|r| r.id) else { return };
    saved.update_value(|s| s.extend(runs.iter().map(|r| r.id)));
    lab.next_run.update(|n| *n = (*n).max(last + 1));
    for column in freezelab_protocol::messages::Column::BOTH {
        if let Some(run) = runs.iter().rev().find(|r| r.column == column && !r.imported()) {
            lab.pin(column, run.id);
        }
    }
    if let Some(sweep) = runs.iter().rev().find_map(|r| r.sweep) {
        lab.sweep.set(Some(sweep));
    }
    lab.runs.update(|now| {
        let mut all = runs;
        all.append(now);
        *now = all;
    });
}

/// Removes a run from the page and from storage.
pub fn forget(lab: Lab, id: u32) {
    lab.runs.update(|runs| runs.retain(|r| r.id != id));
    lab.pinned.update(|p| p.iter_mut().filter(|p| **p == Some(id)).for_each(|p| *p = None));
    leptos::task::spawn_local(async move {
        if let Err(e) = delete(id).await {
            lab.error(format!("run #{id} could not be deleted from this browser's storage: {e}"));
        }
    });
}

/// Removes every finished run from the page and from storage; runs in progress stay.
pub fn forget_all(lab: Lab) {
    lab.runs.update(|runs| runs.retain(|r| !r.finished()));
    let left: HashSet<u32> = lab.runs.with_untracked(|runs| runs.iter().map(|r| r.id).collect());
    lab.pinned.update(|p| p.iter_mut().filter(|p| p.is_some_and(|id| !left.contains(&id))).for_each(|p| *p = None));
    lab.sweep.set(None);
    leptos::task::spawn_local(async move {
        if let Err(e) = clear().await {
            lab.error(format!("saved runs could not be cleared: {e}"));
        }
    });
}
