/**
 * The real stack for the SDK suites (workerd edge, one agent, dockerd), and
 * small helpers. The suites use the package only through its public entry
 * points (`@mominai/client`, `@mominai/client/webcontainer`), as built by
 * the install lifecycle.
 */
import WebSocket from 'ws';
import { MominaiClient } from '@mominai/client';
import { newAccount } from '../helpers/api-client';
import { ensureTestImage, type TestImage } from '../helpers/images';
import { TestStack } from '../helpers/stack';
import { edgeRunnerFromEnv } from '../../scripts/lib/stack';

export const MiB = 1024 * 1024;

export async function startStack(image: TestImage, name: string): Promise<TestStack> {
  const tag = await ensureTestImage(image);
  // The Miniflare runner (the same workerd) unless EDGE_RUNNER says otherwise: `wrangler dev` reloads the
  // Worker on every source change, which drops every socket of a suite that runs while the tree is edited.
  const runner = process.env.EDGE_RUNNER ? edgeRunnerFromEnv() : 'miniflare';
  const stack = new TestStack({ runner, debug: process.env.SDK_TEST_DEBUG === '1', edgeVars: { RATE_LIMIT_MAX: '100000', AUTH_RATE_LIMIT_MAX: '100000', DEFAULT_IMAGE: tag, PREVIEW_DOMAIN: 'preview.localhost' } });
  await stack.startEdge();
  const agent = await stack.startAgent({ name });
  await stack.health((h) => h.agents.some((a) => a.id === agent.id && a.connected));
  return stack;
}

/** A client of the stack with a fresh account (Node 20 has no global WebSocket: `ws` is passed in). */
export async function newClient(stack: TestStack, tag: string): Promise<MominaiClient> {
  const client = new MominaiClient({ baseUrl: stack.baseUrl, WebSocket: WebSocket as never });
  await client.register(newAccount(tag));
  return client;
}

/** Resolves with the first value `subscribe` reports that satisfies `pred`; rejects after `timeoutMs`. */
export function waitFor<T>(subscribe: (listener: (value: T) => void) => () => void, pred: (value: T) => boolean, timeoutMs = 30_000, what = 'an event'): Promise<T> {
  return new Promise((resolve, reject) => {
    let off = () => {};
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    off = subscribe((v) => {
      if (!pred(v)) return;
      clearTimeout(timer);
      off();
      resolve(v);
    });
  });
}

/** Reads a byte stream to its end, calling `onChunk` with the running total after each chunk. */
export async function readAll(stream: ReadableStream<Uint8Array>, onChunk?: (total: number) => void): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  const reader = stream.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    parts.push(value);
    total += value.byteLength;
    onChunk?.(total);
  }
  return Buffer.concat(parts);
}
