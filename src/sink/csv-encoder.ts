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
  /** The CSV lines (each ending in `\r\n`) of `rows` rows; the encoder keeps each column's memo across calls. */
  encode(columns: CsvColumn[], rows: number): Uint8Array;
}

/**
 * Builds the encoder. Formatting is the CSV sink's: floats as Python's repr of the double they widen to (f32
 * included), integers in decimal, Bool as `True`/`False`, categories as their quoted labels, nulls as empty fields.
 */
export function csvEncoderFactory(pyFloatRepr: (value: number) => string): { create(): CsvBatchEncoder } {
  /** Distinct values a column's memo holds before it starts over at the next batch (a few MB at most per column). */
  const MEMO_ENTRIES = 1 << 16;

  /**
   * The bytes of each value a column printed, keyed by its bits (one or two 32-bit words: f32, i32, f64, i64), so
   * that -0 and 0 stay apart and NaN payloads do not matter: a result column holds tens to a few thousand distinct
   * values per 65 k rows (rows differing only in ZeRO, SP, recompute or offload share most of them), and printing
   * a float is most of CSV's cost. Open addressing over typed arrays, grown by doubling, at most half full.
   */
  class Memo {
    arena: Uint8Array = new Uint8Array(1 << 12);
    used = 0;
    /** Per entry: its key words and where its bytes are in the arena. */
    keyLow: Uint32Array = new Uint32Array(1 << 10);
    keyHigh: Uint32Array = new Uint32Array(1 << 10);
    start: Int32Array = new Int32Array(1 << 10);
    end: Int32Array = new Int32Array(1 << 10);
    count = 0;
    /** Entry index + 1 per slot, 0 for an empty slot. */
    table: Int32Array = new Int32Array(1 << 11);
    shift = 32 - 11;

    /** Called before a batch of `rows` rows: starts over when full, and makes room for every row being new. */
    prepare(rows: number): void {
      if (this.count > MEMO_ENTRIES) {
        this.count = 0;
        this.used = 0;
        this.table.fill(0);
      }
      const needed = this.count + rows;
      if (needed > this.keyLow.length) {
        let size = this.keyLow.length;
        while (size < needed) size *= 2;
        this.keyLow = grow32(this.keyLow, size);
        this.keyHigh = grow32(this.keyHigh, size);
        this.start = growI32(this.start, size);
        this.end = growI32(this.end, size);
      }
      if (needed * 2 > this.table.length) {
        let size = this.table.length;
        while (size < needed * 2) size *= 2;
        this.table = new Int32Array(size);
        this.shift = 32 - Math.log2(size);
        for (let entry = 0; entry < this.count; entry++) this.insert(this.slotOf(this.keyLow[entry], this.keyHigh[entry]), entry);
      }
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

    insert(slot: number, entry: number): void {
      this.table[slot] = entry + 1;
    }

    /** Adds an ASCII text for (low, high) at `slot` (from slotOf); returns its entry. */
    add(slot: number, low: number, high: number, text: string): number {
      const entry = this.count++;
      const length = text.length;
      if (this.used + length > this.arena.length) {
        const bigger = new Uint8Array(Math.max(this.arena.length * 2, this.used + length));
        bigger.set(this.arena.subarray(0, this.used));
        this.arena = bigger;
      }
      const arena = this.arena;
      let at = this.used;
      for (let i = 0; i < length; i++) arena[at++] = text.charCodeAt(i);
      this.keyLow[entry] = low;
      this.keyHigh[entry] = high;
      this.start[entry] = this.used;
      this.end[entry] = at;
      this.used = at;
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

  /** UTF-8 bytes of `texts` one after the other, and where each starts and ends. */
  function packTexts(texts: string[]): { arena: Uint8Array; start: Int32Array; end: Int32Array } {
    const encoder = new TextEncoder();
    const parts = texts.map((text) => encoder.encode(text));
    const arena = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
    const start = new Int32Array(texts.length);
    const end = new Int32Array(texts.length);
    let at = 0;
    parts.forEach((part, i) => {
      start[i] = at;
      arena.set(part, at);
      at += part.length;
      end[i] = at;
    });
    return { arena, start, end };
  }

  /** Quotes a field as Python's csv module does by default (QUOTE_MINIMAL). */
  function quote(text: string): string {
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  }

  const BOOL_TEXT = packTexts(['False', 'True']);

  class Encoder implements CsvBatchEncoder {
    /** One memo per column position, created on first use. */
    private readonly memos: Array<Memo | undefined> = [];
    /**
     * Row-major, two per cell: where the cell's bytes start and end in its column's arena (reused across batches).
     * One flat array read in order keeps the copy loop below tight: it is most of the encoder's time.
     */
    private refs = new Int32Array(0);

    encode(columns: CsvColumn[], rows: number): Uint8Array {
      const width = columns.length;
      if (this.refs.length < rows * width * 2) this.refs = new Int32Array(rows * width * 2);
      const refs = this.refs;
      const arenas: Uint8Array[] = [];
      let bytes = 0;
      for (let c = 0; c < width; c++) {
        const { arena, length } = this.column(c, columns[c], rows, refs, width);
        arenas.push(arena);
        bytes += length;
      }
      // The columns' arenas side by side, so that every cell copies from one array.
      const base = new Int32Array(width);
      const all = new Uint8Array(arenas.reduce((sum, arena) => sum + arena.length, 0));
      for (let c = 0, at = 0; c < width; at += arenas[c].length, c++) {
        base[c] = at;
        all.set(arenas[c], at);
      }
      // Each cell is followed by a comma, the row's last one by \r instead, then \n.
      const out = new Uint8Array(bytes + rows * (width + 1));
      let at = 0;
      let k = 0;
      for (let row = 0; row < rows; row++) {
        for (let c = 0; c < width; c++, k += 2) {
          let from = refs[k] + base[c];
          const to = refs[k + 1] + base[c];
          while (from < to) out[at++] = all[from++];
          out[at++] = 44;
        }
        out[at - 1] = 13;
        out[at++] = 10;
      }
      return out;
    }

    /**
     * Fills column `c`'s cells in `refs` (row-major, `width` cells a row); returns the arena they point into and
     * the bytes of all its cells.
     */
    private column(c: number, column: CsvColumn, rows: number, refs: Int32Array, width: number): { arena: Uint8Array; length: number } {
      let arena: Uint8Array;
      let length = 0;
      const stride = 2 * width;
      if (column.kind === 'text') {
        const packed = packTexts(column.texts);
        for (let row = 0, k = 2 * c; row < rows; row++, k += stride) {
          refs[k] = packed.start[row];
          refs[k + 1] = packed.end[row];
        }
        return { arena: packed.arena, length: packed.arena.length };
      }
      if (column.kind === 'bool') {
        const { bits, bitOffset } = column;
        const { start: from, end: to } = BOOL_TEXT;
        for (let row = 0, k = 2 * c; row < rows; row++, k += stride) {
          const bit = (bits[(bitOffset + row) >> 3] >> ((bitOffset + row) & 7)) & 1;
          refs[k] = from[bit];
          refs[k + 1] = to[bit];
          length += to[bit] - from[bit];
        }
        arena = BOOL_TEXT.arena;
      } else if (column.kind === 'dict') {
        const labels = packTexts(column.labels.map((label) => quote(String(label))));
        const indices = column.indices as unknown as ArrayLike<number>;
        for (let row = 0, k = 2 * c; row < rows; row++, k += stride) {
          const index = indices[row];
          refs[k] = labels.start[index];
          refs[k + 1] = labels.end[index];
          length += labels.end[index] - labels.start[index];
        }
        arena = labels.arena;
      } else {
        let memo = this.memos[c];
        if (!memo) memo = this.memos[c] = new Memo();
        memo.prepare(rows);
        length = fillNumbers(memo, column.kind, column.values, rows, refs, 2 * c, stride);
        arena = memo.arena.subarray(0, memo.used);
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
      return { arena, length };
    }
  }

  /**
   * Points each row's cell (at refs[first + row * stride]) at its value's bytes in the memo, printing the values
   * not seen yet; returns the bytes of all the cells.
   */
  function fillNumbers(memo: Memo, kind: string, values: ArrayBufferView, rows: number, refs: Int32Array, first: number, stride: number): number {
    let length = 0;
    const wide = kind === 'f64' || kind === 'i64';
    // The bits, as one or two 32-bit words per row; narrower integers are keyed by their value.
    const words = wide || kind === 'f32' || kind === 'i32' || kind === 'u32' ? new Uint32Array(values.buffer, values.byteOffset, wide ? rows * 2 : rows) : undefined;
    const numbers = values as unknown as ArrayLike<number | bigint>;
    const print = kind === 'f32' || kind === 'f64' ? (value: number | bigint) => pyFloatRepr(value as number) : String;
    for (let row = 0, k = first; row < rows; row++, k += stride) {
      const low = words ? words[wide ? 2 * row : row] : (numbers[row] as number) >>> 0;
      const high = wide ? words![2 * row + 1] : 0;
      const slot = memo.slotOf(low, high);
      let entry = memo.table[slot] - 1;
      if (entry < 0) entry = memo.add(slot, low, high, print(numbers[row]));
      const from = memo.start[entry];
      const to = memo.end[entry];
      refs[k] = from;
      refs[k + 1] = to;
      length += to - from;
    }
    return length;
  }

  return { create: () => new Encoder() };
}
