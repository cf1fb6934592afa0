// Tessera kernel `cast_57` (generated; do not edit).
// grid [1, 1, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_attention_mask: array<i32>; // attention_mask: i32[64]
@group(0) @binding(1) var<storage, read_write> b1_cast_305: array<f32>; // cast_305: f32[64]

@compute @workgroup_size(256)
fn cast_57(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    var r0: u32;
    var r1: i32;
    var r2: bool;
    var r3: i32;
    var r4: f32;
    var r5: bool;
    r0 = lid.x;
    r1 = i32(r0);
    r2 = r1 < 64i;
    if (r2) {
        r3 = b0_attention_mask[r1];
    } else {
        r3 = 0i;
    }
    r4 = f32(r3);
    r5 = r1 < 64i;
    if (r5) {
        b1_cast_305[r1] = r4;
    }
}
