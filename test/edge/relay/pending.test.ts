/**
 * PendingRequests: a `res` frame settles a request only when it comes from
 * the socket (owner) the request was sent on, and request ids cannot be guessed.
 */
import { describe, expect, it } from 'vitest';
import { AppError } from '../../../shared/errors';
import { PendingRequests } from '../../../edge/relay/pending';

describe('PendingRequests', () => {
  it('settles a request with the answer of its own owner', async () => {
    const pending = new PendingRequests();
    const { id, result } = pending.open('conn-a', 10_000, 'session.create');
    expect(pending.settle({ type: 'res', id, ok: true, result: { fine: true } }, 'conn-a')).toBe(true);
    await expect(result).resolves.toEqual({ fine: true });
    expect(pending.size).toBe(0);
  });

  it("ignores another owner's answer with the same id, and the request still waits for its own", async () => {
    const pending = new PendingRequests();
    const { id, result } = pending.open('conn-a', 10_000, 'session.create');
    expect(pending.settle({ type: 'res', id, ok: true, result: { forged: true } }, 'conn-b')).toBe(false);
    expect(pending.settle({ type: 'res', id, ok: false, error: { code: 'forbidden', message: 'forged' } }, 'conn-b')).toBe(false);
    expect(pending.size).toBe(1);
    expect(pending.settle({ type: 'res', id, ok: true, result: { real: true } }, 'conn-a')).toBe(true);
    await expect(result).resolves.toEqual({ real: true });
  });

  it('settles with the default owner "agent" when none is named (one agent socket per Session DO)', async () => {
    const pending = new PendingRequests();
    const { id, result } = pending.open('agent', 10_000, 'x');
    expect(pending.settle({ type: 'res', id, ok: true, result: 1 })).toBe(true);
    await expect(result).resolves.toBe(1);
  });

  it('makes ids of 128 random bits that do not follow from each other', async () => {
    const pending = new PendingRequests();
    const opened = Array.from({ length: 1000 }, () => pending.open('o', 10_000, 'x'));
    const ids = opened.map((o) => o.id);
    for (const id of ids) expect(id).toMatch(/^r[0-9a-f]{32}$/);
    expect(new Set(ids).size).toBe(1000);
    // Neighbours share no long prefix (a time + counter scheme shares all but the last characters).
    const shared = (a: string, b: string) => {
      let i = 0;
      while (i < a.length && a[i] === b[i]) i++;
      return i;
    };
    const longest = Math.max(...ids.slice(1).map((id, i) => shared(id, ids[i]!)));
    expect(longest).toBeLessThan(10);
    pending.failOwner('o', new AppError('agent_unavailable', 'done'));
    // Every request this test opened ends with the owner's failure (and none is left unhandled).
    const ended = await Promise.allSettled(opened.map((o) => o.result));
    expect(ended.every((r) => r.status === 'rejected' && r.reason instanceof AppError && r.reason.code === 'agent_unavailable')).toBe(true);
  });

  it('fails every request of an owner whose socket went away, and only those', async () => {
    const pending = new PendingRequests();
    const a = pending.open('conn-a', 10_000, 'x');
    const b = pending.open('conn-b', 10_000, 'x');
    pending.failOwner('conn-a', new AppError('agent_unavailable', 'the agent disconnected'));
    await expect(a.result).rejects.toMatchObject({ code: 'agent_unavailable', message: 'the agent disconnected' });
    expect(pending.size).toBe(1);
    pending.settle({ type: 'res', id: b.id, ok: true, result: 2 }, 'conn-b');
    await expect(b.result).resolves.toBe(2);
  });
});
