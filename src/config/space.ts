import { InputError } from '../errors.js';
import { SHARD_STRATEGIES } from './model.js';
import { parseBoolList, parseEnumList, parseIntList } from './ranges.js';

export const RECOMPUTE_MODES = ['none', 'selective', 'full', 'selective_op'] as const;
export type RecomputeMode = (typeof RECOMPUTE_MODES)[number];
export const SCHEDULES = ['1f1b', 'interleaved', 'gpipe', 'zb-h1', 'dualpipe'] as const;
export type Schedule = (typeof SCHEDULES)[number];
/** The two OptimusPrime options: optimizer states on the host during fwd/bwd, and additionally the step on the CPU. */
export const OFFLOAD_MODES = ['none', 'optimizer', 'optimizer_cpu_step'] as const;
export type OffloadMode = (typeof OFFLOAD_MODES)[number];
/** When ZeRO-2/3 reduce-scatter gradients: once per step (accumulated whole) or per micro-batch (as produced). */
export const GRAD_REDUCE_MODES = ['step', 'microbatch'] as const;

const ZERO_ALIASES: Record<string, (typeof SHARD_STRATEGIES)[number]> = {
  '0': 'NO_OP',
  '1': 'OPTIMIZER_STATES',
  '2': 'OPTIMIZER_STATES_AND_GRADS',
  '3': 'FULLY_SHARD',
  zero0: 'NO_OP',
  zero1: 'OPTIMIZER_STATES',
  zero2: 'OPTIMIZER_STATES_AND_GRADS',
  zero3: 'FULLY_SHARD',
};

/**
 * One search dimension. Every value is stored in the grid as an integer: integers as themselves, categories as
 * the index into `values` (Arrow dictionary indices), booleans as 0/1.
 */
export type SearchKey =
  | { kind: 'int'; flag: string; describe: string }
  | { kind: 'enum'; flag: string; describe: string; values: readonly string[]; aliases?: Record<string, string> }
  | { kind: 'bool'; flag: string; describe: string };

export const SEARCH_KEYS = {
  ngpus_range: { kind: 'int', flag: 'ngpus', describe: 'GPU counts' },
  tp_range: { kind: 'int', flag: 'tp', describe: 'tensor-parallel sizes' },
  pp_range: { kind: 'int', flag: 'pp', describe: 'pipeline-parallel sizes' },
  ep_range: { kind: 'int', flag: 'ep', describe: 'expert-parallel sizes' },
  cp_range: { kind: 'int', flag: 'cp', describe: 'context-parallel sizes' },
  mbs_range: { kind: 'int', flag: 'mbs', describe: 'micro-batch sizes' },
  shard_strategys: {
    kind: 'enum',
    flag: 'zero',
    describe: 'ZeRO stages 0-3 or the PoC names NO_OP, OPTIMIZER_STATES, OPTIMIZER_STATES_AND_GRADS, FULLY_SHARD',
    values: SHARD_STRATEGIES,
    aliases: ZERO_ALIASES,
  },
  etp_range: { kind: 'int', flag: 'etp', describe: 'expert tensor-parallel sizes' },
  sp_range: { kind: 'bool', flag: 'sp', describe: 'sequence parallel on/off' },
  recompute_range: { kind: 'enum', flag: 'recompute', describe: 'none, selective, full, selective_op', values: RECOMPUTE_MODES },
  schedule_range: { kind: 'enum', flag: 'schedule', describe: '1f1b, interleaved, gpipe, zb-h1, dualpipe', values: SCHEDULES },
  vpp_range: { kind: 'int', flag: 'vpp', describe: 'virtual pipeline stages per GPU (interleaved schedule)' },
  offload_range: {
    kind: 'enum',
    flag: 'offload',
    describe: 'none, optimizer, optimizer_cpu_step',
    values: OFFLOAD_MODES,
  },
  gbs_range: { kind: 'int', flag: 'gbs', describe: 'target global batch sizes in sequences (see --gbs-tolerance)' },
  first_stage_layers_range: {
    kind: 'int',
    flag: 'first-stage-layers',
    describe: "layers of the first pipeline rank (Megatron's --decoder-first-pipeline-num-layers); 0 = automatic",
  },
  last_stage_layers_range: {
    kind: 'int',
    flag: 'last-stage-layers',
    describe: "layers of the last pipeline rank (Megatron's --decoder-last-pipeline-num-layers); 0 = automatic",
  },
  grad_reduce_range: {
    kind: 'enum',
    flag: 'grad-reduce',
    describe: 'ZeRO-2/3 gradient reduce-scatter: step (once, accumulated whole) or microbatch (as produced)',
    values: GRAD_REDUCE_MODES,
  },
  reshard_range: { kind: 'bool', flag: 'reshard', describe: 'ZeRO-3: free gathered parameters after the forward' },
  dp_replicas_range: {
    kind: 'int',
    flag: 'dp-replicas',
    describe: 'ZeRO 1-3: replicas of the sharded states; ZeRO shards over dp / dp_replicas ranks (HSDP); 1 = over all of dp',
  },
  seq_range: { kind: 'int', flag: 'seq', describe: 'sequence lengths' },
} as const satisfies Record<string, SearchKey>;

export type SearchKeyName = keyof typeof SEARCH_KEYS;

/** Parsed search values for one key: integer codes plus, for categories, the labels they index. */
export interface ParsedDimension {
  key: SearchKeyName;
  values: number[];
  labels?: readonly string[];
}

export function parseSearchValue(key: SearchKeyName, raw: unknown, field: string = key): ParsedDimension {
  const spec: SearchKey = SEARCH_KEYS[key];
  switch (spec.kind) {
    case 'int':
      // 0 asks for the automatic pipeline split.
      return { key, values: parseIntList(raw, field, key === 'first_stage_layers_range' || key === 'last_stage_layers_range' ? 0 : 1) };
    case 'bool':
      return { key, values: parseBoolList(raw, field).map((b) => (b ? 1 : 0)), labels: ['false', 'true'] };
    case 'enum': {
      const names = parseEnumList(raw, field, spec.values, spec.aliases ?? {});
      return { key, values: names.map((name) => spec.values.indexOf(name)), labels: spec.values };
    }
  }
}

/**
 * Merges a formula's defaults with what the config file, the overrides and the flags set (later wins), and
 * rejects keys the formula does not search over: nothing is silently ignored.
 */
export function resolveSearchSpace(
  formulaName: string,
  defaults: Partial<Record<SearchKeyName, unknown>>,
  ...layers: Array<Record<string, unknown>>
): Map<SearchKeyName, ParsedDimension> {
  const raw: Record<string, { value: unknown; field: string }> = {};
  for (const [key, value] of Object.entries(defaults)) raw[key] = { value, field: key };
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer)) {
      if (value === undefined) continue;
      if (!(key in defaults)) {
        const flag = (SEARCH_KEYS as Record<string, SearchKey>)[key]?.flag;
        throw new InputError(
          key,
          `is not a search dimension of --formula ${formulaName}${flag ? ` (nor is --${flag})` : ''}`,
        );
      }
      // Checked even when a later layer (a flag) replaces it: a bad override must not pass unnoticed.
      parseSearchValue(key as SearchKeyName, value, key);
      raw[key] = { value, field: key };
    }
  }
  const space = new Map<SearchKeyName, ParsedDimension>();
  for (const key of Object.keys(defaults) as SearchKeyName[]) {
    space.set(key, parseSearchValue(key, raw[key].value, raw[key].field));
  }
  return space;
}
