import type { LoadedConfig } from '../config/load.js';
import { SHARD_STRATEGIES } from '../config/model.js';
import type { ParsedDimension, SearchKeyName } from '../config/space.js';
import { InputError } from '../errors.js';
import { GridPlan } from '../grid/grid.js';
import { POC_CONSTANTS, POC_INPUTS, POC_OUTPUTS, PocConstants, pocEstimate, pocPsi } from '../model.js';
import type { Formula, ResultColumn } from './types.js';

const GATED_FOR_POC = 'swiglu';

function moeOf(config: LoadedConfig) {
  // The PoC fills in a dense MoE section when the model has none.
  return config.model.moe ?? { num_experts: 0, k: 0, expert_frequency: 0, token_imbalance_hypothesis: 1.0 };
}

function psiTable(config: LoadedConfig) {
  // bfloat16 and float16 have the same size; the PoC's table names only float16.
  const name = (dtype: string) => (dtype === 'bfloat16' ? 'float16' : dtype);
  const psi = pocPsi(name(config.trainer.param_dtype), name(config.trainer.grad_dtype));
  if (!psi) {
    throw new InputError(
      'trainer.param_dtype',
      `--formula poc knows (param_dtype, grad_dtype) = (float16, float16), (float16, float32), (float32, float32); got (${config.trainer.param_dtype}, ${config.trainer.grad_dtype})`,
    );
  }
  return psi;
}

/** The LLM Parallelism Explorer PoC's estimate, reproduced to 1e-9 with its quirks. */
export const pocFormula: Formula = {
  name: 'poc',
  description: "the PoC's estimate: its 25 CSV columns, its grid rules, its integer divisions",
  constantNames: POC_CONSTANTS,
  inputs: POC_INPUTS,
  outputs: POC_OUTPUTS,
  wgslFunction: 'poc_estimate',
  autoPrefersCpu: "--formula poc reproduces the PoC's f64 numbers; the GPU computes in f32 (use --engine gpu to force it)",

  searchDefaults({ config }) {
    const experts = moeOf(config).num_experts;
    // The PoC's default space, with ep as powers of two below 2^bit_length(num_experts).
    const ep: number[] = [];
    for (let i = 0; i < experts.toString(2).length && experts > 0; i++) ep.push(2 ** i);
    return {
      ngpus_range: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 10240],
      tp_range: [1, 2, 4, 8],
      pp_range: [1, 2, 4, 8, 16],
      ep_range: experts > 0 ? ep : [1],
      cp_range: [1, 2, 4, 8],
      shard_strategys: [...SHARD_STRATEGIES],
      mbs_range: [1, 2, 4],
    };
  },

  packConstants({ config }) {
    const { model } = config;
    const moe = moeOf(config);
    const psi = psiTable(config);
    const c: PocConstants = {
      vocab_size: model.vocab_size,
      hidden_size: model.hidden_size,
      ffn_hidden_size: model.ffn_hidden_size,
      num_layers: model.num_layers,
      seq_length: model.seq_length,
      global_batch_size: model.global_batch_size,
      has_kv_heads: model.num_key_value_heads !== undefined ? 1 : 0,
      num_attention_heads: model.num_attention_heads ?? 0,
      num_key_value_heads: model.num_key_value_heads ?? 0,
      gated_mlp_matrices: model.activation === GATED_FOR_POC ? 3 : 2,
      untied_embeddings: model.share_embeddings_and_output_weights ? 0 : 1,
      expert_frequency: moe.expert_frequency,
      moe_k: moe.k,
      num_experts: moe.num_experts,
      token_imbalance_hypothesis: moe.token_imbalance_hypothesis,
      psi_no_op_fixed: psi[0][0],
      psi_no_op_sharded: psi[0][1],
      psi_os_fixed: psi[1][0],
      psi_os_sharded: psi[1][1],
      psi_osg_fixed: psi[2][0],
      psi_osg_sharded: psi[2][1],
      psi_fs_fixed: psi[3][0],
      psi_fs_sharded: psi[3][1],
    };
    return Float64Array.from(POC_CONSTANTS, (name) => c[name]);
  },

  buildGrid({ config }, space) {
    const { model } = config;
    const experts = moeOf(config).num_experts;
    const values = (key: SearchKeyName) => Int32Array.from(space.get(key)!.values);
    const columns = [
      { name: 'ngpus' },
      { name: 'TP' },
      { name: 'PP' },
      { name: 'EP' },
      { name: 'CP' },
      { name: 'DP' },
      { name: 'sub_seq_length' },
      { name: 'micro_batch_size' },
      { name: 'data_parallel_sharding_strategy', labels: SHARD_STRATEGIES },
    ];
    const [NGPUS, TP, PP, EP, CP, DP, SUB_SEQ, MBS, ZERO] = columns.map((_, i) => i);
    // The PoC's loop order: ngpus, tp, pp, ep, cp, strategy, mbs; dp is derived once cp is known. The PoC asserts
    // seq_length % cp == 0 and num_experts % ep == 0 (a crash); here such rows are simply not valid.
    return new GridPlan(columns, [
      { column: NGPUS, values: values('ngpus_range') },
      { column: TP, values: values('tp_range') },
      { column: PP, values: values('pp_range'), accept: (row) => model.num_layers % row[PP] === 0 },
      { column: EP, values: values('ep_range'), accept: (row) => experts % row[EP] === 0 },
      {
        column: CP,
        values: values('cp_range'),
        accept: (row) => row[NGPUS] % (row[TP] * row[PP] * row[CP]) === 0 && model.seq_length % row[CP] === 0,
      },
      {
        column: DP,
        derive: (row) => row[NGPUS] / (row[TP] * row[PP] * row[CP]),
        accept: (row) => row[DP] % row[EP] === 0,
      },
      { column: SUB_SEQ, derive: (row) => model.seq_length / row[CP] },
      { column: ZERO, values: values('shard_strategys') },
      {
        column: MBS,
        values: values('mbs_range'),
        accept: (row) => model.global_batch_size % (row[DP] * row[MBS]) === 0,
      },
    ]);
  },

  resultColumns({ config }) {
    const computed = (name: string): ResultColumn => ({ name, from: 'computed', index: POC_OUTPUTS.indexOf(name as never) });
    const grid = (name: string): ResultColumn => ({ name, from: 'grid', column: name });
    return [
      { name: 'name', from: 'constant', value: config.model.name },
      grid('ngpus'),
      grid('TP'),
      grid('PP'),
      grid('EP'),
      grid('CP'),
      grid('DP'),
      grid('sub_seq_length'),
      grid('micro_batch_size'),
      computed('num_of_micro_batches'),
      computed('pipeline_parallelism_bubble_rate'),
      grid('data_parallel_sharding_strategy'),
      ...POC_OUTPUTS.slice(2).map(computed),
      { name: 'token_imbalance_hypothesis', from: 'constant', value: moeOf(config).token_imbalance_hypothesis },
    ];
  },

  evaluate(constants, inputs, outputs, length) {
    const c = Object.fromEntries(POC_CONSTANTS.map((name, i) => [name, constants[i]])) as PocConstants;
    const [ngpus, tp, pp, ep, cp, dp, mbs, zero] = inputs;
    const row = new Float64Array(POC_OUTPUTS.length);
    const width = POC_OUTPUTS.length;
    for (let i = 0; i < length; i++) {
      pocEstimate(c, ngpus[i], tp[i], pp[i], ep[i], cp[i], dp[i], mbs[i], zero[i], row);
      for (let j = 0; j < width; j++) outputs[j][i] = row[j];
    }
  },
};
