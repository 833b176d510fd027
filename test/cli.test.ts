import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { afterAll, describe, expect, it } from 'vitest';
import { listBundled } from '../src/index.js';
import { cleanupTempDirs, fixture, fixtureCsv, listDir, makeTempDir, REPO_ROOT, SMALL_MODEL_YAML, writeTempYaml } from './helpers.js';

const BIN = join(REPO_ROOT, 'bin', 'parasweep.js');


afterAll(cleanupTempDirs);

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function parasweep(...args: string[]): Run {
  const result = spawnSync(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** stderr's non-empty lines. */
function lines(text: string): string[] {
  return text.split('\n').filter((line) => line.trim() !== '');
}

describe('informational commands', () => {
  it('--version prints the package version', () => {
    const run = parasweep('--version');
    expect(run.status).toBe(0);
    const version = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).version;
    expect(run.stdout.trim()).toBe(version);
  });

  it('--help lists the commands and has examples', () => {
    const run = parasweep('--help');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/parasweep sweep/);
    expect(run.stdout).toMatch(/parasweep models/);
    expect(run.stdout).toContain('Examples:');
    expect(run.stdout).toContain('--config-name');
  });

  it('sweep --help lists the search flags', () => {
    const run = parasweep('sweep', '--help');
    expect(run.status).toBe(0);
    for (const flag of ['--model', '--ngpus', '--tp', '--pp', '--out', '--csv', '--formula']) expect(run.stdout).toContain(flag);
  });

  it('models prints one line per bundled model', () => {
    const run = parasweep('models');
    expect(run.status).toBe(0);
    const out = lines(run.stdout);
    const bundled = listBundled('models');
    expect(bundled.length).toBeGreaterThanOrEqual(7);
    expect(out.length).toBe(bundled.length);
    out.forEach((line, i) => expect(line.startsWith(bundled[i])).toBe(true));
    expect(run.stdout).toMatch(/llama3\.1-405b\s+LLaMA-3\.1 405B: 126 layers/);
  });

  it('no command lists every command, with exit code 2', () => {
    const run = parasweep();
    expect(run.status).toBe(2);
    for (const command of ['sweep', 'best', 'launch', 'check', 'calibrate', 'models', 'hardware', 'sweeps']) {
      expect(run.stderr).toMatch(new RegExp(`^  ${command} +\\S`, 'm'));
    }
  });

  it('hardware and sweeps list what is bundled, with key specs', () => {
    const hardware = parasweep('hardware');
    expect(hardware.status).toBe(0);
    expect(lines(hardware.stdout)).toHaveLength(listBundled('hardware').length);
    expect(hardware.stdout).toMatch(/^h100-sxm-80gb +nvidia: 79\.6 GiB, bf16 989\.4, fp8 1978\.9 TFLOP\/s, HBM 3\.35 TB\/s/m);
    const sweeps = parasweep('sweeps');
    expect(sweeps.status).toBe(0);
    expect(lines(sweeps.stdout)).toHaveLength(listBundled('sweeps').length);
    expect(sweeps.stdout).toMatch(/^mixtral-wide +mixtral-8x7b on h100-sxm-80gb, h200-141gb; formula full;.* top 5 by tokens_per_s per ngpus$/m);
  });

  it('sweep --help groups the flags and gives range syntax only to numeric ones', () => {
    const run = parasweep('sweep', '--help');
    expect(run.status).toBe(0);
    const groups = ['Model and hardware:', 'Search space', 'Precision:', 'Selection:', 'Engine:', 'Output:'];
    const positions = groups.map((title) => run.stdout.indexOf(title));
    expect(positions.every((p) => p >= 0)).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    for (const flag of ['--sp', '--zero', '--schedule', '--recompute', '--offload']) {
      const line = run.stdout.split('\n').find((l) => l.trimStart().startsWith(flag + ' '))!;
      expect(line, flag).not.toMatch(/\.\./);
    }
  });
});

describe('sweeps', () => {
  it("the PoC's own command writes the PoC's CSV", () => {
    const dir = makeTempDir();
    const csv = join(dir, 'memory_estimation.csv');
    const run = parasweep(
      'sweep',
      '--config-name',
      fixture('llama3.1-405b.yaml'),
      '+ngpus_range=[8, 128, 1024, 10240]',
      '--formula',
      'poc',
      '--csv',
      csv,
    );
    expect(run.stderr).not.toContain('error');
    expect(run.status).toBe(0);
    expect(readFileSync(csv, 'utf8') === fixtureCsv('405b-ngpus.csv.gz'), 'CSV equals the PoC output').toBe(true);
    expect(listDir(dir)).toEqual(['memory_estimation.csv']);
    const summary = lines(run.stderr).find((line) => line.includes('configs considered'))!;
    expect(summary).toMatch(/\b960 rows\b/);
    expect(summary).toContain(csv);
  });

  it('--model with --ngpus writes Arrow and CSV at once', () => {
    const dir = makeTempDir();
    const arrow = join(dir, 'x.arrow');
    const csv = join(dir, 'x.csv');
    const run = parasweep('sweep', '--model', 'llama3.1-405b', '--ngpus', '8,1024', '--offload', 'none', '--out', arrow, '--csv', csv);
    expect(run.status).toBe(0);
    expect(listDir(dir)).toEqual(['x.arrow', 'x.csv']);
    const table = tableFromIPC(readFileSync(arrow));
    const csvLines = readFileSync(csv, 'utf8').split('\r\n').filter((line) => line !== '');
    expect(table.numRows).toBeGreaterThan(0);
    expect(csvLines.length - 1).toBe(table.numRows);
    expect(csvLines[0].split(',')).toEqual(table.schema.fields.map((field) => field.name));
    const ngpus = new Set(csvLines.slice(1).map((line) => line.split(',')[table.schema.fields.findIndex((f) => f.name === 'ngpus')]));
    for (const n of ngpus) expect(['8', '1024']).toContain(n);
    const summary = lines(run.stderr).at(-1)!;
    expect(summary).toContain(`${table.numRows} rows`);
    expect(summary).toContain(arrow);
    expect(summary).toContain(csv);
  }, 60_000);
});

describe('bad input: exit 2, one line on stderr naming the field, no output file', () => {
  const missingModel = join(makeTempDir(), 'no-such-model.yaml');
  const badYaml = writeTempYaml('model:\n  name: x\n  num_layers: [1, 2\n', 'bad.yaml');
  const unknownKey = writeTempYaml(SMALL_MODEL_YAML.replace('  hidden_size:', '  hiden_size:'), 'unknown.yaml');

  const cases: Array<{ what: string; args: (out: string) => string[]; message: RegExp }> = [
    {
      what: 'a missing model file',
      args: (out) => ['sweep', '--model', missingModel, '--csv', join(out, 'o.csv')],
      message: /^parasweep: --model: .*no-such-model\.yaml/,
    },
    {
      what: 'bad YAML (an unclosed bracket)',
      args: (out) => ['sweep', '--model', badYaml, '--csv', join(out, 'o.csv')],
      message: /^parasweep: .*bad\.yaml.*invalid YAML/,
    },
    {
      what: 'an unknown key',
      args: (out) => ['sweep', '--model', unknownKey, '--csv', join(out, 'o.csv')],
      message: /^parasweep: model\.hiden_size: unknown key.*hidden_size/,
    },
    {
      what: 'an unknown override key',
      args: (out) => ['sweep', '--model', 'llama3.1-8b', 'model.seq_lenght=4096', '--csv', join(out, 'o.csv')],
      message: /^parasweep: model\.seq_lenght: .*seq_length/,
    },
    {
      what: 'a bad range (--tp 8..2)',
      args: (out) => ['sweep', '--model', 'llama3.1-8b', '--tp', '8..2', '--out', join(out, 'o.arrow'), '--csv', join(out, 'o.csv')],
      message: /^parasweep: (--tp|tp_range)\b.*8\.\.2/,
    },
    {
      what: 'a bad list (--ngpus 8,x)',
      args: (out) => ['sweep', '--model', 'llama3.1-8b', '--ngpus', '8,x', '--csv', join(out, 'o.csv')],
      message: /^parasweep: (--ngpus|ngpus_range)\b/,
    },
    {
      what: 'divisibility leaving no valid config (--formula poc)',
      args: (out) => [
        'sweep',
        '--model',
        'llama3.1-405b',
        '--formula',
        'poc',
        '--ngpus',
        '3',
        '--tp',
        '2',
        '--out',
        join(out, 'o.arrow'),
        '--csv',
        join(out, 'o.csv'),
      ],
      message: /^parasweep: search space: no valid config/,
    },
    {
      what: 'divisibility leaving no valid config (default formula and engine)',
      args: (out) => ['sweep', '--model', 'llama3.1-405b', '--ngpus', '3', '--tp', '2', '--out', join(out, 'o.arrow'), '--csv', join(out, 'o.csv')],
      message: /^parasweep: search space: no valid config/,
    },
    {
      what: 'an unknown output extension',
      args: (out) => ['sweep', '--model', 'llama3.1-8b', '--out', join(out, 'o.xyz')],
      message: /^parasweep: --out: .*o\.xyz/,
    },
    {
      what: 'missing --model',
      args: (out) => ['sweep', '--ngpus', '8', '--csv', join(out, 'o.csv')],
      message: /^parasweep: --model: required/,
    },
    {
      what: 'an unknown formula',
      args: (out) => ['sweep', '--model', 'llama3.1-8b', '--formula', 'nope', '--csv', join(out, 'o.csv')],
      message: /^parasweep: .*formula/,
    },
    {
      what: 'FP8 on hardware without FP8 tensor cores',
      args: (out) => ['sweep', '--model', 'llama3.1-8b', '--hardware', 'a100-80gb', '--fp8', '--csv', join(out, 'o.csv')],
      message: /^parasweep: trainer\.fp8: FP8 needs hardware\.peak_tflops\.fp8, which a100-80gb lacks$/m,
    },
    {
      what: 'an unknown CP communication type',
      args: (out) => ['sweep', '--model', 'llama3.1-8b', '--cp-comm-type', 'ring', '--csv', join(out, 'o.csv')],
      message: /^parasweep: trainer\.cp_comm_type: must be one of p2p, all_gather, a2a/,
    },
    {
      what: 'an unknown flag',
      args: (out) => ['sweep', '--model', 'llama3.1-8b', '--tpp', '2', '--csv', join(out, 'o.csv')],
      message: /^parasweep: .*tpp/,
    },
    {
      what: '--zero 4 answers in ZeRO stages, not the PoC names',
      args: (out) => ['sweep', '--model', 'llama3.1-8b', '--zero', '0,4', '--csv', join(out, 'o.csv')],
      message: /^parasweep: --zero: unknown ZeRO stage "4"; allowed: 0, 1, 2, 3/,
    },
    {
      what: '--headroom 10 says what headroom is',
      args: (out) => ['sweep', '--model', 'llama3.1-8b', '--headroom', '10', '--csv', join(out, 'o.csv')],
      message: /^parasweep: --headroom: is the fraction of memory kept free \(0\.1 keeps 10%\), from 0 to below 10; got 10/,
    },
    {
      what: 'a search flag error names the flag, not the config key',
      args: (out) => ['sweep', '--model', 'llama3.1-8b', '--tp', '0', '--csv', join(out, 'o.csv')],
      message: /^parasweep: --tp: values must be at least 1, got 0/,
    },
    {
      what: 'a mistyped flag gets a suggestion',
      args: (out) => ['sweep', '--model', 'llama3.1-8b', '--fit-only', '--csv', join(out, 'o.csv')],
      message: /^parasweep: --fit-only: unknown option \(did you mean --fits-only\?\)/,
    },
    {
      what: 'a mistyped command gets a suggestion',
      args: () => ['hardwre'],
      message: /^parasweep: hardwre: unknown command \(did you mean hardware\?\)/,
    },
    {
      what: 'an output in a missing directory',
      args: (out) => ['sweep', '--model', 'llama3.1-8b', '-o', join(out, 'missing', 'x.arrow')],
      message: /^parasweep: --out: cannot write .*missing\/x\.arrow: directory .*missing does not exist/,
    },
    {
      what: "NAME.yaml that is not a file is not the bundled model",
      args: (out) => ['sweep', '--config-name', 'llama3.1-405b.yaml', '--formula', 'poc', '--csv', join(out, 'o.csv')],
      message: /^parasweep: --config-name: cannot read llama3\.1-405b\.yaml: no such file \(the bundled llama3\.1-405b is named without a path or \.yaml\)/,
    },
    {
      what: 'a CSV path in a missing directory, after an Arrow output',
      args: (out) => ['sweep', '--model', 'llama3.1-8b', '--formula', 'poc', '--out', join(out, 'o.arrow'), '--csv', join(out, 'missing', 'o.csv')],
      message: /^parasweep: --csv: .*missing/,
    },
    {
      what: 'a CSV path in a missing directory, after a Parquet output',
      args: (out) => ['sweep', '--model', 'llama3.1-8b', '--formula', 'poc', '--out', join(out, 'o.parquet'), '--csv', join(out, 'missing', 'o.csv')],
      message: /^parasweep: --csv: .*missing/,
    },
  ];

  for (const { what, args, message } of cases) {
    it(what, () => {
      const out = makeTempDir();
      const run = parasweep(...args(out));
      expect(run.stderr).toMatch(message);
      expect(lines(run.stderr), 'stderr').toHaveLength(1);
      expect(run.status).toBe(2);
      expect(listDir(out), 'output directory').toEqual([]);
    }, 30_000);
  }
});
