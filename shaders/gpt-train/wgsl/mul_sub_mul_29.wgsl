// Tessera kernel `mul_sub_mul_29` (generated; do not edit).
// grid [1, 256, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_mul_91: array<f32>; // mul_91: f32[32768]
@group(0) @binding(1) var<storage, read> b1_reduce_mean_92: array<f32>; // reduce_mean_92: f32[256]
@group(0) @binding(2) var<storage, read> b2_mul_89: array<f32>; // mul_89: f32[32768]
@group(0) @binding(3) var<storage, read> b3_reduce_mean_94: array<f32>; // reduce_mean_94: f32[256]
@group(0) @binding(4) var<storage, read> b4_rsqrt_87: array<f32>; // rsqrt_87: f32[256]
@group(0) @binding(5) var<storage, read_write> b5_mul_101: array<f32>; // mul_101: f32[32768]

@compute @workgroup_size(256)
fn mul_sub_mul_29(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
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
    var r13: f32;
    var r14: bool;
    var r15: f32;
    var r16: f32;
    var r17: f32;
    var r18: bool;
    var r19: f32;
    var r20: f32;
    var r21: i32;
    var r22: bool;
    r0 = lid.x;
    r1 = i32(r0);
    r2 = wid.y;
    r3 = i32(r2);
    r4 = r3 * 128i;
    r5 = r4 + r1;
    r6 = r1 < 128i;
    if (r6) {
        r7 = b0_mul_91[r5];
    } else {
        r7 = 0.0f;
    }
    r8 = r1 < 128i;
    if (r8) {
        r9 = b1_reduce_mean_92[r3];
    } else {
        r9 = 0.0f;
    }
    r10 = r7 - r9;
    r11 = r4 + r1;
    r12 = r1 < 128i;
    if (r12) {
        r13 = b2_mul_89[r11];
    } else {
        r13 = 0.0f;
    }
    r14 = r1 < 128i;
    if (r14) {
        r15 = b3_reduce_mean_94[r3];
    } else {
        r15 = 0.0f;
    }
    r16 = r13 * r15;
    r17 = r10 - r16;
    r18 = r1 < 128i;
    if (r18) {
        r19 = b4_rsqrt_87[r3];
    } else {
        r19 = 0.0f;
    }
    r20 = r17 * r19;
    r21 = r4 + r1;
    r22 = r1 < 128i;
    if (r22) {
        b5_mul_101[r21] = r20;
    }
}
