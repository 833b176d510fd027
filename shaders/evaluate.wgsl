// Entry point shared by every formula: reads the formula's input columns from the grid buffer, calls its cost
// function from model.wgsl, and writes its output columns. src/engine/gpu/shader.ts fills the {{...}} slots from
// the formula's input and output lists, so the binding layout is the same for all formulas.
//
// Two storage buffers and two uniforms per stage, within compatibility mode's limit of four storage buffers.
// Columns sit at offsets `k * params.stride` (the chunk capacity), so one upload fills them all.

struct Params {
  rows: u32,            // rows in this chunk
  stride: u32,          // elements between two columns (the chunk capacity)
  dispatch_width: u32,  // invocations per row of the 2D dispatch: workgroups in x times the workgroup size
  pad: u32,
}

@group(0) @binding(0) var<uniform> constants: {{CONSTANTS_STRUCT}};
@group(0) @binding(1) var<uniform> params: Params;
@group(0) @binding(2) var<storage, read> grid: array<i32>;
@group(0) @binding(3) var<storage, read_write> results: array<f32>;

override workgroup_size: u32 = 64;

@compute @workgroup_size(workgroup_size)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  // A 2D index, because one dimension holds at most 65,535 workgroups.
  let i = gid.x + gid.y * params.dispatch_width;
  if (i >= params.rows) {
    return;
  }
{{READ_INPUTS}}
  let r = {{FUNCTION}}(constants, {{ARGUMENTS}});
{{WRITE_OUTPUTS}}
}
