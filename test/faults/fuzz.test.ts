/**
 * Fault injection, property-based fuzzing (fast-check, bounded in runs and time): random overrides, YAML documents
 * and command lines end either in a result or in exactly one InputError line with exit 2; never a stack trace, a
 * non-finite number in an accepted sweep, or a file left behind.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli.js';
import { loadConfig } from '../../src/config/load.js';
import { MODEL_SPEC, TRAINER_SPEC } from '../../src/config/model.js';
import { SEARCH_KEYS } from '../../src/config/space.js';
import { evaluateChunkOnCpu } from '../../src/engine/cpu/cpu.js';
import { InputError } from '../../src/errors.js';
import { prepareSweep } from '../../src/sweep.js';
import { cleanupTempDirs, makeTempDir, SMALL_MODEL_YAML, writeTempYaml } from '../helpers.js';

afterAll(cleanupTempDirs);

/** Values that have broken parsers before: hex, exponents, huge and tiny numbers, YAML syntax, aliases. */
const NASTY = fc.constantFrom(
  '0', '-1', '1', '2', '8', '0x10', '1e3', '1.0e+308', '1e30', '16777217', '.nan', '.inf', '-.inf', 'NaN', '1.5', '',
  '[]', '[8, 128]', '[8, x]', '{a: 1}', '*x', '&a 1', '!!binary aGk=', 'yes', 'off', '~', 'null', '"', "'", '[', '8..1', '1..64:*2',
  '1..10240', '0..4', 'bf16', 'fp8', 'FULLY_SHARD', '3', 'interleaved', 'full', 'none', 'true',
);
const VALUE = fc.oneof(
  { weight: 3, arbitrary: NASTY },
  { weight: 1, arbitrary: fc.integer({ min: -1000, max: 1 << 30 }).map(String) },
  { weight: 1, arbitrary: fc.double().map(String) },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
);

function keysOf(spec: typeof MODEL_SPEC, prefix: string): string[] {
  if (spec.kind !== 'object') return [prefix];
  return Object.entries(spec.fields).flatMap(([key, field]) => keysOf(field, `${prefix}.${key}`));
}
/** Search ranges that could make a sweep huge are left out: the property is about validation, not run time. */
const KEYS = [
  ...keysOf(MODEL_SPEC, 'model').filter((key) => !/global_batch_size|seq_length/.test(key)),
  ...keysOf(TRAINER_SPEC, 'trainer'),
  ...Object.keys(SEARCH_KEYS).filter((key) => !['ngpus_range', 'gbs_range', 'seq_range'].includes(key)),
];
const OVERRIDE = fc.tuple(fc.constantFrom('', '+', '++', '~'), fc.constantFrom(...KEYS), VALUE).map(([prefix, key, value]) =>
  prefix === '~' ? `~${key}` : `${prefix}${key}=${value}`,
);

function expectInputError(error: unknown, what: string): void {
  if (!(error instanceof InputError)) throw new Error(`${what}: not an InputError: ${(error as Error)?.stack ?? String(error)}`);
  expect(error.message).not.toContain('\n');
}

describe('fuzz: overrides', () => {
  it('each override list is refused with one InputError line, or gives finite results', () => {
    let accepted = 0;
    fc.assert(
      fc.property(fc.array(OVERRIDE, { minLength: 1, maxLength: 4 }), (overrides) => {
        let prepared;
        try {
          prepared = prepareSweep({ model: 'llama3.1-8b', overrides, search: { ngpus_range: '8,64' }, engine: 'cpu' });
        } catch (error) {
          expectInputError(error, overrides.join(' '));
          return;
        }
        accepted++;
        // Whatever is accepted is inside the bounds of src/config/model.ts: every number the model computes is finite.
        const first = prepared.grid.chunks(256).next();
        if (first.done) return;
        const { computed } = evaluateChunkOnCpu(prepared.formula, prepared.constants, first.value);
        computed.forEach((column, j) => {
          for (let i = 0; i < column.length; i++) {
            if (!Number.isFinite(column[i])) throw new Error(`${overrides.join(' ')}: ${prepared.formula.outputs[j]} is ${column[i]} at row ${i}`);
          }
        });
      }),
      { numRuns: 300, seed: 1414, interruptAfterTimeLimit: 60_000 },
    );
    expect(accepted).toBeGreaterThan(10);
  });
});

describe('fuzz: YAML model files', () => {
  const anchors = fc.integer({ min: 1, max: 12 }).chain((levels) =>
    fc.integer({ min: 2, max: 12 }).map((width) =>
      ['b0: &b0 [x, x]', ...Array.from({ length: levels }, (_, k) => `b${k + 1}: &b${k + 1} [${Array(width).fill(`*b${k}`).join(', ')}]`)].join('\n') +
        `\nmodel: *b${levels}\n`,
    ),
  );
  const mutated = fc
    .tuple(fc.integer({ min: 0, max: SMALL_MODEL_YAML.length - 1 }), fc.constantFrom('*', '&', ':', '[', '{', '\t', '"', '\n  ', '!!', '*a', '&a ', '- '))
    .map(([at, text]) => SMALL_MODEL_YAML.slice(0, at) + text + SMALL_MODEL_YAML.slice(at));
  const replaced = fc
    .tuple(fc.constantFrom('1024', '16', '4', '32000', '2048', '8', '64', '"swiglu"'), VALUE)
    .map(([from, to]) => SMALL_MODEL_YAML.replace(from, to));
  it('alias bombs, mutated and replaced documents: loaded or refused with one InputError line', () => {
    fc.assert(
      fc.property(fc.oneof(anchors, mutated, replaced, fc.string({ maxLength: 80 })), (text) => {
        const path = writeTempYaml(text);
        try {
          loadConfig(path);
        } catch (error) {
          expectInputError(error, JSON.stringify(text));
        }
      }),
      { numRuns: 300, seed: 1415, interruptAfterTimeLimit: 60_000 },
    );
  });
});

describe('fuzz: command lines', () => {
  const FLAGS = ['--tp', '--pp', '--cp', '--ep', '--mbs', '--zero', '--schedule', '--recompute', '--sp', '--vpp', '--headroom', '--where', '--top', '--by', '--per', '--order', '--max-buffer-mib', '--chunk-rows', '--workgroup-size', '--formula', '--hardware', '--param-dtype', '--optimizer-dtype'];
  const WHERE = fc.constantFrom('tp > 2', 'mfu / 0 > 1', '(((', 'fits', 'total_gib < 70 and mfu > 0.4', 'tp ** 2', "schedule == 'x'", 'nope > 1');
  const FLAG = fc.tuple(fc.constantFrom(...FLAGS), fc.oneof(VALUE, WHERE, fc.constantFrom('tokens_per_s', 'ngpus', 'asc', 'poc', 'full', 'a100-80gb')));
  it('exit 0 with a file, or exit 2 with one line and no file; never anything else', async () => {
    const dir = makeTempDir();
    let written = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(FLAG, { minLength: 1, maxLength: 4 }), async (flags) => {
        const out = join(dir, 'out.csv');
        const lines: string[] = [];
        const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
          lines.push(...String(chunk).split('\n').filter((line) => line.trim() !== ''));
          return true;
        });
        let code: number;
        try {
          code = await main(['sweep', '--model', 'llama3.1-8b', '--ngpus', '8', '--engine', 'cpu', '-q', ...flags.flat(), '-o', out]);
        } finally {
          spy.mockRestore();
        }
        const files = readdirSync(dir);
        const what = `${flags.flat().join(' ')} -> ${code}: ${lines.join(' | ')}`;
        expect([0, 2], what).toContain(code);
        expect(files.filter((name) => name.endsWith('.partial')), what).toEqual([]);
        if (code === 2) {
          expect(lines, what).toHaveLength(1);
          expect(lines[0], what).toMatch(/^parasweep: \S/);
          expect(files, what).toEqual([]);
        } else {
          expect(files, what).toEqual(['out.csv']);
          written++;
        }
        for (const name of files) (await import('node:fs')).rmSync(join(dir, name), { force: true });
      }),
      { numRuns: 60, seed: 1416, interruptAfterTimeLimit: 90_000 },
    );
    expect(written).toBeGreaterThan(0);
  });
});
