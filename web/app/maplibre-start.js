// maplibre-start.js runs right after MapLibre GL JS, as a classic script
// (before app.js, a module, runs). MapLibre's CSP build loads its worker from
// a file of its own (vendor/maplibre-gl-csp-worker.js), not from a blob: URL
// made from a string of its code, which the page's Content-Security-Policy
// (index.html) would refuse; this names that file and starts the worker now,
// not when app.js makes the map: its start waits for the page's main thread,
// which the map's first frames hold. Without MapLibre (vendor/ missing) it
// does nothing and app.js says what is missing.
if (typeof maplibregl !== 'undefined') {
  maplibregl.setWorkerUrl(new URL('vendor/maplibre-gl-csp-worker.js', document.baseURI).href);
  maplibregl.prewarm();
}
