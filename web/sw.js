// FreezeLab's service worker, written into the static build by `cargo xtask dist` with its
// version (a hash of every other file) and the files it keeps. It stores the whole page (the
// wasm bundles, the charts module, the default model and data) on the first visit and serves it
// from there, network or not. A new version installs beside the old one and waits: the page
// says "a new version is available — reload", and only that click lets it take over.
const VERSION = '__FREEZELAB_VERSION__';
const FILES = [/* __FREEZELAB_FILES__ */];
const CACHE = `freezelab-${VERSION}`;

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    // The model and data the page's worker just downloaded, staged for this version (a model
    // is too large for the browser's HTTP cache); the rest is revalidated (`no-cache`), so
    // what the HTTP cache holds comes as a 304 rather than over the network a second time.
    const stage = `freezelab-fetched-${VERSION}`;
    const staged = await caches.open(stage);
    await Promise.all(FILES.map(async (file) => {
      const copy = await staged.match(file);
      await (copy ? cache.put(file, copy) : cache.add(new Request(file, { cache: 'no-cache' })));
    }));
    await caches.delete(stage);
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) {
      if (key.startsWith('freezelab-') && key !== CACHE) await caches.delete(key);
    }
    await self.clients.claim();
  })());
});

self.addEventListener('message', (event) => {
  if (event.data === 'take-new-version') self.skipWaiting();
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET' || new URL(request.url).origin !== self.location.origin) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    return (await cache.match(request, { ignoreSearch: true })) ?? fetch(request);
  })());
});
