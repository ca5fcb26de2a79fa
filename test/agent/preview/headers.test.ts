import { describe, expect, it } from 'vitest';
import { responseHeaders, toNodeHeaders, upstreamOrigin, upstreamRequestHeaders } from '../../../agent/services/preview/headers';
import { checkTargetAddress } from '../../../agent/services/preview/target-guard';

describe('upstreamRequestHeaders', () => {
  it('drops hop-by-hop headers, those Connection names, Host and Expect; sets Host first', () => {
    const { headers, host } = upstreamRequestHeaders(
      [
        ['Host', 'evil.example'],
        ['Connection', 'close, X-Per-Hop'],
        ['X-Per-Hop', '1'],
        ['Keep-Alive', 'timeout=5'],
        ['Proxy-Connection', 'keep-alive'],
        ['Proxy-Authorization', 'Basic eA=='],
        ['TE', 'trailers'],
        ['Trailer', 'x'],
        ['Transfer-Encoding', 'chunked'],
        ['Upgrade', 'websocket'],
        ['Expect', '100-continue'],
        ['Accept', 'text/html'],
        ['Cookie', 'a=1'],
        ['Cookie', 'b=2'],
        ['X-Forwarded-For', '203.0.113.9'],
      ],
      5173,
    );
    expect(host).toBe('localhost:5173');
    expect(headers).toEqual([
      ['host', 'localhost:5173'],
      ['accept', 'text/html'],
      ['cookie', 'a=1'],
      ['cookie', 'b=2'],
      ['x-forwarded-for', '203.0.113.9'],
    ]);
  });

  it('takes the Host from x-mominai-host and refuses one that is not host[:port]', () => {
    expect(upstreamRequestHeaders([['x-mominai-host', 'abc.preview.localhost:8080']], 3000).host).toBe('abc.preview.localhost:8080');
    expect(() => upstreamRequestHeaders([['x-mominai-host', 'a/b']], 3000)).toThrow(/host\[:port\]/);
  });

  it('refuses header names and values a server could misparse', () => {
    expect(() => upstreamRequestHeaders([['x-a', 'v\r\nx-b: 1']], 80)).toThrow(/invalid value/);
    expect(() => upstreamRequestHeaders([['x a', 'v']], 80)).toThrow(/invalid header name/);
    expect(() => upstreamRequestHeaders([['x-a', 'nul\0']], 80)).toThrow(/invalid value/);
  });

  it('groups repeated names for Node http', () => {
    expect(toNodeHeaders([['a', '1'], ['b', '2'], ['a', '3']])).toEqual({ a: ['1', '3'], b: '2' });
  });
});

describe('responseHeaders', () => {
  it('drops hop-by-hop headers and those Connection names, one entry per Set-Cookie', () => {
    const { headers, dropped } = responseHeaders({
      connection: 'keep-alive, x-hop',
      'x-hop': 'y',
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      'set-cookie': ['a=1', 'b=2'],
      'content-type': 'text/html',
      location: 'http://localhost:5173/x',
      skipped: undefined,
    });
    expect(dropped).toBe(0);
    expect(headers).toEqual([
      ['set-cookie', 'a=1'],
      ['set-cookie', 'b=2'],
      ['content-type', 'text/html'],
      ['location', 'http://localhost:5173/x'],
    ]);
  });

  it('drops what the DO schema would refuse, counting it', () => {
    const many: Record<string, string> = {};
    for (let i = 0; i < 300; i++) many[`x-${i}`] = 'v';
    many['x-huge'] = 'v'.repeat(20_000);
    const { headers, dropped } = responseHeaders(many);
    expect(headers).toHaveLength(256);
    expect(dropped).toBe(45);
  });
});

describe('checkTargetAddress', () => {
  it('accepts container addresses and, unless told otherwise, loopback', () => {
    for (const a of ['172.18.0.5', '10.0.0.2', '192.168.1.4', 'fd00::5', '127.0.0.1', '::1']) expect(() => checkTargetAddress(a)).not.toThrow();
  });

  it('refuses names, unspecified, link-local, multicast and broadcast addresses, IPv4-mapped included', () => {
    for (const a of ['localhost', 'example.com', '', '0.0.0.0', '169.254.169.254', '::ffff:169.254.169.254', '224.0.0.1', '255.255.255.255', '::', 'fe80::1', 'ff02::1']) {
      expect(() => checkTargetAddress(a), a).toThrow(expect.objectContaining({ code: 'forbidden' }));
    }
  });

  it('refuses loopback when it is not allowed', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) expect(() => checkTargetAddress(a, false), a).toThrow(/loopback/);
    expect(() => checkTargetAddress('172.18.0.5', false)).not.toThrow();
  });
});

describe('internal headers and Origin towards the dev server', () => {
  it('never passes a header internal to the edge or agent, whatever the DO sent', () => {
    const { headers } = upstreamRequestHeaders(
      [
        ['accept', '*/*'],
        ['x-session-call', '{}'],
        ['x-preview-info', '{"userId":"usr_1"}'],
        ['x-user-id', 'usr_1'],
        ['x-agent-id', 'agt_1'],
        ['x-file-mtime', '1'],
        ['x-mominai-trace', '1'],
        ['x-forwarded-host', 'a.preview.example'],
      ],
      3000,
    );
    expect(headers).toEqual([
      ['host', 'localhost:3000'],
      ['accept', '*/*'],
      ['x-forwarded-host', 'a.preview.example'],
    ]);
  });

  it("maps only the preview's own Origin to the dev server's; others pass, none stays none", () => {
    const fwd: Array<[string, string]> = [
      ['x-forwarded-proto', 'https'],
      ['x-forwarded-host', '3000-ses_1.preview.example'],
    ];
    expect(upstreamOrigin([['origin', 'https://3000-ses_1.preview.example'], ...fwd], 'localhost:3000')).toBe('http://localhost:3000');
    expect(upstreamOrigin([['origin', 'https://3000-ses_2.preview.example'], ...fwd], 'localhost:3000')).toBe('https://3000-ses_2.preview.example');
    expect(upstreamOrigin(fwd, 'localhost:3000')).toBe(undefined);
    expect(upstreamOrigin([['origin', 'https://3000-ses_1.preview.example']], 'localhost:3000')).toBe('https://3000-ses_1.preview.example');
  });
});
