import { describe, expect, it } from 'vitest';
import { crossOriginRefusal } from '../../../edge/preview/origin-check';

const own = 'http://3000-ses_ab12cd34.preview.localhost:3001';
const h = (headers: Record<string, string>) => new Headers(headers);

describe('crossOriginRefusal', () => {
  it('lets GET, HEAD and OPTIONS pass whatever their Origin', () => {
    for (const method of ['GET', 'HEAD', 'OPTIONS', 'get']) expect(crossOriginRefusal(method, h({ Origin: 'https://evil.example' }), own)).toBe(null);
  });

  it('refuses a POST, PUT, PATCH or DELETE whose Origin is another preview', () => {
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
      expect(crossOriginRefusal(method, h({ Origin: 'http://3000-ses_ffff0000.preview.localhost:3001' }), own)).toBe(
        `a ${method} request from http://3000-ses_ffff0000.preview.localhost:3001 to this preview is refused: only the preview's own origin may do that`,
      );
    }
  });

  it('refuses a WebSocket upgrade from another origin, even with GET', () => {
    expect(crossOriginRefusal('GET', h({ Upgrade: 'websocket', Origin: 'https://evil.example' }), own)).toBe(
      "a WebSocket from https://evil.example to this preview is refused: only the preview's own origin may do that",
    );
  });

  it('refuses an opaque (null) Origin on unsafe methods', () => {
    expect(crossOriginRefusal('POST', h({ Origin: 'null' }), own)).toBe("a POST request from an opaque origin to this preview is refused: only the preview's own origin may do that");
  });

  it("lets the preview's own origin pass (case-insensitively), and a request without Origin (a non-browser client)", () => {
    expect(crossOriginRefusal('POST', h({ Origin: own.toUpperCase().replace('HTTP://', 'http://') }), own)).toBe(null);
    expect(crossOriginRefusal('GET', h({ Upgrade: 'websocket', Origin: own }), own)).toBe(null);
    expect(crossOriginRefusal('DELETE', h({}), own)).toBe(null);
    expect(crossOriginRefusal('GET', h({ Upgrade: 'websocket' }), own)).toBe(null);
  });

  it('refuses the same host on another scheme or port', () => {
    expect(crossOriginRefusal('POST', h({ Origin: 'https://3000-ses_ab12cd34.preview.localhost:3001' }), own)).not.toBe(null);
    expect(crossOriginRefusal('POST', h({ Origin: 'http://3000-ses_ab12cd34.preview.localhost:3002' }), own)).not.toBe(null);
  });
});
