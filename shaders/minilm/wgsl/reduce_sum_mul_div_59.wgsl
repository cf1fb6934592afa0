// Tessera kernel `reduce_sum_mul_div_59` (generated; do not edit).
// grid [768, 1, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_layer_norm_303: array<f32>; // layer_norm_303: f32[24576]
@group(0) @binding(1) var<storage, read> b1_cast_305: array<f32>; // cast_305: f32[64]
@group(0) @binding(2) var<storage, read> b2_max_312: array<f32>; // max_312: f32[2]
@group(0) @binding(3) var<storage, read_write> b3_div_314: array<f32>; // div_314: f32[768]
var<workgroup> sh0: array<f32, 256>;

@compute @workgroup_size(256)
fn reduce_sum_mul_div_59(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    var r0: u32;
    var r1: i32;
    var r2: u32;
    var r3: i32;
    var r4: i32;
    var r5: i32;
    var r6: i32;
    var r7: i32;
    var r8: i32;
    var r9: f32;
    var r10: i32;
    var r11: i32;
    var r12: i32;
    var r13: i32;
    var r14: i32;
    var r15: i32;
    var r16: i32;
    var r17: i32;
    var r18: bool;
    var r19: f32;
    var r20: i32;
    var r21: i32;
    var r22: bool;
    var r23: f32;
    var r24: f32;
    var r25: f32;
    var r26: bool;
    var r27: f32;
    var r28: bool;
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
    var r55: f32;
    var r56: f32;
    var r57: bool;
    r0 = lid.x;
    r1 = i32(r0);
    r2 = wid.x;
    r3 = i32(r2);
    r4 = r3 % 384i;
    r5 = r3 / 384i;
    r6 = r5 * 12288i;
    r7 = r6 + r4;
    r8 = r5 * 32i;
    r9 = 0.0f;
    for (r10 = 0i; r10 < 32i; r10 = r10 + 32i) {
        r11 = 32i - r10;
        r12 = r10 * 384i;
        r13 = r7 + r12;
        r14 = r8 + r10;
        r15 = r1 * 384i;
        r16 = r13 + r15;
        r17 = min(r11, 32i);
        r18 = r1 < r17;
        if (r18) {
            r19 = b0_layer_norm_303[r16];
        } else {
            r19 = 0.0f;
        }
        r20 = r14 + r1;
        r21 = min(r11, 32i);
        r22 = r1 < r21;
        if (r22) {
            r23 = b1_cast_305[r20];
        } else {
            r23 = 0.0f;
        }
        r24 = r19 * r23;
        r25 = r9 + r24;
        r9 = r25;
    }
    r26 = r1 < 32i;
    r27 = select(0.0f, r9, r26);
    r28 = r1 < 32i;
    if (r28) {
        sh0[r1] = r27;
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
    r55 = b2_max_312[r5];
    r56 = r54 / r55;
    r57 = r1 < 1i;
    if (r57) {
        b3_div_314[r3] = r56;
    }
}
