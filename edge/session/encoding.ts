/** Text and base64 as client frames carry them (stdin, file contents), decoded once for every relay. */
import { AppError, ErrorCode } from '../../shared/errors';

/** The bytes of `text` in `encoding`; base64 is checked strictly (`what` names the field in the error). */
export function decodeText(text: string, encoding: 'utf8' | 'base64' | undefined, what: string): Uint8Array {
  if (encoding !== 'base64') return new TextEncoder().encode(text);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) throw new AppError(ErrorCode.ValidationFailed, `${what} is not valid base64`);
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function toBase64(bytes: Uint8Array): string {
  let bin = '';
  for (let i = 0; i < bytes.byteLength; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

export function isUtf8(bytes: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}
