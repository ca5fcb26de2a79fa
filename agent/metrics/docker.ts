/**
 * Times every Docker Engine API call of one dockerode client, by wrapping its
 * modem's `dial` (the one function every dockerode call goes through). The
 * operation label is the API path with ids replaced, so its values stay few:
 * `/containers/abc123/exec` → `containers/:id/exec`.
 */
import type Docker from 'dockerode';
import type { Histogram } from 'prom-client';

type Dial = (options: { method?: string; path?: string }, callback: (err: unknown, data: unknown) => void) => unknown;

/** Collection endpoints and verbs that are not ids in the second path segment. */
const NOT_IDS = new Set(['json', 'create', 'prune', 'load', 'search', 'get', 'build', 'events', 'info', 'version', '_ping']);

export function dockerOperation(rawPath: string | undefined): string {
  const segments = (rawPath ?? '').split('?')[0]!.split('/').filter(Boolean);
  // A leading API version (/v1.41/...) says nothing about the operation.
  if (segments[0] && /^v\d+\.\d+$/.test(segments[0])) segments.shift();
  if (segments.length === 0) return '/';
  const [resource, second, ...rest] = segments;
  if (second === undefined) return resource!;
  const id = NOT_IDS.has(second) ? second : ':id';
  return [resource, id, ...rest].join('/');
}

export function instrumentDocker(docker: Docker, histogram: Histogram<'method' | 'operation' | 'outcome'>): Docker {
  const modem = docker.modem as { dial: Dial };
  const dial = modem.dial.bind(modem);
  modem.dial = (options, callback) => {
    const end = histogram.startTimer({ method: options.method ?? 'GET', operation: dockerOperation(options.path) });
    return dial(options, (err, data) => {
      end({ outcome: err ? 'error' : 'ok' });
      callback(err, data);
    });
  };
  return docker;
}
