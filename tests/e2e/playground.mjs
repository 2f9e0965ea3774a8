// End-to-end: the release page, as `trunk serve` sends it (with its Content-Security-Policy), in
// Debian's Chromium. Loads the default model, sets a tiny budget, trains A (train all) and B
// (head only) with "Train both", and checks what a person would: accuracies are numbers in
// [0, 1], B trains fewer parameters and needs less memory (computed and measured), the charts
// have points, "Try it" classifies, the downloaded model gives `freezelab predict` ($FREEZELAB)
// the same probabilities, runs survive a reload, the sweep plots its points (CPU), the console
// has no errors (CSP violations included), and the main thread never blocks for long while
// training. Screenshots go to $SHOTS (before/during/after/sweep/race/bitfit/lora-gradual).
//
// usage: node playground.mjs URL cpu                 the default model (MiniLM-L6) on the CPU backend
//        node playground.mjs URL webgpu SYNTHETIC    WebGPU with the small random model and data
//                                                    that `freezelab synthetic --out SYNTHETIC` wrote,
//                                                    loaded through the file pickers (a software
//                                                    adapter is far too slow for MiniLM)
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checker, launch, waitForServer } from './server.mjs';

const url = process.argv[2] ?? 'http://127.0.0.1:8080/';
const backend = process.argv[3] ?? 'cpu';
const synthetic = process.argv[4];
const shots = process.env.SHOTS ?? 'e2e-screenshots';
mkdirSync(shots, { recursive: true });

const { check, failures } = checker();

const csp = await waitForServer(url);
check(/script-src 'self' 'wasm-unsafe-eval' 'nonce-[^']+'/.test(csp) && csp.includes("default-src 'self'"),
  `the page is served with a Content-Security-Policy (${csp.slice(0, 60)}…)`);

const browser = await launch(['--enable-unsafe-webgpu']);
const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
const consoleErrors = [];
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
page.on('pageerror', (e) => consoleErrors.push(String(e)));
// The bundle each worker started from: the CPU-only one, or the one with WebGPU.
const workerScripts = [];
const bundleOf = (u) => (u.includes('freezelab-worker-cpu_') ? 'cpu' : u.includes('freezelab-worker_') ? 'gpu' : u);
page.on('worker', (w) => {
  workerScripts.push(bundleOf(w.url()));
  w.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(`worker: ${m.text()}`); });
});
// Long main-thread tasks, recorded from the start.
await page.addInitScript(() => {
  window.__longTasks = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__longTasks.push({ start: e.startTime, duration: e.duration });
  }).observe({ type: 'longtask', buffered: true });
});

const byId = (id) => page.getByTestId(id);
const text = async (id) => (await byId(id).textContent()).trim();
const bytes = async (id) => Number(await byId(id).getAttribute('data-bytes'));

const started = Date.now();
await page.goto(url);
const paint = await page.waitForFunction(
  () => performance.getEntriesByName('first-contentful-paint')[0]?.startTime, null, { timeout: 30_000 });
const paintedAt = await paint.jsonValue();
console.log(`first contentful paint: ${paintedAt.toFixed(0)} ms`);
// The charts' drawing code is a module of its own, fetched once the page has painted; then the
// (still empty) charts are drawn.
await page.waitForSelector('[data-testid=chart-loss] svg', { timeout: 30_000 }).catch(() => {});
const chartsModule = await page.evaluate(() =>
  performance.getEntriesByType('resource').find((e) => e.name.endsWith('/freezelab-charts_bg.wasm'))?.startTime);
check(chartsModule > paintedAt, `the charts module is fetched after the first paint (at ${chartsModule?.toFixed(0)} ms)`);
check(await page.locator('[data-testid=chart-accuracy] svg').count() === 1, 'the charts module draws the charts');

// Headless Chromium's only adapter is SwiftShader, a software fallback: left to choose, the page
// takes the CPU and says why; the WebGPU run asks for the software adapter explicitly.
await page.waitForFunction(() => (document.querySelector('[data-testid=backend-status]')?.textContent ?? '').startsWith('CPU'),
  null, { timeout: 120_000 }).catch(() => {});
const chosen = await text('backend-status');
check(/^CPU .*software fallback/.test(chosen), `a software WebGPU adapter is not chosen by default (${chosen})`);
// Chromium has relaxed SIMD: the CPU's matrix products run the page's own kernel.
check(chosen.startsWith('CPU (wasm, relaxed SIMD)'), `the CPU backend names its matrix products' SIMD (${chosen})`);
check(workerScripts.join() === 'cpu', `where the CPU trains, the lead worker is the CPU-only bundle (workers: ${workerScripts.join()})`);
const chooseBackend = () => byId(backend === 'cpu' ? 'force-cpu' : 'software-gpu').check();
await chooseBackend();
const want = backend === 'cpu' ? 'CPU' : 'WebGPU';
await page.waitForFunction((w) => (document.querySelector('[data-testid=backend-status]')?.textContent ?? '').startsWith(w),
  want, { timeout: 120_000 }).catch(() => {});
const status = await text('backend-status');
console.log(`backend: ${status}`);
check(status.startsWith(want), `backend is ${want}`);
if (backend !== 'cpu') {
  check(workerScripts.join() === 'cpu,gpu', `asking for the software GPU replaces the CPU-only lead by the WebGPU bundle (workers: ${workerScripts.join()})`);
}

// The model (45 MB download) and the data load on their own.
await page.waitForSelector('[data-testid=train-both]:not([disabled])', { timeout: 300_000 });
console.log(`model and data ready after ${((Date.now() - started) / 1000).toFixed(1)} s`);

if (synthetic) {
  // The user's own model and data, through the pickers.
  await byId('model-select').selectOption('upload');
  await byId('model-config').setInputFiles(`${synthetic}/config.json`);
  await byId('model-weights').setInputFiles(`${synthetic}/model.safetensors`);
  await byId('model-tokenizer').setInputFiles(`${synthetic}/tokenizer.json`);
  await byId('model-load').click();
  await page.waitForFunction(() => document.querySelector('[data-testid=model-summary]')?.textContent.includes('2 layers'),
    null, { timeout: 120_000 });
  await byId('dataset-select').selectOption('upload');
  await byId('dataset-upload').setInputFiles(`${synthetic}/data.csv`);
  await page.waitForSelector('table.preview td', { timeout: 60_000 });
  check(await byId('dataset-text-column').inputValue() === 'text', 'upload preview picks the text column');
  check(await byId('dataset-label-column').inputValue() === 'label', 'upload preview picks the label column');
  await byId('dataset-use').click();
  await page.waitForFunction(() => /^a: \d+ \/ \d+ · b:/.test(document.querySelector('[data-testid=dataset-counts]')?.textContent ?? ''),
    null, { timeout: 60_000 });
  console.log(`uploaded data: ${await text('dataset-counts')}`);
}

const set = async (id, value) => { await byId(id).fill(String(value)); await byId(id).dispatchEvent('change'); };
// A software WebGPU adapter compiles and tunes kernels for every new shape: two steps there.
await set('hp-train-size', synthetic ? 32 : 48);
await set('hp-eval-size', synthetic ? 32 : 48);
await set('hp-max-len', synthetic ? 16 : 32);
await set('hp-epochs', 1);
await set('hp-batch', 16);
// The set-up travels in the URL: a fresh browser context opening it finds the same experiment.
await byId('preset-A-emb').click();
await byId('preset-B-head').click();
await page.waitForFunction(() => location.hash.includes('A=emb'), null, { timeout: 10_000 });
const link = page.url();
{
  const other = await (await browser.newContext()).newPage();
  await other.goto(link);
  await other.waitForSelector('[data-testid=train-both]:not([disabled])', { timeout: 300_000 });
  const same = async (id, value) => (await other.getByTestId(id).inputValue()) === String(value);
  check(await same('hp-train-size', synthetic ? 32 : 48) && await same('hp-max-len', synthetic ? 16 : 32),
    'a copied link restores the hyperparameters');
  const boxes = async (c) => Promise.all(['emb', ...[0, 1].map((i) => `layer-${i}`)].map((b) => other.getByTestId(`freeze-${c}-${b}`).isChecked()));
  const [a, b] = [await boxes('A'), await boxes('B')];
  check(a.join() === 'true,false,false' && b.every(Boolean), `a copied link restores both freeze plans (A ${a}, B ${b})`);
  await other.context().close();
}
// What each layer knows, before any training: a first probe is cancelled (the page stays
// usable), the second runs to the end; on MiniLM its table is the native CLI's.
const layers = synthetic ? 2 : 6;
await byId('probe-run').click();
await byId('probe-cancel').click();
check(await byId('probe-run').isEnabled() && await byId('probe-progress').textContent() === '',
  'a probe request is cancelled, and the page can ask again');
await byId('probe-run').click();
await page.waitForSelector('[data-testid=probe-chart] [data-block]', { timeout: 300_000 }).catch(() => {});
const probed = await page.locator('[data-testid=probe-chart] [data-block]').evaluateAll(
  (rows) => rows.map((e) => [e.dataset.block, Number(e.dataset.accuracy)]));
check(probed.length === layers + 1 && probed.every(([, a]) => a >= 0 && a <= 1),
  `the probe chart has a bar per block, each an accuracy (${JSON.stringify(probed)})`);
const probeLine = await byId('probe-line-A').count() + await byId('probe-line-B').count();
check(probeLine === 2, `each column names the probe below its freeze line (${await byId('probe-line-B').textContent().catch(() => 'none')})`);
check(await page.locator('[data-testid^=freeze-A-] ~ [data-probe]').count() === layers + 1,
  "column A's freeze stack shows each block's probe");
if (!synthetic) {
  const out = join(mkdtempSync(join(tmpdir(), 'freezelab-probe-')), 'probe.json');
  execFileSync(process.env.FREEZELAB, ['probe', '--model', '../../static/models/minilm-l6', '--static', '../../static',
    '--data', 'spam', '--train-size', '48', '--eval-size', '48', '--max-len', '32', '--batch', '16', '--seed', '0',
    '--out', out], { stdio: ['ignore', 'ignore', 'inherit'] });
  const native = JSON.parse(readFileSync(out, 'utf8'));
  const cli = native.rows.slice().reverse().map((r) => [r.block, r.accuracy]);
  check(JSON.stringify(cli) === JSON.stringify(probed), `the page's probe table is the CLI's (page ${JSON.stringify(probed)}, CLI ${JSON.stringify(cli)})`);
  const majority = Number(await byId('probe-chart').getAttribute('data-majority'));
  check(Math.abs(majority - native.majority_class) < 1e-9, `the probe's majority class is the CLI's (${majority})`);
}
await byId('preset-A-all').click();
const trainableA = Number(await text('trainable-A'));
const trainableB = Number(await text('trainable-B'));
const computedA = await bytes('memory-computed-A');
const computedB = await bytes('memory-computed-B');
check(trainableB < trainableA, `trainable B (${trainableB}) < A (${trainableA})`);
check(computedB < computedA, `computed memory B (${computedB}) < A (${computedA})`);
await page.screenshot({ path: `${shots}/before-${backend}.png`, fullPage: true });

// The most workers seen training at once since the call (the pool's status, data-busy).
const watchPool = () => page.evaluate(() => {
  const status = document.querySelector('[data-testid=pool-status]');
  window.__maxBusy = Number(status.dataset.busy);
  window.__poolWatch?.disconnect();
  window.__poolWatch = new MutationObserver(() => { window.__maxBusy = Math.max(window.__maxBusy, Number(status.dataset.busy)); });
  window.__poolWatch.observe(status, { attributes: true });
});
const maxBusy = () => page.evaluate(() => window.__maxBusy);
await watchPool();
const trainStart = await page.evaluate(() => performance.now());
await byId('train-both').click();
await page.waitForFunction(() => /step [1-9]/.test(document.querySelector('.column .status')?.textContent ?? ''), null, { timeout: 300_000 });
// No screenshot here: a full-page one lays out and paints the whole page on the main thread and
// shows up as long tasks in the check below (the "during" picture is taken in the race, later).
await page.waitForFunction(() => ['A', 'B'].every((c) => document.querySelector(`[data-testid=accuracy-${c}]`)?.textContent.trim()),
  null, { timeout: 900_000 });
const trainEnd = await page.evaluate(() => performance.now());
console.log(`both runs took ${((trainEnd - trainStart) / 1000).toFixed(1)} s; pool: ${await text('pool-status')}`);
// On the CPU the pool has two workers here; on WebGPU one worker trains (docs/playground.md, "Workers").
const atOnce = backend === 'cpu' ? 2 : 1;
check(await maxBusy() === atOnce, `Train both on ${backend}: ${atOnce} run(s) at once (at most ${await maxBusy()} training at once; ${await text('pool-status')})`);
for (const c of ['A', 'B']) {
  const [speed, wall] = [Number(await byId(`speed-${c}`).getAttribute('data-value')), Number(await byId(`wall-${c}`).getAttribute('data-value'))];
  check(speed > 0 && wall > 0, `run ${c} shows its speed and wall time (${speed.toFixed(1)} ex/s, ${wall.toFixed(1)} s)`);
}

for (const [i, c] of ['A', 'B'].entries()) {
  console.log(`run ${c}: ${(await page.locator('.column .results').nth(i).innerText()).replace(/\n/g, ' ')}`);
}
// The CLI's summary of the head-only run (`train --out`), imported into the history below.
let nativeRun = null;
if (!synthetic) {
  // The same seeded runs in the native CLI: the browser must reach the same accuracy (the two
  // targets sum in different orders, so one validation example of the 48 may fall the other way).
  const lr = await byId('hp-lr').inputValue();
  for (const [c, freeze] of [['A', 'none'], ['B', 'head-only']]) {
    const out = join(mkdtempSync(join(tmpdir(), 'freezelab-native-')), 'run.json');
    execFileSync(process.env.FREEZELAB, ['train', '--model', '../../static/models/minilm-l6', '--static', '../../static',
      '--data', 'spam', '--freeze', freeze, '--train-size', '48', '--eval-size', '48', '--max-len', '32', '--epochs', '1',
      '--batch', '16', '--lr', lr, '--seed', '0', '--cache', '--out', out], { stdio: ['ignore', 'ignore', 'inherit'] });
    const native = JSON.parse(readFileSync(out, 'utf8')).val_accuracy;
    nativeRun = out;
    const page = Number(await text(`accuracy-${c}`));
    // The page shows 4 decimals.
    check(Math.abs(page - native) <= 1 / 48 + 5e-5, `run ${c} (${freeze}): the page's accuracy ${page} is the native CLI's ${native.toFixed(4)} (lr ${lr})`);
  }
} else {
  for (const c of ['A', 'B']) {
    const acc = Number(await text(`accuracy-${c}`));
    check(Number.isFinite(acc) && acc >= 0 && acc <= 1, `accuracy ${c} = ${acc} is in [0, 1] (a random model on WebGPU)`);
  }
}
const measuredA = await bytes('memory-measured-A');
const measuredB = await bytes('memory-measured-B');
check(measuredA > 0 && measuredB > 0, `measured peaks are reported (A ${measuredA}, B ${measuredB})`);
check(measuredB < measuredA, `measured peak B (${measuredB}) < A (${measuredA})`);
const points = Number(await byId('chart-loss').getAttribute('data-points'));
check(points >= 2, `loss chart has points (${points})`);
check(await page.locator('[data-testid=chart-accuracy] svg circle').count() >= 2, 'accuracy chart has points');
// The majority-class baseline: in each column, and as a labelled line on the accuracy chart.
const baselineA = await text('baseline-A');
check(/^0\.\d{4} \(always ‘.+’\)$/.test(baselineA), `column A shows the majority-class baseline (${baselineA})`);
const accuracySvg = await byId('chart-accuracy').innerHTML();
check(/majority class: always ‘.+’ \d+\.\d%/.test(accuracySvg), 'the accuracy chart draws the baseline, labelled');
// Drift: one cell per block; B trained the head only, so every other block reads exactly 0.
await page.waitForSelector('[data-testid=drift-B] [data-block=head]', { timeout: 60_000 }).catch(() => {});
const drift = async (c) => page.locator(`[data-testid=drift-${c}] [data-block]`).evaluateAll(
  (cells) => cells.map((e) => [e.dataset.block, Number(e.dataset.drift)]));
const [driftA, driftB] = [await drift('A'), await drift('B')];
check(driftA.length === layers + 2 && driftB.length === layers + 2, `drift heatmaps have a cell per block (A ${driftA.length}, B ${driftB.length})`);
check(driftB.every(([b, v]) => (b === 'head' ? v > 0 : v === 0)), `head-only B: every frozen block drifted exactly 0 (${JSON.stringify(driftB)})`);
check(driftA.some(([b, v]) => b.startsWith('layer') && v > 0), `A's trained layers moved (${JSON.stringify(driftA)})`);
// The map of the examples: every validation example on each map, coloured by label; a run's
// ringed misses are the examples its accuracy did not count.
const evalSize = synthetic ? 32 : 48;
await page.waitForSelector('[data-testid=map-B] circle', { timeout: 60_000 }).catch(() => {});
for (const id of ['map-pretrained', 'map-A', 'map-B']) {
  const labels = await page.locator(`[data-testid=${id}] circle[data-label]`).evaluateAll((c) => c.map((e) => e.dataset.label));
  check(labels.length === evalSize && new Set(labels).size === 2, `${id} shows the ${evalSize} validation examples in 2 colours (${labels.length})`);
}
for (const c of ['A', 'B']) {
  const missed = await page.locator(`[data-testid=map-${c}] circle[data-missed=true]`).count();
  const accuracy = Number(await text(`accuracy-${c}`));
  check(missed === Math.round((1 - accuracy) * evalSize), `map ${c} rings the ${missed} examples run ${c} got wrong (accuracy ${accuracy})`);
}
const hover = await page.locator('[data-testid=map-A] circle title').first().textContent();
check(hover.length > 3 && !hover.includes('<'), `a point's hover text is its example (${hover.slice(0, 60)}…)`);
const disagree = await page.locator('[data-testid=disagree-table] tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.kind));
const [accA, accB] = [Number(await text('accuracy-A')), Number(await text('accuracy-B'))];
// More right answers overall means some example the other run missed; A's wins come first.
const kindsInOrder = disagree.join() === [...disagree].sort().join();
const wins = (k) => disagree.includes(k);
check(disagree.length <= 8 && kindsInOrder && (accA <= accB || wins('A-right')) && (accB <= accA || wins('B-right'))
  && (accA !== accB || wins('A-right') === wins('B-right')),
  `the disagreement table lists examples one run got right and the other wrong (${disagree.join(', ') || 'none'}; A ${accA}, B ${accB})`);
{
  // The probe, both maps and the disagreement table in one picture (README), in page coordinates.
  const span = await page.evaluate(() => {
    const box = (s) => document.querySelector(s)?.getBoundingClientRect();
    const [top, bottom] = [box('.layer-probe'), box('.example-maps')];
    return top && bottom && { y: top.top + scrollY - 8, height: bottom.bottom - top.top + 16 };
  });
  if (span) await page.screenshot({ path: `${shots}/layers-${backend}.png`, fullPage: true, clip: { x: 0, width: 1280, ...span } });
}
check(await page.locator('[data-testid=history-table] tbody tr').count() === 2, 'history lists both runs');
const downloaded = async (click) => {
  const [download] = await Promise.all([page.waitForEvent('download'), click()]);
  const chunks = [];
  for await (const c of await download.createReadStream()) chunks.push(c);
  return [download.suggestedFilename(), Buffer.concat(chunks).toString()];
};
const downloadedBytes = async (click) => {
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), click()]);
  const chunks = [];
  for await (const c of await download.createReadStream()) chunks.push(c);
  const all = Buffer.concat(chunks);
  return { name: download.suggestedFilename(), size: all.length, head: all.subarray(0, 8).toString('hex') };
};
const [svgName, svg] = await downloaded(() => byId('download-chart-loss').click());
check(svgName === 'freezelab-loss.svg' && svg.includes('<svg') && svg.includes('training loss'),
  `the loss chart downloads as SVG (${svg.length} bytes)`);
const png = await downloadedBytes(() => byId('download-chart-accuracy-png').click());
check(png.name === 'freezelab-accuracy.png' && png.head === '89504e470d0a1a0a' && png.size > 5000,
  `the accuracy chart downloads as PNG (${png.size} bytes)`);
const [, results] = await downloaded(() => page.getByRole('button', { name: 'Export JSON' }).click());
{
  const exported = JSON.parse(results);
  const mapped = exported.runs.filter((r) => r.examples?.points?.length > 0).length;
  check(exported.probe?.report?.rows?.length === layers + 1 && exported.probe.map.points.length > 0 && mapped >= 2
    && Array.isArray(exported.disagreements),
    `the JSON export holds the probe, the pretrained map, the runs' maps (${mapped}) and the disagreements (${exported.disagreements?.length})`);
}
await byId('history-import').setInputFiles({ name: 'runs.json', mimeType: 'application/json', buffer: Buffer.from(results) });
await page.waitForFunction(() => document.querySelectorAll('[data-testid=history-table] tbody tr').length === 4, null, { timeout: 10_000 })
  .catch(() => {});
check(await page.locator('[data-testid=history-table] tbody tr').count() === 4, 'exported results import back into the history');
if (nativeRun) {
  await byId('history-import').setInputFiles(nativeRun);
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=history-table] tbody tr').length === 5, null, { timeout: 10_000 })
    .catch(() => {});
  const row = await page.locator('[data-testid=history-table] tbody tr').first().innerText().catch(() => '');
  check(await page.locator('[data-testid=history-table] tbody tr').count() === 5 && row.includes('head-only'),
    `the CLI's run summary (train --out) imports into the history (${row.replace(/\s+/g, ' ')})`);
}

await byId('try-input').fill(synthetic ? 'a great and happy day' : 'Congratulations! You have won a free cruise, click here to claim your prize');
await byId('try-submit').click();
await page.waitForFunction(() => ['A', 'B'].every((c) => document.querySelector(`[data-testid=try-output-${c}]`)?.textContent.includes('%')),
  null, { timeout: 120_000 });
console.log(`try it: A ${await text('try-output-A')} | B ${await text('try-output-B')}`);
const answers = await Promise.all(['A', 'B'].map((c) => text(`try-output-${c}`)));
check(answers.every((t) => /^run #\d+: \S+ \d+\.\d% · \S+ \d+\.\d%/.test(t)), 'try it shows predictions for A and B');
await page.screenshot({ path: `${shots}/after-${backend}.png`, fullPage: true });

// A column's fine-tuned model, downloaded as a Hugging Face folder, gives `freezelab predict` the
// probabilities "Try it" shows for it.
const predictsAsThePage = async (column, what) => {
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 120_000 }), byId(`download-model-${column}`).click()]);
  const dir = mkdtempSync(join(tmpdir(), 'freezelab-model-'));
  const zip = join(dir, download.suggestedFilename());
  await download.saveAs(zip);
  execFileSync('python3', ['-m', 'zipfile', '-e', zip, dir]);
  const folder = join(dir, download.suggestedFilename().replace(/\.zip$/, ''));
  const config = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8'));
  check(Object.keys(config.id2label ?? {}).length >= 2, `${what}: the model folder's config names the labels (${JSON.stringify(config.id2label)})`);
  const tried = await byId('try-input').inputValue();
  const out = execFileSync(process.env.FREEZELAB, ['predict', '--model', folder, '--text', tried, '--max-len', String(synthetic ? 16 : 32)],
    { encoding: 'utf8' });
  const cli = JSON.parse(out.trim().split('\n')[0]).probabilities;
  const inPage = JSON.parse(await byId(`try-output-${column}`).getAttribute('data-probabilities'));
  const gap = Math.max(...Object.keys(inPage).map((l) => Math.abs(inPage[l] - (cli[l] ?? Infinity))));
  check(gap < 1e-4, `${what}: freezelab predict on the downloaded model matches the page (largest gap ${gap.toExponential(2)}; page ${JSON.stringify(inPage)})`);
};
{
  await predictsAsThePage('A', 'train all');
  // Kept on demand in the browser, with its size.
  await byId('keep-model-1').click();
  await page.waitForSelector('[data-testid=kept-model-1]', { timeout: 60_000 });
  check(/\(\d[\d.]* (kB|MB|GB)\)$/.test(await text('kept-model-1')), `the model is kept in the browser: "${await text('kept-model-1')}"`);
}

// Finished runs survive a reload: the same history, the same results in the columns.
{
  const accuracyA = await text('accuracy-A');
  const rows = await page.locator('[data-testid=history-table] tbody tr').count();
  await page.reload();
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid=history-table] tbody tr').length === n, rows, { timeout: 60_000 })
    .catch(() => {});
  check(await page.locator('[data-testid=history-table] tbody tr').count() === rows, `runs survive a reload (${rows} in the history)`);
  check(await text('accuracy-A') === accuracyA, `column A shows its run again after the reload (accuracy ${accuracyA})`);
  // Its model was in a worker's memory: Try it says that it is gone instead of staying silent.
  await byId('try-input').fill('asked after the reload');
  await byId('try-submit').click();
  const gone = await page.waitForFunction(() => /no longer in memory/.test(document.querySelector('[data-testid=try-output-A]')?.textContent ?? ''),
    null, { timeout: 30_000 }).then(() => true).catch(() => false);
  check(gone, `after a reload Try it says the run's model is gone ("${await text('try-output-A')}")`);
  await page.waitForSelector('[data-testid=kept-model-1]', { timeout: 30_000 }).catch(() => {});
  const kept = await downloadedBytes(() => byId('kept-model-1').click()).catch(() => ({ name: 'none', size: 0 }));
  check(kept.name === 'freezelab-run-1.zip' && kept.size > 1000, `the kept model downloads after the reload (${kept.size} bytes)`);
  await page.getByRole('button', { name: 'delete run 3' }).click();
  // The row goes once the run is gone from storage too.
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid=history-table] tbody tr').length === n,
    rows - 1, { timeout: 30_000 }).catch(() => {});
  await page.reload();
  await page.waitForSelector('[data-testid=history-table] tbody tr', { timeout: 60_000 });
  check(await page.locator('[data-testid=history-table] tbody tr').count() === rows - 1, 'a deleted run stays deleted after a reload');
  // The backend is chosen per visit, not saved: choose it again.
  await chooseBackend();
  await page.waitForFunction((w) => (document.querySelector('[data-testid=backend-status]')?.textContent ?? '').startsWith(w),
    want, { timeout: 120_000 });
  await page.waitForSelector('[data-testid=train-both]:not([disabled])', { timeout: 300_000 });
}

if (!synthetic) {
  // The freeze sweep on the CPU backend, small budget: one point per configuration.
  await set('hp-train-size', 32);
  await set('hp-eval-size', 32);
  await set('hp-max-len', 32);
  await watchPool();
  await byId('sweep-run').click();
  await page.waitForSelector('[data-testid=sweep-table] tbody tr', { timeout: 10_000 });
  const configurations = await page.locator('[data-testid=sweep-table] tbody tr').count();
  const sweepState = async () => `${await text('sweep-status')} | ${(await byId('sweep-table').innerText()).replace(/\n/g, ' | ')} | errors: ${await text('errors')}`;
  await page.waitForFunction((n) => document.querySelector('[data-testid=sweep-status]')?.textContent.startsWith(`${n} of ${n}`),
    configurations, { timeout: 900_000 }).catch(async (e) => { console.log(`sweep did not finish: ${await sweepState()}`); throw e; });
  const swept = Number(await byId('sweep-chart-params').getAttribute('data-points'));
  const front = Number(await byId('sweep-chart-memory').getAttribute('data-front'));
  check(configurations === 8 && swept === 8, `the sweep plots all ${configurations} configurations (${swept} points)`);
  check(await maxBusy() === 2, `the sweep spreads over the pool (${await maxBusy()} configurations training at once)`);
  // The front the page draws is the one the table implies: among the runs that clear the
  // majority-class baseline, those no other such run beats on both trainable parameters and accuracy.
  const table = await page.locator('[data-testid=sweep-table] tbody tr').evaluateAll(
    (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent.trim())));
  const count = (s) => Number.parseFloat(s) * (s.endsWith('M') ? 1e6 : s.endsWith('k') ? 1e3 : 1);
  // Columns: plan, encoder lr, trainable, peak, time, accuracy, baseline, front, status.
  const pts = table.filter((r) => r[8] === 'done').map((r) => ({
    cost: count(r[2]), acc: Number(r[5]), beats: r[6] === '', onFront: r[7].split(', ').includes('params') }));
  const dominated = (p) => pts.some((q) => q.beats && q.cost <= p.cost && q.acc >= p.acc && (q.cost < p.cost || q.acc > p.acc));
  const expected = pts.map((p) => p.beats && !dominated(p));
  const paramsFront = Number(await byId('sweep-chart-params').getAttribute('data-front'));
  check(JSON.stringify(expected) === JSON.stringify(pts.map((p) => p.onFront)) && paramsFront === expected.filter(Boolean).length,
    `the parameters plot's Pareto front is the table's (${paramsFront} on it; memory plot ${front}): ${JSON.stringify(table.map((r) => [r[0], r[5], r[6] ? 'below baseline' : 'ok', r[7]]))}`);
  // The modes between frozen and free: BitFit and LoRA at their own rates train a fraction of
  // the parameters, LLRD all of them (their markers are checked in the component tests: at
  // this budget no run clears the baseline, so every point is a grey cross).
  const row = (plan) => table.find((r) => r[0] === plan) ?? [];
  check(row('bitfit')[1] === '0.001' && count(row('bitfit')[2]) < count(row('none')[2]) / 100
    && row('lora-8')[1] === '0.0005' && count(row('lora-8')[2]) < count(row('none')[2]) / 100 && row('llrd-0.9')[2] === row('none')[2],
    `the sweep trains BitFit (lr ${row('bitfit')[1]}, ${row('bitfit')[2]} trainable), LoRA (lr ${row('lora-8')[1]}, ${row('lora-8')[2]}) and LLRD (${row('llrd-0.9')[2]}) beside the depths (${row('none')[2]})`);
  console.log(`sweep: ${(await byId('sweep-table').innerText()).replace(/\n/g, ' | ')}`);
  await page.getByLabel('freeze sweep').screenshot({ path: `${shots}/sweep-${backend}.png` });
  // Cancelled part way: what finished stays plotted, the rest is marked stopped.
  await byId('sweep-run').click();
  await page.waitForFunction(() => document.querySelector('[data-testid=sweep-status]')?.textContent.startsWith('2 of'), null, { timeout: 600_000 })
    .catch(async (e) => { console.log(`second sweep stalled: ${await sweepState()}`); throw e; });
  await byId('stop').click();
  await page.waitForFunction(() => !/waiting|step/.test(document.querySelector('[data-testid=sweep-table]')?.innerText ?? 'step'), null, { timeout: 60_000 });
  const kept = Number(await byId('sweep-chart-params').getAttribute('data-points'));
  const stopped = await page.locator('[data-testid=sweep-table] tbody tr', { hasText: 'stopped' }).count();
  check(kept >= 2 && kept < 5 && stopped >= 1, `a stopped sweep keeps its finished points (${kept} plotted, ${stopped} stopped)`);
  // Its runs end on their workers too: the race below needs them free.
  const sweepFreed = await page.waitForFunction(() => document.querySelector('[data-testid=pool-status]')?.dataset.busy === '0',
    null, { timeout: 120_000 }).then(() => true, () => false);
  check(sweepFreed, `a stopped sweep frees its workers (${await text('pool-status')})`);

  // The equal-time race: B (head only, cached) starts when A (train all) is done and trains for
  // A's training time, so it takes many more steps; the run charts run against seconds.
  await byId('preset-A-all').click();
  await byId('preset-B-head').click();
  await byId('race-equal-time').check();
  const finished = () => page.locator('[data-testid=history-table] tbody tr').count();
  const before = await finished();
  await byId('train-both').click();
  await page.waitForFunction(() => /step [1-9]/.test(document.querySelector('.column .status')?.textContent ?? ''), null, { timeout: 300_000 });
  await page.screenshot({ path: `${shots}/during-${backend}.png`, fullPage: true });
  // The history lists finished runs: both of the race's are there when B is done.
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid=history-table] tbody tr').length >= n + 2,
    before, { timeout: 600_000 });
  const compared = (label) => page.locator('[data-testid=comparison] tr', { hasText: label }).locator('td').allTextContents();
  const [stepsA, stepsB] = (await compared('training steps')).map(Number);
  const [timeA, timeB] = await compared('training time');
  check(stepsB > stepsA, `equal time: B (head only, cached) takes more steps in A's training time (A ${stepsA} steps in ${timeA}, B ${stepsB} in ${timeB})`);
  check((await byId('chart-loss').innerHTML()).includes('seconds'), 'in the race the run charts run against seconds');
  await page.screenshot({ path: `${shots}/race-${backend}.png`, fullPage: true });
  await byId('race-equal-time').uncheck();

  // BitFit in column A: only the bias terms train (MiniLM: 384 in the embeddings, 4,224 per
  // layer, and the head), at its suggested rate; every block moves, the layers less than full
  // fine-tuning moved them.
  // A run's drift comes after its history row (it is measured once the run has finished).
  await page.waitForSelector('[data-testid=drift-A] [data-block=head]', { timeout: 60_000 });
  const fullDrift = await drift('A');
  await byId('mode-A').selectOption('bitfit');
  check(await text('trainable-A') === String(384 + 6 * 4224 + 770) && await byId('lr-A').inputValue() === '0.001',
    `BitFit in A: ${await text('trainable-A')} trainable parameters at lr ${await byId('lr-A').inputValue()}`);
  const bitfitBefore = await finished();
  await byId('train-A').click();
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid=history-table] tbody tr').length >= n + 1,
    bitfitBefore, { timeout: 300_000 });
  await page.waitForSelector('[data-testid=drift-A] [data-block=head]', { timeout: 60_000 });
  const bitfitDrift = await drift('A');
  const layerSum = (d) => d.filter(([b]) => b.startsWith('layer')).reduce((sum, [, v]) => sum + v, 0);
  check(bitfitDrift.every(([, v]) => v > 0) && layerSum(bitfitDrift) < layerSum(fullDrift),
    `BitFit moved every block, the layers less than full fine-tuning (${JSON.stringify(bitfitDrift)} vs ${JSON.stringify(fullDrift)})`);
  await page.screenshot({ path: `${shots}/bitfit-${backend}.png`, fullPage: true });

  // LoRA in A, gradual unfreezing in B, trained together. Opening a block every step, B opens
  // only the top layer within this budget's 2 steps: the count and the memory shown before the
  // run are that peak's, as the run reports them, and only the head and layer 5 move. LoRA
  // (rank 8 on query and value) leaves the embeddings where they were, moves the layers through
  // its merged updates, and its downloaded folder (updates merged in) predicts as the page does.
  await byId('mode-A').selectOption('freeze');
  await byId('preset-A-all').click();
  await byId('preset-B-all').click();
  const allBytes = await bytes('memory-computed-A');
  await byId('mode-A').selectOption('lora');
  await byId('mode-B').selectOption('gradual');
  await set('gradual-every-B', 1);
  const [loraCount, gradualCount] = [await text('trainable-A'), await text('trainable-B')];
  check(loraCount === String(6 * 2 * 8 * 768 + 770) && await byId('lr-A').inputValue() === '0.0005',
    `LoRA in A: ${loraCount} trainable parameters at lr ${await byId('lr-A').inputValue()}`);
  check(gradualCount === String(1_774_464 + 770) && await bytes('memory-computed-B') < allBytes,
    `gradual in B, a block a step over 2 steps: the peak trains the head and the top layer (${gradualCount} parameters, ${await text('memory-computed-B')} computed against ${allBytes} bytes for all)`);
  const modesBefore = await finished();
  await byId('train-both').click();
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid=history-table] tbody tr').length >= n + 2,
    modesBefore, { timeout: 600_000 });
  await page.waitForSelector('[data-testid=drift-B] [data-block=head]', { timeout: 60_000 });
  // The page writes counts as 74k and 1.8M.
  const [plans, counts] = [await compared('freeze plan'), await compared('trainable parameters')];
  check(plans.join() === 'lora-8,gradual-1' && counts.join() === '74k,1.8M',
    `the runs are LoRA and gradual (${plans}) and trained what the columns said before the run (${counts})`);
  const [loraDrift, gradualDrift] = [await drift('A'), await drift('B')];
  check(loraDrift.every(([b, v]) => (b === 'emb' ? v === 0 : v > 0)),
    `LoRA moved every layer and the head through its updates, the embeddings not at all (${JSON.stringify(loraDrift)})`);
  check(gradualDrift.every(([b, v]) => (['head', 'layer-5'].includes(b) ? v > 0 : v === 0)),
    `gradual unfreezing moved the head and the one layer it opened, nothing else (${JSON.stringify(gradualDrift)})`);
  const triedBefore = await text('try-output-A');
  await byId('try-input').fill('Congratulations! You have won a free cruise, click here to claim your prize');
  await byId('try-submit').click();
  await page.waitForFunction((t) => {
    const now = document.querySelector('[data-testid=try-output-A]')?.textContent.trim() ?? t;
    return now !== t && now.includes('%');
  }, triedBefore, { timeout: 120_000 });
  await predictsAsThePage('A', 'LoRA, merged on download');
  await page.screenshot({ path: `${shots}/lora-gradual-${backend}.png`, fullPage: true });
  await byId('mode-A').selectOption('freeze');
  await byId('mode-B').selectOption('freeze');

  // A run trained beside another, on its own worker, is the run trained alone: the same seed
  // gives the same validation loss, to the last bit.
  await byId('preset-A-all').click();
  await byId('preset-B-head').click();
  const finishedRun = async (c, before) => {
    await page.waitForFunction(([c, before]) => {
      const status = document.querySelectorAll('.column .status')[c === 'A' ? 0 : 1]?.textContent ?? '';
      return /finished/.test(status) && !status.startsWith(before);
    }, [c, before], { timeout: 600_000 });
    return byId(`accuracy-${c}`).getAttribute('data-val-loss');
  };
  const statusOf = async (c) => (await page.locator('.column .status').nth(c === 'A' ? 0 : 1).innerText()).split(':')[0];
  await watchPool();
  let [beforeA, beforeB] = [await statusOf('A'), await statusOf('B')];
  await byId('train-both').click();
  const together = { A: await finishedRun('A', beforeA), B: await finishedRun('B', beforeB) };
  const busy = await maxBusy();
  [beforeA, beforeB] = [await statusOf('A'), await statusOf('B')];
  await byId('train-A').click();
  const aloneA = await finishedRun('A', beforeA);
  await byId('train-B').click();
  const aloneB = await finishedRun('B', beforeB);
  check(busy === 2 && together.A === aloneA && together.B === aloneB,
    `runs trained at once equal the same runs alone (A ${together.A} / ${aloneA}, B ${together.B} / ${aloneB}; ${busy} workers at once)`);

  // One run on two workers (data-parallel): both train it, the page says what they exchange,
  // the run is a run like any other (its model downloads), and it ends where the same run on one
  // worker ended, dropout included (each worker drops what one worker drops in its share; the
  // step-by-step curve is checked on the tiny model, tests/session.rs).
  const speedOne = Number(await byId('speed-A').getAttribute('data-value'));
  await set('hp-workers', 2);
  await watchPool();
  beforeA = await statusOf('A');
  await byId('train-A').click();
  const parallelLoss = Number(await finishedRun('A', beforeA));
  const speedTwo = Number(await byId('speed-A').getAttribute('data-value'));
  const exchange = await text('exchange-A');
  check(await maxBusy() === 2 && /on 2 workers.*sends its gradients \(at most 90\.\d MB\)/.test(exchange),
    `one run trains on two workers (${await maxBusy()} busy; "${exchange}")`);
  check(Math.abs(parallelLoss - Number(aloneA)) < 1e-3,
    `the run on two workers ends where the run on one did (validation loss ${parallelLoss} against ${aloneA})`);
  // The time in the exchange is measured, shown, and part of the training time.
  const waited = Number(await byId('exchange-A').getAttribute('data-value'));
  const shown = exchange.match(/exchange.*: ([\d.]+) s of ([\d.]+) s of training/);
  check(waited > 0 && shown !== null && Number(shown[1]) <= Number(shown[2]),
    `the page shows the data-parallel run's time in the exchange (${waited} s; "${exchange}")`);
  console.log(`train all, one run: ${speedOne.toFixed(2)} ex/s on one worker, ${speedTwo.toFixed(2)} on two (${(speedTwo / speedOne).toFixed(2)}×; ${waited.toFixed(1)} s in the exchange)`);
  const parallelModel = await downloadedBytes(() => byId('download-model-A').click());
  check(parallelModel.size > 1e6, `the data-parallel run's model downloads (${parallelModel.size} bytes)`);
  // Stopped mid-run, both workers let go (neither waits for the other's gradients) and the
  // pool trains again.
  beforeA = await statusOf('A');
  await byId('train-A').click();
  await page.waitForFunction(() => /step [1-9]/.test(document.querySelector('.column .status')?.textContent ?? ''), null, { timeout: 300_000 });
  await byId('stop').click();
  const freed = await page.waitForFunction(() => /stopped/.test(document.querySelector('.column .status')?.textContent ?? '')
    && document.querySelector('[data-testid=pool-status]')?.dataset.busy === '0', null, { timeout: 120_000 }).then(() => true, () => false);
  check(freed, `a stopped data-parallel run frees both workers (${await text('pool-status')}; A: ${await statusOf('A')})`);
  await set('hp-workers', 1);
}

const longTasks = await page.evaluate(([from, to]) => window.__longTasks.filter((t) => t.start >= from && t.start <= to),
  [trainStart, trainEnd]);
const worst = Math.max(0, ...longTasks.map((t) => t.duration));
const when = longTasks.map((t) => `${t.duration.toFixed(0)} ms at ${((t.start - trainStart) / 1000).toFixed(1)} s`).join(', ');
check(worst <= 100, `no main-thread task over 100 ms while training (longest ${worst.toFixed(0)} ms; over 50 ms: ${when || 'none'}; training took ${((trainEnd - trainStart) / 1000).toFixed(1)} s)`);
if (backend === 'cpu') {
  check(workerScripts.length > 1 && workerScripts.every((b) => b === 'cpu'),
    `every CPU worker is the CPU-only bundle (${workerScripts.length} workers: ${workerScripts.join()})`);
}
check(consoleErrors.length === 0, `no console errors${consoleErrors.length ? ': ' + consoleErrors.join(' | ') : ''}`);

await browser.close();
console.log(`e2e ${backend}: ${failures.length ? failures.length + ' failed' : 'all passed'}`);
process.exit(failures.length ? 1 : 0);
