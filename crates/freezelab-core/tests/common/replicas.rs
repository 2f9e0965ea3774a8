//! A data-parallel run's replicas in one thread: an in-process [`Reducer`] (in the browser the
//! workers' linked ports do this job) and the replicas trained side by side.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use burn::tensor::Device;
use freezelab_core::cache::PrefixCache;
use freezelab_core::config::BertConfig;
use freezelab_core::train::replica::add_replica_values;
use freezelab_core::train::{self, Reducer, Replica, RunSummary, TrainConfig};

use super::recorder::Recorder;
use super::training::{context, dataset, model};

/// Each step's values from every replica, and who is waiting for their sum.
#[derive(Default)]
struct Exchange {
    count: usize,
    /// The most values one replica handed in for one step.
    largest: usize,
    handed: HashMap<usize, Vec<Option<Vec<f32>>>>,
    waiting: Vec<Waker>,
}

/// One replica's end of an [`Exchange`].
struct Local {
    exchange: Rc<RefCell<Exchange>>,
    index: usize,
    waited: Duration,
}

impl Reducer for Local {
    fn sum(
        &mut self,
        step: usize,
        values: Vec<f32>,
    ) -> Pin<Box<dyn Future<Output = freezelab_core::Result<Vec<f32>>> + '_>> {
        let handed_in = Instant::now();
        {
            let mut ex = self.exchange.borrow_mut();
            let count = ex.count;
            ex.largest = ex.largest.max(values.len());
            ex.handed.entry(step).or_insert_with(|| vec![None; count])[self.index] = Some(values);
            ex.waiting.drain(..).for_each(Waker::wake);
        }
        Box::pin(poll_fn(move |cx| {
            let mut ex = self.exchange.borrow_mut();
            let all = &ex.handed[&step];
            if all.iter().any(Option::is_none) {
                ex.waiting.push(cx.waker().clone());
                return Poll::Pending;
            }
            // In replica order, as the first worker adds them in the browser.
            let mut sum = all[0].clone().expect("handed in");
            let added =
                all[1..].iter().try_for_each(|other| add_replica_values(&mut sum, other.as_ref().expect("handed in")));
            drop(ex);
            self.waited += handed_in.elapsed();
            Poll::Ready(added.map(|()| sum))
        }))
    }

    fn waited(&self) -> f64 {
        self.waited.as_secs_f64()
    }
}

/// `count` replicas of the run of `cfg` on the synthetic data, trained side by side; each
/// replica's summary and events, and the most values a replica handed in for one step.
pub fn train_replicas(config: &BertConfig, cfg: &TrainConfig, count: usize) -> (Vec<(RunSummary, Recorder)>, usize) {
    let _turn = super::training::turn();
    let device = Device::flex().autodiff();
    let data = dataset(96);
    let exchange = Rc::new(RefCell::new(Exchange { count, ..Exchange::default() }));
    let mut reducers: Vec<Local> =
        (0..count).map(|index| Local { exchange: exchange.clone(), index, waited: Duration::ZERO }).collect();
    let mut hosts: Vec<Recorder> = (0..count).map(|_| Recorder::default()).collect();
    let mut caches: Vec<PrefixCache> = (0..count).map(|_| PrefixCache::new()).collect();
    let models: Vec<_> = (0..count).map(|_| model(config, 7, &device)).collect();
    let runs = models.iter().zip(reducers.iter_mut().zip(hosts.iter_mut().zip(caches.iter_mut()))).enumerate().map(
        |(index, (m, (reducer, (host, cache))))| {
            let ctx = context(
                (&m.config, &m.tokenizer, "random-7"),
                (&data, cfg),
                cache,
                host,
                Some(Replica { index, count, reducer }),
            );
            Box::pin(train::train(m.classifier.clone(), ctx))
        },
    );
    let mut runs: Vec<_> = runs.map(Some).collect();
    let mut done: Vec<Option<RunSummary>> = vec![None; count];
    // Polls every replica in turn until all are done (a join over a list).
    pollster::block_on(poll_fn(|cx| {
        for (run, out) in runs.iter_mut().zip(done.iter_mut()) {
            if let Some(future) = run {
                if let Poll::Ready(result) = future.as_mut().poll(cx) {
                    *out = Some(result.expect("a replica trains").1);
                    *run = None;
                }
            }
        }
        if runs.iter().all(Option::is_none) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }));
    drop(runs);
    let largest = exchange.borrow().largest;
    (done.into_iter().map(|s| s.expect("finished")).zip(hosts).collect(), largest)
}
