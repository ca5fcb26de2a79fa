import { describe, expect, it } from 'vitest';
import { downstreamHeaders, sanitiseSetCookie, upstreamHeaders } from '../../../edge/preview/headers';
import { FORGED_FORWARDING_HEADERS } from '../../helpers/forged-headers';

const prefix = '/preview/ses_ab12cd34';

describe('upstreamHeaders', () => {
  const client = new Headers({
    Accept: 'text/html',
    ...FORGED_FORWARDING_HEADERS,
    'True-Client-IP': '6.6.6.6',
    'CF-Connecting-IP': '203.0.113.9',
    'CF-Ray': 'abc',
    'X-Session-Call': '{"kind":"preview"}',
    'X-Preview-Info': '{"userId":"usr_1"}',
    'X-User-Id': 'usr_1',
    'X-Agent-Id': 'agt_1',
    'X-Agent-Name': 'box',
    'X-File-Mtime': '1',
    'X-Mominai-Host': 'metadata',
    Cookie: 'app=1; __Host-mominai_preview_ses_ab12cd34=t1; mominai_preview_ses_ffff0000=t2; __Secure-MOMINAI_PREVIEW_ses_x=t3; other=2',
  });
  const forwarded = { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-host': '3000-ses_ab12cd34.preview.localhost', 'x-forwarded-proto': 'http', 'x-forwarded-prefix': '/' };

  it("removes the client's forwarding headers and every internal header, then sets the edge's own once", () => {
    const out = upstreamHeaders(client, '__Host-mominai_preview_ses_ab12cd34', forwarded);
    expect(out).toEqual([
      ['accept', 'text/html'],
      ['cookie', 'app=1; other=2'],
      ['x-forwarded-for', '203.0.113.9'],
      ['x-forwarded-host', '3000-ses_ab12cd34.preview.localhost'],
      ['x-forwarded-proto', 'http'],
      ['x-forwarded-prefix', '/'],
    ]);
  });

  it('drops the Cookie header when only preview cookies were in it', () => {
    expect(upstreamHeaders(new Headers({ Cookie: 'mominai_preview_ses_ab12cd34=t' }), 'x', {})).toEqual([]);
  });
});

describe('downstreamHeaders', () => {
  const fromServer: Array<[string, string]> = [
    ['content-type', 'text/html'],
    ['service-worker-allowed', '/'],
    ['clear-site-data', '"cookies", "storage"'],
    ['set-cookie', 'app=1; Path=/; HttpOnly'],
    ['set-cookie', 'wide=1; Domain=localhost; Path=/x'],
    ['set-cookie', '__Host-mominai_preview_ses_ffff0000=forged; Path=/; Secure'],
    ['set-cookie', 'mominai_preview_ses_ab12cd34=forged'],
    ['location', '/next'],
  ];

  it('on the path form: no Service-Worker-Allowed or Clear-Site-Data, cookie paths inside the prefix, no Domain, no preview cookies', () => {
    const out = downstreamHeaders(fromServer, prefix, 'http://127.0.0.1:3001', 'path');
    expect(out.get('service-worker-allowed')).toBe(null);
    expect(out.get('clear-site-data')).toBe(null);
    expect(out.getSetCookie()).toEqual([`app=1; Path=${prefix}/; HttpOnly`, `wide=1; Path=${prefix}/x`]);
    expect(out.get('location')).toBe(`${prefix}/next`);
    expect(out.get('content-type')).toBe('text/html');
  });

  it('on the host form: Service-Worker-Allowed kept (the origin is its own), Clear-Site-Data and preview cookies still dropped', () => {
    const out = downstreamHeaders(fromServer, '', 'http://3000-ses_ab12cd34.preview.localhost:3001', 'host');
    expect(out.get('service-worker-allowed')).toBe('/');
    expect(out.get('clear-site-data')).toBe(null);
    expect(out.getSetCookie()).toEqual(['app=1; Path=/; HttpOnly', 'wide=1; Path=/x']);
  });
});

describe('sanitiseSetCookie', () => {
  it('keeps a path already inside the prefix and a cookie without a Path (its default path is the request path)', () => {
    expect(sanitiseSetCookie(`a=1; Path=${prefix}/app`, prefix)).toBe(`a=1; Path=${prefix}/app`);
    expect(sanitiseSetCookie(`a=1; Path=${prefix}`, prefix)).toBe(`a=1; Path=${prefix}`);
    expect(sanitiseSetCookie('a=1; Max-Age=60', prefix)).toBe('a=1; Max-Age=60');
  });

  it('moves a path outside the prefix inside it, including a look-alike prefix', () => {
    expect(sanitiseSetCookie('a=1; path=/', prefix)).toBe(`a=1; Path=${prefix}/`);
    expect(sanitiseSetCookie(`a=1; Path=${prefix}x`, prefix)).toBe(`a=1; Path=${prefix}${prefix}x`);
    expect(sanitiseSetCookie('a=1; Path=api', prefix)).toBe(`a=1; Path=${prefix}/api`);
  });

  it('drops cookies named like the preview cookie, with any prefix or case', () => {
    for (const name of ['mominai_preview_ses_1', '__Host-mominai_preview_ses_1', '__secure-Mominai_Preview_x', ' mominai_preview_']) {
      expect(sanitiseSetCookie(`${name}=v; Path=/`, '')).toBe(null);
    }
  });
});
