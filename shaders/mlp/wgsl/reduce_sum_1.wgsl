// Tessera kernel `reduce_sum_1` (generated; do not edit).
// grid [64, 1, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_tanh_6: array<f32>; // tanh_6: f32[16384]
@group(0) @binding(1) var<storage, read_write> b1_y: array<f32>; // y: f32[64]
var<workgroup> sh0: array<f32, 256>;

@compute @workgroup_size(256)
fn reduce_sum_1(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    var r0: u32;
    var r1: i32;
    var r2: u32;
    var r3: i32;
    var r4: i32;
    var r5: f32;
    var r6: i32;
    var r7: i32;
    var r8: i32;
    var r9: i32;
    var r10: bool;
    var r11: f32;
    var r12: f32;
    var r13: bool;
    var r14: bool;
    var r15: f32;
    var r16: i32;
    var r17: f32;
    var r18: f32;
    var r19: bool;
    var r20: f32;
    var r21: i32;
    var r22: f32;
    var r23: f32;
    var r24: bool;
    var r25: f32;
    var r26: i32;
    var r27: f32;
    var r28: f32;
    var r29: bool;
    var r30: f32;
    var r31: i32;
    var r32: f32;
    var r33: f32;
    var r34: bool;
    var r35: f32;
    var r36: i32;
    var r37: f32;
    var r38: f32;
    var r39: bool;
    var r40: f32;
    var r41: i32;
    var r42: f32;
    var r43: f32;
    var r44: bool;
    var r45: f32;
    var r46: i32;
    var r47: f32;
    var r48: f32;
    var r49: bool;
    var r50: f32;
    var r51: i32;
    var r52: f32;
    var r53: f32;
    var r54: f32;
    var r55: bool;
    r0 = lid.x;
    r1 = i32(r0);
    r2 = wid.x;
    r3 = i32(r2);
    r4 = r3 * 256i;
    r5 = 0.0f;
    for (r6 = 0i; r6 < 256i; r6 = r6 + 256i) {
        r7 = 256i - r6;
        r8 = r4 + r6;
        r9 = r8 + r1;
        r10 = r1 < r7;
        if (r10) {
            r11 = b0_tanh_6[r9];
        } else {
            r11 = 0.0f;
        }
        r12 = r5 + r11;
        r5 = r12;
    }
    r13 = r1 < 256i;
    if (r13) {
        sh0[r1] = r5;
    }
    workgroupBarrier();
    r14 = r1 < 128i;
    if (r14) {
        r15 = sh0[r1];
        r16 = r1 + 128i;
        r17 = sh0[r16];
        r18 = r15 + r17;
        sh0[r1] = r18;
    }
    workgroupBarrier();
    r19 = r1 < 64i;
    if (r19) {
        r20 = sh0[r1];
        r21 = r1 + 64i;
        r22 = sh0[r21];
        r23 = r20 + r22;
        sh0[r1] = r23;
    }
    workgroupBarrier();
    r24 = r1 < 32i;
    if (r24) {
        r25 = sh0[r1];
        r26 = r1 + 32i;
        r27 = sh0[r26];
        r28 = r25 + r27;
        sh0[r1] = r28;
    }
    workgroupBarrier();
    r29 = r1 < 16i;
    if (r29) {
        r30 = sh0[r1];
        r31 = r1 + 16i;
        r32 = sh0[r31];
        r33 = r30 + r32;
        sh0[r1] = r33;
    }
    workgroupBarrier();
    r34 = r1 < 8i;
    if (r34) {
        r35 = sh0[r1];
        r36 = r1 + 8i;
        r37 = sh0[r36];
        r38 = r35 + r37;
        sh0[r1] = r38;
    }
    workgroupBarrier();
    r39 = r1 < 4i;
    if (r39) {
        r40 = sh0[r1];
        r41 = r1 + 4i;
        r42 = sh0[r41];
        r43 = r40 + r42;
        sh0[r1] = r43;
    }
    workgroupBarrier();
    r44 = r1 < 2i;
    if (r44) {
        r45 = sh0[r1];
        r46 = r1 + 2i;
        r47 = sh0[r46];
        r48 = r45 + r47;
        sh0[r1] = r48;
    }
    workgroupBarrier();
    r49 = r1 < 1i;
    if (r49) {
        r50 = sh0[r1];
        r51 = r1 + 1i;
        r52 = sh0[r51];
        r53 = r50 + r52;
        sh0[r1] = r53;
    }
    workgroupBarrier();
    r54 = sh0[0i];
    workgroupBarrier();
    r55 = r1 < 1i;
    if (r55) {
        b1_y[r3] = r54;
    }
}
