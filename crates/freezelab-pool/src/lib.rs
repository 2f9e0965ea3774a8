//! The page's pool of training workers as a state machine. Each call takes one event (a page
//! request, a worker's message, a worker started or died) and returns the [`Effect`]s to
//! perform, in order; web/src/pool.rs is the edge that performs them (posts, starts and
//! terminates Web Workers, updates the page) and feeds the answers back. Nothing here touches a
//! browser, so every scheduling rule is tested natively (tests/pool.rs).
//!
//! The rules: the first worker (the lead) answers everything about set-up (backend, downloads,
//! previews, probes) and shares the model and data bytes it loaded with the others. Runs wait in
//! a queue until enough workers are free; more workers start while the pool is below the page's
//! size. On WebGPU the lead trains alone. A data-parallel run takes several free workers at once
//! (replicas; the edge links them); the first replica answers for the run. A worker that dies
//! takes every worker with it: runs they had fail, the workers start again once with what had
//! loaded, and a second death before anything loads says "reload the page".
//!
//! The equal-time race ([`race`]) is a second, smaller machine: B waits for A's end, then trains
//! for A's training time.

pub mod race;
mod replies;
mod requests;

use std::collections::{HashMap, HashSet, VecDeque};

use freezelab_protocol::messages::{BackendChoice, Column, FromWorker, Origin, Request, Share, ToWorker};
use freezelab_protocol::run::TrainConfig;

/// What the page tells the pool of itself with each call (its settings and what it was told).
#[derive(Debug, Clone, Copy)]
pub struct Page {
    /// The most workers the pool may run.
    pub size: usize,
    /// The backend the user chose.
    pub choice: BackendChoice,
    /// The lead said it trains on WebGPU.
    pub on_gpu: bool,
    /// The lead's wasm started since the workers were last replaced.
    pub alive: bool,
}

/// What the edge does for the pool, in the order given.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Find the browser's WebGPU adapter, then call [`Pool::adapter_found`].
    FindAdapter,
    /// Start worker number `slots.len()` from the bundle with WebGPU when `gpu`, then call
    /// [`Pool::spawned`] (or [`Pool::spawn_failed`]).
    Spawn { gpu: bool },
    /// Post to a worker (the edge holds it until that worker's wasm says it is alive).
    Post { worker: usize, message: ToWorker },
    /// Post each replica of one run its request, linked as replicas are: a channel between the
    /// first and each other one. One worker: no links.
    Train { workers: Vec<usize>, messages: Vec<ToWorker> },
    /// Terminate the workers from index `from` on.
    Terminate { from: usize },
    /// A message for the page.
    Page(FromWorker),
    /// An error for the page's list.
    Error(String),
    /// Save a file the worker offers.
    Download { name: String, url: String },
    /// The workers are gone: the page forgets what they held.
    WorkersLost,
    /// A run ends as failed, with why.
    FailRun { run_id: u32, message: String },
    /// Answers to a new text to classify start from none; `gone`: the runs asked about whose
    /// model no worker holds any more (they get no answer).
    Predicting { text: String, gone: Vec<(Column, u32)> },
    /// The pool's figures changed.
    Status(Status),
}

/// The pool's figures for the page.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Status {
    pub up: usize,
    pub busy: usize,
    pub queued: usize,
    /// The workers' wasm heaps together.
    pub heap_bytes: u64,
}

/// A run waiting for `workers` free workers.
#[derive(Debug, Clone, PartialEq)]
pub struct Queued {
    pub run_id: u32,
    pub origin: Origin,
    pub config: TrainConfig,
    pub workers: usize,
}

#[derive(Debug, Default)]
struct Slot {
    /// Its bundle has the WebGPU backend.
    gpu: bool,
    /// The run it trains now.
    running: Option<Running>,
    /// The run whose model it keeps for each origin (as its shelf does).
    trained: HashMap<Origin, u32>,
    heap_bytes: u64,
}

impl Slot {
    fn holds(&self, run_id: u32) -> bool {
        self.trained.values().any(|&id| id == run_id)
    }
}

#[derive(Debug, Clone, Copy)]
struct Running {
    run_id: u32,
    origin: Origin,
    /// Which replica of the run this worker is (0 for a run on one worker).
    replica: usize,
}

/// Places in [`Pool::loads`], [`Pool::asked`] and [`Pool::unanswered`].
const MODEL: usize = 0;
const DATA: usize = 1;

/// The state the pool's rules read and change (see the crate's documentation).
#[derive(Debug, Default)]
pub struct Pool {
    slots: Vec<Slot>,
    /// Workers asked of the edge and not started yet.
    starting: usize,
    /// The lead waits for the adapter search: nothing else starts before it.
    finding_adapter: bool,
    /// Runs waiting for free workers, oldest first.
    queue: VecDeque<Queued>,
    /// Data-parallel runs in flight.
    replicated: HashSet<u32>,
    /// Data-parallel runs a replica's failure ended (the others' failures are not told again).
    failed: HashSet<u32>,
    /// What a new worker is told before its first run: the backend choice, then the model and
    /// the dataset (from the lead's shared bytes once it has shared them).
    start: Option<ToWorker>,
    loads: [Option<ToWorker>; 2],
    /// The page's own model and data requests that the lead loaded, asked again when the
    /// workers are replaced (the shared bytes died with the lead).
    asked: [Option<ToWorker>; 2],
    /// Requests sent to the lead and not yet answered, oldest first: each becomes `asked` when
    /// the lead says it loaded, and is dropped when it refuses (or dies on) it, so a request that
    /// killed a worker is never asked again.
    unanswered: [VecDeque<ToWorker>; 2],
    /// The workers were replaced and nothing has succeeded since: a second death now is not
    /// followed by a third start.
    restarted: bool,
    /// The WebGPU adapter found when the lead last started: `Some(fallback)`.
    adapter: Option<bool>,
}

impl Pool {
    /// Starts the lead: first the adapter search, which decides its bundle.
    pub fn start(&mut self) -> Vec<Effect> {
        self.finding_adapter = true;
        vec![Effect::FindAdapter]
    }

    /// The adapter search ended (`Some(fallback)` when the browser offers one).
    pub fn adapter_found(&mut self, page: &Page, found: Option<bool>) -> Vec<Effect> {
        self.adapter = found;
        self.finding_adapter = false;
        self.starting += 1;
        vec![Effect::Spawn { gpu: self.takes_gpu(page.choice) }]
    }

    /// Whether `choice` trains on the adapter the page found.
    fn takes_gpu(&self, choice: BackendChoice) -> bool {
        self.adapter.is_some_and(|fallback| choice.takes_gpu(fallback))
    }

    /// The worker asked for last started: it is told what the pool was told so far (a new lead
    /// also the requests no lead has answered); then queued runs may go.
    pub fn spawned(&mut self, page: &Page, gpu: bool) -> Vec<Effect> {
        self.starting = self.starting.saturating_sub(1);
        let worker = self.slots.len();
        self.slots.push(Slot { gpu, ..Slot::default() });
        let mut told: Vec<&ToWorker> = std::iter::once(&self.start).chain(&self.loads).flatten().collect();
        if worker == 0 {
            told.extend(self.unanswered.iter().flatten());
        }
        let mut out: Vec<Effect> =
            told.into_iter().map(|message| Effect::Post { worker, message: message.clone() }).collect();
        out.extend(self.dispatch(page));
        out
    }

    /// The worker asked for last could not start.
    pub fn spawn_failed(&mut self, error: String) -> Vec<Effect> {
        self.starting = self.starting.saturating_sub(1);
        vec![Effect::Error(error), self.status()]
    }

    /// A worker died (a panic, a lost device): every worker goes, runs they had fail, finished
    /// runs stay, and a new lead starts with the same backend choice, model and data. What the
    /// lead was loading is dropped with a message; one that never started, or a second death
    /// before anything succeeded, is not retried in a loop.
    pub fn on_worker_error(&mut self, page: &Page) -> Vec<Effect> {
        let again = self.restarted;
        let mut out: Vec<Effect> = self
            .take_unanswered()
            .iter()
            .map(|request| {
                Effect::Page(FromWorker::Error {
                    context: Request::of(request),
                    message: "the training worker stopped while loading this; the previous one is kept".into(),
                })
            })
            .collect();
        if !page.alive || again {
            self.stop_workers();
            let what = if again { "stopped again after a restart" } else { "could not start" };
            out.extend([
                Effect::WorkersLost,
                Effect::Terminate { from: 0 },
                self.status(),
                Effect::Error(format!("the training worker {what} (see the browser console); reload the page")),
            ]);
            return out;
        }
        out.push(Effect::Error(
            "a training worker stopped with an error; the workers were restarted and finished runs are kept".into(),
        ));
        self.restarted = true;
        out.extend(self.restart(page));
        out
    }

    /// Every worker goes; a new lead (the bundle the backend choice needs) starts with what the
    /// page asked for: the backend choice, the model and the data, then the requests the old
    /// lead had not answered. Finished runs stay.
    fn restart(&mut self, page: &Page) -> Vec<Effect> {
        let (start, asked, unanswered) = self.stop_workers();
        let mut out = vec![Effect::WorkersLost, Effect::Terminate { from: 0 }];
        out.extend(self.start());
        for message in std::iter::once(start).chain(asked).flatten().chain(unanswered) {
            out.extend(self.on_request(page, message));
        }
        out
    }

    /// Forgets every worker and what they were doing; returns what remains to ask again: the
    /// backend choice, the page's requests that loaded, and those not yet answered.
    fn stop_workers(&mut self) -> (Option<ToWorker>, [Option<ToWorker>; 2], Vec<ToWorker>) {
        self.slots.clear();
        self.queue.clear();
        self.replicated.clear();
        self.loads = [None, None];
        (self.start.clone(), self.asked.clone(), self.take_unanswered())
    }

    /// The requests no lead has answered, model ones first, each kind oldest first.
    fn take_unanswered(&mut self) -> Vec<ToWorker> {
        self.unanswered.iter_mut().flat_map(|q| q.drain(..)).collect()
    }

    /// Hands the oldest queued run to as many free workers as it takes (asking for more workers
    /// while the pool may grow, on the CPU), until the next run has to wait.
    fn dispatch(&mut self, page: &Page) -> Vec<Effect> {
        let mut out = Vec::new();
        while let Some(next) = self.queue.front() {
            if self.finding_adapter || self.starting > 0 {
                break;
            }
            // On WebGPU the lead trains alone, a data-parallel run too.
            let wanted = if page.on_gpu { 1 } else { next.workers };
            let free: Vec<usize> = (0..self.slots.len()).filter(|&i| self.slots[i].running.is_none()).collect();
            if free.len() < wanted {
                let room = if page.on_gpu { 0 } else { page.size.saturating_sub(self.slots.len()) };
                let more = (wanted - free.len()).min(room);
                self.starting += more;
                out.extend((0..more).map(|_| Effect::Spawn { gpu: false }));
                break;
            }
            let Queued { run_id, origin, config, .. } = self.queue.pop_front().expect("a queued run");
            if wanted > 1 {
                self.replicated.insert(run_id);
            }
            let workers = free[..wanted].to_vec();
            let messages = workers
                .iter()
                .enumerate()
                .map(|(replica, &slot)| {
                    self.slots[slot].running = Some(Running { run_id, origin, replica });
                    let share = (wanted > 1).then_some(Share { index: replica, count: wanted });
                    ToWorker::Train { run_id, origin, config: config.clone(), replica: share }
                })
                .collect();
            out.push(Effect::Train { workers, messages });
        }
        out.push(self.status());
        out
    }

    /// Tells every replica of `run_id` that the run ended.
    fn end_replicas(&mut self, run_id: u32) -> Vec<Effect> {
        self.replicated.remove(&run_id);
        (0..self.slots.len())
            .filter(|&i| self.slots[i].running.is_some_and(|r| r.run_id == run_id))
            .map(|worker| Effect::Post { worker, message: ToWorker::RunEnded { run_id } })
            .collect()
    }

    /// Posts to the lead; with no lead yet, nothing (a load waits in `unanswered` for it).
    fn to_lead(&self, message: ToWorker) -> Vec<Effect> {
        if self.slots.is_empty() {
            return Vec::new();
        }
        vec![Effect::Post { worker: 0, message }]
    }

    /// Workers up and training, runs waiting, and the workers' heaps in total.
    pub fn status(&self) -> Effect {
        Effect::Status(Status {
            up: self.slots.len(),
            busy: self.slots.iter().filter(|s| s.running.is_some()).count(),
            queued: self.queue.len(),
            heap_bytes: self.slots.iter().map(|s| s.heap_bytes).sum(),
        })
    }
}
