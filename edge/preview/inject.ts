/**
 * Puts script tags into a preview's HTML responses as they stream past
 * (workerd's HTMLRewriter: no buffering of the page), for
 * `setPreviewScript` and the preview error reporter (./scripts.ts).
 *
 * What is rewritten: responses with a body (not HEAD, 1xx, 204, 304) whose
 * `Content-Type` is `text/html`. The tags go first in `<head>`, else first in
 * `<body>`, else at the end of the document (a fragment with neither).
 * Bodies the dev server compressed with gzip or deflate are decompressed on
 * the way and sent uncompressed; other encodings (br, zstd, several) are
 * passed through untouched, without the tags, because workerd cannot decode
 * them here. A rewritten response has no `Content-Length` (its length
 * changed; it is sent chunked) and no `ETag` or `Last-Modified` (a browser
 * must not revalidate a copy that carries an older script with the dev
 * server's validator). When the page's `Content-Security-Policy` names a
 * script nonce, the tags carry it.
 */

const DECODABLE: Record<string, 'gzip' | 'deflate'> = { gzip: 'gzip', 'x-gzip': 'gzip', deflate: 'deflate' };

export type InjectOutcome = 'injected' | 'not-html' | 'no-body' | 'encoded';

/** Whether (and why not) `response` to a `method` request would get the tags. */
export function injectable(method: string, response: Response): InjectOutcome {
  if (method.toUpperCase() === 'HEAD' || response.body === null || response.status < 200 || response.status === 204 || response.status === 304) return 'no-body';
  const type = (response.headers.get('Content-Type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'text/html') return 'not-html';
  const encoding = (response.headers.get('Content-Encoding') ?? 'identity').trim().toLowerCase();
  if (encoding !== 'identity' && !(encoding in DECODABLE)) return 'encoded';
  return 'injected';
}

/** A script nonce the page's CSP allows, so injected inline scripts run under it. */
export function cspNonce(headers: Headers): string | undefined {
  const csp = headers.get('Content-Security-Policy') ?? '';
  return /'nonce-([A-Za-z0-9+/=_-]+)'/.exec(csp)?.[1];
}

/** Inline script text made safe to sit between `<script>` and `</script>`. */
export function scriptText(source: string): string {
  return source.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
}

/** `response` with `tags` (HTML) injected, or `response` itself when it is not an HTML body it can rewrite. */
export function injectIntoHtml(method: string, response: Response, tags: (nonce: string | undefined) => string): Response {
  if (injectable(method, response) !== 'injected' || !response.body) return response;
  const headers = new Headers(response.headers);
  const html = tags(cspNonce(headers));
  let body: ReadableStream<Uint8Array> = response.body;
  const encoding = (headers.get('Content-Encoding') ?? 'identity').trim().toLowerCase();
  const decoder = DECODABLE[encoding];
  if (decoder) {
    body = body.pipeThrough(new DecompressionStream(decoder));
    headers.delete('Content-Encoding');
  }
  for (const h of ['Content-Length', 'ETag', 'Last-Modified', 'Content-MD5', 'Digest']) headers.delete(h);
  // The first <head> or <body> gets the tags; a document with neither gets them at its end.
  let done = false;
  const once = {
    element(el: Element) {
      if (done) return;
      done = true;
      el.prepend(html, { html: true });
    },
  };
  const atEnd = {
    end(end: DocumentEnd) {
      if (!done) end.append(html, { html: true });
    },
  };
  const rewriter = new HTMLRewriter().on('head', once).on('body', once).onDocument(atEnd);
  const plain = new Response(body, { status: response.status, statusText: response.statusText, headers });
  return rewriter.transform(plain);
}
