/**
 * The forwarding headers a hostile client sends to pose as a proxy in front
 * of the edge (another client address, host, scheme and prefix). The preview
 * must never pass one of them to the dev server: the edge sets its own.
 */
export const FORGED_FORWARDING_HEADERS: Readonly<Record<string, string>> = {
  'X-Forwarded-For': '6.6.6.6',
  'X-Forwarded-Host': 'evil.example',
  'X-Forwarded-Proto': 'gopher',
  'X-Forwarded-Prefix': '/evil',
  Forwarded: 'for=6.6.6.6;host=evil.example',
  'X-Real-IP': '6.6.6.6',
};
