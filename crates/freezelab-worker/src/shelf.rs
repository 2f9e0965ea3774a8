//! The latest trained model of each column (and the sweep's latest), kept for predictions and
//! downloads until the next run of the same origin (or a new model or backend) replaces it.

use std::collections::HashMap;

use freezelab_core::folder::model_folder;
use freezelab_core::loaded::LoadedModel;
use freezelab_protocol::messages::{Column, Origin, Prediction, UserFile};

use crate::archive;
use crate::assets::Model;

pub struct Trained {
    pub run_id: u32,
    pub model: LoadedModel,
    pub labels: Vec<String>,
    pub max_len: usize,
}

#[derive(Default)]
pub struct Shelf {
    by_origin: HashMap<Origin, Trained>,
    /// The latest model download; an older one is released when a new one is made.
    export_url: Option<String>,
}

impl Shelf {
    pub fn keep(&mut self, origin: Origin, trained: Trained) {
        self.by_origin.insert(origin, trained);
    }

    /// Forgets every model (they live on a device or came from a checkpoint no longer held).
    pub fn clear(&mut self) {
        self.by_origin.clear();
    }

    /// The probabilities for `text` of each of `runs` still held, shown in its column.
    pub async fn predict(&self, text: &str, runs: &[(Column, u32)]) -> Result<Vec<Prediction>, String> {
        let mut results = Vec::new();
        for &(column, run_id) in runs {
            let Some(t) = self.by_origin.values().find(|t| t.run_id == run_id) else { continue };
            let probabilities = t.model.predict(&[text], t.max_len).await.map_err(|e| e.to_string())?;
            results.push(Prediction {
                column,
                run_id: t.run_id,
                labels: t.labels.clone(),
                probabilities: probabilities.into_iter().next().unwrap_or_default(),
            });
        }
        Ok(results)
    }

    /// Zips the run's model folder (with `base`'s config and tokenizer) behind a `blob:` URL;
    /// returns the file and its size.
    pub async fn export(&mut self, run_id: u32, base: Option<&Model>) -> Result<(UserFile, u64), String> {
        let trained = self.by_origin.values().find(|t| t.run_id == run_id);
        let (Some(base), Some(trained)) = (base, trained) else {
            return Err(format!(
                "run #{run_id}'s weights are no longer in memory: only the latest run of each column is kept"
            ));
        };
        let files = model_folder(&trained.model.classifier, &trained.labels, &base.config, &base.tokenizer)
            .await
            .map_err(|e| e.to_string())?;
        let name = format!("freezelab-run-{run_id}");
        let zip = archive::zip_folder(&name, &files)?;
        let url = archive::blob_url(&zip, "application/zip")?;
        if let Some(old) = self.export_url.replace(url.clone()) {
            let _ = web_sys::Url::revoke_object_url(&old);
        }
        Ok((UserFile { name: format!("{name}.zip"), url }, zip.len() as u64))
    }
}
