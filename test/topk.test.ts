import { describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import { f32Directed, TopK, TopKEntry } from '../src/results/topk.js';

/** mulberry32: a small seeded PRNG, so failures reproduce. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The reference: sort everything by (value, tie-break, row id) and keep the first k of each group. */
function naive(rows: TopKEntry[], k: number, descending: boolean): TopKEntry[] {
  const kept = rows.filter((row) => !Number.isNaN(row.value));
  const tie = (x: number) => (Number.isNaN(x) ? Infinity : x);
  kept.sort(
    (a, b) =>
      a.group - b.group ||
      (a.value !== b.value ? (descending ? (b.value > a.value ? 1 : -1) : a.value > b.value ? 1 : -1) : 0) ||
      (tie(a.tieBreak) !== tie(b.tieBreak) ? (tie(a.tieBreak) > tie(b.tieBreak) ? 1 : -1) : 0) ||
      a.rowId - b.rowId,
  );
  const out: TopKEntry[] = [];
  const count = new Map<number, number>();
  for (const row of kept) {
    const n = count.get(row.group) ?? 0;
    if (n < k) out.push({ ...row, tieBreak: tie(row.tieBreak) });
    count.set(row.group, n + 1);
  }
  return out;
}

interface Case {
  k: number;
  groups: number;
  descending: boolean;
  rows: TopKEntry[];
}

/** Random rows with many ties in value and tie-break, a few NaN and infinities, offered in a shuffled order. */
function randomCase(random: () => number): Case {
  const k = 1 + Math.floor(random() ** 2 * 40);
  const groups = 1 + Math.floor(random() * 12);
  const descending = random() < 0.5;
  const n = Math.floor(random() * 600);
  const distinct = 1 + Math.floor(random() * 30);
  const rows: TopKEntry[] = [];
  for (let id = 0; id < n; id++) {
    const special = random();
    const value =
      special < 0.02 ? NaN : special < 0.04 ? Infinity : special < 0.06 ? -Infinity : Math.floor(random() * distinct) / 4;
    const tieBreak = random() < 0.02 ? NaN : Math.floor(random() * 5);
    // Groups used unevenly: some stay empty.
    const group = Math.floor(random() ** 2 * groups);
    rows.push({ group, value, tieBreak, rowId: id * 3 + 7 });
  }
  for (let i = rows.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [rows[i], rows[j]] = [rows[j], rows[i]];
  }
  return { k, groups, descending, rows };
}

describe('TopK', () => {
  it('keeps the best k of each group, as a full sort would, on 500 random cases', () => {
    const random = prng(42);
    for (let n = 0; n < 500; n++) {
      const { k, groups, descending, rows } = randomCase(random);
      const top = new TopK({ k, groups, descending });
      for (const row of rows) top.offer(row.group, row.value, row.tieBreak, row.rowId);
      expect(top.results(), `case ${n}: k=${k} groups=${groups} descending=${descending}`).toEqual(
        naive(rows, k, descending),
      );
    }
  });

  it('does not depend on the order rows are offered in', () => {
    const random = prng(9);
    const { rows } = randomCase(random);
    const a = new TopK({ k: 5, groups: 12, descending: true });
    const b = new TopK({ k: 5, groups: 12, descending: true });
    for (const row of rows) a.offer(row.group, row.value, row.tieBreak, row.rowId);
    for (const row of [...rows].reverse()) b.offer(row.group, row.value, row.tieBreak, row.rowId);
    expect(b.results()).toEqual(a.results());
  });

  it('breaks ties by lower tie-break (memory), then by lower row id (grid order)', () => {
    const top = new TopK({ k: 3, groups: 1, descending: true });
    top.offer(0, 10, 50, 4);
    top.offer(0, 10, 40, 9);
    top.offer(0, 10, 40, 2);
    top.offer(0, 10, 60, 1);
    top.offer(0, 9, 0, 0);
    expect(top.results()).toEqual([
      { group: 0, value: 10, tieBreak: 40, rowId: 2 },
      { group: 0, value: 10, tieBreak: 40, rowId: 9 },
      { group: 0, value: 10, tieBreak: 50, rowId: 4 },
    ]);
  });

  it('ranks ascending when asked (times, memory)', () => {
    const top = new TopK({ k: 2, groups: 2, descending: false });
    for (const [group, value, id] of [
      [0, 3, 0],
      [0, 1, 1],
      [0, 2, 2],
      [1, 5, 3],
    ]) {
      top.offer(group, value, 0, id);
    }
    expect(top.results().map((e) => [e.group, e.value])).toEqual([
      [0, 1],
      [0, 2],
      [1, 5],
    ]);
  });

  it('tracks each group threshold: open until k rows, then the k-th best value', () => {
    const random = prng(77);
    for (const descending of [true, false]) {
      const k = 7;
      const groups = 4;
      const top = new TopK({ k, groups, descending });
      const seen: number[][] = Array.from({ length: groups }, () => []);
      for (let id = 0; id < 2000; id++) {
        const group = Math.floor(random() * groups);
        const value = Math.floor(random() * 50) / 8;
        const before = top.threshold(group);
        const sizeBefore = top.size(group);
        const resultsBefore = sizeBefore === k ? JSON.stringify(top.results()) : '';
        top.offer(group, value, random(), id);
        seen[group].push(value);
        // A row strictly worse than the threshold never changes anything (what the GPU may drop).
        if (sizeBefore === k && (descending ? value < before : value > before)) {
          expect(JSON.stringify(top.results())).toBe(resultsBefore);
        }
        const sorted = [...seen[group]].sort((a, b) => (descending ? b - a : a - b));
        const expected = sorted.length < k ? (descending ? -Infinity : Infinity) : sorted[k - 1];
        expect(top.threshold(group)).toBe(expected);
        expect(top.size(group)).toBe(Math.min(k, sorted.length));
      }
    }
  });

  it('hands the GPU f32 thresholds rounded toward keeping rows', () => {
    const desc = new TopK({ k: 1, groups: 3, descending: true });
    expect(Array.from(desc.thresholds())).toEqual([-Infinity, -Infinity, -Infinity]);
    desc.offer(1, 0.1, 0, 0);
    desc.offer(2, 0.7, 0, 1);
    const t = desc.thresholds();
    expect(t).toBeInstanceOf(Float32Array);
    // 0.1 rounds up to the nearest f32: the GPU gets the f32 just below it instead.
    expect(t[1]).toBeLessThanOrEqual(0.1);
    expect(t[1]).toBe(f32Directed(0.1, true));
    expect(Math.fround(0.1)).toBeGreaterThan(0.1);
    expect(t[1]).toBeLessThan(Math.fround(0.1));
    expect(t[2]).toBe(Math.fround(0.7));
    expect(t[0]).toBe(-Infinity);

    const asc = new TopK({ k: 1, groups: 2, descending: false });
    expect(Array.from(asc.thresholds())).toEqual([Infinity, Infinity]);
    asc.offer(0, 0.7, 0, 0);
    expect(asc.thresholds()[0]).toBeGreaterThanOrEqual(0.7);
    expect(asc.thresholds()[0]).toBe(f32Directed(0.7, false));
    // A copy: changing it changes nothing inside.
    asc.thresholds()[0] = 0;
    expect(asc.thresholds()[0]).toBeGreaterThanOrEqual(0.7);
  });

  it('rounds to f32 in the requested direction, everywhere in the range', () => {
    const random = prng(3);
    const samples = [0, 1e-50, -1e-50, 1e39, -1e39, Infinity, -Infinity, 3.4028234663852886e38, 0.1, -0.1];
    for (let n = 0; n < 5000; n++) samples.push((random() - 0.5) * 10 ** Math.floor(random() * 80 - 40));
    for (const x of samples) {
      const down = f32Directed(x, true);
      const up = f32Directed(x, false);
      expect(Math.fround(down)).toBe(down);
      expect(Math.fround(up)).toBe(up);
      expect(down).toBeLessThanOrEqual(x);
      expect(up).toBeGreaterThanOrEqual(x);
      if (Math.fround(x) === x) {
        expect(down).toBe(x);
        expect(up).toBe(x);
      } else if (Number.isFinite(down) && Number.isFinite(up)) {
        // Adjacent f32s: nothing in between.
        expect(f32Directed((down + up) / 2, true)).toBe(down);
        expect(up).toBeGreaterThan(down);
      }
    }
  });

  it('ignores NaN values and ranks a NaN tie-break last', () => {
    const top = new TopK({ k: 3, groups: 1, descending: true });
    top.offer(0, NaN, 0, 0);
    top.offer(0, 1, NaN, 1);
    top.offer(0, 1, 5, 2);
    expect(top.results()).toEqual([
      { group: 0, value: 1, tieBreak: 5, rowId: 2 },
      { group: 0, value: 1, tieBreak: Infinity, rowId: 1 },
    ]);
    expect(top.threshold(0)).toBe(-Infinity);
  });

  it('handles k larger than the rows, k = 1, and large k and group counts lazily', () => {
    const one = new TopK({ k: 1, groups: 1, descending: true });
    for (let i = 0; i < 100; i++) one.offer(0, i % 17, 0, i);
    expect(one.results()).toEqual([{ group: 0, value: 16, tieBreak: 0, rowId: 16 }]);

    const big = new TopK({ k: 10_000, groups: 10_000, descending: false });
    const random = prng(1);
    const values: number[] = [];
    for (let i = 0; i < 50_000; i++) {
      const v = random();
      values.push(v);
      big.offer(9_999, v, 0, i);
    }
    big.offer(0, 5, 0, 50_000);
    const results = big.results();
    expect(results.length).toBe(10_001);
    expect(results[0]).toEqual({ group: 0, value: 5, tieBreak: 0, rowId: 50_000 });
    const sorted = values.sort((a, b) => a - b).slice(0, 10_000);
    expect(results.slice(1).map((e) => e.value)).toEqual(sorted);
    expect(big.threshold(9_999)).toBe(sorted[9_999]);
    expect(big.threshold(5)).toBe(Infinity);
    expect(big.size(5)).toBe(0);
  });

  it('is fast: a million offers in well under a second', () => {
    const random = prng(2);
    const n = 1 << 20;
    const values = Float64Array.from({ length: n }, () => random());
    const top = new TopK({ k: 100, groups: 64, descending: true });
    const start = performance.now();
    for (let i = 0; i < n; i++) top.offer(i & 63, values[i], 0, i);
    const ms = performance.now() - start;
    console.log(`topk: ${((ms * 1e6) / n).toFixed(1)} ns per offer`);
    expect(top.results().length).toBe(6400);
    expect(ms).toBeLessThan(2000);
  });

  it('validates k as an InputError for --top, and the groups as programming errors', () => {
    for (const k of [0, -1, 1.5, NaN, Infinity]) {
      let error: unknown;
      try {
        new TopK({ k, groups: 1, descending: true });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(InputError);
      expect((error as InputError).field).toBe('--top');
      expect((error as Error).message).toBe(`--top: must be a positive integer, got ${k}`);
    }
    expect(() => new TopK({ k: 1, groups: 0, descending: true })).toThrow(RangeError);
    const top = new TopK({ k: 1, groups: 2, descending: true });
    expect(() => top.offer(2, 1, 0, 0)).toThrow(/group 2 is outside 0..1/);
    expect(() => top.offer(-1, 1, 0, 0)).toThrow(RangeError);
    expect(() => top.offer(0.5, 1, 0, 0)).toThrow(RangeError);
  });
});
