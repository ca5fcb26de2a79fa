/** Random identifiers with a readable prefix: `agt_3f9c…`, `ses_…`, `usr_…`. */
export type IdPrefix = 'agt' | 'ses' | 'usr' | 'req' | 'prc';

export function newId(prefix: IdPrefix, bytes = 12): string {
  const buf = new Uint8Array(bytes);
  crypto.getRandomValues(buf);
  let hex = '';
  for (const b of buf) hex += b.toString(16).padStart(2, '0');
  return `${prefix}_${hex}`;
}

export const idPattern = /^(agt|ses|usr|req|prc)_[0-9a-f]{8,64}$/;
