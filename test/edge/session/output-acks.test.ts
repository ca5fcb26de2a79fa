/** The ack/persist policy (planAcks): what the agent may drop, and what must be stored first. */
import { describe, expect, it } from 'vitest';
import { planAcks, PERSIST_AT_BYTES, type AckInput } from '../../../edge/session/output-acks';
import { STREAM_WINDOW_BYTES } from '../../../shared/protocol/session-data';

const JOURNAL = 8 * 1024 * 1024;
const stream = (over: Partial<AckInput>): AckInput => ({ streamId: 7, start: 0, end: 0, floor: undefined, acked: 0, storedEnd: 0, ...over });

describe('planAcks', () => {
  it('acknowledges at once, without storage, what every active client has acknowledged', () => {
    expect(planAcks([stream({ end: 1000, floor: 1000 })], false, JOURNAL)).toEqual({ writes: [], acks: [{ streamId: 7, offset: 1000 }], heldBack: false, waiting: false });
  });

  it('holds back bytes no client has, until PERSIST_AT_BYTES wait or the timer forces a write', () => {
    expect(planAcks([stream({ end: 1000 })], false, JOURNAL)).toEqual({ writes: [], acks: [], heldBack: false, waiting: true });
    expect(planAcks([stream({ end: 1000 })], true, JOURNAL)).toEqual({ writes: [{ streamId: 7, from: 0, to: 1000 }], acks: [{ streamId: 7, offset: 1000 }], heldBack: false, waiting: false });
    const big = PERSIST_AT_BYTES;
    expect(planAcks([stream({ end: big })], false, JOURNAL).writes).toEqual([{ streamId: 7, from: 0, to: big }]);
  });

  it('acknowledges up to what is stored or acknowledged by the clients while the rest waits', () => {
    expect(planAcks([stream({ end: 5000, floor: 1000, storedEnd: 3000, acked: 500 })], false, JOURNAL)).toEqual({
      writes: [],
      acks: [{ streamId: 7, offset: 3000 }],
      heldBack: false,
      waiting: true,
    });
  });

  it('never lets the agent run further ahead of the slowest active client than the journal can hold', () => {
    const limit = 100 + JOURNAL - STREAM_WINDOW_BYTES;
    const plan = planAcks([stream({ end: JOURNAL * 2, start: JOURNAL, floor: 100, storedEnd: JOURNAL * 2 })], false, JOURNAL);
    expect(plan.acks).toEqual([{ streamId: 7, offset: limit }]);
    expect(plan.heldBack).toBe(true);
  });

  it('sends nothing for a stream already acknowledged as far as it may go', () => {
    expect(planAcks([stream({ end: 1000, floor: 1000, acked: 1000 })], false, JOURNAL)).toEqual({ writes: [], acks: [], heldBack: false, waiting: false });
  });

  it('writes from where storage ends, never before the journal start', () => {
    expect(planAcks([stream({ start: 2000, end: 6000, storedEnd: 1000 })], true, JOURNAL).writes).toEqual([{ streamId: 7, from: 2000, to: 6000 }]);
  });
});
