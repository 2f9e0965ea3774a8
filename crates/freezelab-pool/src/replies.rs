//! The workers' messages: the lead's set-up answers go to the page (the others' are dropped,
//! their errors told), runs and downloads from every worker go to the page, and a worker that
//! finished a request may take the next queued run.

use freezelab_protocol::messages::{BackendKind, FromWorker, Request, ToWorker};
use freezelab_protocol::run::TrainEvent;

use crate::{Effect, Page, Pool, DATA, MODEL};

impl Pool {
    /// Handles what worker `worker` said.
    pub fn on_message(&mut self, page: &Page, worker: usize, message: FromWorker) -> Vec<Effect> {
        let lead = worker == 0;
        // A replica other than the first only trains: the first answers for the run.
        let replica = self.slots.get(worker).and_then(|s| s.running).map_or(0, |r| r.replica);
        let mut out = Vec::new();
        match &message {
            FromWorker::Run { .. } if replica > 0 => return out,
            FromWorker::RunFailed { run_id, .. } => {
                // The run's other replicas stop waiting; the first failure is the one told.
                if self.replicated.contains(run_id) {
                    out.extend(self.end_replicas(*run_id));
                    self.failed.insert(*run_id);
                } else if self.failed.contains(run_id) {
                    return out;
                }
            }
            FromWorker::Backend { info } if lead && info.kind == BackendKind::Webgpu => {
                out.extend(self.shrink_to_lead())
            }
            FromWorker::ModelLoaded { shared, .. } if lead => {
                let shared = shared.clone().map(|source| ToWorker::LoadModel { source, share: false });
                out.extend(self.answered(MODEL, true, shared));
            }
            FromWorker::DatasetLoaded { shared, .. } if lead => {
                let shared = shared.clone().map(|source| ToWorker::LoadDataset { source, share: false });
                out.extend(self.answered(DATA, true, shared));
            }
            FromWorker::Error { context: Request::Model, .. } if lead => out.extend(self.answered(MODEL, false, None)),
            FromWorker::Error { context: Request::Dataset, .. } if lead => out.extend(self.answered(DATA, false, None)),
            FromWorker::Run { run_id, event: TrainEvent::Finished { .. } } => {
                self.restarted = false;
                self.replicated.remove(run_id);
                if let Some(slot) = self.slots.get_mut(worker) {
                    if let Some(running) = slot.running.filter(|r| r.run_id == *run_id) {
                        slot.trained.insert(running.origin, *run_id);
                    }
                }
            }
            FromWorker::Handled { request, heap_bytes } => {
                if let Some(slot) = self.slots.get_mut(worker) {
                    slot.heap_bytes = *heap_bytes;
                    if *request == Request::Train {
                        slot.running = None;
                    }
                }
                return self.dispatch(page);
            }
            _ => {}
        }
        let for_the_page = lead
            || matches!(
                message,
                FromWorker::Run { .. }
                    | FromWorker::RunFailed { .. }
                    | FromWorker::Predictions { .. }
                    | FromWorker::Exported { .. }
                    | FromWorker::Error { context: Request::Train | Request::TryIt | Request::Download, .. }
            );
        if let FromWorker::Exported { file, .. } = &message {
            out.push(Effect::Download { name: file.name.clone(), url: file.url.clone() });
        }
        match message {
            _ if for_the_page => out.push(Effect::Page(message)),
            FromWorker::Error { context, message } => {
                out.push(Effect::Error(format!("worker {} of the pool: {context}: {message}", worker + 1)))
            }
            _ => {}
        }
        out
    }

    /// The lead answered the oldest request of its kind: loaded, it is what new and restarted
    /// workers are told (the lead's shared copy when it shares one, sent to the others now);
    /// refused, it is forgotten.
    fn answered(&mut self, which: usize, loaded: bool, shared: Option<ToWorker>) -> Vec<Effect> {
        if let Some(request) = self.unanswered[which].pop_front().filter(|_| loaded) {
            self.restarted = false;
            if shared.is_none() {
                self.loads[which] = Some(request.clone());
            }
            self.asked[which] = Some(request);
        }
        let Some(message) = shared else { return Vec::new() };
        self.loads[which] = Some(message.clone());
        (1..self.slots.len()).map(|worker| Effect::Post { worker, message: message.clone() }).collect()
    }

    /// On WebGPU only the lead trains: the others are stopped, and a run one of them had
    /// started fails with the reason (a backend change clears every worker's models anyway).
    fn shrink_to_lead(&mut self) -> Vec<Effect> {
        let mut out = Vec::new();
        if self.slots.len() > 1 {
            out.push(Effect::Terminate { from: 1 });
            for slot in self.slots.drain(1..) {
                if let Some(running) = slot.running {
                    let message = "the backend became WebGPU, where one worker trains; run it again".to_string();
                    out.push(Effect::FailRun { run_id: running.run_id, message });
                }
            }
        }
        out.push(self.status());
        out
    }
}
