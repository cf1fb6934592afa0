// Tessera kernel `cross_entropy_mean_15` (generated; do not edit).
// grid [1, 1, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_loss_token_cross_entropy_64: array<f32>; // loss_token_cross_entropy_64: f32[256]
@group(0) @binding(1) var<storage, read> b1_loss_reduce_sum_81: array<f32>; // loss_reduce_sum_81: f32[1]
@group(0) @binding(2) var<storage, read_write> b2_loss: array<f32>; // loss: f32[1]
var<workgroup> sh0: array<f32, 256>;

@compute @workgroup_size(256)
fn cross_entropy_mean_15(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    var r0: u32;
    var r1: i32;
    var r2: f32;
    var r3: i32;
    var r4: i32;
    var r5: i32;
    var r6: bool;
    var r7: f32;
    var r8: f32;
    var r9: bool;
    var r10: bool;
    var r11: f32;
    var r12: i32;
    var r13: f32;
    var r14: f32;
    var r15: bool;
    var r16: f32;
    var r17: i32;
    var r18: f32;
    var r19: f32;
    var r20: bool;
    var r21: f32;
    var r22: i32;
    var r23: f32;
    var r24: f32;
    var r25: bool;
    var r26: f32;
    var r27: i32;
    var r28: f32;
    var r29: f32;
    var r30: bool;
    var r31: f32;
    var r32: i32;
    var r33: f32;
    var r34: f32;
    var r35: bool;
    var r36: f32;
    var r37: i32;
    var r38: f32;
    var r39: f32;
    var r40: bool;
    var r41: f32;
    var r42: i32;
    var r43: f32;
    var r44: f32;
    var r45: bool;
    var r46: f32;
    var r47: i32;
    var r48: f32;
    var r49: f32;
    var r50: f32;
    var r51: f32;
    var r52: f32;
    var r53: f32;
    var r54: bool;
    r0 = lid.x;
    r1 = i32(r0);
    r2 = 0.0f;
    for (r3 = 0i; r3 < 256i; r3 = r3 + 256i) {
        r4 = 256i - r3;
        r5 = r3 + r1;
        r6 = r1 < r4;
        if (r6) {
            r7 = b0_loss_token_cross_entropy_64[r5];
        } else {
            r7 = 0.0f;
        }
        r8 = r2 + r7;
        r2 = r8;
    }
    r9 = r1 < 256i;
    if (r9) {
        sh0[r1] = r2;
    }
    workgroupBarrier();
    r10 = r1 < 128i;
    if (r10) {
        r11 = sh0[r1];
        r12 = r1 + 128i;
        r13 = sh0[r12];
        r14 = r11 + r13;
        sh0[r1] = r14;
    }
    workgroupBarrier();
    r15 = r1 < 64i;
    if (r15) {
        r16 = sh0[r1];
        r17 = r1 + 64i;
        r18 = sh0[r17];
        r19 = r16 + r18;
        sh0[r1] = r19;
    }
    workgroupBarrier();
    r20 = r1 < 32i;
    if (r20) {
        r21 = sh0[r1];
        r22 = r1 + 32i;
        r23 = sh0[r22];
        r24 = r21 + r23;
        sh0[r1] = r24;
    }
    workgroupBarrier();
    r25 = r1 < 16i;
    if (r25) {
        r26 = sh0[r1];
        r27 = r1 + 16i;
        r28 = sh0[r27];
        r29 = r26 + r28;
        sh0[r1] = r29;
    }
    workgroupBarrier();
    r30 = r1 < 8i;
    if (r30) {
        r31 = sh0[r1];
        r32 = r1 + 8i;
        r33 = sh0[r32];
        r34 = r31 + r33;
        sh0[r1] = r34;
    }
    workgroupBarrier();
    r35 = r1 < 4i;
    if (r35) {
        r36 = sh0[r1];
        r37 = r1 + 4i;
        r38 = sh0[r37];
        r39 = r36 + r38;
        sh0[r1] = r39;
    }
    workgroupBarrier();
    r40 = r1 < 2i;
    if (r40) {
        r41 = sh0[r1];
        r42 = r1 + 2i;
        r43 = sh0[r42];
        r44 = r41 + r43;
        sh0[r1] = r44;
    }
    workgroupBarrier();
    r45 = r1 < 1i;
    if (r45) {
        r46 = sh0[r1];
        r47 = r1 + 1i;
        r48 = sh0[r47];
        r49 = r46 + r48;
        sh0[r1] = r49;
    }
    workgroupBarrier();
    r50 = sh0[0i];
    workgroupBarrier();
    r51 = b1_loss_reduce_sum_81[0i];
    r52 = max(r51, 1.0f);
    r53 = r50 / r52;
    r54 = r1 < 1i;
    if (r54) {
        b2_loss[0i] = r53;
    }
}
