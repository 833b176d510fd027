import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { InputError, listBundled, loadConfig, prepareSweep } from '../src/index.js';
import { BUNDLED_CONFIG_DIR, parseOverride } from '../src/config/load.js';
import { cleanupTempDirs, fixture, POC_YAMLS, REPO_ROOT, SMALL_MODEL_YAML, writeTempYaml } from './helpers.js';

afterAll(cleanupTempDirs);

/** Runs `fn`, expects an InputError, and returns it. */
function inputError(fn: () => unknown): InputError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InputError);
    return error as InputError;
  }
  throw new Error('expected an InputError, but nothing was thrown');
}

/** Loads SMALL_MODEL_YAML with one line replaced (or removed, when `to` is undefined). */
function loadEdited(from: string, to: string | undefined): () => unknown {
  expect(SMALL_MODEL_YAML).toContain(from);
  const text = SMALL_MODEL_YAML.replace(from + '\n', to === undefined ? '' : to + '\n');
  const path = writeTempYaml(text);
  return () => loadConfig(path);
}

describe('the PoC model files', () => {
  for (const name of POC_YAMLS) {
    it(`${name} loads unchanged by path`, () => {
      const path = fixture(name);
      const raw = parseYaml(readFileSync(path, 'utf8'), { version: '1.1' }) as {
        model: Record<string, unknown>;
        trainer: Record<string, unknown>;
      };
      const config = loadConfig(path);
      expect(config.source).toBe(resolve(path));
      expect(config.search).toEqual({});
      // Every key the PoC file sets comes through with the value it has there.
      // (A nested section such as moe also gets the defaults of the keys the file leaves out.)
      for (const [key, value] of Object.entries(raw.model)) {
        const loaded = (config.model as unknown as Record<string, unknown>)[key];
        if (typeof value === 'object' && value !== null) expect(loaded, `model.${key}`).toMatchObject(value);
        else expect(loaded, `model.${key}`).toEqual(value);
      }
      for (const [key, value] of Object.entries(raw.trainer)) {
        expect((config.trainer as unknown as Record<string, unknown>)[key], `trainer.${key}`).toEqual(value);
      }
    });
  }

  it('reads YAML 1.1 as the PoC did: `False` is a boolean and `1.` a number', () => {
    const llama = loadConfig(fixture('llama3.1-405b.yaml'));
    expect(llama.model.share_embeddings_and_output_weights).toBe(false);
    expect(llama.model.name).toBe('LLaMA-3.1 405B');
    expect(llama.model.num_key_value_heads).toBe(8);
    expect(llama.trainer.param_dtype).toBe('float16');
    const grok = loadConfig(fixture('Grok1.yaml'));
    expect(grok.model.moe).toMatchObject({ expert_frequency: 1, k: 2, num_experts: 8, token_imbalance_hypothesis: 1 });
    expect(grok.model.activation).toBe('glu');
    // The PoC treats a missing key as tied embeddings.
    expect(grok.model.share_embeddings_and_output_weights).toBe(true);
  });

  const sharedDir = resolve(REPO_ROOT, '..', 'shared', 'poc-configs');
  it.skipIf(!existsSync(sharedDir))('fixtures are byte-identical to shared/poc-configs', () => {
    for (const name of POC_YAMLS) {
      const shared = join(sharedDir, name);
      expect(existsSync(shared), shared).toBe(true);
      expect(readFileSync(fixture(name)).equals(readFileSync(shared)), name).toBe(true);
    }
  });
});

describe('bundled models', () => {
  it('resolve by bare name; NAME.yaml that is not a file is an error, not the bundled model', () => {
    const bundled = join(BUNDLED_CONFIG_DIR, 'models', 'llama3.1-405b.yaml');
    const byName = loadConfig('llama3.1-405b');
    expect(byName.source).toBe(bundled);
    expect(byName.model.num_layers).toBe(126);
    expect(byName.model.hidden_size).toBe(16384);
    // The PoC's `--config-name llama3.1-405b.yaml` means the PoC's file (GBS 4096, fp16), not the bundled one.
    const error = inputError(() => loadConfig('llama3.1-405b.yaml'));
    expect(error.message).toBe(
      'model: cannot read llama3.1-405b.yaml: no such file (the bundled llama3.1-405b is named without a path or .yaml)',
    );
  });

  it('group-limited routing: the groups divide the experts and a token picks at most all of them', () => {
    const groups = loadConfig('deepseek-v3').model.moe!;
    expect([groups.router_num_groups, groups.router_group_topk]).toEqual([8, 4]);
    expect(loadConfig('mixtral-8x7b').model.moe).toMatchObject({ router_num_groups: 1, router_group_topk: 1 });
    const over = inputError(() => loadConfig('deepseek-v3', [parseOverride('model.moe.router_group_topk=9')]));
    expect(over.field).toBe('model.moe.router_group_topk');
    const uneven = inputError(() => loadConfig('deepseek-v3', [parseOverride('model.moe.router_num_groups=12')]));
    expect(uneven.field).toBe('model.moe.router_num_groups');
  });

  it('an unknown name is an InputError that lists the bundled models', () => {
    const error = inputError(() => loadConfig('llama9-1t'));
    expect(error.field).toBe('model');
    expect(error.message).toMatch(/^model: /);
    expect(error.message).toContain('llama3.1-405b');
  });

  it('a missing file is an InputError naming the path', () => {
    const error = inputError(() => loadConfig('/nonexistent/dir/model.yaml'));
    expect(error.field).toBe('model');
    expect(error.message).toContain('/nonexistent/dir/model.yaml');
  });

  const names = listBundled('models');
  it('there are at least 7 of them, including the PoC models', () => {
    expect(names.length).toBeGreaterThanOrEqual(7);
    for (const name of ['llama3.1-8b', 'llama3.1-70b', 'llama3.1-405b']) expect(names).toContain(name);
  });

  for (const name of names) {
    it(`${name} validates and has a non-empty PoC grid`, () => {
      const config = loadConfig(name);
      expect(config.model.name.length).toBeGreaterThan(0);
      expect(config.model.num_layers).toBeGreaterThan(0);
      const prepared = prepareSweep({ model: name, formula: 'poc' });
      expect(prepared.grid.count()).toBeGreaterThan(0);
    });
  }
});

describe('validation errors name the key path', () => {
  it('the small model used below is itself valid', () => {
    const config = loadConfig(writeTempYaml(SMALL_MODEL_YAML));
    expect(config.model.hidden_size).toBe(1024);
  });

  it('an unknown key names the key and suggests the right one', () => {
    const error = inputError(loadEdited('  hidden_size: 1024', '  hiden_size: 1024'));
    expect(error.field).toBe('model.hiden_size');
    expect(error.message).toMatch(/^model\.hiden_size: /);
    expect(error.message).toContain('unknown key');
    expect(error.message).toContain('hidden_size');
  });

  it('an unknown key in trainer and at the top level', () => {
    const trainer = inputError(loadEdited('  grad_dtype: "float32"', '  grad_dtype: "float32"\n  grad_dtyp: "float32"'));
    expect(trainer.message).toMatch(/^trainer\.grad_dtyp: /);
    expect(trainer.message).toContain('grad_dtype');
    const top = inputError(loadEdited('trainer:', 'ngpus_rnge: [8]\ntrainer:'));
    expect(top.message).toMatch(/^ngpus_rnge: /);
    expect(top.message).toContain('ngpus_range');
  });

  it('a wrong type', () => {
    const error = inputError(loadEdited('  hidden_size: 1024', '  hidden_size: "big"'));
    expect(error.field).toBe('model.hidden_size');
    expect(error.message).toMatch(/^model\.hidden_size: /);
    expect(error.message).toContain('big');
  });

  it('a non-positive size', () => {
    const error = inputError(loadEdited('  num_layers: 8', '  num_layers: 0'));
    expect(error.field).toBe('model.num_layers');
    expect(error.message).toMatch(/^model\.num_layers: .*positive/);
  });

  it('a bad enum value lists the allowed ones', () => {
    const error = inputError(loadEdited('  activation: "swiglu"', '  activation: tanh'));
    expect(error.field).toBe('model.activation');
    expect(error.message).toMatch(/^model\.activation: /);
    expect(error.message).toContain('tanh');
    expect(error.message).toContain('swiglu');
  });

  it('a bad trainer enum value', () => {
    const error = inputError(loadEdited('  param_dtype: "float16"', '  param_dtype: "float13"'));
    expect(error.message).toMatch(/^trainer\.param_dtype: /);
  });

  it('a missing required key', () => {
    const error = inputError(loadEdited('  vocab_size: 32000', undefined));
    expect(error.field).toBe('model.vocab_size');
    expect(error.message).toMatch(/^model\.vocab_size: .*missing/);
  });

  it('a missing model section', () => {
    const error = inputError(() => loadConfig(writeTempYaml('trainer:\n  param_dtype: float16\n')));
    expect(error.message).toMatch(/^model: /);
  });

  it('a file that is not a mapping', () => {
    const path = writeTempYaml('- 1\n- 2\n');
    const error = inputError(() => loadConfig(path));
    expect(error.message).toContain(path);
  });

  it('invalid YAML names the file', () => {
    const path = writeTempYaml('model:\n  name: x\n  num_layers: [1, 2\n');
    const error = inputError(() => loadConfig(path));
    expect(error.message.startsWith(path)).toBe(true);
    expect(error.message).toContain('invalid YAML');
  });

  it('invalid YAML gives the line of the error', () => {
    // The yaml package fills in linePos only with prettyErrors: true; without it the position is silently lost.
    const path = writeTempYaml('model:\n  name: x\n  num_layers: [1, 2\n');
    const error = inputError(() => loadConfig(path));
    expect(error.message).toMatch(/at line \d+, column \d+/);
  });

  it('a duplicate key is an error, not a silent overwrite', () => {
    const error = inputError(loadEdited('  num_layers: 8', '  num_layers: 8\n  num_layers: 16'));
    expect(error.message).toContain('invalid YAML');
  });
});
