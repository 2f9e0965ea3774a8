// The prefix cache never serves another model's or dataset's activations (release page, CPU
// backend). Three random models under the same three file names (hidden 32, hidden 32 again with
// other weights, then hidden 16), and one CSV read with two label columns: each run with the
// cache must give exactly what the same run gives without it. The two pairs of one shape come one
// after the other, so only a key naming the content keeps the first's states from the second.
//
// usage: node cache-keys.mjs URL SYNTHETIC   (SYNTHETIC: a folder `freezelab synthetic` wrote;
//        the narrower model is written beside it with $FREEZELAB)
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checker, launch, waitForServer } from './server.mjs';

const url = process.argv[2] ?? 'http://127.0.0.1:8080/';
const wide = process.argv[3];
const narrow = mkdtempSync(join(tmpdir(), 'freezelab-narrow-'));
execFileSync(process.env.FREEZELAB ?? 'freezelab', ['synthetic', '--out', narrow, '--hidden', '16']);
// The same shape as the first model, other weights: only a key naming the content tells them apart.
const sameShape = mkdtempSync(join(tmpdir(), 'freezelab-same-shape-'));
execFileSync(process.env.FREEZELAB ?? 'freezelab', ['synthetic', '--out', sameShape, '--hidden', '32', '--seed', '8']);
const { check, failures } = checker();

await waitForServer(url);
const browser = await launch();
const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
const byId = (id) => page.getByTestId(id);
const text = async (id) => (await byId(id).textContent()).trim();
const set = async (id, value) => { await byId(id).fill(String(value)); await byId(id).dispatchEvent('change'); };

await page.goto(url);
await byId('force-cpu').check();
await page.waitForSelector('[data-testid=train-both]:not([disabled])', { timeout: 300_000 });

async function loadModel(dir, hidden) {
  await byId('model-select').selectOption('upload');
  for (const [id, name] of [['model-config', 'config.json'], ['model-weights', 'model.safetensors'], ['model-tokenizer', 'tokenizer.json']]) {
    await byId(id).setInputFiles({ name, mimeType: 'application/octet-stream', buffer: readFileSync(join(dir, name)) });
  }
  // The summary reads "loading…" until the worker answers; a model of the same width as the last
  // one shows the same summary after, so the answer itself is waited for.
  await page.evaluate(() => {
    const summary = document.querySelector('[data-testid=model-summary]');
    let loading = false;
    window.modelLoaded = false;
    window.modelWatch?.disconnect();
    window.modelWatch = new MutationObserver(() => {
      if (summary.textContent === 'loading…') loading = true;
      else if (loading) window.modelLoaded = true;
    });
    window.modelWatch.observe(summary, { childList: true, characterData: true, subtree: true });
  });
  await byId('model-load').click();
  await page.waitForFunction((h) => window.modelLoaded
    && document.querySelector('[data-testid=model-summary]')?.textContent.includes(`hidden ${h}`), hidden, { timeout: 120_000 });
  check((await text('errors')) === '', `the model of hidden ${hidden} loaded without an error`);
}

// Two label columns over the same texts: `label` follows the cue words, `other` does not.
const cues = ['great', 'good', 'happy', 'love', 'awful', 'bad', 'sad', 'hate'];
const rows = Array.from({ length: 96 }, (_, i) => {
  const cue = cues[i % cues.length];
  return `the movie was ${cue} and it is very ${i % 3 ? 'fine' : 'dark'},${i % cues.length < 4 ? 'pos' : 'neg'},${i % 3 ? 'x' : 'y'}`;
});
const csv = Buffer.from(`text,label,other\n${rows.join('\n')}\n`);
async function loadData(label) {
  await byId('dataset-select').selectOption('upload');
  await byId('dataset-upload').setInputFiles({ name: 'data.csv', mimeType: 'text/csv', buffer: csv });
  await page.waitForSelector('table.preview td', { timeout: 60_000 });
  await byId('dataset-label-column').selectOption(label);
  await byId('dataset-use').click();
  const first = label === 'label' ? 'neg' : 'x';
  await page.waitForFunction((f) => (document.querySelector('[data-testid=dataset-counts]')?.textContent ?? '').startsWith(`${f}:`),
    first, { timeout: 60_000 });
}

/** Trains B (embeddings and layer 0 frozen, so the cache is used) and returns its accuracy. */
async function trainB(cache) {
  if ((await byId('hp-cache').isChecked()) !== cache) await byId('hp-cache').click();
  const before = await page.locator('[data-testid=history-table] tbody tr').count();
  await byId('train-B').click();
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid=history-table] tbody tr').length > n
    && /^run #\d+ finished/.test(document.querySelectorAll('.column .status')[1]?.textContent ?? ''), before, { timeout: 300_000 });
  return text('accuracy-B');
}

async function plan() {
  for (const [id, v] of [['hp-train-size', 48], ['hp-eval-size', 24], ['hp-max-len', 16], ['hp-epochs', 2], ['hp-batch', 8], ['hp-lr', 0.01]]) await set(id, v);
  await byId('preset-B-emb').click();
  await byId('freeze-B-layer-0').check();
}

// Each case trains twice, cached then not; the exported summaries give the validation losses.
const cases = [];
for (const [name, dir, hidden] of [['hidden 32', wide, 32], ['hidden 32, other weights', sameShape, 32], ['hidden 16', narrow, 16]]) {
  await loadModel(dir, hidden);
  await loadData('label');
  await plan();
  cases.push([`${name}, uploaded as model.safetensors like the other`, await trainB(true), await trainB(false)]);
}
// One file, two label columns: two datasets for the cache.
for (const label of ['label', 'other']) {
  await loadData(label);
  await plan();
  cases.push([`data.csv with label column "${label}"`, await trainB(true), await trainB(false)]);
}
const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export JSON' }).click()]);
const summaries = JSON.parse(readFileSync(await download.path(), 'utf8')).runs;
check(summaries.length === 2 * cases.length, `every run was exported (${summaries.length})`);
cases.forEach(([what, cachedAccuracy, freshAccuracy], i) => {
  const [cached, fresh] = [summaries[2 * i], summaries[2 * i + 1]];
  check(cached.cache_used && !fresh.cache_used, `${what}: the first run used the cache, the second did not`);
  const same = cachedAccuracy === freshAccuracy && Math.abs(cached.val_loss - fresh.val_loss) < 1e-5;
  check(same, `${what}: the cached run equals its uncached run (accuracy ${cachedAccuracy} / ${freshAccuracy}, `
    + `validation loss ${cached.val_loss.toFixed(6)} / ${fresh.val_loss.toFixed(6)})`);
});

await browser.close();
console.log(`e2e cache keys: ${failures.length ? failures.length + ' failed' : 'all passed'}`);
process.exit(failures.length ? 1 : 0);
