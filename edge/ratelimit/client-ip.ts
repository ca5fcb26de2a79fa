/**
 * Which client a request counts against. On Cloudflare, `CF-Connecting-IP` is
 * set by the platform and cannot be forged. Forwarding headers are believed
 * only with TRUST_PROXY, i.e. when a reverse proxy you run sits in front of
 * workerd: then `X-Real-IP` wins, else the last `X-Forwarded-For` hop (the
 * address your proxy saw; earlier hops are whatever the client claimed).
 * A request that names no client counts against the shared key "unknown".
 */
export const UNKNOWN_CLIENT = 'unknown';

/** IPv4, IPv6 (with an optional zone) or anything short and plain enough to be an address. */
const plausible = /^[0-9A-Za-z.:%_-]{1,64}$/;

function clean(value: string | null | undefined): string | undefined {
  const v = value?.trim();
  return v && plausible.test(v) ? v.toLowerCase() : undefined;
}

export function clientKey(headers: Headers, trustProxy: boolean): string {
  if (trustProxy) {
    const real = clean(headers.get('X-Real-IP'));
    if (real) return real;
    const hops = headers.get('X-Forwarded-For')?.split(',') ?? [];
    const last = clean(hops[hops.length - 1]);
    if (last) return last;
  }
  return clean(headers.get('CF-Connecting-IP')) ?? UNKNOWN_CLIENT;
}
