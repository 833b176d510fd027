/**
 * CSV text of record batches as bytes, written into one preallocated buffer per batch: no strings per cell, no
 * concatenation. Runs in the CSV sink's worker threads (and in-thread where workers are unavailable).
 *
 * Everything the encoder needs is inside `csvEncoderFactory`, which takes its one dependency (pyFloatRepr) as a
 * parameter: the worker's source is this function's own text (`Function.prototype.toString`), so the same code
 * runs from dist/ and from the TypeScript sources under vitest, where a worker cannot load a `.ts` file.
 */

/** One column of a batch slice, as the main thread hands it to an encoder (plain data: it is posted to a worker). */
export type CsvColumn =
  | { kind: 'f32' | 'f64' | 'i32' | 'i64' | 'u32' | 'i16' | 'u16' | 'i8' | 'u8'; values: ArrayBufferView; validity: CsvValidity | null }
  | { kind: 'bool'; bits: Uint8Array; bitOffset: number; validity: CsvValidity | null }
  | { kind: 'dict'; indices: ArrayBufferView; labels: string[]; validity: CsvValidity | null }
  /** Anything else, already printed and quoted by the main thread (null as ''). */
  | { kind: 'text'; texts: string[] };

/** A null bitmap and the bit of the slice's first row in it. */
export interface CsvValidity {
  bits: Uint8Array;
  bitOffset: number;
}

export interface CsvBatchEncoder {
  /**
   * The CSV lines (each ending in `\r\n`) of `rows` rows, written into `output(bytes)` (a buffer of at least that
   * many bytes, by default a new one) and returned as a view of it; the encoder keeps its memos across calls.
   */
  encode(columns: CsvColumn[], rows: number, output?: (bytes: number) => Uint8Array): Uint8Array;
}

/**
 * Builds the encoder. Formatting is the CSV sink's: floats as Python's repr of the double they widen to (f32
 * included), integers in decimal, Bool as `True`/`False`, categories as their quoted labels, nulls as empty fields.
 */
export function csvEncoderFactory(pyFloatRepr: (value: number) => string): { create(): CsvBatchEncoder } {
  /** Distinct values a column's memo holds before the encoder starts over at the next slice. */
  const MEMO_ENTRIES = 1 << 16;
  /** Bytes of text all memos hold before the encoder starts over at the next slice. */
  const ARENA_BYTES = 32 << 20;

  /**
   * The encoder's printed texts, one after the other: every cell of a slice points into it, so the copy loop
   * reads from one array. Reused across slices (fresh memory is slow to touch on this class of machine).
   */
  class Arena {
    bytes = new Uint8Array(1 << 16);
    used = 0;

    /** Appends ASCII `text`; returns where it starts. */
    addAscii(text: string): number {
      const length = text.length;
      this.reserve(length);
      const bytes = this.bytes;
      const from = this.used;
      for (let i = 0; i < length; i++) bytes[from + i] = text.charCodeAt(i);
      this.used = from + length;
      return from;
    }

    addBytes(part: Uint8Array): number {
      this.reserve(part.length);
      const from = this.used;
      this.bytes.set(part, from);
      this.used = from + part.length;
      return from;
    }

    private reserve(length: number): void {
      if (this.used + length <= this.bytes.length) return;
      const bigger = new Uint8Array(Math.max(this.bytes.length * 2, this.used + length));
      bigger.set(this.bytes.subarray(0, this.used));
      this.bytes = bigger;
    }
  }

  /**
   * Where each value a column printed is in the arena, keyed by its bits (one or two 32-bit words: f32, i32,
   * f64, i64), so that -0 and 0 stay apart and NaN payloads do not matter: a result column holds tens to a few
   * thousand distinct values per 65 k rows (rows differing only in ZeRO, SP, recompute or offload share most of
   * them), and printing a float is most of CSV's cost. Open addressing over typed arrays, grown by doubling, at
   * most half full.
   */
  class Memo {
    /** Per entry: its key words and where its bytes are in the arena. */
    keyLow: Uint32Array = new Uint32Array(1 << 10);
    keyHigh: Uint32Array = new Uint32Array(1 << 10);
    start: Int32Array = new Int32Array(1 << 10);
    end: Int32Array = new Int32Array(1 << 10);
    count = 0;
    /** Entry index + 1 per slot, 0 for an empty slot. */
    table: Int32Array = new Int32Array(1 << 11);
    shift = 32 - 11;

    clear(): void {
      this.count = 0;
      this.table.fill(0);
    }

    /** Doubles the entries and the table (rehashing) once the table is half full: small memos stay small. */
    private grow(): void {
      const size = this.keyLow.length * 2;
      this.keyLow = grow32(this.keyLow, size);
      this.keyHigh = grow32(this.keyHigh, size);
      this.start = growI32(this.start, size);
      this.end = growI32(this.end, size);
      this.table = new Int32Array(size * 2);
      this.shift--;
      for (let entry = 0; entry < this.count; entry++) this.table[this.slotOf(this.keyLow[entry], this.keyHigh[entry])] = entry + 1;
    }

    /** The slot holding (low, high), or the empty slot where it goes. */
    slotOf(low: number, high: number): number {
      const table = this.table;
      const mask = table.length - 1;
      // Fibonacci hashing of both words; linear probing.
      let slot = Math.imul(low ^ Math.imul(high, 0x85ebca6b), 0x9e3779b1) >>> this.shift;
      for (;;) {
        const entry = table[slot] - 1;
        if (entry < 0 || (this.keyLow[entry] === low && this.keyHigh[entry] === high)) return slot;
        slot = (slot + 1) & mask;
      }
    }

    /** Adds the ASCII text of (low, high) at `slot` (from slotOf); returns its entry. */
    add(arena: Arena, slot: number, low: number, high: number, text: string): number {
      if (this.count === this.keyLow.length) {
        this.grow();
        slot = this.slotOf(low, high);
      }
      const entry = this.count++;
      const from = arena.addAscii(text);
      this.keyLow[entry] = low;
      this.keyHigh[entry] = high;
      this.start[entry] = from;
      this.end[entry] = from + text.length;
      this.table[slot] = entry + 1;
      return entry;
    }
  }

  function grow32(array: Uint32Array, size: number): Uint32Array {
    const bigger = new Uint32Array(size);
    bigger.set(array);
    return bigger;
  }

  function growI32(array: Int32Array, size: number): Int32Array {
    const bigger = new Int32Array(size);
    bigger.set(array);
    return bigger;
  }

  /** Quotes a field as Python's csv module does by default (QUOTE_MINIMAL). */
  function quote(text: string): string {
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  }

  const utf8 = new TextEncoder();

  class Encoder implements CsvBatchEncoder {
    private readonly arena = new Arena();
    /** One memo per column position, created on first use. */
    private readonly memos: Array<Memo | undefined> = [];
    /** Where `False` and `True` are in the arena. */
    private boolStart = new Int32Array(2);
    private boolEnd = new Int32Array(2);
    /**
     * Row-major, two per cell: where the cell's bytes start and end in the arena (reused across slices). One
     * flat array read in order keeps the copy loop below tight: it is most of the encoder's time.
     */
    private refs = new Int32Array(0);

    constructor() {
      this.startOver();
    }

    private startOver(): void {
      this.arena.used = 0;
      for (const memo of this.memos) memo?.clear();
      for (const bit of [0, 1]) {
        this.boolStart[bit] = this.arena.addAscii(bit ? 'True' : 'False');
        this.boolEnd[bit] = this.arena.used;
      }
    }

    encode(columns: CsvColumn[], rows: number, output = (bytes: number) => new Uint8Array(bytes)): Uint8Array {
      const width = columns.length;
      if (this.arena.used > ARENA_BYTES || this.memos.some((memo) => memo !== undefined && memo.count > MEMO_ENTRIES)) this.startOver();
      if (this.refs.length < rows * width * 2) this.refs = new Int32Array(rows * width * 2);
      const refs = this.refs;
      let bytes = 0;
      for (let c = 0; c < width; c++) bytes += this.column(c, columns[c], rows, refs, width);
      const all = this.arena.bytes;
      // Each cell is followed by a comma, the row's last one by \r instead, then \n.
      const length = bytes + rows * (width + 1);
      const out = output(length);
      let at = 0;
      let k = 0;
      for (let row = 0; row < rows; row++) {
        for (let c = 0; c < width; c++, k += 2) {
          let from = refs[k];
          const to = refs[k + 1];
          while (from < to) out[at++] = all[from++];
          out[at++] = 44;
        }
        out[at - 1] = 13;
        out[at++] = 10;
      }
      return out.subarray(0, length);
    }

    /** Fills column `c`'s cells in `refs` (row-major, `width` cells a row); returns the bytes of all its cells. */
    private column(c: number, column: CsvColumn, rows: number, refs: Int32Array, width: number): number {
      let length = 0;
      const stride = 2 * width;
      if (column.kind === 'text') {
        for (let row = 0, k = 2 * c; row < rows; row++, k += stride) {
          const part = utf8.encode(column.texts[row]);
          refs[k] = this.arena.addBytes(part);
          refs[k + 1] = refs[k] + part.length;
          length += part.length;
        }
        return length;
      }
      if (column.kind === 'bool') {
        const { bits, bitOffset } = column;
        const from = this.boolStart;
        const to = this.boolEnd;
        for (let row = 0, k = 2 * c; row < rows; row++, k += stride) {
          const bit = (bits[(bitOffset + row) >> 3] >> ((bitOffset + row) & 7)) & 1;
          refs[k] = from[bit];
          refs[k + 1] = to[bit];
          length += to[bit] - from[bit];
        }
      } else if (column.kind === 'dict') {
        // A few labels per slice, added to the arena each time (they may change from one batch to the next).
        const from = new Int32Array(column.labels.length);
        const to = new Int32Array(column.labels.length);
        column.labels.forEach((label, i) => {
          const part = utf8.encode(quote(String(label)));
          from[i] = this.arena.addBytes(part);
          to[i] = from[i] + part.length;
        });
        const indices = column.indices as unknown as ArrayLike<number>;
        for (let row = 0, k = 2 * c; row < rows; row++, k += stride) {
          const index = indices[row];
          refs[k] = from[index];
          refs[k + 1] = to[index];
          length += to[index] - from[index];
        }
      } else {
        let memo = this.memos[c];
        if (!memo) memo = this.memos[c] = new Memo();
        length = fillNumbers(memo, this.arena, column.kind, column.values, rows, refs, 2 * c, stride);
      }
      const validity = column.validity;
      if (validity) {
        const { bits, bitOffset } = validity;
        for (let row = 0, k = 2 * c; row < rows; row++, k += stride) {
          if (((bits[(bitOffset + row) >> 3] >> ((bitOffset + row) & 7)) & 1) === 0) {
            length -= refs[k + 1] - refs[k];
            refs[k + 1] = refs[k];
          }
        }
      }
      return length;
    }
  }

  /**
   * Points each row's cell (at refs[first + row * stride]) at its value's bytes in the arena, printing the values
   * the memo does not hold yet; returns the bytes of all the cells.
   */
  function fillNumbers(memo: Memo, arena: Arena, kind: string, values: ArrayBufferView, rows: number, refs: Int32Array, first: number, stride: number): number {
    let length = 0;
    const wide = kind === 'f64' || kind === 'i64';
    // The bits, as one or two 32-bit words per row; narrower integers are keyed by their value.
    const words = wide || kind === 'f32' || kind === 'i32' || kind === 'u32' ? new Uint32Array(values.buffer, values.byteOffset, wide ? rows * 2 : rows) : undefined;
    const numbers = values as unknown as ArrayLike<number | bigint>;
    const print = kind === 'f32' || kind === 'f64' ? (value: number | bigint) => pyFloatRepr(value as number) : String;
    let lastLow = 0;
    let lastHigh = 0;
    let from = 0;
    let to = 0;
    for (let row = 0, k = first; row < rows; row++, k += stride) {
      const low = words ? words[wide ? 2 * row : row] : (numbers[row] as number) >>> 0;
      const high = wide ? words![2 * row + 1] : 0;
      // Grid columns come in runs: a value with the bits of the row before takes its text without a lookup.
      if (row === 0 || low !== lastLow || high !== lastHigh) {
        const slot = memo.slotOf(low, high);
        let entry = memo.table[slot] - 1;
        if (entry < 0) entry = memo.add(arena, slot, low, high, print(numbers[row]));
        from = memo.start[entry];
        to = memo.end[entry];
        lastLow = low;
        lastHigh = high;
      }
      refs[k] = from;
      refs[k + 1] = to;
      length += to - from;
    }
    return length;
  }

  return { create: () => new Encoder() };
}
