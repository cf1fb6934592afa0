// Tessera kernel `reduce_sum_mul_sqrt_max_60` (generated; do not edit).
// grid [2, 1, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_div_314: array<f32>; // div_314: f32[768]
@group(0) @binding(1) var<storage, read_write> b1_max_319: array<f32>; // max_319: f32[2]
var<workgroup> sh0: array<f32, 256>;

@compute @workgroup_size(256)
fn reduce_sum_mul_sqrt_max_60(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
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
    var r13: f32;
    var r14: bool;
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
    var r50: bool;
    var r51: f32;
    var r52: i32;
    var r53: f32;
    var r54: f32;
    var r55: f32;
    var r56: i32;
    var r57: i32;
    var r58: bool;
    var r59: f32;
    var r60: f32;
    var r61: bool;
    var r62: f32;
    var r63: bool;
    var r64: bool;
    var r65: f32;
    var r66: i32;
    var r67: f32;
    var r68: f32;
    var r69: bool;
    var r70: f32;
    var r71: i32;
    var r72: f32;
    var r73: f32;
    var r74: bool;
    var r75: f32;
    var r76: i32;
    var r77: f32;
    var r78: f32;
    var r79: bool;
    var r80: f32;
    var r81: i32;
    var r82: f32;
    var r83: f32;
    var r84: bool;
    var r85: f32;
    var r86: i32;
    var r87: f32;
    var r88: f32;
    var r89: bool;
    var r90: f32;
    var r91: i32;
    var r92: f32;
    var r93: f32;
    var r94: bool;
    var r95: f32;
    var r96: i32;
    var r97: f32;
    var r98: f32;
    var r99: f32;
    var r100: f32;
    var r101: f32;
    var r102: f32;
    var r103: bool;
    r0 = lid.x;
    r1 = i32(r0);
    r2 = wid.x;
    r3 = i32(r2);
    r4 = r3 * 384i;
    r5 = 0.0f;
    for (r6 = 0i; r6 < 256i; r6 = r6 + 256i) {
        r7 = 384i - r6;
        r8 = r4 + r6;
        r9 = r8 + r1;
        r10 = r1 < r7;
        if (r10) {
            r11 = b0_div_314[r9];
        } else {
            r11 = 0.0f;
        }
        r12 = r11 * r11;
        r13 = r5 + r12;
        r5 = r13;
    }
    r14 = r1 < 256i;
    if (r14) {
        sh0[r1] = r5;
    }
    workgroupBarrier();
    r15 = r1 < 128i;
    if (r15) {
        r16 = sh0[r1];
        r17 = r1 + 128i;
        r18 = sh0[r17];
        r19 = r16 + r18;
        sh0[r1] = r19;
    }
    workgroupBarrier();
    r20 = r1 < 64i;
    if (r20) {
        r21 = sh0[r1];
        r22 = r1 + 64i;
        r23 = sh0[r22];
        r24 = r21 + r23;
        sh0[r1] = r24;
    }
    workgroupBarrier();
    r25 = r1 < 32i;
    if (r25) {
        r26 = sh0[r1];
        r27 = r1 + 32i;
        r28 = sh0[r27];
        r29 = r26 + r28;
        sh0[r1] = r29;
    }
    workgroupBarrier();
    r30 = r1 < 16i;
    if (r30) {
        r31 = sh0[r1];
        r32 = r1 + 16i;
        r33 = sh0[r32];
        r34 = r31 + r33;
        sh0[r1] = r34;
    }
    workgroupBarrier();
    r35 = r1 < 8i;
    if (r35) {
        r36 = sh0[r1];
        r37 = r1 + 8i;
        r38 = sh0[r37];
        r39 = r36 + r38;
        sh0[r1] = r39;
    }
    workgroupBarrier();
    r40 = r1 < 4i;
    if (r40) {
        r41 = sh0[r1];
        r42 = r1 + 4i;
        r43 = sh0[r42];
        r44 = r41 + r43;
        sh0[r1] = r44;
    }
    workgroupBarrier();
    r45 = r1 < 2i;
    if (r45) {
        r46 = sh0[r1];
        r47 = r1 + 2i;
        r48 = sh0[r47];
        r49 = r46 + r48;
        sh0[r1] = r49;
    }
    workgroupBarrier();
    r50 = r1 < 1i;
    if (r50) {
        r51 = sh0[r1];
        r52 = r1 + 1i;
        r53 = sh0[r52];
        r54 = r51 + r53;
        sh0[r1] = r54;
    }
    workgroupBarrier();
    r55 = sh0[0i];
    workgroupBarrier();
    r56 = r4 + 256i;
    r57 = r56 + r1;
    r58 = r1 < 128i;
    if (r58) {
        r59 = b0_div_314[r57];
    } else {
        r59 = 0.0f;
    }
    r60 = r59 * r59;
    r61 = r1 < 128i;
    r62 = select(0.0f, r60, r61);
    r63 = r1 < 128i;
    if (r63) {
        sh0[r1] = r62;
    }
    workgroupBarrier();
    r64 = r1 < 64i;
    if (r64) {
        r65 = sh0[r1];
        r66 = r1 + 64i;
        r67 = sh0[r66];
        r68 = r65 + r67;
        sh0[r1] = r68;
    }
    workgroupBarrier();
    r69 = r1 < 32i;
    if (r69) {
        r70 = sh0[r1];
        r71 = r1 + 32i;
        r72 = sh0[r71];
        r73 = r70 + r72;
        sh0[r1] = r73;
    }
    workgroupBarrier();
    r74 = r1 < 16i;
    if (r74) {
        r75 = sh0[r1];
        r76 = r1 + 16i;
        r77 = sh0[r76];
        r78 = r75 + r77;
        sh0[r1] = r78;
    }
    workgroupBarrier();
    r79 = r1 < 8i;
    if (r79) {
        r80 = sh0[r1];
        r81 = r1 + 8i;
        r82 = sh0[r81];
        r83 = r80 + r82;
        sh0[r1] = r83;
    }
    workgroupBarrier();
    r84 = r1 < 4i;
    if (r84) {
        r85 = sh0[r1];
        r86 = r1 + 4i;
        r87 = sh0[r86];
        r88 = r85 + r87;
        sh0[r1] = r88;
    }
    workgroupBarrier();
    r89 = r1 < 2i;
    if (r89) {
        r90 = sh0[r1];
        r91 = r1 + 2i;
        r92 = sh0[r91];
        r93 = r90 + r92;
        sh0[r1] = r93;
    }
    workgroupBarrier();
    r94 = r1 < 1i;
    if (r94) {
        r95 = sh0[r1];
        r96 = r1 + 1i;
        r97 = sh0[r96];
        r98 = r95 + r97;
        sh0[r1] = r98;
    }
    workgroupBarrier();
    r99 = sh0[0i];
    workgroupBarrier();
    r100 = r55 + r99;
    r101 = sqrt(r100);
    r102 = max(r101, 1e-12f);
    r103 = r1 < 1i;
    if (r103) {
        b1_max_319[r3] = r102;
    }
}
