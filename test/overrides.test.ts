import { afterAll, describe, expect, it } from 'vitest';
import { expandRange, InputError, loadConfig, parseOverride, prepareSweep } from '../src/index.js';
import { parseBoolList, parseEnumList, parseIntList } from '../src/config/ranges.js';
import { cleanupTempDirs, fixture, SMALL_MODEL_YAML, writeTempYaml } from './helpers.js';

afterAll(cleanupTempDirs);

function inputError(fn: () => unknown): InputError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InputError);
    return error as InputError;
  }
  throw new Error('expected an InputError, but nothing was thrown');
}

const LLAMA_8B = fixture('llama3.1-8b.yaml');
const GROK = fixture('Grok1.yaml');
const load = (path: string, ...overrides: string[]) => loadConfig(path, overrides.map(parseOverride));

describe('parseOverride and applyOverrides through loadConfig', () => {
  it('key=value sets a model key', () => {
    expect(load(LLAMA_8B).model.seq_length).toBe(8192);
    const config = load(LLAMA_8B, 'model.seq_length=4096');
    expect(config.model.seq_length).toBe(4096);
    expect(config.model.hidden_size).toBe(4096);
  });

  it('+key=[list] lands in config.search', () => {
    const config = load(LLAMA_8B, '+ngpus_range=[8, 128]');
    expect(config.search).toEqual({ ngpus_range: [8, 128] });
    // It reaches the grid: only 8 and 128 GPUs.
    const prepared = prepareSweep({ formula: 'poc', model: LLAMA_8B, overrides: ['+ngpus_range=[8, 128]'] });
    expect(prepared.space.get('ngpus_range')!.values).toEqual([8, 128]);
  });

  it('++key=range keeps the range text, expanded later', () => {
    const config = load(LLAMA_8B, '++tp_range=1..8:*2');
    expect(config.search).toEqual({ tp_range: '1..8:*2' });
    const prepared = prepareSweep({ formula: 'poc', model: LLAMA_8B, overrides: ['++tp_range=1..8:*2'] });
    expect(prepared.space.get('tp_range')!.values).toEqual([1, 2, 4, 8]);
  });

  it('~key removes a section', () => {
    expect(load(GROK).model.moe?.num_experts).toBe(8);
    const config = load(GROK, '~model.moe');
    expect(config.model.moe).toBeUndefined();
    // Without the moe section the PoC grid has a single EP value.
    const prepared = prepareSweep({ formula: 'poc', model: GROK, overrides: ['~model.moe'] });
    expect(prepared.space.get('ep_range')!.values).toEqual([1]);
  });

  it('a nested key and a trainer key', () => {
    const config = load(GROK, 'model.moe.k=1', 'trainer.data_parallel_sharding_strategy=FULLY_SHARD');
    expect(config.model.moe?.k).toBe(1);
    expect(config.trainer.data_parallel_sharding_strategy).toBe('FULLY_SHARD');
  });

  it('override values are validated like file values', () => {
    const error = inputError(() => load(LLAMA_8B, 'model.seq_length=long'));
    expect(error.message).toMatch(/^model\.seq_length: /);
  });

  it('an unknown override key errors and suggests the right key', () => {
    const model = inputError(() => load(LLAMA_8B, 'model.seq_lenght=4096'));
    expect(model.field).toBe('model.seq_lenght');
    expect(model.message).toContain('seq_length');
    const top = inputError(() => load(LLAMA_8B, '+ngpu_range=[8]'));
    expect(top.field).toBe('ngpu_range');
    expect(top.message).toContain('ngpus_range');
  });

  it('an override with no value errors', () => {
    const error = inputError(() => parseOverride('model.seq_length'));
    expect(error.field).toBe('model.seq_length');
    expect(error.message).toMatch(/^model\.seq_length: .*no value/);
    expect(() => parseOverride('+ngpus_range')).toThrow(InputError);
  });

  it('~key takes no value, and garbage is not an override', () => {
    expect(() => parseOverride('~model.moe=1')).toThrow(InputError);
    expect(() => parseOverride('=4')).toThrow(InputError);
    expect(() => parseOverride('model..x=4')).toThrow(InputError);
  });
});

describe('expandRange', () => {
  it('8..10240:8 is arithmetic, end inclusive', () => {
    const values = expandRange('8..10240:8', 'ngpus_range')!;
    expect(values.length).toBe(1280);
    expect(values[0]).toBe(8);
    expect(values[1]).toBe(16);
    expect(values[values.length - 1]).toBe(10240);
  });

  it('1..1024:*2 is geometric', () => {
    const values = expandRange('1..1024:*2', 'tp_range')!;
    expect(values.length).toBe(11);
    expect(values).toEqual([1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]);
  });

  it('5..5 is one value; no step means step 1; the end need not be on the step', () => {
    expect(expandRange('5..5', 'x')).toEqual([5]);
    expect(expandRange('1..4', 'x')).toEqual([1, 2, 3, 4]);
    expect(expandRange('1..10:4', 'x')).toEqual([1, 5, 9]);
    expect(expandRange('3..100:*3', 'x')).toEqual([3, 9, 27, 81]);
  });

  it('returns undefined for text that is not a range', () => {
    expect(expandRange('8,128', 'x')).toBeUndefined();
    expect(expandRange('abc', 'x')).toBeUndefined();
  });

  it.each([
    ['8..2', /empty/],
    ['1..8:0', /step/],
    ['0..8:*2', /start/],
    ['1..8:*1', /factor/],
  ])('%s is an InputError naming the field', (text, reason) => {
    const error = inputError(() => expandRange(text, 'tp_range'));
    expect(error.field).toBe('tp_range');
    expect(error.message).toMatch(/^tp_range: /);
    expect(error.message).toContain(text);
    expect(error.message).toMatch(reason);
  });
});

describe('parseIntList', () => {
  it('accepts lists, list text, ranges and scalars', () => {
    expect(parseIntList([8, 128], 'f')).toEqual([8, 128]);
    expect(parseIntList('8,128,1024', 'f')).toEqual([8, 128, 1024]);
    expect(parseIntList('[8, 128]', 'f')).toEqual([8, 128]);
    expect(parseIntList('1..8:*2', 'f')).toEqual([1, 2, 4, 8]);
    expect(parseIntList(64, 'f')).toEqual([64]);
    expect(parseIntList(['1..4', 16], 'f')).toEqual([1, 2, 3, 4, 16]);
  });

  it.each([
    ['duplicates', [8, 8], /twice/],
    ['duplicates from a range', ['1..4', 2], /twice/],
    ['a non-integer', [1.5], /integer/],
    ['a word', 'eight', /integer/],
    ['zero', [0, 8], /at least 1/],
    ['a negative value', '-2,4', /at least 1/],
    ['an empty list', [], /empty/],
    ['a mapping', { a: 1 }, /list/],
  ])('rejects %s', (_what, value, reason) => {
    const error = inputError(() => parseIntList(value, 'ngpus_range'));
    expect(error.field).toBe('ngpus_range');
    expect(error.message).toMatch(reason);
  });

  it('categorical and boolean lists', () => {
    expect(parseEnumList('a,b', 'f', ['a', 'b', 'c'])).toEqual(['a', 'b']);
    expect(() => parseEnumList('a,d', 'f', ['a', 'b'])).toThrow(InputError);
    expect(() => parseEnumList(['a', 'a'], 'f', ['a', 'b'])).toThrow(/twice/);
    expect(parseBoolList('on,off', 'f')).toEqual([true, false]);
    expect(() => parseBoolList('maybe', 'f')).toThrow(InputError);
  });
});

describe('resolveSearchSpace through prepareSweep', () => {
  it('the PoC defaults when nothing is set', () => {
    const { space } = prepareSweep({ model: LLAMA_8B, formula: 'poc' });
    expect(space.get('ngpus_range')!.values).toEqual([1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 10240]);
    expect(space.get('tp_range')!.values).toEqual([1, 2, 4, 8]);
    expect(space.get('pp_range')!.values).toEqual([1, 2, 4, 8, 16]);
    expect(space.get('ep_range')!.values).toEqual([1]);
    expect(space.get('cp_range')!.values).toEqual([1, 2, 4, 8]);
    expect(space.get('mbs_range')!.values).toEqual([1, 2, 4]);
    expect(space.get('shard_strategys')!.values).toEqual([0, 1, 2, 3]);
    // EP: powers of two below 2^bit_length(num_experts).
    expect(prepareSweep({ formula: 'poc', model: GROK }).space.get('ep_range')!.values).toEqual([1, 2, 4, 8]);
  });

  it('defaults < file < overrides < flags', () => {
    const path = writeTempYaml(`${SMALL_MODEL_YAML}tp_range: [1, 2]\npp_range: [1, 2]\ncp_range: [1, 2]\n`);
    const { space } = prepareSweep({
      model: path,
      formula: 'poc',
      overrides: ['pp_range=[4]', '+cp_range=[2, 4]', '+mbs_range=[2]'],
      search: { cp_range: '1', shard_strategys: 'zero3,NO_OP' },
    });
    expect(space.get('ngpus_range')!.values).toEqual([1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 10240]); // default
    expect(space.get('tp_range')!.values).toEqual([1, 2]); // file
    expect(space.get('pp_range')!.values).toEqual([4]); // override over file
    expect(space.get('mbs_range')!.values).toEqual([2]); // override over default
    expect(space.get('cp_range')!.values).toEqual([1]); // flag over override over file
    expect(space.get('shard_strategys')!.values).toEqual([3, 0]); // flag, aliases mapped, order kept
  });

  it('an undefined flag value does not clear a file value', () => {
    const path = writeTempYaml(`${SMALL_MODEL_YAML}tp_range: [2]\n`);
    const { space } = prepareSweep({ formula: 'poc', model: path, search: { tp_range: undefined } });
    expect(space.get('tp_range')!.values).toEqual([2]);
  });

  it('--formula poc rejects a key it does not search, from a flag, an override or the file', () => {
    const flag = inputError(() => prepareSweep({ model: LLAMA_8B, formula: 'poc', search: { sp_range: [true] } }));
    expect(flag.field).toBe('sp_range');
    expect(flag.message).toMatch(/^sp_range: /);
    expect(flag.message).toContain('poc');
    const override = inputError(() => prepareSweep({ formula: 'poc', model: LLAMA_8B, overrides: ['+vpp_range=[2]'] }));
    expect(override.field).toBe('vpp_range');
    const file = inputError(() => prepareSweep({ formula: 'poc', model: writeTempYaml(`${SMALL_MODEL_YAML}seq_range: [4096]\n`) }));
    expect(file.field).toBe('seq_range');
  });

  it('an unknown formula is an InputError', () => {
    const error = inputError(() => prepareSweep({ model: LLAMA_8B, formula: 'nope' }));
    expect(error.field).toBe('formula');
  });

  it('a bad search value names its option field', () => {
    const error = inputError(() => prepareSweep({ formula: 'poc', model: LLAMA_8B, search: { tp_range: '8..2' } }));
    expect(error.message).toMatch(/^search\.tp_range: /);
    const zero = inputError(() => prepareSweep({ formula: 'poc', model: LLAMA_8B, search: { shard_strategys: 'zero4' } }));
    expect(zero.message).toMatch(/^search\.shard_strategys: /);
  });
});
