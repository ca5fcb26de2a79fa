import { describe, expect, it } from 'vitest';
import { isPreviewCookieName, previewCookie, previewCookieName, secureCapable } from '../../../edge/preview/cookie';

describe('the preview cookie', () => {
  it('is __Host- prefixed on the host form and __Secure- on the path forms where browsers keep Secure cookies', () => {
    expect(previewCookieName('ses_1', 'host', new URL('https://3000-ses_1.preview.example/'))).toBe('__Host-mominai_preview_ses_1');
    expect(previewCookieName('ses_1', 'host', new URL('http://3000-ses_1.preview.localhost:3001/'))).toBe('__Host-mominai_preview_ses_1');
    expect(previewCookieName('ses_1', 'path', new URL('http://127.0.0.1:3001/preview/ses_1/'))).toBe('__Secure-mominai_preview_ses_1');
    expect(previewCookieName('ses_1', 'host', new URL('http://3000-ses_1.preview.lan:3001/'))).toBe('mominai_preview_ses_1');
  });

  it('is host-only, HttpOnly, Secure, SameSite=None and Partitioned where Secure works; SameSite=Lax elsewhere', () => {
    expect(previewCookie('__Host-n', 't', '/', 60, new URL('https://a.preview.example/'))).toBe('__Host-n=t; Path=/; HttpOnly; Secure; SameSite=None; Partitioned; Max-Age=60');
    expect(previewCookie('n', 't', '/p/', 60, new URL('http://a.preview.lan/'))).toBe('n=t; Path=/p/; HttpOnly; SameSite=Lax; Max-Age=60');
    expect(previewCookie('n', 't', '/', 60, new URL('https://a.preview.example/'))).not.toMatch(/Domain/i);
  });

  it('counts loopback hosts as secure contexts, as Chromium does', () => {
    for (const u of ['http://localhost:1/', 'http://a.preview.localhost/', 'http://127.0.0.1:3001/', 'https://x.example/']) expect(secureCapable(new URL(u))).toBe(true);
    for (const u of ['http://preview.lan/', 'http://10.0.0.1/', 'http://localhost.example/']) expect(secureCapable(new URL(u))).toBe(false);
  });

  it('knows its own names whatever the prefix or case', () => {
    expect(isPreviewCookieName('__Host-mominai_preview_ses_1')).toBe(true);
    expect(isPreviewCookieName('MOMINAI_PREVIEW_x')).toBe(true);
    expect(isPreviewCookieName('app_mominai_preview_x')).toBe(false);
  });
});
