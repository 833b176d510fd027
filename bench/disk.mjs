// The disk's write bound: seconds to write `bytes` to a file in `dir` and fsync it (dd's conv=fdatasync), in one
// 8 MiB-block loop of the same size, the best of `tries`. The end-to-end rate of a sink is compared against this.
import { closeSync, fsyncSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export function diskWriteSeconds(bytes, dir, tries = 1) {
  const block = Buffer.alloc(8 << 20, 0x5a);
  let best = Infinity;
  for (let t = 0; t < tries; t++) {
    const path = join(dir, `disk-probe-${process.pid}`);
    const started = performance.now();
    const fd = openSync(path, 'w');
    try {
      for (let left = bytes; left > 0; left -= block.length) writeSync(fd, block, 0, Math.min(left, block.length));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
      rmSync(path, { force: true });
    }
    best = Math.min(best, (performance.now() - started) / 1000);
  }
  return best;
}
