import { join } from 'node:path';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { listBundled } from '../src/config/load.js';
import { loadSweepFile } from '../src/config/sweepfile.js';
import { prepareSweep } from '../src/sweep.js';

const tempDirs: string[] = [];
function makeTempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'parasweep-test-'));
  tempDirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});
function writeTempYaml(text: string, name: string): string {
  const path = join(makeTempDir(), name);
  writeFileSync(path, text);
  return path;
}

function loadText(text: string): ReturnType<typeof loadSweepFile> {
  return loadSweepFile(writeTempYaml(text, 'sweep.yaml'));
}

function errorOf(text: string): string {
  try {
    loadText(text);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected an error');
}

describe('bundled sweep files', () => {
  it('are the three documented ones', () => {
    expect(listBundled('sweeps')).toEqual(['llama405b-every-gpu-count', 'mixtral-wide', 'poc-405b']);
  });

  it.each(['llama405b-every-gpu-count', 'mixtral-wide', 'poc-405b'])('%s loads and prepares for every hardware', (name) => {
    const sweep = loadSweepFile(name);
    expect(sweep.name).toBe(name);
    expect(sweep.source.endsWith(join('configs', 'sweeps', `${name}.yaml`))).toBe(true);
    for (const hardware of sweep.hardware) {
      const prepared = prepareSweep({
        model: sweep.model,
        hardware,
        formula: sweep.formula,
        headroom: sweep.headroom,
        overrides: sweep.overrides,
        search: sweep.search,
      });
      expect(prepared.grid.candidateCount()).toBeGreaterThan(0);
    }
  });

  it('llama405b-every-gpu-count searches every GPU count on H100', () => {
    const sweep = loadSweepFile('llama405b-every-gpu-count');
    expect(sweep.model).toBe('llama3.1-405b');
    expect(sweep.hardware).toEqual(['h100-sxm-80gb']);
    expect(sweep.search.ngpus_range).toBe('1..10240');
    expect(sweep.search.seq_range).toEqual([8192]);
  });

  it('mixtral-wide runs on H100 and H200 and ranks the top 5 per GPU count', () => {
    const sweep = loadSweepFile('mixtral-wide');
    expect(sweep.hardware).toEqual(['h100-sxm-80gb', 'h200-141gb']);
    expect(sweep.top).toEqual({ k: 5, by: 'tokens_per_s', per: 'ngpus' });
    expect(sweep.where).toBe('fits');
  });

  it('poc-405b uses the poc formula', () => {
    expect(loadSweepFile('poc-405b').formula).toBe('poc');
  });
});

describe('loadSweepFile', () => {
  it('returns the typed object with defaults and a hardware string turned into a list', () => {
    const sweep = loadText(`
model: llama3.1-8b
hardware: h200-141gb
headroom: 0.2
search: { ngpus_range: "8..64:8", tp_range: [1, 2] }
overrides: ["model.seq_length=4096"]
top: { k: 3, by: mfu, ascending: false }
`);
    expect(sweep).toMatchObject({
      name: 'sweep',
      model: 'llama3.1-8b',
      hardware: ['h200-141gb'],
      headroom: 0.2,
      search: { ngpus_range: '8..64:8', tp_range: [1, 2] },
      overrides: ['model.seq_length=4096'],
      top: { k: 3, by: 'mfu', ascending: false },
    });
    expect(sweep.formula).toBeUndefined();
    expect(sweep.where).toBeUndefined();
  });

  it('defaults the hardware to H100 and the overrides to none', () => {
    const sweep = loadText('model: llama3.1-8b\n');
    expect(sweep.hardware).toEqual(['h100-sxm-80gb']);
    expect(sweep.overrides).toEqual([]);
    expect(sweep.search).toEqual({});
  });

  it('resolves a relative model path against the sweep file', () => {
    const dir = makeTempDir();
    writeFileSync(join(dir, 'tiny.yaml'), 'model:\n  name: tiny\n');
    writeFileSync(join(dir, 'sweep.yaml'), 'model: tiny.yaml\n');
    expect(loadSweepFile(join(dir, 'sweep.yaml')).model).toBe(join(dir, 'tiny.yaml'));
  });

  it('names the key in every error', () => {
    expect(errorOf('model: llama3.1-8b\nsearch: { tp_rnge: [1, 2] }\n')).toBe(
      'sweep.search.tp_rnge: unknown key (did you mean tp_range?)',
    );
    expect(errorOf('model: llama3.1-8b\nhardwear: h100-sxm-80gb\n')).toBe(
      'sweep.hardwear: unknown key (did you mean hardware?)',
    );
    expect(errorOf('hardware: h100-sxm-80gb\n')).toBe('sweep.model: required key is missing');
    expect(errorOf('model: llama3.1-8b\nheadroom: lots\n')).toMatch(/^sweep\.headroom: must be a number/);
    expect(errorOf('model: llama3.1-8b\nformula: fancy\n')).toMatch(/^sweep\.formula: must be one of full, poc/);
    expect(errorOf('model: llama3.1-8b\nhardware: [h100-sxm-80gb, 3]\n')).toMatch(/^sweep\.hardware\[1\]: must be a string/);
    expect(errorOf('model: llama3.1-8b\nhardware: [tpu-v9]\n')).toMatch(/^sweep\.hardware\[0\]: no bundled hardware named 'tpu-v9'/);
    expect(errorOf('model: llama3.1-9000b\n')).toMatch(/^sweep\.model: no bundled model named 'llama3.1-9000b'/);
    expect(errorOf('model: llama3.1-8b\nsearch: { ngpus_range: "64..8" }\n')).toMatch(/^sweep\.search\.ngpus_range: range '64\.\.8' is empty/);
    expect(errorOf('model: llama3.1-8b\ntop: { k: 0, by: mfu }\n')).toBe('sweep.top.k: must be positive, got 0');
    expect(errorOf('model: llama3.1-8b\ntop: { k: 5 }\n')).toBe('sweep.top.by: required key is missing');
    expect(errorOf('model: llama3.1-8b\noverrides: [1]\n')).toMatch(/^sweep\.overrides\[0\]: must be a string/);
    expect(errorOf('model: llama3.1-8b\nwhere: [fits]\n')).toMatch(/^sweep\.where: must be a string/);
    expect(errorOf('- model\n')).toMatch(/must be a YAML mapping/);
  });

  it('reports an unknown bundled sweep with the list of bundled ones', () => {
    expect(() => loadSweepFile('no-such-sweep')).toThrow(/no bundled sweeps named 'no-such-sweep'.*mixtral-wide/);
  });
});
