// Tessera kernel `mul_sub_mul_add_47` (generated; do not edit).
// grid [1, 256, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_mul_101: array<f32>; // mul_101: f32[32768]
@group(0) @binding(1) var<storage, read> b1_mul_144: array<f32>; // mul_144: f32[32768]
@group(0) @binding(2) var<storage, read> b2_reduce_mean_145: array<f32>; // reduce_mean_145: f32[256]
@group(0) @binding(3) var<storage, read> b3_mul_142: array<f32>; // mul_142: f32[32768]
@group(0) @binding(4) var<storage, read> b4_reduce_mean_147: array<f32>; // reduce_mean_147: f32[256]
@group(0) @binding(5) var<storage, read> b5_rsqrt_140: array<f32>; // rsqrt_140: f32[256]
@group(0) @binding(6) var<storage, read_write> b6_add_158: array<f32>; // add_158: f32[32768]

@compute @workgroup_size(256)
fn mul_sub_mul_add_47(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
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
    var r11: bool;
    var r12: f32;
    var r13: f32;
    var r14: i32;
    var r15: bool;
    var r16: f32;
    var r17: bool;
    var r18: f32;
    var r19: f32;
    var r20: f32;
    var r21: bool;
    var r22: f32;
    var r23: f32;
    var r24: f32;
    var r25: i32;
    var r26: bool;
    r0 = lid.x;
    r1 = i32(r0);
    r2 = wid.y;
    r3 = i32(r2);
    r4 = r3 * 128i;
    r5 = r4 + r1;
    r6 = r1 < 128i;
    if (r6) {
        r7 = b0_mul_101[r5];
    } else {
        r7 = 0.0f;
    }
    r8 = r4 + r1;
    r9 = r1 < 128i;
    if (r9) {
        r10 = b1_mul_144[r8];
    } else {
        r10 = 0.0f;
    }
    r11 = r1 < 128i;
    if (r11) {
        r12 = b2_reduce_mean_145[r3];
    } else {
        r12 = 0.0f;
    }
    r13 = r10 - r12;
    r14 = r4 + r1;
    r15 = r1 < 128i;
    if (r15) {
        r16 = b3_mul_142[r14];
    } else {
        r16 = 0.0f;
    }
    r17 = r1 < 128i;
    if (r17) {
        r18 = b4_reduce_mean_147[r3];
    } else {
        r18 = 0.0f;
    }
    r19 = r16 * r18;
    r20 = r13 - r19;
    r21 = r1 < 128i;
    if (r21) {
        r22 = b5_rsqrt_140[r3];
    } else {
        r22 = 0.0f;
    }
    r23 = r20 * r22;
    r24 = r7 + r23;
    r25 = r4 + r1;
    r26 = r1 < 128i;
    if (r26) {
        b6_add_158[r25] = r24;
    }
}
