import { describe, expect, it } from 'vitest';
import { formatCount, formatDuration, Progress } from '../src/progress.js';

function fakeStream(isTTY: boolean, columns = 100): { stream: NodeJS.WriteStream; output: () => string } {
  const chunks: string[] = [];
  const stream = {
    isTTY,
    columns,
    write(chunk: string) {
      chunks.push(chunk);
      return true;
    },
  } as unknown as NodeJS.WriteStream;
  return { stream, output: () => chunks.join('') };
}

describe('Progress', () => {
  it('writes nothing when the stream is not a terminal', () => {
    const { stream, output } = fakeStream(false);
    const progress = new Progress({ total: 1000, label: 'sweep', stream, enabled: true });
    progress.tick(10, 100);
    progress.tick(20, 500);
    progress.finish();
    expect(output()).toBe('');
  });

  it('writes nothing when disabled (--quiet), even on a terminal', () => {
    const { stream, output } = fakeStream(true);
    const progress = new Progress({ total: 1000, label: 'sweep', stream, enabled: false });
    progress.tick(10, 100);
    progress.finish();
    expect(output()).toBe('');
  });

  it('draws a bar with percentage, rows, rate and ETA on a terminal, at most 10 times a second', () => {
    const { stream, output } = fakeStream(true, 100);
    let clock = 0;
    const progress = new Progress({ total: 10_000_000, label: 'sweep', stream, enabled: true, now: () => clock });
    clock = 2000;
    progress.tick(1_500_000, 2_500_000); // 1.25M configs/s, 7.5M left → 6 s
    const first = output();
    expect(first.startsWith('\r')).toBe(true);
    expect(first).toContain('sweep [');
    expect(first).toContain('25%');
    expect(first).toContain('1.50M rows');
    expect(first).toContain('1.25M configs/s');
    expect(first).toContain('ETA 0:06');
    expect(first.replace(/\x1b\[K$/, '').length).toBeLessThanOrEqual(100);

    clock = 2050; // within 100 ms of the last draw: skipped
    progress.tick(1_600_000, 2_600_000);
    expect(output()).toBe(first);

    clock = 4000;
    progress.tick(6_000_000, 10_000_000);
    expect(output().slice(first.length)).toContain('100%');

    progress.finish();
    expect(output()).toMatch(/done in 0:04\x1b\[K\n$/);
  });

  it('without a total shows rows and rate but no percentage or ETA', () => {
    const { stream, output } = fakeStream(true, 60);
    let clock = 0;
    const progress = new Progress({ label: 'sweep', stream, enabled: true, now: () => clock });
    clock = 1000;
    progress.tick(5000);
    expect(output()).toContain('5.00k rows · 5.00k configs/s');
    expect(output()).not.toContain('ETA');
    expect(output()).not.toContain('%');
  });

  it('formats counts and durations', () => {
    expect(formatCount(999)).toBe('999');
    expect(formatCount(12_345)).toBe('12.3k');
    expect(formatCount(123_456_789)).toBe('123M');
    expect(formatDuration(59.6)).toBe('1:00');
    expect(formatDuration(3725)).toBe('1:02:05');
  });
});
