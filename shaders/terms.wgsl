// The per-class pass of --formula full: rows of one layout class (every grid column but ZeRO, gradient reduction,
// resharding, SP, recompute, offload, GPU count and global batch) share each pipeline rank's StageMemoryBase and
// StageMicrobatch, which rank to skip, and the model's totals, so this pass computes them once per class and
// (SP, recompute) pair, into a table that the per-row pass (evaluate.wgsl, through model.wgsl's terms_* functions)
// reads. src/engine/cpu/memo.ts does the same on the CPU. src/engine/gpu/shader.ts fills the {{...}} slots.
//
// The table shares the grid buffer (bound read_write here, read-only in the per-row pass) so that the per-row
// pass stays within compatibility mode's four storage buffers per stage: after the grid columns and the per-row
// table offsets comes the class list, two words per class (the class's first row, its table offset), then the
// tables, f32 values stored as their bits.

struct TermsParams {
  classes: u32,         // layout classes in this dispatch
  stride: u32,          // elements between two grid columns (the chunk capacity)
  dispatch_width: u32,  // invocations per row of the 2D dispatch: workgroups in x times the workgroup size
  list: u32,            // word offset of the class list
}

@group(0) @binding(0) var<uniform> constants: FullConstants;
@group(0) @binding(1) var<uniform> params: TermsParams;
@group(0) @binding(2) var<storage, read_write> grid: array<i32>;
override workgroup_size: u32 = 64;

fn put(k: u32, x: f32) {
  grid[k] = bitcast<i32>(x);
}

@compute @workgroup_size(workgroup_size)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  // One invocation per (class, SP, recompute): the table block of each pair.
  let n = gid.x + gid.y * params.dispatch_width;
  let pairs = u32(2 * RECOMPUTE_SLOTS);
  if (n >= params.classes * pairs) {
    return;
  }
  let entry = n / pairs;
  let pair = i32(n % pairs);
  let i = u32(grid[params.list + 2u * entry]);
  let terms = grid[params.list + 2u * entry + 1u];
{{READ_INPUTS}}
  var r = FullRow({{ROW}});
  r.sp = pair / RECOMPUTE_SLOTS;
  r.recompute = pair % RECOMPUTE_SLOTS;
  let c = constants;
  let block = terms_block(r, terms);
  put(block, model_params(c, r.tp, r.seq_length, 0));
  put(block + 1u, model_params(c, r.tp, r.seq_length, 1));
  put(block + 2u, model_flops_per_token(c, r.tp, r.seq_length, r.recompute, 0.0));
  put(block + 3u, model_flops_per_token(c, r.tp, r.seq_length, r.recompute, 1.0));
  let last = last_distinct_rank(r);
  for (var rank = 0.0; rank <= last; rank += 1.0) {
    let k = terms_rank(r, rank, terms);
    let skip = same_as_previous_middle(c, r, rank);
    grid[k] = select(0, 1, skip);
    if (skip) { continue; }
    let base = stage_memory_base(c, r, rank);
    put(k + 1u, base.dense_params);
    put(k + 2u, base.expert_params);
    put(k + 3u, base.largest_layer);
    put(k + 4u, base.activations);
    put(k + 5u, base.logits);
    put(k + 6u, base.inflight);
    let mb = stage_microbatch(c, r, rank);
    put(k + 7u, mb.compute_s);
    put(k + 8u, mb.tp_total_s);
    put(k + 9u, mb.tp_s);
    put(k + 10u, mb.tp_bytes);
    put(k + 11u, mb.ep_total_s);
    put(k + 12u, mb.ep_s);
    put(k + 13u, mb.ep_bytes);
    put(k + 14u, mb.cp_total_s);
    put(k + 15u, mb.cp_exposed_s);
    put(k + 16u, mb.cp_bytes);
    put(k + 17u, mb.pp_total_s);
    put(k + 18u, mb.pp_s);
    put(k + 19u, mb.pp_bytes);
    put(k + 20u, mb.dense_params);
    put(k + 21u, mb.expert_params);
  }
}
