// Training speed in the page's workers, timed: the release page on the CPU backend, one run
// training everything (A) at fixed settings, once untimed on K workers (warm-up), then timed on
// one worker and on K (data-parallel), in one engine (default Chromium; drivers.mjs).
// Prints `PAGEBENCH {json}`: the engine, the settings, the first contentful paint, the engine's
// start (page load to a chosen backend) and each run's training examples/s and wall time as the
// page shows them. Run by `cargo xtask bench --browser [--engine E]` (a figure, not a test),
// beside the native CLI on the same settings.
//
// usage: node page-bench.mjs URL K [chromium|firefox|webkit]
import { open, setValue } from './drivers.mjs';
import { waitForServer } from './server.mjs';

const url = process.argv[2] ?? 'http://127.0.0.1:8080/';
const k = Number(process.argv[3] ?? 2);
const engine = process.argv[4] ?? 'chromium';
await waitForServer(url);
const browser = await open(engine);
const $ = (id) => browser.$(`[data-testid="${id}"]`);
const set = (id, value) => setValue(browser, id, value);
const until = (condition, timeout) => browser.waitUntil(condition, { timeout, interval: 200 });
await browser.url(url);
await until(async () => (await $('force-cpu')).isExisting(), 120_000);
if (!(await (await $('force-cpu')).isSelected())) await (await $('force-cpu')).click();
await until(async () => (await (await $('backend-status')).getText()).startsWith('CPU'), 120_000);
// The worker's wasm compiled and running, a backend chosen: what a visitor waits for first.
const engineReady = await browser.execute(() => performance.now() / 1000);
const firstPaint = await browser.execute(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime / 1000);
await until(async () => (await $('train-both')).isEnabled(), 300_000);
const settings = { train_size: 64, eval_size: 16, epochs: 1, max_len: 64, batch: 16 };
await set('hp-train-size', settings.train_size);
await set('hp-eval-size', settings.eval_size);
await set('hp-epochs', settings.epochs);
await set('hp-max-len', settings.max_len);
await set('hp-batch', settings.batch);
await set('pool-size', Math.max(k, 2));
await (await $('preset-A-all')).click();
const statusA = () => browser.execute(() => document.querySelector('.column .status')?.textContent ?? '');
/** Trains run A and waits for it to finish. */
async function trainA() {
  const before = await statusA();
  await (await $('train-A')).click();
  await until(async () => { const s = await statusA(); return /finished/.test(s) && s !== before; }, 1_800_000);
}
// An untimed run on all K workers first: V8 tiers up each worker's wasm on its own, so a worker
// that has not trained yet starts in baseline code, and the others wait for it (the native bench
// also times after a warm-up step).
await set('hp-workers', k);
await trainA();
const rows = [];
for (const workers of [1, k]) {
  await set('hp-workers', workers);
  await trainA();
  const value = async (id) => Number(await (await $(id)).getAttribute('data-value'));
  const exchange = workers > 1 ? await value('exchange-A') : null;
  rows.push({ workers, examples_per_second: await value('speed-A'), wall_seconds: await value('wall-A'), exchange_seconds: exchange });
}
const cores = await browser.execute(() => navigator.hardwareConcurrency);
console.log(`PAGEBENCH ${JSON.stringify({ engine, settings, first_contentful_paint_seconds: firstPaint, engine_ready_seconds: engineReady, cores, rows })}`);
await browser.close();
