/**
 * The error reporter injected into preview pages when a client asked for
 * `forwardErrors` (WebContainers' `forwardPreviewErrors`). It runs first in
 * the page and posts WebContainers' PreviewMessages to the preview's own
 * origin (`<prefix>/__mominai/preview-message`, ./scripts.ts), from where the
 * edge sends them to the session's clients:
 *   - `error` events on window        → PREVIEW_UNCAUGHT_EXCEPTION {message, stack}
 *   - `unhandledrejection` on window  → PREVIEW_UNHANDLED_REJECTION {message, stack}
 *   - console.error (unless `exceptions-only`) → PREVIEW_CONSOLE_ERROR {args (as text), stack}
 * Each carries the page's pathname, search and hash. A page posts at most
 * 50 messages per load; texts are cut at 4,000 characters. It uses
 * sendBeacon (it survives a page that is unloading), else fetch keepalive.
 */
export function reporterSource(messageUrl: string, consoleErrors: boolean): string {
  return `(function () {
  if (window.__mominaiPreviewReporter) return;
  window.__mominaiPreviewReporter = true;
  var url = ${JSON.stringify(messageUrl)};
  var left = 50;
  function cut(s) { s = String(s); return s.length > 4000 ? s.slice(0, 4000) : s; }
  function text(v) {
    try {
      if (v instanceof Error) return v.stack || String(v);
      if (typeof v === 'string') return v;
      var j = JSON.stringify(v);
      return j === undefined ? String(v) : j;
    } catch (e) { return String(v); }
  }
  function post(m) {
    if (left <= 0) return;
    left -= 1;
    m.pathname = location.pathname; m.search = location.search; m.hash = location.hash;
    var body = JSON.stringify(m);
    try {
      if (navigator.sendBeacon && navigator.sendBeacon(url, new Blob([body], { type: 'application/json' }))) return;
    } catch (e) {}
    try {
      fetch(url, { method: 'POST', body: body, headers: { 'Content-Type': 'application/json' }, keepalive: true, credentials: 'same-origin' }).catch(function () {});
    } catch (e) {}
  }
  window.addEventListener('error', function (e) {
    var err = e.error;
    var m = { type: 'PREVIEW_UNCAUGHT_EXCEPTION', message: cut(e.message || text(err)) };
    if (err && err.stack) m.stack = cut(err.stack);
    post(m);
  });
  window.addEventListener('unhandledrejection', function (e) {
    var r = e.reason;
    var m = { type: 'PREVIEW_UNHANDLED_REJECTION', message: cut(r && r.message ? r.message : text(r)) };
    if (r && r.stack) m.stack = cut(r.stack);
    post(m);
  });
  if (${consoleErrors ? 'true' : 'false'}) {
    var original = console.error;
    console.error = function () {
      var args = Array.prototype.slice.call(arguments, 0, 32).map(function (a) { return cut(text(a)); });
      post({ type: 'PREVIEW_CONSOLE_ERROR', args: args, stack: cut(new Error().stack || '') });
      return original.apply(this, arguments);
    };
  }
})();`;
}
