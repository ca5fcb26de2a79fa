import { describe, expect, it } from 'vitest';
import { pathFormBase, targetFromHost, warnIfPreviewDomainShared } from '../../../edge/preview/settings';

const domain = 'preview.localhost';

describe('targetFromHost', () => {
  it('reads the host form, with and without a port', () => {
    expect(targetFromHost(`3000-ses_ab12cd34.${domain}:3001`, new URL('http://x/a?b=1'), domain)).toEqual({ sessionId: 'ses_ab12cd34', port: 3000, path: '/a?b=1', form: 'host', prefix: '' });
    expect(targetFromHost(`ses_ab12cd34.${domain}`, new URL('http://x/'), domain)).toMatchObject({ port: null, form: 'host' });
  });

  it('reads the bare domain with the session id as the first path segment as a path form', () => {
    expect(targetFromHost(`${domain}:3001`, new URL('http://x/ses_ab12cd34/app/x?y=1'), domain)).toEqual({
      sessionId: 'ses_ab12cd34',
      port: null,
      path: '/app/x?y=1',
      form: 'path',
      prefix: '/ses_ab12cd34',
    });
    expect(targetFromHost(domain, new URL('http://x/ses_ab12cd34'), domain)).toMatchObject({ path: '/', prefix: '/ses_ab12cd34' });
  });

  it('leaves other bare-domain paths and other hosts to the API', () => {
    expect(targetFromHost(domain, new URL('http://x/api/containers'), domain)).toBe(null);
    expect(targetFromHost('127.0.0.1:3001', new URL('http://x/ses_ab12cd34/'), domain)).toBe(null);
  });
});

describe('pathFormBase', () => {
  const edge = new URL('http://127.0.0.1:3001/api/x');
  it('is the bare PREVIEW_DOMAIN when it is set, /preview/ on the API otherwise, and none when the path form is off', () => {
    expect(pathFormBase({ domain, domainSet: true, pathForm: true }, edge, 'ses_1')).toBe('http://preview.localhost:3001/ses_1');
    expect(pathFormBase({ domain, domainSet: false, pathForm: true }, edge, 'ses_1')).toBe('http://127.0.0.1:3001/preview/ses_1');
    expect(pathFormBase({ domain, domainSet: true, pathForm: false }, edge, 'ses_1')).toBe(null);
  });
});

describe('warnIfPreviewDomainShared', () => {
  const capture = (fn: () => void): string[] => {
    const lines: string[] = [];
    const original = console.error;
    console.error = (line: string) => void lines.push(line);
    try {
      fn();
    } finally {
      console.error = original;
    }
    return lines;
  };

  it('logs an error once when a production PREVIEW_DOMAIN is a subdomain of the API host, and nothing in development or for a separate domain', () => {
    const shared = { NODE_ENV: 'production', PREVIEW_DOMAIN: 'preview.api.example.com' };
    const lines = capture(() => {
      warnIfPreviewDomainShared(shared, 'api.example.com:443');
      warnIfPreviewDomainShared(shared, 'api.example.com');
    });
    expect(lines.length).toBe(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'error', previewDomain: 'preview.api.example.com', apiHost: 'api.example.com' });
    expect(capture(() => warnIfPreviewDomainShared({ NODE_ENV: 'production', PREVIEW_DOMAIN: 'example-preview.com' }, 'api2.example.com'))).toEqual([]);
    expect(capture(() => warnIfPreviewDomainShared({ PREVIEW_DOMAIN: 'preview.dev.example.com' }, 'dev.example.com'))).toEqual([]);
  });
});
