// Tessera kernel `div_61` (generated; do not edit).
// grid [2, 2, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_div_314: array<f32>; // div_314: f32[768]
@group(0) @binding(1) var<storage, read> b1_max_319: array<f32>; // max_319: f32[2]
@group(0) @binding(2) var<storage, read_write> b2_embeddings: array<f32>; // embeddings: f32[768]

@compute @workgroup_size(256)
fn div_61(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    var r0: u32;
    var r1: i32;
    var r2: u32;
    var r3: i32;
    var r4: u32;
    var r5: i32;
    var r6: i32;
    var r7: i32;
    var r8: i32;
    var r9: i32;
    var r10: i32;
    var r11: bool;
    var r12: f32;
    var r13: bool;
    var r14: f32;
    var r15: f32;
    var r16: i32;
    var r17: bool;
    r0 = lid.x;
    r1 = i32(r0);
    r2 = wid.x;
    r3 = i32(r2);
    r4 = wid.y;
    r5 = i32(r4);
    r6 = r3 * 256i;
    r7 = 384i - r6;
    r8 = r5 * 384i;
    r9 = r8 + r6;
    r10 = r9 + r1;
    r11 = r1 < r7;
    if (r11) {
        r12 = b0_div_314[r10];
    } else {
        r12 = 0.0f;
    }
    r13 = r1 < r7;
    if (r13) {
        r14 = b1_max_319[r5];
    } else {
        r14 = 0.0f;
    }
    r15 = r12 / r14;
    r16 = r9 + r1;
    r17 = r1 < r7;
    if (r17) {
        b2_embeddings[r16] = r15;
    }
}
