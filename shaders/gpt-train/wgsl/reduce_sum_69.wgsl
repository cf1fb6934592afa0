// Tessera kernel `reduce_sum_69` (generated; do not edit).
// grid [8192, 1, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_add_213: array<f32>; // add_213: f32[32768]
@group(0) @binding(1) var<storage, read_write> b1_grad_wpe_weight: array<f32>; // grad/wpe.weight: f32[8192]
var<workgroup> sh0: array<f32, 256>;

@compute @workgroup_size(256)
fn reduce_sum_69(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    var r0: u32;
    var r1: i32;
    var r2: u32;
    var r3: i32;
    var r4: i32;
    var r5: i32;
    var r6: i32;
    var r7: i32;
    var r8: f32;
    var r9: i32;
    var r10: i32;
    var r11: i32;
    var r12: i32;
    var r13: i32;
    var r14: i32;
    var r15: i32;
    var r16: bool;
    var r17: f32;
    var r18: f32;
    var r19: bool;
    var r20: f32;
    var r21: bool;
    var r22: bool;
    var r23: f32;
    var r24: i32;
    var r25: f32;
    var r26: f32;
    var r27: bool;
    var r28: f32;
    var r29: i32;
    var r30: f32;
    var r31: f32;
    var r32: f32;
    var r33: bool;
    r0 = lid.x;
    r1 = i32(r0);
    r2 = wid.x;
    r3 = i32(r2);
    r4 = r3 % 128i;
    r5 = r3 / 128i;
    r6 = r5 * 128i;
    r7 = r6 + r4;
    r8 = 0.0f;
    for (r9 = 0i; r9 < 4i; r9 = r9 + 4i) {
        r10 = 4i - r9;
        r11 = r9 * 8192i;
        r12 = r7 + r11;
        r13 = r1 * 8192i;
        r14 = r12 + r13;
        r15 = min(r10, 4i);
        r16 = r1 < r15;
        if (r16) {
            r17 = b0_add_213[r14];
        } else {
            r17 = 0.0f;
        }
        r18 = r8 + r17;
        r8 = r18;
    }
    r19 = r1 < 4i;
    r20 = select(0.0f, r8, r19);
    r21 = r1 < 4i;
    if (r21) {
        sh0[r1] = r20;
    }
    workgroupBarrier();
    r22 = r1 < 2i;
    if (r22) {
        r23 = sh0[r1];
        r24 = r1 + 2i;
        r25 = sh0[r24];
        r26 = r23 + r25;
        sh0[r1] = r26;
    }
    workgroupBarrier();
    r27 = r1 < 1i;
    if (r27) {
        r28 = sh0[r1];
        r29 = r1 + 1i;
        r30 = sh0[r29];
        r31 = r28 + r30;
        sh0[r1] = r31;
    }
    workgroupBarrier();
    r32 = sh0[0i];
    workgroupBarrier();
    r33 = r1 < 1i;
    if (r33) {
        b1_grad_wpe_weight[r3] = r32;
    }
}
