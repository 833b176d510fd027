/**
 * A Parquet writer for parasweep's flat result columns (Int32, Int64, Float32, Float64, Bool, dictionary-encoded
 * strings; required or nullable, no nesting), written from the columns' typed arrays. Format facts are from the
 * Apache Parquet format specification (apache/parquet-format: README "File Format", Encodings.md,
 * src/main/thrift/parquet.thrift) and the Thrift compact protocol specification (apache/thrift:
 * doc/specs/thrift-compact-protocol.md).
 *
 * Layout: `PAR1`, then per row group and column one chunk (a dictionary page where the column is
 * dictionary-encoded, then one data page, format v1), then the FileMetaData footer, its length and `PAR1`.
 *
 * Everything the encoder needs is inside `parquetEncoderFactory`, which takes its one dependency (a page
 * compressor) as a parameter: the worker's source is this function's own text (`Function.prototype.toString`), as
 * for the CSV encoder (csv-encoder.ts), so the same code runs from dist/ and from the TypeScript sources.
 */

/** A column's physical kind, as the main thread describes it to the encoder. */
export type ParquetKind = 'i32' | 'i64' | 'f32' | 'f64' | 'bool' | 'dict';

export interface ParquetColumnSpec {
  name: string;
  kind: ParquetKind;
  nullable: boolean;
}

/** One column of a batch, as posted to the encoder (plain data). */
export interface ParquetColumn {
  /** i32/i64/f32/f64: the values; bool: the bits (bitOffset gives the first row's bit); dict: the indices. */
  values: ArrayBufferView;
  bitOffset: number;
  /** dict: the batch's labels. */
  labels?: string[];
  /** Null bitmap (1 = valid) and the first row's bit, or null when every row is valid. */
  validity: { bits: Uint8Array; bitOffset: number } | null;
}

export interface ParquetEncoder {
  /** Appends a batch; returns the bytes of the row groups it completed (possibly none). */
  write(columns: ParquetColumn[], rows: number): Uint8Array[];
  /** The last row group and the footer. */
  finish(): Uint8Array[];
}

export interface ParquetEncoderOptions {
  columns: ParquetColumnSpec[];
  rowGroupRows: number;
  /** Key-value metadata of the file (the Arrow schema's, and `ARROW:schema`). */
  metadata: Array<[string, string]>;
  createdBy: string;
  /** The Parquet CompressionCodec number of `compress`'s output (0 = UNCOMPRESSED). */
  codec: number;
}

/**
 * Builds the encoder. `compress` turns a page's bytes into the codec's bytes (identity for UNCOMPRESSED).
 */
export function parquetEncoderFactory(compress: (bytes: Uint8Array) => Uint8Array): {
  create(options: ParquetEncoderOptions): ParquetEncoder;
} {
  // parquet.thrift enums.
  const TYPE = { BOOLEAN: 0, INT32: 1, INT64: 2, FLOAT: 4, DOUBLE: 5, BYTE_ARRAY: 6 };
  const ENCODING = { PLAIN: 0, RLE: 3, RLE_DICTIONARY: 8 };
  const PAGE = { DATA_PAGE: 0, DICTIONARY_PAGE: 2 };
  const REPETITION = { REQUIRED: 0, OPTIONAL: 1 };
  /** ConvertedType UTF8, for readers that predate LogicalType. */
  const CONVERTED_UTF8 = 0;
  // Thrift compact protocol type ids.
  const T = { TRUE: 1, FALSE: 2, I16: 4, I32: 5, I64: 6, BINARY: 8, LIST: 9, STRUCT: 12 };
  /**
   * Distinct values up to which a numeric column chunk is dictionary-encoded: at most 12-bit indices instead of
   * 32 or 64 bits per value (the grid's columns have a few to a few hundred values per row group; the result
   * columns that vary per row have tens of thousands and stay PLAIN). 2^14 and 2^16 gave larger gzip-compressed
   * files (18.0 and 19.3 MB against 17.4 MB) for more CPU (bench/sinks.mjs rows, 2026-12-02).
   */
  const DICTIONARY_MAX_ENTRIES = 1 << 12;
  const utf8 = new TextEncoder();

  /** A growable byte buffer. */
  class Bytes {
    bytes: Uint8Array;
    length = 0;
    constructor(capacity = 1 << 10) {
      this.bytes = new Uint8Array(capacity);
    }
    reserve(extra: number): void {
      if (this.length + extra <= this.bytes.length) return;
      const bigger = new Uint8Array(Math.max(this.bytes.length * 2, this.length + extra));
      bigger.set(this.bytes.subarray(0, this.length));
      this.bytes = bigger;
    }
    byte(value: number): void {
      this.reserve(1);
      this.bytes[this.length++] = value;
    }
    append(part: Uint8Array): void {
      this.reserve(part.length);
      this.bytes.set(part, this.length);
      this.length += part.length;
    }
    /** Unsigned LEB128 of a non-negative integer below 2^53. */
    varint(value: number): void {
      while (value >= 0x80) {
        this.byte((value % 0x80) | 0x80);
        value = Math.floor(value / 0x80);
      }
      this.byte(value);
    }
    u32le(value: number): void {
      this.reserve(4);
      new DataView(this.bytes.buffer, this.bytes.byteOffset).setUint32(this.length, value >>> 0, true);
      this.length += 4;
    }
    view(): Uint8Array {
      return this.bytes.subarray(0, this.length);
    }
  }

  /** Thrift compact protocol writer: field headers with deltas, zigzag varints, nested structs. */
  class Thrift {
    readonly out = new Bytes();
    private last = 0;
    private readonly stack: number[] = [];
    private field(id: number, type: number): void {
      const delta = id - this.last;
      if (delta > 0 && delta <= 15) this.out.byte((delta << 4) | type);
      else {
        this.out.byte(type);
        this.zigzag(id);
      }
      this.last = id;
    }
    private zigzag(value: number): void {
      this.out.varint(value >= 0 ? value * 2 : -value * 2 - 1);
    }
    i32(id: number, value: number): this {
      this.field(id, T.I32);
      this.zigzag(value);
      return this;
    }
    i64(id: number, value: number): this {
      this.field(id, T.I64);
      this.zigzag(value);
      return this;
    }
    i16(id: number, value: number): this {
      this.field(id, T.I16);
      this.zigzag(value);
      return this;
    }
    bool(id: number, value: boolean): this {
      this.field(id, value ? T.TRUE : T.FALSE);
      return this;
    }
    binary(id: number, value: Uint8Array): this {
      this.field(id, T.BINARY);
      this.out.varint(value.length);
      this.out.append(value);
      return this;
    }
    string(id: number, value: string): this {
      return this.binary(id, utf8.encode(value));
    }
    begin(id: number): this {
      this.field(id, T.STRUCT);
      return this.enter();
    }
    /** A struct as a list element (no field header). */
    enter(): this {
      this.stack.push(this.last);
      this.last = 0;
      return this;
    }
    end(): this {
      this.out.byte(0);
      this.last = this.stack.pop() ?? 0;
      return this;
    }
    list(id: number, elementType: number, size: number): this {
      this.field(id, T.LIST);
      if (size < 15) this.out.byte((size << 4) | elementType);
      else {
        this.out.byte(0xf0 | elementType);
        this.out.varint(size);
      }
      return this;
    }
    /** List elements. */
    i32Item(value: number): this {
      this.zigzag(value);
      return this;
    }
    stringItem(value: string): this {
      const bytes = utf8.encode(value);
      this.out.varint(bytes.length);
      this.out.append(bytes);
      return this;
    }
  }

  /** Bits needed for values 0..max (at least 1: some readers reject a bit width of 0). */
  function bitWidth(max: number): number {
    let width = 1;
    while (max >= 2 ** width) width++;
    return width;
  }

  /**
   * The RLE / bit-packing hybrid encoding (Encodings.md) of values[0..count) at `width` bits (at most 24): runs of
   * 8 or more equal values (constant grid columns, all-valid definition levels) as RLE runs, the rest bit-packed in
   * groups of 8, the last group padded with zeros.
   */
  function hybrid(out: Bytes, values: ArrayLike<number>, count: number, width: number): void {
    const valueBytes = (width + 7) >> 3;
    const literal = (from: number, to: number): void => {
      const groups = Math.ceil((to - from) / 8);
      out.varint(groups * 2 + 1);
      out.reserve(groups * width);
      const bytes = out.bytes;
      let at = out.length;
      let buffer = 0;
      let bits = 0;
      const end = from + groups * 8;
      for (let i = from; i < end; i++) {
        buffer |= (i < to ? values[i] : 0) << bits;
        bits += width;
        while (bits >= 8) {
          bytes[at++] = buffer & 0xff;
          buffer >>>= 8;
          bits -= 8;
        }
      }
      out.length = at;
    };
    let literalStart = 0;
    let i = 0;
    while (i < count) {
      const value = values[i];
      let j = i + 1;
      while (j < count && values[j] === value) j++;
      if (j - i >= 8) {
        // A bit-packed run holds a multiple of 8 values: the run's first few values complete the last group.
        const runStart = i + ((8 - ((i - literalStart) & 7)) & 7);
        if (j - runStart >= 8) {
          if (runStart > literalStart) literal(literalStart, runStart);
          out.varint((j - runStart) * 2);
          for (let b = 0; b < valueBytes; b++) out.byte((value >>> (8 * b)) & 0xff);
          literalStart = j;
        }
      }
      i = j;
    }
    if (literalStart < count) literal(literalStart, count);
  }

  /** Open-addressing set of 1- or 2-word keys, giving each new key the next index; -1 once `limit` is passed. */
  class KeyIndex {
    keys: Uint32Array;
    table: Int32Array;
    count = 0;
    constructor(
      private readonly words: number,
      readonly limit: number,
    ) {
      this.keys = new Uint32Array(limit * words);
      let size = 16;
      while (size < limit * 2) size *= 2;
      this.table = new Int32Array(size);
    }
    index(low: number, high: number): number {
      const table = this.table;
      const mask = table.length - 1;
      const keys = this.keys;
      const words = this.words;
      let slot = (Math.imul(low ^ Math.imul(high, 0x85ebca6b), 0x9e3779b1) >>> 0) & mask;
      for (;;) {
        const entry = table[slot] - 1;
        if (entry < 0) break;
        if (keys[entry * words] === low && (words === 1 || keys[entry * words + 1] === high)) return entry;
        slot = (slot + 1) & mask;
      }
      if (this.count === this.limit) return -1;
      const entry = this.count++;
      keys[entry * words] = low;
      if (words === 2) keys[entry * words + 1] = high;
      table[slot] = entry + 1;
      return entry;
    }
  }

  /** A column's values of the current row group. */
  class ColumnChunk {
    /** Per row: 1 valid, 0 null (nullable columns only). */
    readonly defined: Uint8Array | null;
    /** Valid values only (i32/i64/f32/f64), as their bytes. */
    readonly data: Uint8Array;
    readonly width: number;
    /** Bool: one byte per valid value. Dict: the chunk's dictionary index per valid value. */
    readonly items: Uint8Array | Int32Array | null;
    /** Dict: the chunk's labels, and each label's index. */
    readonly labels: string[] = [];
    readonly labelIndex = new Map<string, number>();
    values = 0;

    constructor(
      readonly spec: ParquetColumnSpec,
      capacity: number,
    ) {
      this.defined = spec.nullable ? new Uint8Array(capacity) : null;
      this.width = spec.kind === 'i64' || spec.kind === 'f64' ? 8 : 4;
      const numeric = spec.kind !== 'bool' && spec.kind !== 'dict';
      this.data = new Uint8Array(numeric ? capacity * this.width : 0);
      this.items = spec.kind === 'bool' ? new Uint8Array(capacity) : spec.kind === 'dict' ? new Int32Array(capacity) : null;
    }

    reset(): void {
      this.values = 0;
      this.labels.length = 0;
      this.labelIndex.clear();
    }

    /** Appends rows [from, from + count) of `column`, the chunk having `rowsBefore` rows. */
    append(column: ParquetColumn, from: number, count: number, rowsBefore: number): void {
      const validity = column.validity;
      const isValid = (row: number): boolean =>
        validity === null || ((validity.bits[(validity.bitOffset + row) >> 3] >> ((validity.bitOffset + row) & 7)) & 1) === 1;
      if (this.defined) for (let r = 0; r < count; r++) this.defined[rowsBefore + r] = isValid(from + r) ? 1 : 0;
      const kind = this.spec.kind;
      if (kind === 'bool') {
        const bits = column.values as Uint8Array;
        const items = this.items as Uint8Array;
        let at = this.values;
        for (let r = from; r < from + count; r++) {
          if (validity !== null && !isValid(r)) continue;
          const bit = column.bitOffset + r;
          items[at++] = (bits[bit >> 3] >> (bit & 7)) & 1;
        }
        this.values = at;
      } else if (kind === 'dict') {
        const indices = column.values as unknown as ArrayLike<number>;
        const labels = column.labels!;
        const remap = new Int32Array(labels.length).fill(-1);
        const items = this.items as Int32Array;
        for (let r = from; r < from + count; r++) {
          if (validity !== null && !isValid(r)) continue;
          const index = indices[r];
          let mapped = remap[index];
          if (mapped < 0) {
            const label = labels[index];
            mapped = this.labelIndex.get(label) ?? -1;
            if (mapped < 0) {
              mapped = this.labels.length;
              this.labels.push(label);
              this.labelIndex.set(label, mapped);
            }
            remap[index] = mapped;
          }
          items[this.values++] = mapped;
        }
      } else {
        const width = this.width;
        const source = new Uint8Array(column.values.buffer, column.values.byteOffset, column.values.byteLength);
        if (validity === null) {
          this.data.set(source.subarray(from * width, (from + count) * width), this.values * width);
          this.values += count;
        } else {
          for (let r = from; r < from + count; r++) {
            if (!isValid(r)) continue;
            this.data.set(source.subarray(r * width, (r + 1) * width), this.values * width);
            this.values++;
          }
        }
      }
    }
  }

  /** Byte order of statistics values: how two PLAIN-encoded values of the column compare. */
  function compareFor(kind: ParquetKind): (a: Uint8Array, b: Uint8Array) => number {
    const view = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (kind === 'i32') return (a, b) => view(a).getInt32(0, true) - view(b).getInt32(0, true);
    if (kind === 'i64') {
      return (a, b) => {
        const x = view(a).getBigInt64(0, true);
        const y = view(b).getBigInt64(0, true);
        return x < y ? -1 : x > y ? 1 : 0;
      };
    }
    if (kind === 'f32') return (a, b) => view(a).getFloat32(0, true) - view(b).getFloat32(0, true);
    if (kind === 'f64') return (a, b) => view(a).getFloat64(0, true) - view(b).getFloat64(0, true);
    if (kind === 'bool') return (a, b) => a[0] - b[0];
    // Strings: unsigned byte-wise (parquet.thrift's ColumnOrder for UTF8).
    return (a, b) => {
      const n = Math.min(a.length, b.length);
      for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
      return a.length - b.length;
    };
  }

  interface ChunkMeta {
    spec: ParquetColumnSpec;
    encodings: number[];
    values: number;
    codec: number;
    uncompressed: number;
    compressed: number;
    dataPageOffset: number;
    dictionaryPageOffset: number | null;
    nulls: number;
    min: Uint8Array | null;
    max: Uint8Array | null;
  }

  class Encoder implements ParquetEncoder {
    private readonly chunks: ColumnChunk[];
    private rows = 0;
    private offset = 0;
    private totalRows = 0;
    private readonly groups: Array<{ rows: number; chunks: ChunkMeta[]; offset: number; bytes: number; compressed: number }> = [];
    private started = false;
    /** Reused from chunk to chunk (fresh memory is slow to touch on the VMs this was measured on). */
    private readonly scratch: Int32Array;
    private readonly body = new Bytes(1 << 16);
    private readonly out = new Bytes(1 << 20);

    constructor(private readonly options: ParquetEncoderOptions) {
      this.chunks = options.columns.map((spec) => new ColumnChunk(spec, options.rowGroupRows));
      this.scratch = new Int32Array(options.rowGroupRows);
    }

    private magic(out: Uint8Array[]): void {
      if (this.started) return;
      this.started = true;
      out.push(utf8.encode('PAR1'));
      this.offset = 4;
    }

    write(columns: ParquetColumn[], rows: number): Uint8Array[] {
      const out: Uint8Array[] = [];
      this.magic(out);
      let from = 0;
      while (from < rows) {
        const count = Math.min(rows - from, this.options.rowGroupRows - this.rows);
        for (let c = 0; c < columns.length; c++) this.chunks[c].append(columns[c], from, count, this.rows);
        this.rows += count;
        from += count;
        if (this.rows === this.options.rowGroupRows) out.push(this.rowGroup());
      }
      return out;
    }

    finish(): Uint8Array[] {
      const out: Uint8Array[] = [];
      this.magic(out);
      if (this.rows > 0) out.push(this.rowGroup());
      out.push(this.footer());
      return out;
    }

    /** The current row group's column chunks, as bytes; their metadata is kept for the footer. */
    private rowGroup(): Uint8Array {
      const bytes = this.out;
      bytes.length = 0;
      const start = this.offset;
      const metas: ChunkMeta[] = [];
      let uncompressedTotal = 0;
      for (const chunk of this.chunks) {
        const meta = this.columnChunk(chunk, this.rows, bytes);
        uncompressedTotal += meta.uncompressed;
        metas.push(meta);
        chunk.reset();
      }
      this.groups.push({ rows: this.rows, chunks: metas, offset: start, bytes: uncompressedTotal, compressed: bytes.length });
      this.totalRows += this.rows;
      this.rows = 0;
      this.offset += bytes.length;
      return bytes.view().slice();
    }

    /** Appends one page (header, then `stored`: the body as compressed, or as it is) to `out`; returns its sizes. */
    private page(out: Bytes, type: number, body: Uint8Array, stored: Uint8Array, header: (thrift: Thrift) => void): [number, number] {
      const thrift = new Thrift();
      header(thrift.i32(1, type).i32(2, body.length).i32(3, stored.length));
      thrift.out.byte(0);
      const head = thrift.out.view();
      out.append(head);
      out.append(stored);
      return [head.length + body.length, head.length + stored.length];
    }

    private columnChunk(chunk: ColumnChunk, rows: number, out: Bytes): ChunkMeta {
      const spec = chunk.spec;
      const count = chunk.values;
      const nulls = rows - count;
      const compare = compareFor(spec.kind);
      let min: Uint8Array | null = null;
      let max: Uint8Array | null = null;
      const consider = (value: Uint8Array): void => {
        if (spec.kind === 'f32' || spec.kind === 'f64') {
          const number = spec.kind === 'f32' ? new DataView(value.buffer, value.byteOffset).getFloat32(0, true) : new DataView(value.buffer, value.byteOffset).getFloat64(0, true);
          if (Number.isNaN(number)) return; // NaN takes no part in float statistics (parquet.thrift, ColumnOrder)
        }
        if (min === null || compare(value, min) < 0) min = value;
        if (max === null || compare(value, max) > 0) max = value;
      };

      // Dictionary: the chunk's entries (PLAIN) and each value's entry.
      let dictionary: Uint8Array | null = null;
      let dictionaryEntries = 0;
      let indices: Int32Array | null = null;
      if (spec.kind === 'dict') {
        const plain = new Bytes();
        for (const label of chunk.labels) {
          const bytes = utf8.encode(label);
          plain.u32le(bytes.length);
          plain.append(bytes);
          consider(bytes);
        }
        dictionary = plain.view();
        dictionaryEntries = chunk.labels.length;
        indices = chunk.items as Int32Array;
      } else if (spec.kind !== 'bool' && count > 0) {
        const words = chunk.width / 4;
        const keys = new Uint32Array(chunk.data.buffer, chunk.data.byteOffset, count * words);
        const index = new KeyIndex(words, Math.min(DICTIONARY_MAX_ENTRIES, Math.max(1, count >> 2)));
        const found = this.scratch;
        let ok = true;
        // Grid columns come in runs of equal values: a value equal to the one before takes its entry unhashed.
        let entry = -1;
        if (words === 1) {
          for (let i = 0; i < count; i++) {
            if (i === 0 || keys[i] !== keys[i - 1]) entry = index.index(keys[i], 0);
            if (entry < 0) {
              ok = false;
              break;
            }
            found[i] = entry;
          }
        } else {
          for (let i = 0; i < count; i++) {
            if (i === 0 || keys[2 * i] !== keys[2 * i - 2] || keys[2 * i + 1] !== keys[2 * i - 1]) entry = index.index(keys[2 * i], keys[2 * i + 1]);
            if (entry < 0) {
              ok = false;
              break;
            }
            found[i] = entry;
          }
        }
        if (ok) {
          dictionaryEntries = index.count;
          dictionary = new Uint8Array(index.keys.buffer, 0, dictionaryEntries * chunk.width).slice();
          indices = found;
          for (let e = 0; e < dictionaryEntries; e++) consider(dictionary.subarray(e * chunk.width, (e + 1) * chunk.width));
        }
      }

      const levels = new Bytes(16);
      if (chunk.defined) {
        // Definition levels (v1 page): their byte length, then the hybrid encoding at 1 bit.
        const encoded = new Bytes(64);
        hybrid(encoded, chunk.defined, rows, 1);
        levels.u32le(encoded.length);
        levels.append(encoded.view());
      }

      const body = this.body;
      body.length = 0;
      body.append(levels.view());
      if (indices) {
        const width = bitWidth(Math.max(0, dictionaryEntries - 1));
        body.byte(width);
        hybrid(body, indices, count, width);
      } else if (spec.kind === 'bool') {
        const items = chunk.items as Uint8Array;
        const packed = new Uint8Array((count + 7) >> 3);
        for (let i = 0; i < count; i++) packed[i >> 3] |= items[i] << (i & 7);
        body.append(packed);
        for (let i = 0; i < count && (min === null || max === null || min[0] !== 0 || max[0] !== 1); i++) consider(items.subarray(i, i + 1));
      } else {
        const width = chunk.width;
        body.append(chunk.data.subarray(0, count * width));
        const [low, high] = extremes(spec.kind, chunk.data, count);
        if (low >= 0) {
          consider(chunk.data.subarray(low * width, (low + 1) * width));
          consider(chunk.data.subarray(high * width, (high + 1) * width));
        }
      }
      // The codec is per column chunk: compressed where that makes the chunk smaller (not the constant columns'
      // few bytes, which the codec's header outgrows), stored as they are otherwise.
      const pages = dictionary ? [dictionary, body.view()] : [body.view()];
      let stored = pages.map((page) => compress(page));
      const sizes = (list: Uint8Array[]) => list.reduce((total, page) => total + page.length, 0);
      let codec = this.options.codec;
      if (sizes(stored) >= sizes(pages)) {
        stored = pages;
        codec = 0;
      }
      let uncompressed = 0;
      let compressed = 0;
      const add = ([u, c]: [number, number]): void => {
        uncompressed += u;
        compressed += c;
      };
      let dictionaryPageOffset: number | null = null;
      if (dictionary) {
        dictionaryPageOffset = this.offset + out.length;
        add(this.page(out, PAGE.DICTIONARY_PAGE, dictionary, stored[0], (thrift) => thrift.begin(7).i32(1, dictionaryEntries).i32(2, ENCODING.PLAIN).end()));
      }
      const dataPageOffset = this.offset + out.length;
      const encoding = indices ? ENCODING.RLE_DICTIONARY : ENCODING.PLAIN;
      add(
        this.page(out, PAGE.DATA_PAGE, body.view(), stored[stored.length - 1], (thrift) =>
          thrift.begin(5).i32(1, rows).i32(2, encoding).i32(3, ENCODING.RLE).i32(4, ENCODING.RLE).end(),
        ),
      );
      return {
        spec,
        encodings: indices ? [ENCODING.PLAIN, ENCODING.RLE, ENCODING.RLE_DICTIONARY] : [ENCODING.PLAIN, ENCODING.RLE],
        values: rows,
        codec,
        uncompressed,
        compressed,
        dataPageOffset,
        dictionaryPageOffset,
        nulls,
        min: zeroSigned(spec.kind, min, true),
        max: zeroSigned(spec.kind, max, false),
      };
    }

    private footer(): Uint8Array {
      const { columns, metadata, createdBy } = this.options;
      const thrift = new Thrift();
      thrift.i32(1, 1);
      // Schema: the root, then one leaf per column.
      thrift.list(2, T.STRUCT, columns.length + 1);
      thrift.enter().string(4, 'arrow_schema').i32(5, columns.length).end();
      for (const spec of columns) {
        thrift.enter().i32(1, physicalType(spec.kind)).i32(3, spec.nullable ? REPETITION.OPTIONAL : REPETITION.REQUIRED).string(4, spec.name);
        if (spec.kind === 'dict') thrift.i32(6, CONVERTED_UTF8).begin(10).begin(1).end().end();
        thrift.end();
      }
      thrift.i64(3, this.totalRows);
      thrift.list(4, T.STRUCT, this.groups.length);
      this.groups.forEach((group, ordinal) => {
        thrift.enter();
        thrift.list(1, T.STRUCT, group.chunks.length);
        for (const meta of group.chunks) {
          thrift.enter().i64(2, 0).begin(3);
          thrift.i32(1, physicalType(meta.spec.kind));
          thrift.list(2, T.I32, meta.encodings.length);
          for (const encoding of meta.encodings) thrift.i32Item(encoding);
          thrift.list(3, T.BINARY, 1).stringItem(meta.spec.name);
          thrift.i32(4, meta.codec).i64(5, meta.values).i64(6, meta.uncompressed).i64(7, meta.compressed).i64(9, meta.dataPageOffset);
          if (meta.dictionaryPageOffset !== null) thrift.i64(11, meta.dictionaryPageOffset);
          thrift.begin(12);
          // Deprecated min/max (1, 2) too for the numeric types, whose old sort order was already the typed one.
          if (meta.max && meta.spec.kind !== 'dict') thrift.binary(1, meta.max);
          if (meta.min && meta.spec.kind !== 'dict') thrift.binary(2, meta.min);
          thrift.i64(3, meta.nulls);
          if (meta.max) thrift.binary(5, meta.max);
          if (meta.min) thrift.binary(6, meta.min);
          // Exact bounds (is_max_value_exact, is_min_value_exact): the values themselves, never truncated.
          if (meta.max) thrift.bool(7, true);
          if (meta.min) thrift.bool(8, true);
          thrift.end();
          thrift.end().end();
        }
        thrift.i64(2, group.bytes).i64(3, group.rows).i64(5, group.offset).i64(6, group.compressed).i16(7, ordinal);
        thrift.end();
      });
      thrift.list(5, T.STRUCT, metadata.length);
      for (const [key, value] of metadata) thrift.enter().string(1, key).string(2, value).end();
      thrift.string(6, createdBy);
      // TypeDefinedOrder for every leaf: min/max above compare as the type does (signed, IEEE, unsigned bytes).
      thrift.list(7, T.STRUCT, columns.length);
      for (let c = 0; c < columns.length; c++) thrift.enter().begin(1).end().end();
      thrift.out.byte(0);
      const out = new Bytes(thrift.out.length + 8);
      out.append(thrift.out.view());
      out.u32le(thrift.out.length);
      out.append(utf8.encode('PAR1'));
      return out.view();
    }
  }

  /** Where the smallest and largest of `count` values are (NaN skipped), or [-1, -1] when there are none. */
  function extremes(kind: ParquetKind, data: Uint8Array, count: number): [number, number] {
    let low = -1;
    let high = -1;
    if (kind === 'i64') {
      const values = new BigInt64Array(data.buffer, data.byteOffset, count);
      for (let i = 0; i < count; i++) {
        if (low < 0 || values[i] < values[low]) low = i;
        if (high < 0 || values[i] > values[high]) high = i;
      }
      return [low, high];
    }
    const values = kind === 'i32' ? new Int32Array(data.buffer, data.byteOffset, count) : kind === 'f32' ? new Float32Array(data.buffer, data.byteOffset, count) : new Float64Array(data.buffer, data.byteOffset, count);
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < count; i++) {
      const value = values[i];
      if (value < min || (low < 0 && value === min)) {
        min = value;
        low = i;
      }
      if (value > max || (high < 0 && value === max)) {
        max = value;
        high = i;
      }
    }
    return [low, high];
  }

  function physicalType(kind: ParquetKind): number {
    return { i32: TYPE.INT32, i64: TYPE.INT64, f32: TYPE.FLOAT, f64: TYPE.DOUBLE, bool: TYPE.BOOLEAN, dict: TYPE.BYTE_ARRAY }[kind];
  }

  /** A copy of a bound; a zero min is written as -0.0 and a zero max as +0.0 (parquet.thrift, ColumnOrder: floating point). */
  function zeroSigned(kind: ParquetKind, value: Uint8Array | null, isMin: boolean): Uint8Array | null {
    // A copy: `value` is a view of the chunk's buffers, which the next row group overwrites.
    if (value === null || (kind !== 'f32' && kind !== 'f64')) return value && value.slice();
    const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
    const number = kind === 'f32' ? view.getFloat32(0, true) : view.getFloat64(0, true);
    if (number !== 0) return value.slice();
    const out = new Uint8Array(value.length);
    const outView = new DataView(out.buffer);
    if (kind === 'f32') outView.setFloat32(0, isMin ? -0 : 0, true);
    else outView.setFloat64(0, isMin ? -0 : 0, true);
    return out;
  }

  return { create: (options) => new Encoder(options) };
}
