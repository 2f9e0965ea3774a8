//! Finished runs kept in the browser (IndexedDB), so they survive a reload and a browser
//! restart, and fine-tuned models kept on demand (a zip each, as downloaded). Every failure, a
//! full quota included, is reported in the page; a run that could not be saved stays in the
//! page's history until the tab closes.

use std::collections::HashSet;

use js_sys::Promise;
use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::state::{Lab, RunView};

const RUNS: &str = "runs";
/// Fine-tuned models kept on demand: `{id, bytes, zip}` with the zip as a Blob.
const WEIGHTS: &str = "weights";

// IndexedDB's requests and transactions as promises: a few lines of script where a Rust wrapper
// (rexie, with idb and tokio's channels) cost the page 22 kB gzipped.
#[wasm_bindgen(inline_js = r#"
let opened;
function database() {
  opened ??= new Promise((resolve, reject) => {
    const request = indexedDB.open('freezelab', 1);
    request.onupgradeneeded = () => {
      for (const name of ['runs', 'weights']) request.result.createObjectStore(name, { keyPath: 'id' });
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => { opened = undefined; reject(request.error); };
  });
  return opened;
}
export async function idb(name, mode, method, arg) {
  const db = await database();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(name, mode);
    const request = tx.objectStore(name)[method](arg);
    request.onerror = () => reject(request.error);
    tx.oncomplete = () => resolve(request.result);
    tx.onabort = () => reject(null);
  });
}
"#)]
extern "C" {
    /// `method(arg)` on one object store in one transaction of `mode`; resolves with the
    /// request's result once the transaction has committed, rejects with the request's error,
    /// or with `null` when the browser aborts the transaction.
    fn idb(store: &str, mode: &str, method: &str, arg: &JsValue) -> Promise;
}

async fn call(store: &str, mode: &str, method: &str, arg: &JsValue) -> Result<JsValue, String> {
    match JsFuture::from(idb(store, mode, method, arg)).await {
        Ok(result) => Ok(result),
        Err(e) if e.is_null() => Err(format!("the browser aborted the write{}", usage().await)),
        Err(e) => Err(crate::json::describe(&e)),
    }
}

async fn read(store: &str, method: &str, arg: &JsValue) -> Result<JsValue, String> {
    call(store, "readonly", method, arg).await
}

async fn write(store: &str, method: &str, arg: &JsValue) -> Result<(), String> {
    call(store, "readwrite", method, arg).await.map(drop)
}

/// How much of its quota this site uses, when the browser says: a write the browser aborts
/// gives no reason of its own, and a full quota is the usual one.
async fn usage() -> String {
    let estimate = async {
        let storage = js_sys::Reflect::get(&web_sys::window()?.navigator(), &"storage".into()).ok()?;
        let estimate: js_sys::Function = js_sys::Reflect::get(&storage, &"estimate".into()).ok()?.dyn_into().ok()?;
        let promise: js_sys::Promise = estimate.call0(&storage).ok()?.dyn_into().ok()?;
        let value = JsFuture::from(promise).await.ok()?;
        Some((field(&value, "usage").as_f64()?, field(&value, "quota").as_f64()?))
    };
    match estimate.await {
        Some((used, quota)) => format!(
            " (this site uses {} of its storage quota of {})",
            crate::format::bytes(used as u64),
            crate::format::bytes(quota as u64)
        ),
        None => String::new(),
    }
}

pub async fn save(run: &RunView) -> Result<(), String> {
    let value = serde_wasm_bindgen::to_value(run).map_err(|e| e.to_string())?;
    write(RUNS, "put", &value).await
}

/// Deletes a run and its kept model.
pub async fn delete(id: u32) -> Result<(), String> {
    write(RUNS, "delete", &JsValue::from(id)).await?;
    write(WEIGHTS, "delete", &JsValue::from(id)).await
}

pub async fn clear() -> Result<(), String> {
    write(RUNS, "clear", &JsValue::UNDEFINED).await?;
    write(WEIGHTS, "clear", &JsValue::UNDEFINED).await
}

fn field(record: &JsValue, name: &str) -> JsValue {
    js_sys::Reflect::get(record, &name.into()).unwrap_or(JsValue::UNDEFINED)
}

/// Sizes of the kept models, by run.
async fn kept_sizes() -> Result<Vec<(u32, u64)>, String> {
    let records: js_sys::Array = read(WEIGHTS, "getAll", &JsValue::UNDEFINED).await?.unchecked_into();
    Ok(records
        .iter()
        .filter_map(|r| Some((field(&r, "id").as_f64()? as u32, field(&r, "bytes").as_f64()? as u64)))
        .collect())
}

/// Keeps the model the worker offers at `url` (a `blob:` URL of its zip) under the run's id.
pub fn keep_model(lab: Lab, run_id: u32, url: String) {
    leptos::task::spawn_local(async move {
        let result = async {
            let window = web_sys::window().ok_or("no window")?;
            let response: web_sys::Response = JsFuture::from(window.fetch_with_str(&url))
                .await
                .map_err(|_| "the download is gone: download the model again, then keep it")?
                .unchecked_into();
            let blob: web_sys::Blob = JsFuture::from(response.blob().map_err(|_| "unreadable download")?)
                .await
                .map_err(|_| "unreadable download")?
                .unchecked_into();
            let bytes = blob.size() as u64;
            let record = js_sys::Object::new();
            for (key, value) in
                [("id", JsValue::from(run_id)), ("bytes", JsValue::from(bytes as f64)), ("zip", blob.into())]
            {
                let _ = js_sys::Reflect::set(&record, &key.into(), &value);
            }
            write(WEIGHTS, "put", &record).await?;
            Ok::<u64, String>(bytes)
        }
        .await;
        match result {
            Ok(bytes) => lab.results.kept.update(|k| {
                k.insert(run_id, bytes);
            }),
            Err(e) => lab.ui.error(format!("run #{run_id}'s model could not be kept in this browser: {e}")),
        }
    });
}

/// Saves a kept model as a file again.
pub fn download_kept(lab: Lab, run_id: u32) {
    leptos::task::spawn_local(async move {
        let result = async {
            let record = read(WEIGHTS, "get", &JsValue::from(run_id)).await?;
            let zip = field(&record, "zip");
            if !zip.is_object() {
                return Err("it is no longer stored".to_string());
            }
            let blob: web_sys::Blob = zip.unchecked_into();
            let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(|_| "the browser could not offer it")?;
            crate::download::url(&format!("freezelab-run-{run_id}.zip"), &url);
            let _ = web_sys::Url::revoke_object_url(&url);
            Ok::<(), String>(())
        }
        .await;
        if let Err(e) = result {
            lab.ui.error(format!("run #{run_id}'s kept model: {e}"));
        }
    });
}

/// Every saved run, oldest first. Records that no longer read as runs are skipped and counted.
pub async fn load() -> Result<(Vec<RunView>, usize), String> {
    // getAll lists records in key order: by run id, which counts up, so oldest first.
    let values: js_sys::Array = read(RUNS, "getAll", &JsValue::UNDEFINED).await?.unchecked_into();
    let mut runs = Vec::new();
    let mut unreadable = 0;
    for value in values.iter() {
        crate::legacy::upgrade_run(&value);
        match serde_wasm_bindgen::from_value::<RunView>(value) {
            Ok(run) => runs.push(run),
            Err(_) => unreadable += 1,
        }
    }
    Ok((runs, unreadable))
}

/// Restores the saved runs into `lab`, then saves every run that finishes from now on.
pub fn keep(lab: Lab) {
    // Saved as (run, with its drift): the drift arrives just after a run finishes, and the run
    // is saved again with it.
    let saved = StoredValue::new(HashSet::<(u32, bool)>::new());
    leptos::task::spawn_local(async move {
        match load().await {
            Ok((runs, unreadable)) => {
                restore(lab, runs, &saved);
                if unreadable > 0 {
                    lab.ui.error(format!("{unreadable} saved runs could not be read and were left out"));
                }
            }
            Err(e) => lab.ui.error(format!("saved runs could not be read: {e}")),
        }
        match kept_sizes().await {
            Ok(sizes) => lab.results.kept.set(sizes.into_iter().collect()),
            Err(e) => lab.ui.error(format!("kept models could not be listed: {e}")),
        }
        Effect::new(move || {
            let new = lab.results.runs.filter(|r| r.finished() && !saved.with_value(|s| s.contains(&saved_as(r))));
            for run in new {
                saved.update_value(|s| {
                    s.insert(saved_as(&run));
                });
                leptos::task::spawn_local(async move {
                    if let Err(e) = save(&run).await {
                        lab.ui.error(format!("run #{} could not be saved in this browser: {e}", run.id));
                    }
                });
            }
        });
    });
}

/// How a run was saved: its id, and whether its drift was in it.
fn saved_as(run: &RunView) -> (u32, bool) {
    (run.id, run.summary.as_ref().is_some_and(|s| !s.drift.is_empty()))
}

/// Saved runs join the history before anything new; run numbers continue after them, and the
/// newest run trained in each column is shown again.
fn restore(lab: Lab, runs: Vec<RunView>, saved: &StoredValue<HashSet<(u32, bool)>>) {
    let Some(last) = runs.last().map(|r| r.id) else { return };
    saved.update_value(|s| s.extend(runs.iter().map(saved_as)));
    lab.results.next_run.update(|n| *n = (*n).max(last + 1));
    for column in freezelab_protocol::messages::Column::BOTH {
        if let Some(run) = runs.iter().rev().find(|r| r.origin == column.into() && !r.imported()) {
            lab.columns.pin(column, run.id);
        }
    }
    if let Some(sweep) = runs.iter().rev().find_map(|r| r.sweep) {
        lab.results.sweep.set(Some(sweep));
    }
    lab.results.runs.prepend(runs);
}

/// Removes a run from the page and from storage.
pub fn forget(lab: Lab, id: u32) {
    // Gone from the page once gone from storage: a reload right after never brings it back.
    leptos::task::spawn_local(async move {
        if let Err(e) = delete(id).await {
            return lab.ui.error(format!("run #{id} could not be deleted from this browser's storage: {e}"));
        }
        lab.results.runs.retain(|r| r.id != id);
        lab.results.kept.update(|k| {
            k.remove(&id);
        });
        lab.columns.pinned.update(|p| p.iter_mut().filter(|p| **p == Some(id)).for_each(|p| *p = None));
    });
}

/// Removes every finished run from the page and from storage; runs in progress stay.
pub fn forget_all(lab: Lab) {
    lab.results.runs.retain(|r| !r.finished());
    let left: HashSet<u32> = lab.results.runs.ids_untracked().into_iter().collect();
    lab.columns
        .pinned
        .update(|p| p.iter_mut().filter(|p| p.is_some_and(|id| !left.contains(&id))).for_each(|p| *p = None));
    lab.results.sweep.set(None);
    lab.results.kept.set(Default::default());
    leptos::task::spawn_local(async move {
        if let Err(e) = clear().await {
            lab.ui.error(format!("saved runs could not be cleared: {e}"));
        }
    });
}
