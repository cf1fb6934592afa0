// Tessera kernel `sub_mul_20` (generated; do not edit).
// grid [1, 256, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_softmax_66: array<f32>; // softmax_66: f32[16640]
@group(0) @binding(1) var<storage, read> b1_select_64: array<f32>; // select_64: f32[16640]
@group(0) @binding(2) var<storage, read> b2_reduce_sum_65: array<f32>; // reduce_sum_65: f32[256]
@group(0) @binding(3) var<storage, read> b3_div_71: array<f32>; // div_71: f32[1]
@group(0) @binding(4) var<storage, read_write> b4_mul_76: array<f32>; // mul_76: f32[16640]

@compute @workgroup_size(256)
fn sub_mul_20(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    var r0: u32;
    var r1: i32;
    var r2: u32;
    var r3: i32;
    var r4: i32;
    var r5: i32;
    var r6: bool;
    var r7: f32;
    var r8: i32;
    var r9: bool;
    var r10: f32;
    var r11: f32;
    var r12: bool;
    var r13: f32;
    var r14: bool;
    var r15: f32;
    var r16: f32;
    var r17: f32;
    var r18: i32;
    var r19: bool;
    r0 = lid.x;
    r1 = i32(r0);
    r2 = wid.y;
    r3 = i32(r2);
    r4 = r3 * 65i;
    r5 = r4 + r1;
    r6 = r1 < 65i;
    if (r6) {
        r7 = b0_softmax_66[r5];
    } else {
        r7 = 0.0f;
    }
    r8 = r4 + r1;
    r9 = r1 < 65i;
    if (r9) {
        r10 = b1_select_64[r8];
    } else {
        r10 = 0.0f;
    }
    r11 = r7 - r10;
    r12 = r1 < 65i;
    if (r12) {
        r13 = b2_reduce_sum_65[r3];
    } else {
        r13 = 0.0f;
    }
    r14 = r1 < 65i;
    if (r14) {
        r15 = b3_div_71[0i];
    } else {
        r15 = 0.0f;
    }
    r16 = r13 * r15;
    r17 = r11 * r16;
    r18 = r4 + r1;
    r19 = r1 < 65i;
    if (r19) {
        b4_mul_76[r18] = r17;
    }
}
