export interface ProgressOptions {
  /** Candidates (or rows, when tick gets no candidate count) in the whole sweep; unknown means no % and no ETA. */
  total?: number;
  label: string;
  /** Where the bar goes (default stderr, so stdout stays clean for data). */
  stream?: NodeJS.WriteStream;
  /** False for `--quiet`. Even when enabled, nothing is written unless the stream is a terminal. */
  enabled: boolean;
  /** Clock in milliseconds, for tests. */
  now?: () => number;
}

const REDRAW_MS = 100;

/** 1234 → 1.23k, 12345678 → 12.3M. */
export function formatCount(n: number): string {
  if (n < 1000) return String(Math.round(n));
  const units = ['k', 'M', 'G', 'T'];
  let value = n;
  let unit = -1;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2)}${units[unit]}`;
}

/** Seconds as m:ss or h:mm:ss. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/**
 * A one-line progress bar redrawn in place (`\r`) on a terminal, at most 10 times a second: rows evaluated, configs
 * per second, and with a known total the percentage, a bar and the ETA. Writes nothing when disabled or when the
 * stream is not a TTY (a pipe, a file, CI), and starts no timer, so it never keeps the process alive.
 */
export class Progress {
  private readonly stream: NodeJS.WriteStream;
  private readonly active: boolean;
  private readonly now: () => number;
  private readonly started: number;
  private lastDraw = -Infinity;
  private rows = 0;
  private candidates?: number;
  private finished = false;

  constructor(private readonly opts: ProgressOptions) {
    this.stream = opts.stream ?? process.stderr;
    this.active = opts.enabled && this.stream.isTTY === true;
    this.now = opts.now ?? (() => performance.now());
    this.started = this.now();
  }

  /** Reports cumulative counts: valid rows so far and, optionally, candidates (grid points) examined so far. */
  tick(rowsDone: number, candidatesDone?: number): void {
    if (!this.active || this.finished) return;
    this.rows = rowsDone;
    if (candidatesDone !== undefined) this.candidates = candidatesDone;
    const now = this.now();
    if (now - this.lastDraw < REDRAW_MS) return;
    this.lastDraw = now;
    this.draw(now, false);
  }

  /** Draws the final state (with the elapsed time instead of the ETA) and ends the line. */
  finish(): void {
    if (!this.active || this.finished) return;
    this.finished = true;
    this.draw(this.now(), true);
    this.stream.write('\n');
  }

  private draw(now: number, done: boolean): void {
    const seconds = (now - this.started) / 1000;
    const configs = this.candidates ?? this.rows;
    const rate = seconds > 0 ? configs / seconds : 0;
    const total = this.opts.total;
    const parts = [`${formatCount(this.rows)} rows`, `${formatCount(rate)} configs/s`];
    let fraction: number | undefined;
    if (total !== undefined && total > 0) {
      fraction = Math.min(1, configs / total);
      parts.unshift(`${(fraction * 100).toFixed(fraction < 0.1 ? 1 : 0)}%`);
    }
    if (done) parts.push(`done in ${formatDuration(seconds)}`);
    else if (fraction !== undefined && rate > 0) parts.push(`ETA ${formatDuration((total! - configs) / rate)}`);
    const text = parts.join(' · ');
    const columns = this.stream.columns || 80;
    const room = columns - 1 - this.opts.label.length - text.length - 4;
    let line = `${this.opts.label} ${text}`;
    if (fraction !== undefined && room >= 10) {
      const width = Math.min(30, room);
      const filled = Math.round(fraction * width);
      line = `${this.opts.label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${text}`;
    }
    // \r back to the start, the line cut to the terminal's width (a wrapped line would not be overwritten), then
    // \x1b[K clears what a longer previous line left.
    this.stream.write(`\r${line.slice(0, columns - 1)}\x1b[K`);
  }
}
