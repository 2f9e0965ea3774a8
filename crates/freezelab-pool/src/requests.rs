//! The page's requests: set-up to the lead (the backend choice to every worker), a run to free
//! workers or the queue, Stop to all, a prediction or a download to the workers holding those
//! runs.

use freezelab_protocol::messages::{Column, ToWorker};

use crate::{Effect, Page, Pool, Queued, DATA, MODEL};

impl Pool {
    /// Routes one request of the page.
    pub fn on_request(&mut self, page: &Page, message: ToWorker) -> Vec<Effect> {
        let share = page.size > 1;
        match message {
            ToWorker::Start { choice } => {
                self.start = Some(message.clone());
                // A lead without WebGPU cannot take a choice that trains there: a new lead can.
                if self.slots.first().is_some_and(|lead| !lead.gpu) && self.takes_gpu(choice) {
                    return self.restart(page);
                }
                (0..self.slots.len())
                    .map(|worker| {
                        self.slots[worker].trained.clear();
                        Effect::Post { worker, message: message.clone() }
                    })
                    .collect()
            }
            ToWorker::LoadModel { source, .. } => self.load(MODEL, ToWorker::LoadModel { source, share }),
            ToWorker::LoadDataset { source, .. } => self.load(DATA, ToWorker::LoadDataset { source, share }),
            // The lead holds the model and data as loaded; a probe's cancel goes where the probe went.
            ToWorker::Inspect { .. } | ToWorker::Probe { .. } | ToWorker::CancelProbe { .. } => self.to_lead(message),
            ToWorker::Train { run_id, origin, config, .. } => {
                self.train(page, Queued { run_id, origin, config, workers: 1 })
            }
            // The pool ends replicated runs itself; a page never sends these.
            ToWorker::RunEnded { .. } => Vec::new(),
            ToWorker::Stop => {
                self.queue.clear();
                let mut out: Vec<Effect> =
                    (0..self.slots.len()).map(|worker| Effect::Post { worker, message: ToWorker::Stop }).collect();
                // A replica waiting for the others' gradients hears that its run ended.
                let mut runs: Vec<u32> = self.replicated.iter().copied().collect();
                runs.sort_unstable();
                for run_id in runs {
                    out.extend(self.end_replicas(run_id));
                }
                out
            }
            ToWorker::Predict { text, runs } => self.predict(text, runs),
            ToWorker::Export { run_id } => match self.slots.iter().position(|s| s.holds(run_id)) {
                Some(worker) => vec![Effect::Post { worker, message }],
                None => vec![Effect::Error(format!(
                    "download: run #{run_id}'s weights are no longer in memory: each worker keeps only its latest run of each column"
                ))],
            },
        }
    }

    /// Queues a run on `run.workers` workers at once (data-parallel when more than one; at
    /// most the pool's size).
    pub fn train(&mut self, page: &Page, mut run: Queued) -> Vec<Effect> {
        run.workers = run.workers.clamp(1, page.size.max(1));
        self.queue.push_back(run);
        self.dispatch(page)
    }

    /// A model or dataset request: the lead downloads it; once it has loaded, the pool keeps it
    /// for workers to come ([`Pool::answered`]).
    fn load(&mut self, which: usize, message: ToWorker) -> Vec<Effect> {
        self.unanswered[which].push_back(message.clone());
        self.to_lead(message)
    }

    /// Each worker is asked about the runs it holds; runs none holds are named to the page.
    fn predict(&self, text: String, runs: Vec<(Column, u32)>) -> Vec<Effect> {
        let gone = runs.iter().copied().filter(|&(_, id)| !self.slots.iter().any(|s| s.holds(id))).collect();
        let mut out = vec![Effect::Predicting { text: text.clone(), gone }];
        for (worker, slot) in self.slots.iter().enumerate() {
            let mine: Vec<(Column, u32)> = runs.iter().copied().filter(|&(_, id)| slot.holds(id)).collect();
            if !mine.is_empty() {
                out.push(Effect::Post { worker, message: ToWorker::Predict { text: text.clone(), runs: mine } });
            }
        }
        out
    }
}
