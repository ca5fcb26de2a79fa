/**
 * Which images a session may name, decided before the engine is asked
 * anything (no inspect, no pull): the reference must match one of
 * ALLOWED_IMAGES, and a registry host on a loopback, private or link-local
 * address is refused whatever the patterns say, since a pull from there
 * would make the engine reach into the host's own network for the user.
 */
import net from 'node:net';
import { AppError, ErrorCode } from '../../../shared/errors';

/** `*` matches any run of characters; everything else matches itself. A pattern without a tag also matches `:latest`. */
export function imageMatches(ref: string, pattern: string): boolean {
  const source = pattern
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\/]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${source}$`).test(ref);
}

/** The registry host of a reference, or undefined for Docker Hub (`node:20`, `library/node`). */
export function registryHost(ref: string): string | undefined {
  const slash = ref.indexOf('/');
  if (slash < 0) return undefined;
  const first = ref.slice(0, slash);
  if (first === 'localhost' || first.includes('.') || first.includes(':') || first.startsWith('[')) return first;
  return undefined;
}

function stripPort(host: string): string {
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']'));
  const colon = host.lastIndexOf(':');
  return colon > 0 && !host.slice(0, colon).includes(':') ? host.slice(0, colon) : host;
}

const privateRanges = new net.BlockList();
for (const [addr, bits] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16],
  ['172.16.0.0', 12], ['192.168.0.0', 16],
] as const) {
  privateRanges.addSubnet(addr, bits, 'ipv4');
}
for (const [addr, bits] of [['::1', 128], ['::', 128], ['fe80::', 10], ['fc00::', 7]] as const) privateRanges.addSubnet(addr, bits, 'ipv6');

/** True when the registry host is loopback, private or link-local by name or literal address. */
export function isInternalRegistry(host: string): boolean {
  const name = stripPort(host).toLowerCase();
  if (name === 'localhost' || name.endsWith('.localhost') || name.endsWith('.local') || name.endsWith('.internal')) return true;
  const family = net.isIP(name);
  if (family === 4) return privateRanges.check(name, 'ipv4');
  if (family === 6) return privateRanges.check(name, 'ipv6');
  return false;
}

/** Throws 400 image_not_allowed unless the reference passes the policy. */
export function checkImageAllowed(ref: string, patterns: readonly string[]): void {
  const host = registryHost(ref);
  if (host && isInternalRegistry(host)) {
    throw new AppError(ErrorCode.ImageNotAllowed, `Image "${ref}" names a registry on a loopback or private address (${host})`, { image: ref });
  }
  const withTag = /[:@][^/]*$/.test(ref) ? ref : `${ref}:latest`;
  if (!patterns.some((p) => imageMatches(ref, p) || imageMatches(withTag, p))) {
    throw new AppError(ErrorCode.ImageNotAllowed, `Image "${ref}" is not allowed on this agent (ALLOWED_IMAGES: ${patterns.join(', ')})`, {
      image: ref,
    });
  }
}
