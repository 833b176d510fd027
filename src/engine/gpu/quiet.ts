import { closeSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';

/**
 * Runs `fn` with file descriptor 2 pointing at /dev/null, so that what Dawn prints from native code goes nowhere.
 *
 * Dawn writes its warnings ("Couldn't load Vulkan", "maxDynamic... artificially reduced") with fprintf(stderr) from
 * dawn/common/Log.cpp: no toggle, instance descriptor or callback of dawn.node reaches them. They are printed
 * synchronously inside `create()`/`requestAdapter()` (measured: before the call returns), so only those synchronous
 * calls are wrapped and no JavaScript runs while stderr is away.
 *
 * Node has no dup/dup2. With the optional dependency koffi (an FFI with prebuilt binaries) they come from the C
 * library, which works whatever stderr is. Without it, open() returning the lowest free descriptor does the same
 * for a terminal, a file or a pipe: close 2, open /dev/null (it becomes 2), and put the real stderr back from the copy
 * opened at /dev/fd/2. That copy cannot be opened for a socket (Node's own child-process pipes are socket pairs), so
 * there, and on Windows, `fn` runs with stderr as it is.
 */
export function withoutNativeStderr<T>(fn: () => T): T {
  if (process.platform === 'win32') return fn();
  const libc = loadLibc();
  if (libc) return withDup2(libc, fn);
  return withReopen(fn);
}

interface Libc {
  dup(fd: number): number;
  dup2(from: number, to: number): number;
  close(fd: number): number;
}

let libc: Libc | null | undefined;

function loadLibc(): Libc | null {
  if (libc !== undefined) return libc;
  libc = null;
  try {
    const require = createRequire(import.meta.url);
    const koffi = require('koffi') as { load(path: string): { func(signature: string): (...args: number[]) => number } };
    const lib = koffi.load(process.platform === 'darwin' ? '/usr/lib/libSystem.B.dylib' : 'libc.so.6');
    const dup = lib.func('int dup(int)');
    const dup2 = lib.func('int dup2(int, int)');
    const close = lib.func('int close(int)');
    libc = { dup: (fd) => dup(fd), dup2: (from, to) => dup2(from, to), close: (fd) => close(fd) };
  } catch {
    // No koffi for this platform, or a C library under another name (musl): the reopen fallback.
  }
  return libc;
}

function withDup2<T>(c: Libc, fn: () => T): T {
  const saved = c.dup(2);
  if (saved < 0) return fn();
  let devNull: number;
  try {
    devNull = openSync('/dev/null', 'w');
  } catch {
    c.close(saved);
    return fn();
  }
  const redirected = c.dup2(devNull, 2) === 2;
  closeSync(devNull);
  try {
    return fn();
  } finally {
    if (redirected) c.dup2(saved, 2);
    c.close(saved);
  }
}

function withReopen<T>(fn: () => T): T {
  let saved: number;
  try {
    // Appending, so that a stderr redirected to a file is not overwritten from offset 0 after the restore.
    saved = openSync('/dev/fd/2', 'a');
  } catch {
    return fn();
  }
  let redirected = false;
  try {
    closeSync(2);
    const devNull = openSync('/dev/null', 'w');
    redirected = devNull === 2;
    // Another thread took descriptor 2 between close and open: give stderr back at once.
    if (!redirected) {
      closeSync(devNull);
      reopenAt2(saved);
    }
    return fn();
  } finally {
    if (redirected) {
      closeSync(2);
      reopenAt2(saved);
    }
    closeSync(saved);
  }
}

/** Puts the saved stderr back on descriptor 2 (the lowest free one once 2 is closed). */
function reopenAt2(saved: number): void {
  try {
    const fd = openSync(`/dev/fd/${saved}`, 'a');
    if (fd !== 2) closeSync(fd);
  } catch {
    // Nothing left to restore from; stderr stays closed rather than pointing somewhere wrong.
  }
}
