import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AppError, ErrorCode } from '../../../shared/errors';
import { HeadWaiters } from '../../../edge/session/head-waiters';

const head = { status: 200, headers: [] as Array<[string, string]> };

describe('HeadWaiters', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it('settles each wait once, with its head or its error', async () => {
    const w = new HeadWaiters(1_000);
    const a = w.wait(1);
    const b = w.wait(3);
    expect(w.settle(1, { head, body: new Uint8Array([1]) })).toBe(true);
    expect(w.settle(1, { head, body: new Uint8Array([2]) })).toBe(false);
    expect(w.settle(3, new AppError(ErrorCode.Forbidden, 'no'))).toBe(true);
    await expect(a).resolves.toEqual({ head, body: new Uint8Array([1]) });
    await expect(b).rejects.toMatchObject({ code: 'forbidden' });
    expect(w.size).toBe(0);
  });

  it('times out only waits past their own deadline, with one timer', async () => {
    const w = new HeadWaiters(1_000);
    const first = w.wait(1);
    first.catch(() => undefined);
    await vi.advanceTimersByTimeAsync(600);
    const second = w.wait(3);
    await vi.advanceTimersByTimeAsync(500);
    await expect(first).rejects.toMatchObject({ code: 'timeout' });
    expect(w.has(3)).toBe(true);
    expect(vi.getTimerCount()).toBe(1);
    second.catch(() => undefined);
    await vi.advanceTimersByTimeAsync(600);
    await expect(second).rejects.toMatchObject({ code: 'timeout' });
    expect(w.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('fails every wait when the socket goes', async () => {
    const w = new HeadWaiters(1_000);
    const all = [w.wait(1), w.wait(3), w.wait(5)];
    w.failAll(new AppError(ErrorCode.AgentUnavailable, 'gone'));
    for (const p of all) await expect(p).rejects.toMatchObject({ code: 'agent_unavailable' });
    expect(w.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });
});
