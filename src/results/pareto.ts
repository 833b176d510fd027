import { Bool, Field, makeData, RecordBatch, Schema, Struct } from 'apache-arrow';
import { UNIT_KEY } from '../units.js';

/**
 * `sweep --pareto`: marks each row on the Pareto front of (memory per GPU, step time) among the fitting rows of
 * its group (its GPU count by default): no other fitting row of the group needs at most as much memory and at most
 * as much time, and strictly less of one. A front needs every row, so the sweep runs twice: the first pass feeds
 * `add` and keeps only the fronts; the second labels rows by value. Equal (memory, time) pairs are all on the front,
 * so matching by value is exact, and both passes see the same values (same engine, same float type).
 */
export class ParetoFronts {
  /** Per group value: front points sorted by memory ascending (so time descending). */
  private readonly fronts = new Map<unknown, Array<[memory: number, time: number]>>();

  constructor(private readonly per = 'ngpus') {}

  private static key(value: unknown): unknown {
    return typeof value === 'bigint' ? Number(value) : value;
  }

  add(batch: RecordBatch): void {
    const group = batch.getChild(this.per);
    const memory = batch.getChild('total_gib')!;
    const time = batch.getChild('step_time_s')!;
    const fits = batch.getChild('fits');
    for (let i = 0; i < batch.numRows; i++) {
      if (fits && !fits.get(i)) continue;
      const key = ParetoFronts.key(group?.get(i));
      const m = memory.get(i) as number;
      const t = time.get(i) as number;
      const front = this.fronts.get(key) ?? [];
      if (front.some(([pm, pt]) => pm <= m && pt <= t && (pm < m || pt < t))) continue;
      const kept = front.filter(([pm, pt]) => !(m <= pm && t <= pt && (m < pm || t < pt)));
      if (!kept.some(([pm, pt]) => pm === m && pt === t)) kept.push([m, t]);
      kept.sort((a, b) => a[0] - b[0]);
      this.fronts.set(key, kept);
    }
  }

  /** Points on the front of each group. */
  points(): Map<unknown, Array<[number, number]>> {
    return this.fronts;
  }

  /** Whether a fitting row's (memory, time) is a front point of its group. */
  private onFront(key: unknown, m: number, t: number): boolean {
    return this.fronts.get(key)?.some(([pm, pt]) => pm === m && pt === t) ?? false;
  }

  /** The batch with an `on_pareto` Bool column appended. */
  label(batch: RecordBatch): RecordBatch {
    const group = batch.getChild(this.per);
    const memory = batch.getChild('total_gib')!;
    const time = batch.getChild('step_time_s')!;
    const fits = batch.getChild('fits');
    const bits = new Uint8Array(Math.ceil(batch.numRows / 8));
    for (let i = 0; i < batch.numRows; i++) {
      if (fits && !fits.get(i)) continue;
      if (this.onFront(ParetoFronts.key(group?.get(i)), memory.get(i) as number, time.get(i) as number)) bits[i >> 3] |= 1 << (i & 7);
    }
    const field = new Field('on_pareto', new Bool(), false, new Map([[UNIT_KEY, 'boolean']]));
    const schema = new Schema([...batch.schema.fields, field], batch.schema.metadata);
    const children = [...batch.data.children, makeData({ type: new Bool(), length: batch.numRows, data: bits })];
    return new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: batch.numRows, nullCount: 0, children }));
  }
}
