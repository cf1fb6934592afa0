// Tessera kernel `mul_26` (generated; do not edit).
// grid [1, 256, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_matmul_77: array<f32>; // matmul_77: f32[32768]
@group(0) @binding(1) var<storage, read> b1_ln_f_weight: array<f32>; // ln_f.weight: f32[128]
@group(0) @binding(2) var<storage, read_write> b2_mul_91: array<f32>; // mul_91: f32[32768]

@compute @workgroup_size(256)
fn mul_26(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    var r0: u32;
    var r1: i32;
    var r2: u32;
    var r3: i32;
    var r4: i32;
    var r5: i32;
    var r6: bool;
    var r7: f32;
    var r8: bool;
    var r9: f32;
    var r10: f32;
    var r11: i32;
    var r12: bool;
    r0 = lid.x;
    r1 = i32(r0);
    r2 = wid.y;
    r3 = i32(r2);
    r4 = r3 * 128i;
    r5 = r4 + r1;
    r6 = r1 < 128i;
    if (r6) {
        r7 = b0_matmul_77[r5];
    } else {
        r7 = 0.0f;
    }
    r8 = r1 < 128i;
    if (r8) {
        r9 = b1_ln_f_weight[r1];
    } else {
        r9 = 0.0f;
    }
    r10 = r7 * r9;
    r11 = r4 + r1;
    r12 = r1 < 128i;
    if (r12) {
        b2_mul_91[r11] = r10;
    }
}
