// Tessera kernel `cross_entropy_count_14` (generated; do not edit).
// grid [1, 1, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_targets: array<i32>; // targets: i32[256]
@group(0) @binding(1) var<storage, read_write> b1_loss_reduce_sum_81: array<f32>; // loss_reduce_sum_81: f32[1]
var<workgroup> sh0: array<f32, 256>;

@compute @workgroup_size(256)
fn cross_entropy_count_14(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    var r0: u32;
    var r1: i32;
    var r2: f32;
    var r3: i32;
    var r4: i32;
    var r5: i32;
    var r6: bool;
    var r7: i32;
    var r8: f32;
    var r9: f32;
    var r10: f32;
    var r11: f32;
    var r12: f32;
    var r13: f32;
    var r14: f32;
    var r15: f32;
    var r16: f32;
    var r17: bool;
    var r18: bool;
    var r19: f32;
    var r20: i32;
    var r21: f32;
    var r22: f32;
    var r23: bool;
    var r24: f32;
    var r25: i32;
    var r26: f32;
    var r27: f32;
    var r28: bool;
    var r29: f32;
    var r30: i32;
    var r31: f32;
    var r32: f32;
    var r33: bool;
    var r34: f32;
    var r35: i32;
    var r36: f32;
    var r37: f32;
    var r38: bool;
    var r39: f32;
    var r40: i32;
    var r41: f32;
    var r42: f32;
    var r43: bool;
    var r44: f32;
    var r45: i32;
    var r46: f32;
    var r47: f32;
    var r48: bool;
    var r49: f32;
    var r50: i32;
    var r51: f32;
    var r52: f32;
    var r53: bool;
    var r54: f32;
    var r55: i32;
    var r56: f32;
    var r57: f32;
    var r58: f32;
    var r59: bool;
    r0 = lid.x;
    r1 = i32(r0);
    r2 = 0.0f;
    for (r3 = 0i; r3 < 256i; r3 = r3 + 256i) {
        r4 = 256i - r3;
        r5 = r3 + r1;
        r6 = r1 < r4;
        if (r6) {
            r7 = b0_targets[r5];
        } else {
            r7 = 0i;
        }
        r8 = f32(r7);
        r9 = r8 + 1.0f;
        r10 = max(r9, 0.0f);
        r11 = min(r10, 1.0f);
        r12 = 65.0f - r8;
        r13 = max(r12, 0.0f);
        r14 = min(r13, 1.0f);
        r15 = r11 * r14;
        r16 = r2 + r15;
        r2 = r16;
    }
    r17 = r1 < 256i;
    if (r17) {
        sh0[r1] = r2;
    }
    workgroupBarrier();
    r18 = r1 < 128i;
    if (r18) {
        r19 = sh0[r1];
        r20 = r1 + 128i;
        r21 = sh0[r20];
        r22 = r19 + r21;
        sh0[r1] = r22;
    }
    workgroupBarrier();
    r23 = r1 < 64i;
    if (r23) {
        r24 = sh0[r1];
        r25 = r1 + 64i;
        r26 = sh0[r25];
        r27 = r24 + r26;
        sh0[r1] = r27;
    }
    workgroupBarrier();
    r28 = r1 < 32i;
    if (r28) {
        r29 = sh0[r1];
        r30 = r1 + 32i;
        r31 = sh0[r30];
        r32 = r29 + r31;
        sh0[r1] = r32;
    }
    workgroupBarrier();
    r33 = r1 < 16i;
    if (r33) {
        r34 = sh0[r1];
        r35 = r1 + 16i;
        r36 = sh0[r35];
        r37 = r34 + r36;
        sh0[r1] = r37;
    }
    workgroupBarrier();
    r38 = r1 < 8i;
    if (r38) {
        r39 = sh0[r1];
        r40 = r1 + 8i;
        r41 = sh0[r40];
        r42 = r39 + r41;
        sh0[r1] = r42;
    }
    workgroupBarrier();
    r43 = r1 < 4i;
    if (r43) {
        r44 = sh0[r1];
        r45 = r1 + 4i;
        r46 = sh0[r45];
        r47 = r44 + r46;
        sh0[r1] = r47;
    }
    workgroupBarrier();
    r48 = r1 < 2i;
    if (r48) {
        r49 = sh0[r1];
        r50 = r1 + 2i;
        r51 = sh0[r50];
        r52 = r49 + r51;
        sh0[r1] = r52;
    }
    workgroupBarrier();
    r53 = r1 < 1i;
    if (r53) {
        r54 = sh0[r1];
        r55 = r1 + 1i;
        r56 = sh0[r55];
        r57 = r54 + r56;
        sh0[r1] = r57;
    }
    workgroupBarrier();
    r58 = sh0[0i];
    workgroupBarrier();
    r59 = r1 < 1i;
    if (r59) {
        b1_loss_reduce_sum_81[0i] = r58;
    }
}
