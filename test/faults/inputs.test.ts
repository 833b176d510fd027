/**
 * Fault injection, absurd inputs: each reproduction of issue 14 ends in one line and exit 2 before anything is
 * written, and memory stays bounded.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupTempDirs, makeTempDir, writeTempYaml } from '../helpers.js';
import { entries, expectOneLine, parasweep } from './support.js';

afterAll(cleanupTempDirs);

const HUGE = ['--model', 'llama3.1-405b', '--ngpus', '1..10240', '--gbs', '1024..4096:64', '--engine', 'cpu', '-q'];

/** A billion-laughs document: nine levels of nine aliases each. */
const BOMB = ['a0: &a0 [x, x, x, x, x, x, x, x, x]']
  .concat(Array.from({ length: 8 }, (_, k) => `a${k + 1}: &a${k + 1} [${Array(9).fill(`*a${k}`).join(', ')}]`))
  .join('\n');

interface Case {
  what: string;
  args: (dir: string) => string[];
  message: RegExp;
}

const cases: Case[] = [
  { what: '--top K over the memory bound', args: (dir) => ['sweep', ...HUGE, '--top', '10000000', '-o', join(dir, 'x.arrow')], message: /^parasweep: --top: keeping 10000000 rows needs about [\d.]+ GiB, over the 512 MiB bound \(at most \d+ rows\)/ },
  { what: '--max-buffer-mib below one row', args: (dir) => ['sweep', ...HUGE, '--max-buffer-mib', '0.0001', '-o', join(dir, 'x.arrow')], message: /^parasweep: --max-buffer-mib: must be from 0\.0625 to 1024 \(MiB\), got 0\.0001$/ },
  { what: '--max-buffer-mib 0', args: (dir) => ['sweep', ...HUGE, '--max-buffer-mib', '0', '-o', join(dir, 'x.arrow')], message: /must be from 0\.0625 to 1024/ },
  { what: '5,000 ANDs in --where', args: (dir) => ['sweep', ...HUGE, '--where', Array(5000).fill('tp > 0').join(' and '), '-o', join(dir, 'x.arrow')], message: /^parasweep: --where: the expression is \d+ characters long \(at most 4096\)$/ },
  { what: '500 ANDs in --where (short enough, too deep)', args: (dir) => ['sweep', ...HUGE, '--where', Array(500).fill('tp>0').join('&&'), '-o', join(dir, 'x.arrow')], message: /^parasweep: --where: the expression is more than 64 operators deep at position/ },
  { what: '2,000 parentheses in --where', args: (dir) => ['sweep', ...HUGE, '--where', `${'('.repeat(2000)}tp > 0${')'.repeat(2000)}`, '-o', join(dir, 'x.arrow')], message: /^parasweep: --where: the expression nests deeper than 64 levels/ },
  { what: 'a YAML alias bomb as the model', args: (dir) => ['sweep', '--model', writeTempYaml(`${BOMB}\nmodel: *a8\n`), '-o', join(dir, 'x.csv')], message: /invalid YAML: too many aliases \(at most 100\)/ },
  { what: 'a YAML alias bomb as the hardware', args: (dir) => ['sweep', '--model', 'llama3.1-8b', '--hardware', writeTempYaml(`${BOMB}\nname: *a8\n`), '-o', join(dir, 'x.csv')], message: /invalid YAML: too many aliases/ },
  { what: 'a YAML alias bomb as a sweep file', args: (dir) => ['sweep', '--sweep', writeTempYaml(`${BOMB}\nmodel: *a8\n`), '-o', join(dir, 'x.csv')], message: /invalid YAML: too many aliases/ },
  { what: 'an unresolved alias in a model file', args: (dir) => ['sweep', '--model', writeTempYaml('model: *missing\n'), '-o', join(dir, 'x.csv')], message: /invalid YAML: Unresolved alias .*: missing$/ },
  { what: 'an unresolved alias in an override', args: (dir) => ['sweep', 'model.seq_length=*x', '--model', 'llama3.1-8b', '-o', join(dir, 'x.csv')], message: /^parasweep: model\.seq_length: invalid YAML: Unresolved alias/ },
  { what: 'hidden_size 1e308', args: (dir) => ['sweep', 'model.hidden_size=1.0e+308', '--model', 'llama3.1-8b', '-o', join(dir, 'x.csv')], message: /^parasweep: model\.hidden_size: must be at most 1048576, got 1e\+308$/ },
  { what: 'num_layers 1e300', args: (dir) => ['sweep', 'model.num_layers=1.0e+300', '--model', 'llama3.1-8b', '-o', join(dir, 'x.csv')], message: /model\.num_layers: must be at most 65536/ },
  { what: 'vocab_size 1e30', args: (dir) => ['sweep', 'model.vocab_size=1.0e+30', '--model', 'llama3.1-8b', '-o', join(dir, 'x.csv')], message: /model\.vocab_size: must be at most 16777216/ },
  { what: 'heads that do not divide the hidden size', args: (dir) => ['sweep', 'model.num_attention_heads=30', 'model.num_key_value_heads=30', '--model', 'llama3.1-8b', '-o', join(dir, 'x.csv')], message: /^parasweep: model\.num_attention_heads: must divide model\.hidden_size \(4096\), got 30; or give model\.kv_channels/ },
  { what: 'an absurd hardware number', args: (dir) => ['sweep', '--model', 'llama3.1-8b', '--hardware', writeTempYaml('name: x\nvendor: acme\nmemory_gib: 1.0e+308\n'), '-o', join(dir, 'x.csv')], message: /hardware\.memory_gib: must be at most 1000000000/ },
  { what: '--ngpus 0x10', args: (dir) => ['sweep', '--model', 'llama3.1-8b', '--ngpus', '0x10', '-o', join(dir, 'x.csv')], message: /^parasweep: --ngpus: must hold integers, got "0x10"$/ },
  { what: 'a GPU count beyond 2^24', args: (dir) => ['sweep', '--model', 'llama3.1-8b', '--ngpus', '16777217', '-o', join(dir, 'x.csv')], message: /value 16777217 is too large \(at most 16777216\)/ },
  { what: 'a bad override replaced by a flag', args: (dir) => ['sweep', '+ngpus_range=[8, x]', '--model', 'llama3.1-8b', '--ngpus', '8', '-o', join(dir, 'x.csv')], message: /^parasweep: ngpus_range: must hold integers, got "x"$/ },
];

describe('each reproduction: one line, exit 2, no file', () => {
  for (const { what, args, message } of cases) {
    it(what, () => {
      const dir = makeTempDir();
      const started = Date.now();
      expectOneLine(parasweep(args(dir)), 2, message);
      // Refused before evaluating: the 10.7M-row sweep takes minutes.
      expect(Date.now() - started).toBeLessThan(20_000);
      expect(entries(dir)).toEqual([]);
    });
  }

  it('the largest allowed model gives finite numbers on the CPU', () => {
    const dir = makeTempDir();
    const out = join(dir, 'x.csv');
    const run = parasweep([
      'sweep',
      ...['model.hidden_size=1048576', 'model.num_layers=65536', 'model.seq_length=16777216', 'model.vocab_size=16777216'],
      ...['model.ffn_hidden_size=4194304', 'model.global_batch_size=16777216', 'model.num_attention_heads=65536', 'model.num_key_value_heads=65536'],
      '--model', 'llama3.1-8b', '--ngpus', '8,16777216', '--engine', 'cpu', '-q', '--csv', out,
    ]);
    expect(run.status, run.stderr).toBe(0);
    const csv = readFileSync(out, 'utf8');
    const body = csv.split('\r\n').slice(1).join('\n');
    expect(body).not.toMatch(/\b(nan|inf)\b/);
    expect(csv.split('\r\n').length).toBeGreaterThan(1000);
  });
});
