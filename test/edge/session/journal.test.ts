/** An output stream's journal: a small tail in memory, the rest in storage (an in-memory store stands in for SQLite). */
import { describe, expect, it } from 'vitest';
import { StreamJournal } from '../../../edge/session/journal';
import { JournalStore } from '../../../edge/session/journal-store';
import { MemoryProcessStore } from '../../helpers/memory-stores';

const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill);
/** Every byte the journal can give from `from`, with the offset of the first. */
const readAll = (j: StreamJournal, from: number): { offset: number; data: number[] } => {
  let first: number | undefined;
  const data: number[] = [];
  for (let c = j.read(from); c; c = j.read(c.offset + c.bytes.byteLength)) {
    first ??= c.offset;
    data.push(...c.bytes);
  }
  return { offset: first ?? from, data };
};

function backed(tail: number, journal = 1000) {
  const store = new MemoryProcessStore();
  const stored = new JournalStore(store, journal);
  const j = new StreamJournal(tail, stored.backing('prc_1', 'stdout'));
  return { store, stored, j };
}

describe('StreamJournal with storage behind it', () => {
  it('keeps at most its tail in memory and serves everything from the start, out of storage and memory', () => {
    const { store, j } = backed(100);
    for (let i = 0; i < 10; i++) j.append(i * 30, bytes(30, i));
    expect(j.memoryBytes).toBeLessThanOrEqual(100);
    expect([j.start, j.end]).toEqual([0, 300]);
    const all = readAll(j, 0);
    expect(all.offset).toBe(0);
    expect(all.data).toEqual(Array.from({ length: 300 }, (_, k) => Math.floor(k / 30)));
    // What left memory went to storage in rows that join up.
    const rows = store.chunks.get('prc_1:stdout')!;
    expect(rows[0]!.offset).toBe(0);
    for (let k = 1; k < rows.length; k++) expect(rows[k]!.offset).toBe(rows[k - 1]!.offset + rows[k - 1]!.bytes.byteLength);
  });

  it('reads from the middle of a stored row', () => {
    const { j } = backed(40);
    for (let i = 0; i < 5; i++) j.append(i * 30, bytes(30, i + 1));
    expect(readAll(j, 45)).toEqual({ offset: 45, data: [...bytes(15, 2), ...bytes(30, 3), ...bytes(30, 4), ...bytes(30, 5)] });
  });

  it('ignores bytes it holds already and restarts after a gap, storage included', () => {
    const { stored, j } = backed(40);
    j.append(0, bytes(30, 1));
    j.append(30, bytes(30, 2));
    expect(j.append(10, bytes(20, 9))).toBeNull();
    const after = j.append(100, bytes(10, 3));
    expect(after?.gapFrom).toBe(60);
    stored.restartAt('prc_1', 'stdout', 100); // what the fanout's onGap does
    expect([j.start, j.end]).toEqual([100, 110]);
    expect(readAll(j, 0)).toEqual({ offset: 100, data: [...bytes(10, 3)] });
  });

  it('trims storage to about the journal size, so an old offset reads from the oldest kept byte', () => {
    const { store, j } = backed(64, 256);
    for (let i = 0; i < 200; i++) j.append(i * 64, bytes(64, i & 0xff));
    // 12800 bytes went through; storage keeps the journal size plus at most a trim step (2 MiB here: nothing trimmed yet).
    expect(j.start).toBe(0);
    expect(store.chunks.get('prc_1:stdout')!.reduce((n, c) => n + c.bytes.byteLength, 0)).toBeGreaterThan(12800 - 128);
  });

  it('lets go of all memory for a finished stream and still serves it', () => {
    const { j } = backed(1000);
    j.append(0, bytes(50, 7));
    j.releaseMemory();
    expect(j.memoryBytes).toBe(0);
    expect(readAll(j, 0)).toEqual({ offset: 0, data: [...bytes(50, 7)] });
  });

  it('comes back after a restart with an empty tail over what was stored', () => {
    const first = backed(40);
    for (let i = 0; i < 4; i++) first.j.append(i * 30, bytes(30, i + 1));
    first.j.releaseMemory();
    const again = new JournalStore(first.store, 1000);
    const [s] = first.store.storedStreams();
    expect(s).toEqual({ processId: 'prc_1', stream: 'stdout', end: 120 });
    again.restored(s!.processId, s!.stream, s!.end);
    const j = StreamJournal.stored(40, s!.end, again.backing('prc_1', 'stdout'));
    expect(j.append(120, bytes(10, 5))?.chunk.offset).toBe(120);
    expect(readAll(j, 0).data).toEqual([...bytes(30, 1), ...bytes(30, 2), ...bytes(30, 3), ...bytes(30, 4), ...bytes(10, 5)]);
  });
});

describe('StreamJournal without storage', () => {
  it('drops the oldest chunks past its capacity, down to three quarters of it', () => {
    const j = new StreamJournal(60);
    for (let i = 0; i < 4; i++) j.append(i * 30, bytes(30, i));
    // The third chunk passed 60: down to 45 (one chunk) at once; the fourth fits again.
    expect([j.start, j.end]).toEqual([60, 120]);
    expect(readAll(j, 0)).toEqual({ offset: 60, data: [...bytes(30, 2), ...bytes(30, 3)] });
  });
});
