import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError, loadConfig, sweep } from '../src/index.js';
import { cleanupTempDirs, makeTempDir, REPO_ROOT } from './helpers.js';

afterAll(cleanupTempDirs);

const HF = join(REPO_ROOT, 'examples', 'hf');
const hf = (name: string) => join(HF, name, 'config.json');

/** Bundled model, its Hugging Face config (examples/hf/), and the training keys a config.json does not carry. */
const BUNDLED: Array<{ bundled: string; config: string }> = [
  { bundled: 'llama3.1-8b', config: 'Llama-3.1-8B' },
  { bundled: 'llama3.1-70b', config: 'Llama-3.1-70B' },
  { bundled: 'llama3.1-405b', config: 'Llama-3.1-405B' },
  { bundled: 'mixtral-8x7b', config: 'Mixtral-8x7B-v0.1' },
  { bundled: 'mixtral-8x22b', config: 'Mixtral-8x22B-v0.1' },
  { bundled: 'deepseek-v3', config: 'DeepSeek-V3' },
];

/** A small full-formula grid that still exercises TP, PP, EP, ZeRO, recompute and the stage split. */
const SEARCH = { ngpus_range: '64', tp_range: '1,8', pp_range: '1,4', ep_range: '1,8', cp_range: '1', mbs_range: '1', vpp_range: '1' };

async function rowsOf(model: string, overrides: string[] = []): Promise<Array<Record<string, unknown>>> {
  const { table } = await sweep({ model, overrides, search: SEARCH, engine: 'cpu' });
  return table.toArray().map((row) => {
    const { model: _name, ...rest } = row.toJSON() as Record<string, unknown>;
    return rest;
  });
}

describe('Hugging Face config.json of the bundled models', () => {
  for (const { bundled, config } of BUNDLED) {
    it(`${config}/config.json gives ${bundled}'s parameters, memory and time`, async () => {
      const yaml = loadConfig(bundled).model;
      const json = loadConfig(hf(config)).model;
      // The architecture keys agree as mapped (training keys and the name are not in a config.json).
      const { name: _a, seq_length: _b, global_batch_size: _c, ...architecture } = yaml;
      const { name: _d, seq_length: _e, global_batch_size: _f, ...mapped } = json;
      expect(mapped).toEqual(architecture);
      const training = [`model.seq_length=${yaml.seq_length}`, `model.global_batch_size=${yaml.global_batch_size}`];
      const [expected, actual] = await Promise.all([rowsOf(bundled), rowsOf(hf(config), training)]);
      expect(actual.length).toBeGreaterThan(0);
      expect(actual).toEqual(expected);
    });
  }
});

/** Published totals (model cards, billions, as rounded there) for the architectures without a bundled YAML. */
const PUBLISHED: Array<{ config: string; total_b: number; active_b?: number }> = [
  { config: 'Qwen2-7B', total_b: 7.62 }, // Qwen2 technical report, Table 1 / model card "7.62B"
  { config: 'Qwen2-57B-A14B', total_b: 57.41, active_b: 14 }, // model card: 57B total, 14B activated
  { config: 'Qwen3-8B', total_b: 8.2 }, // model card: 8.2B
  { config: 'Qwen3-30B-A3B', total_b: 30.5, active_b: 3.3 }, // model card: 30.5B total, 3.3B activated
  { config: 'gpt-neox-20b', total_b: 20.55 }, // Black et al. 2022, GPT-NeoX-20B, Table 1: 20,556,201,984
];

describe('Hugging Face configs of other architectures match their published parameter counts', () => {
  for (const { config, total_b, active_b } of PUBLISHED) {
    it(`${config}: ${total_b}B parameters${active_b ? `, ${active_b}B active` : ''}`, async () => {
      const { table } = await sweep({
        model: hf(config),
        search: { ngpus_range: '8', tp_range: '1', pp_range: '1', cp_range: '1', ep_range: '1', mbs_range: '1', vpp_range: '1' },
        engine: 'cpu',
      });
      const row = table.get(0)!.toJSON() as Record<string, number>;
      // Rounded to the digits published: within half a unit of the last digit plus 0.3% for the bias of Qwen2's
      // q/k/v projections and Qwen3's q/k norms, which the schema does not carry (docs/huggingface.md).
      expect(Math.abs(Number(row.params_total) / 1e9 - total_b) / total_b).toBeLessThan(0.006);
      if (active_b) expect(Math.abs(Number(row.params_active) / 1e9 - active_b) / active_b).toBeLessThan(0.04);
    });
  }
});

function mappingError(doc: Record<string, unknown>): InputError {
  const path = join(makeTempDir(), 'config.json');
  writeFileSync(path, JSON.stringify(doc));
  try {
    loadConfig(path);
  } catch (error) {
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message.split('\n')).toHaveLength(1);
    return error as InputError;
  }
  throw new Error('expected an InputError');
}

const LLAMA = {
  model_type: 'llama',
  hidden_size: 1024,
  num_hidden_layers: 4,
  num_attention_heads: 16,
  num_key_value_heads: 4,
  intermediate_size: 4096,
  vocab_size: 32000,
  hidden_act: 'silu',
  max_position_embeddings: 8192,
};

describe('what a config.json cannot express is an error naming the key', () => {
  it('an unknown model_type lists the known ones', () => {
    expect(mappingError({ ...LLAMA, model_type: 'mamba' }).message).toMatch(/model_type: "mamba" is not mapped \(known: llama, .*gpt_neox\)$/);
  });
  it('an unknown key is not silently dropped', () => {
    expect(mappingError({ ...LLAMA, linear_attention_layers: [1, 2] }).message).toMatch(/config\.json: linear_attention_layers: unknown Hugging Face key/);
  });
  it('a missing size', () => {
    const { hidden_size: _, ...rest } = LLAMA;
    expect(mappingError(rest).message).toMatch(/hidden_size: required key is missing$/);
  });
  it('an activation without a counterpart', () => {
    expect(mappingError({ ...LLAMA, hidden_act: 'relu2' }).message).toMatch(/hidden_act: "relu2" cannot be mapped/);
  });
  it('sliding-window attention shorter than the sequence', () => {
    expect(mappingError({ ...LLAMA, model_type: 'mistral', sliding_window: 1024 }).message).toMatch(/sliding_window: 1024 is shorter than the sequence/);
  });
  it('MoE layers interleaved with dense ones', () => {
    const moe = { ...LLAMA, model_type: 'qwen3_moe', num_experts: 8, num_experts_per_tok: 2, moe_intermediate_size: 512 };
    expect(mappingError({ ...moe, decoder_sparse_step: 2 }).message).toMatch(/decoder_sparse_step: 2 cannot be mapped/);
    expect(mappingError({ ...moe, mlp_only_layers: [0, 3] }).message).toMatch(/mlp_only_layers: \[0,3\] cannot be mapped/);
  });
  it('invalid JSON names the file', () => {
    const path = join(makeTempDir(), 'config.json');
    writeFileSync(path, '{"model_type": ');
    expect(() => loadConfig(path)).toThrow(/config\.json: invalid JSON/);
  });
});

describe('defaults and overrides', () => {
  it('seq_length and global_batch_size get documented defaults, and overrides replace them', () => {
    const mapped = loadConfig(hf('Llama-3.1-8B')).model;
    expect(mapped.seq_length).toBe(4096);
    expect(mapped.global_batch_size).toBe(1024);
    expect(mapped.name).toBe('Llama-3.1-8B');
    // A downloaded model's directory works as well as its config.json.
    expect(loadConfig(join(HF, 'Llama-3.1-8B')).model).toEqual(mapped);
    const neox = loadConfig(hf('gpt-neox-20b')).model;
    expect(neox.seq_length).toBe(2048); // max_position_embeddings is shorter than the default
    const set = loadConfig(hf('Llama-3.1-8B'), [
      { path: ['model', 'seq_length'], value: 8192, remove: false, text: 'model.seq_length=8192' },
    ]).model;
    expect(set.seq_length).toBe(8192);
  });
});
