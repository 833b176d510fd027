// Entry point shared by every formula: reads the formula's inputs from the grid buffer, calls its cost function
// from model.wgsl, optionally keeps only the rows a selection wants, and writes the output columns.
// src/engine/gpu/shader.ts fills the {{...}} slots, so the binding layout is the same for all formulas.
//
// At most four storage buffers per stage (compatibility mode's limit): the grid, the results, and with a selection
// a counter and the top-k thresholds. Columns sit at offsets `k * params.stride` (the chunk capacity), so one upload
// fills all grid columns and one copy reads back each output column.

struct Params {
  rows: u32,            // rows in this chunk up to the end of this dispatch
  stride: u32,          // elements between two columns (the chunk capacity)
  dispatch_width: u32,  // invocations per row of the 2D dispatch: workgroups in x times the workgroup size
  first_row: u32,       // the first row of this dispatch (a chunk may take several, see terms.wgsl)
}

@group(0) @binding(0) var<uniform> constants: {{CONSTANTS_STRUCT}};
@group(0) @binding(1) var<uniform> params: Params;
@group(0) @binding(2) var<storage, read> grid: array<i32>;
@group(0) @binding(3) var<storage, read_write> results: array<f32>;
{{SELECTION_BINDINGS}}
override workgroup_size: u32 = 64;

@compute @workgroup_size(workgroup_size)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  // A 2D index, because one dimension holds at most 65,535 workgroups.
  let i = params.first_row + gid.x + gid.y * params.dispatch_width;
  if (i >= params.rows) {
    return;
  }
{{READ_INPUTS}}
  let r = {{FUNCTION}}(constants, {{ARGUMENTS}});
{{SELECT}}
{{WRITE_OUTPUTS}}
}
