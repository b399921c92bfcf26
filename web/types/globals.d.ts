// Globals of the page: MapLibre GL JS is loaded by a classic <script> from
// vendor/ (copied from the pinned npm package by scripts/vendor.sh), so its
// types come from that package.
declare const maplibregl: typeof import('maplibre-gl');
type MapLibreMap = import('maplibre-gl').Map;
type MapLibrePopup = import('maplibre-gl').Popup;
// The read-only debug hook app.js sets (window.iochub).
declare var iochub: Readonly<Record<string, (...args: any[]) => any>>;
// uPlot, loaded by a classic <script> from vendor/ (scripts/vendor.sh).
declare const uPlot: typeof import('uplot').default;
