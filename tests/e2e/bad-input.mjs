// Bad input, tried on purpose in the release page (CPU backend): every row of docs/bad-input.md's
// "Bad input" table that is a page concern. Each bad file or setting must produce its message in
// the page, and leave the loaded model, the loaded data, the settings and the finished runs as
// they were.
//
// usage: node bad-input.mjs URL SYNTHETIC   (SYNTHETIC: a folder `freezelab synthetic` wrote)
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checker, launch, waitForServer } from './server.mjs';

const url = process.argv[2] ?? 'http://127.0.0.1:8080/';
const synthetic = process.argv[3];
const { check, failures } = checker();

await waitForServer(url);
const browser = await launch();
const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(String(e)));
await page.addInitScript(() => {
  window.__longTasks = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__longTasks.push(e.duration);
  }).observe({ type: 'longtask', buffered: true });
});
const byId = (id) => page.getByTestId(id);
const text = async (id) => (await byId(id).textContent()).trim();
const set = async (id, value) => { await byId(id).fill(String(value)); await byId(id).dispatchEvent('change'); };
const rows = () => page.locator('[data-testid=history-table] tbody tr').count();

await page.goto(url);
await byId('force-cpu').check();
await page.waitForSelector('[data-testid=train-both]:not([disabled])', { timeout: 300_000 });
// One finished run, which every bad input must leave alone.
for (const [id, v] of [['hp-train-size', 16], ['hp-eval-size', 16], ['hp-max-len', 16], ['hp-epochs', 1], ['hp-batch', 16]]) await set(id, v);
await byId('train-A').click();
await page.waitForFunction(() => document.querySelector('[data-testid=accuracy-A]')?.textContent.trim(), null, { timeout: 600_000 });

const before = async () => ({
  model: await text('model-summary'),
  data: await text('dataset-counts'),
  batch: await byId('hp-batch').inputValue(),
  runs: await rows(),
  accuracy: await text('accuracy-A'),
});
const baseline = await before();

/** Waits for an error matching `pattern`, checks it and that nothing else changed, then clears. */
async function expectError(what, pattern, { unchanged = true } = {}) {
  const found = await page.waitForFunction((p) => {
    const t = document.querySelector('[data-testid=errors]')?.textContent ?? '';
    return new RegExp(p, 'i').test(t) && t;
  }, pattern.source, { timeout: 120_000 }).then((h) => h.jsonValue()).catch(() => null);
  const shown = found ?? (await text('errors'));
  check(Boolean(found), `${what}: "${shown.replace(/×/g, '').trim().slice(0, 160)}"`);
  if (unchanged) {
    const now = await before();
    check(JSON.stringify(now) === JSON.stringify(baseline), `${what}: model, data, settings and runs untouched`);
  }
  while (await page.getByRole('button', { name: 'dismiss' }).count()) await page.getByRole('button', { name: 'dismiss' }).first().click();
}

async function upload(name, content, { use = true } = {}) {
  await byId('dataset-select').selectOption('upload');
  const file = typeof content === 'string' && content.startsWith('/') ? content
    : { name, mimeType: 'text/plain', buffer: Buffer.from(content) };
  await byId('dataset-upload').setInputFiles(file);
  if (!use) return;
  // A file that cannot even be previewed reports at once; otherwise "Use" parses all of it.
  const previewed = await page.waitForSelector('table.preview td', { timeout: 60_000 }).then(() => true).catch(() => false);
  if (previewed) await byId('dataset-use').click();
}

const rowsOf = (n, f) => Array.from({ length: n }, (_, i) => f(i)).join('\n');
await upload('quotes.csv', 'text,label\n"an unbalanced quote,ham\nsecond,spam\nthird,ham\n');
await expectError('CSV with an unbalanced quote', /quotes\.csv, line 2: 1 fields where the header has 2/);
await upload('ragged.tsv', 'text\tlabel\nhello\tham\nworld\n');
await expectError('TSV with a row missing its label column', /ragged\.tsv, line 3: 1 fields where the header has 2/);
await upload('nolabel.tsv', 'text\nhello\nworld\n');
await expectError('TSV without a label column', /nolabel\.tsv needs a text column and a different label column \(columns: text\)/);
await upload('bad.jsonl', rowsOf(20, (i) => JSON.stringify({ text: `example ${i}`, label: i % 2 ? 'a' : 'b' })) + '\n{"text": "broken", \n');
await expectError('JSONL with a bad line', /bad\.jsonl, line 21: unparsable JSON/);
await upload('latin1.csv', Buffer.concat([Buffer.from('text,label\ncaf'), Buffer.from([0xe9]), Buffer.from(',ham\nb,spam\n')]));
await expectError('non-UTF-8 text', /latin1\.csv, line 2: not valid UTF-8/);
await upload('empty.csv', '');
await expectError('an empty file', /empty\.csv: the file is empty/);
await upload('one.csv', 'text,label\n' + rowsOf(30, (i) => `text ${i},spam`));
await expectError('a single-class dataset', /one\.csv: only one class \(spam\): a classifier needs at least two/);
const big = join(mkdtempSync(join(tmpdir(), 'freezelab-bad-')), 'huge.csv');
writeFileSync(big, Buffer.alloc(100 * 1024 * 1024, 'a'));
await upload('huge.csv', big, { use: false });
await expectError('a 100 MB upload', /huge\.csv is 104\.9 MB, over the 50\.0 MB the page reads/);

// Models through the pickers: the synthetic model with one file spoiled each time.
const files = {
  config: readFileSync(join(synthetic, 'config.json')),
  weights: readFileSync(join(synthetic, 'model.safetensors')),
  tokenizer: readFileSync(join(synthetic, 'tokenizer.json')),
};
async function loadModel(spoiled, weightsName = 'model.safetensors') {
  const f = { ...files, ...spoiled };
  await byId('model-select').selectOption('upload');
  await byId('model-config').setInputFiles({ name: 'config.json', mimeType: 'application/json', buffer: f.config });
  await byId('model-weights').setInputFiles({ name: weightsName, mimeType: 'application/octet-stream', buffer: f.weights });
  await byId('model-tokenizer').setInputFiles({ name: 'tokenizer.json', mimeType: 'application/json', buffer: f.tokenizer });
  await byId('model-load').click();
}
const config = JSON.parse(files.config);
await loadModel({ config: Buffer.from(JSON.stringify({ ...config, hidden_size: config.hidden_size * 2, intermediate_size: config.intermediate_size * 2 })) });
await expectError('a config that does not match its weights', /checkpoint: .*shape/);
await loadModel({ weights: files.weights.subarray(0, Math.floor(files.weights.length / 2)) });
await expectError('a truncated safetensors file', /checkpoint: not a readable safetensors file/);
const minilm = await (await fetch(new URL('static/models/minilm-l6/tokenizer.json', url))).arrayBuffer();
await loadModel({ tokenizer: Buffer.from(minilm) });
await expectError("another model's tokenizer", /vocabulary of 30522 tokens does not fit the model's \d+ embeddings/);
// Out-of-range fields of config.json: refused by name before Burn sees them (a dropout of 1 once
// panicked inside the worker, and the restarted worker loaded it again).
const spoilConfig = (fields) => ({ config: Buffer.from(JSON.stringify({ ...config, ...fields })) });
await loadModel(spoilConfig({ hidden_dropout_prob: 1.0 }));
await expectError('a dropout probability of 1', /config\.json: hidden_dropout_prob is 1; it must be in \[0, 1\)/);
await loadModel(spoilConfig({ num_attention_heads: 5 }));
await expectError('heads that do not divide the width', new RegExp(`config\\.json: hidden_size ${config.hidden_size} is not divisible by num_attention_heads 5`));

// Settings the device cannot hold are refused before the run starts, with the estimate (even
// head-only, whose forward pass still needs the attention scores).
await set('hp-train-size', 4096);
await set('hp-batch', 4096);
await set('hp-max-len', 512);
await byId('train-B').click();
await expectError('a batch and length the device cannot hold', /not started: this run needs about \d+ MiB.*largest intermediate tensor \d+ MiB\) but the device holds at most 4096 MiB/, { unchanged: false });
check(await rows() === baseline.runs, 'the refused run was not added');
await set('hp-train-size', 16);
await set('hp-batch', baseline.batch);
await set('hp-max-len', 16);

// Every setting out of its range is refused with the protocol's message (the CLI's too), and the
// box keeps its last valid value.
for (const [id, value, setting] of [['hp-train-size', 0, 'train_size'], ['hp-eval-size', 0, 'eval_size'],
  ['hp-epochs', 0, 'epochs'], ['hp-batch', 0, 'batch_size'], ['hp-max-len', 1, 'max_len'], ['hp-lr', 0, 'lr'],
  ['hp-lr', 2, 'lr'], ['hp-seed', -1, null], ['hp-seed', '9007199254740992', 'seed']]) {
  const kept = await byId(id).inputValue();
  await set(id, value);
  await expectError(`${id} = ${value}`, setting ? new RegExp(`setting ${setting}: must be`) : /is not a number/);
  check(await byId(id).inputValue() === kept, `${id} keeps ${kept} after ${value} is refused`);
}

// A full storage quota: the run that could not be saved is reported, and stays on the page.
const cdp = await page.context().newCDPSession(page);
await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(url).origin, quotaSize: 1 });
const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export JSON' }).click()]);
const exported = readFileSync(await download.path(), 'utf8');
await byId('history-import').setInputFiles({ name: 'runs.json', mimeType: 'application/json', buffer: Buffer.from(exported) });
await expectError('a full storage quota', /run #\d+ could not be saved in this browser: .*storage quota/i, { unchanged: false });
check(await rows() === baseline.runs + 1, 'the unsaved run stays in the history');
await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(url).origin });

// Large but acceptable: 100,000 rows upload, parse in the worker, and the page stays responsive.
// (From a file on disk: a buffer would be decoded on the page's main thread by the test itself.)
const hundredK = join(mkdtempSync(join(tmpdir(), 'freezelab-rows-')), 'rows.csv');
writeFileSync(hundredK, 'text,label\n' + rowsOf(100_000, (i) => `message number ${i} about ${i % 3 ? 'cats' : 'dogs'},${i % 3 ? 'cat' : 'dog'}`));
const from = await page.evaluate(() => window.__longTasks.length);
await upload('rows.csv', hundredK);
await page.waitForFunction(() => /cat: \d+ \/ \d+ · dog/.test(document.querySelector('[data-testid=dataset-counts]')?.textContent ?? ''), null, { timeout: 300_000 });
const counts = await text('dataset-counts');
const total = [...counts.matchAll(/(\d+) \/ (\d+)/g)].reduce((s, m) => s + Number(m[1]) + Number(m[2]), 0);
check(total === 100_000, `100,000 rows load (${counts})`);
const worst = Math.max(0, ...(await page.evaluate((n) => window.__longTasks.slice(n), from)));
check(worst <= 200, `the page stays responsive while they load (longest main-thread task ${worst.toFixed(0)} ms)`);
// Multi-line quoted fields are text, not errors.
await upload('multi.csv', 'text,label\n"first line\nsecond line",ham\n' + rowsOf(20, (i) => `"row ${i}\nmore",${i % 2 ? 'ham' : 'spam'}`));
await page.waitForFunction(() => /ham: \d+ \/ \d+ · spam/.test(document.querySelector('[data-testid=dataset-counts]')?.textContent ?? ''), null, { timeout: 60_000 });
const multi = [...(await text('dataset-counts')).matchAll(/(\d+) \/ (\d+)/g)].reduce((s, m) => s + Number(m[1]) + Number(m[2]), 0);
check(multi === 21, `multi-line quoted CSV fields load as 21 rows (${await text('dataset-counts')})`);

check(await text('accuracy-A') === baseline.accuracy, 'the finished run is still shown after every bad input');
/** Loads a model and waits until the page names it (a name no other model here has). */
async function loadNamed(spoiled, weightsName) {
  const summaryBefore = await text('model-summary');
  await loadModel(spoiled, weightsName);
  await page.waitForFunction((b) => {
    const t = document.querySelector('[data-testid=model-summary]')?.textContent.trim();
    return t && t !== b && !t.startsWith('loading');
  }, summaryBefore, { timeout: 120_000 });
}
// A checkpoint of infinite weights has the right shapes and loads; its run ends with the loss's
// message, naming the step (docs/bad-input.md), and the page stays usable.
const dataStart = 8 + Number(files.weights.readBigUInt64LE(0));
const infinite = Buffer.from(files.weights);
for (let i = dataStart; i + 4 <= infinite.length; i += 4) infinite.writeFloatLE(Infinity, i);
await loadNamed({ weights: infinite }, 'infinite.safetensors');
// The default data again (the 21-row upload above is too small for the run's subsets).
await byId('dataset-select').selectOption({ index: 0 });
await page.waitForFunction(() => {
  const t = document.querySelector('[data-testid=dataset-counts]')?.textContent ?? '';
  return [...t.matchAll(/(\d+) \/ (\d+)/g)].reduce((s, m) => s + Number(m[1]) + Number(m[2]), 0) > 1000;
}, null, { timeout: 120_000 });
await page.waitForSelector('[data-testid=train-B]:not([disabled])', { timeout: 120_000 });
await byId('train-B').click();
const lossFailed = await page.waitForFunction(() => {
  const t = document.querySelectorAll('.column .status')[1]?.textContent ?? '';
  return /failed/.test(t) && t;
}, null, { timeout: 300_000 }).then((h) => h.jsonValue()).catch(() => '');
check(/^run #\d+ failed: loss became (NaN|inf|-inf) at step 0: lower the learning rate$/.test(lossFailed),
  `a non-finite loss ends the run with its message ("${lossFailed}")`);
// After every refusal and failure a good model still loads and trains.
await loadNamed({}, 'model.safetensors');
await page.waitForSelector('[data-testid=train-B]:not([disabled])', { timeout: 120_000 });
await byId('train-B').click();
const trained = await page.waitForFunction(() => document.querySelector('[data-testid=accuracy-B]')?.textContent.trim(), null, { timeout: 300_000 }).then(() => true).catch(() => false);
check(trained, `a good model loaded after the refused ones trains (B: ${await text('accuracy-B').catch(() => '?')})`);
check(pageErrors.length === 0, `no uncaught errors in the page${pageErrors.length ? ': ' + pageErrors.join(' | ') : ''}`);
await browser.close();
console.log(`e2e bad input: ${failures.length ? failures.length + ' failed' : 'all passed'}`);
process.exit(failures.length ? 1 : 0);
