// Tessera kernel `softmax_18` (generated; do not edit).
// grid [256, 1, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_matmul_51: array<f32>; // matmul_51: f32[16640]
@group(0) @binding(1) var<storage, read_write> b1_softmax_66: array<f32>; // softmax_66: f32[16640]
var<workgroup> sh0: array<f32, 256>;

@compute @workgroup_size(256)
fn softmax_18(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
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
    var r10: bool;
    var r11: bool;
    var r12: f32;
    var r13: i32;
    var r14: f32;
    var r15: f32;
    var r16: bool;
    var r17: f32;
    var r18: i32;
    var r19: f32;
    var r20: f32;
    var r21: bool;
    var r22: f32;
    var r23: i32;
    var r24: f32;
    var r25: f32;
    var r26: bool;
    var r27: f32;
    var r28: i32;
    var r29: f32;
    var r30: f32;
    var r31: bool;
    var r32: f32;
    var r33: i32;
    var r34: f32;
    var r35: f32;
    var r36: bool;
    var r37: f32;
    var r38: i32;
    var r39: f32;
    var r40: f32;
    var r41: f32;
    var r42: i32;
    var r43: i32;
    var r44: bool;
    var r45: f32;
    var r46: bool;
    var r47: f32;
    var r48: bool;
    var r49: f32;
    var r50: f32;
    var r51: f32;
    var r52: f32;
    var r53: bool;
    var r54: f32;
    var r55: bool;
    var r56: bool;
    var r57: f32;
    var r58: i32;
    var r59: f32;
    var r60: f32;
    var r61: bool;
    var r62: f32;
    var r63: i32;
    var r64: f32;
    var r65: f32;
    var r66: bool;
    var r67: f32;
    var r68: i32;
    var r69: f32;
    var r70: f32;
    var r71: bool;
    var r72: f32;
    var r73: i32;
    var r74: f32;
    var r75: f32;
    var r76: bool;
    var r77: f32;
    var r78: i32;
    var r79: f32;
    var r80: f32;
    var r81: bool;
    var r82: f32;
    var r83: i32;
    var r84: f32;
    var r85: f32;
    var r86: f32;
    var r87: f32;
    var r88: f32;
    var r89: bool;
    var r90: f32;
    var r91: bool;
    var r92: f32;
    var r93: f32;
    var r94: f32;
    var r95: f32;
    var r96: f32;
    var r97: f32;
    var r98: i32;
    var r99: bool;
    var r100: f32;
    var r101: f32;
    var r102: f32;
    var r103: i32;
    var r104: bool;
    r0 = lid.x;
    r1 = i32(r0);
    r2 = wid.x;
    r3 = i32(r2);
    r4 = r3 * 65i;
    r5 = r4 + r1;
    r6 = r1 < 64i;
    if (r6) {
        r7 = b0_matmul_51[r5];
    } else {
        r7 = 0.0f;
    }
    r8 = r1 < 64i;
    r9 = select(bitcast<f32>(0xff800000u), r7, r8);
    r10 = r1 < 64i;
    if (r10) {
        sh0[r1] = r9;
    }
    workgroupBarrier();
    r11 = r1 < 32i;
    if (r11) {
        r12 = sh0[r1];
        r13 = r1 + 32i;
        r14 = sh0[r13];
        r15 = max(r12, r14);
        sh0[r1] = r15;
    }
    workgroupBarrier();
    r16 = r1 < 16i;
    if (r16) {
        r17 = sh0[r1];
        r18 = r1 + 16i;
        r19 = sh0[r18];
        r20 = max(r17, r19);
        sh0[r1] = r20;
    }
    workgroupBarrier();
    r21 = r1 < 8i;
    if (r21) {
        r22 = sh0[r1];
        r23 = r1 + 8i;
        r24 = sh0[r23];
        r25 = max(r22, r24);
        sh0[r1] = r25;
    }
    workgroupBarrier();
    r26 = r1 < 4i;
    if (r26) {
        r27 = sh0[r1];
        r28 = r1 + 4i;
        r29 = sh0[r28];
        r30 = max(r27, r29);
        sh0[r1] = r30;
    }
    workgroupBarrier();
    r31 = r1 < 2i;
    if (r31) {
        r32 = sh0[r1];
        r33 = r1 + 2i;
        r34 = sh0[r33];
        r35 = max(r32, r34);
        sh0[r1] = r35;
    }
    workgroupBarrier();
    r36 = r1 < 1i;
    if (r36) {
        r37 = sh0[r1];
        r38 = r1 + 1i;
        r39 = sh0[r38];
        r40 = max(r37, r39);
        sh0[r1] = r40;
    }
    workgroupBarrier();
    r41 = sh0[0i];
    workgroupBarrier();
    r42 = r4 + 64i;
    r43 = r42 + r1;
    r44 = r1 < 1i;
    if (r44) {
        r45 = b0_matmul_51[r43];
    } else {
        r45 = 0.0f;
    }
    r46 = r1 < 1i;
    r47 = select(bitcast<f32>(0xff800000u), r45, r46);
    r48 = r1 < 1i;
    if (r48) {
        sh0[r1] = r47;
    }
    workgroupBarrier();
    r49 = sh0[0i];
    workgroupBarrier();
    r50 = max(r41, r49);
    r51 = r7 - r50;
    r52 = exp(r51);
    r53 = r1 < 64i;
    r54 = select(0.0f, r52, r53);
    r55 = r1 < 64i;
    if (r55) {
        sh0[r1] = r54;
    }
    workgroupBarrier();
    r56 = r1 < 32i;
    if (r56) {
        r57 = sh0[r1];
        r58 = r1 + 32i;
        r59 = sh0[r58];
        r60 = r57 + r59;
        sh0[r1] = r60;
    }
    workgroupBarrier();
    r61 = r1 < 16i;
    if (r61) {
        r62 = sh0[r1];
        r63 = r1 + 16i;
        r64 = sh0[r63];
        r65 = r62 + r64;
        sh0[r1] = r65;
    }
    workgroupBarrier();
    r66 = r1 < 8i;
    if (r66) {
        r67 = sh0[r1];
        r68 = r1 + 8i;
        r69 = sh0[r68];
        r70 = r67 + r69;
        sh0[r1] = r70;
    }
    workgroupBarrier();
    r71 = r1 < 4i;
    if (r71) {
        r72 = sh0[r1];
        r73 = r1 + 4i;
        r74 = sh0[r73];
        r75 = r72 + r74;
        sh0[r1] = r75;
    }
    workgroupBarrier();
    r76 = r1 < 2i;
    if (r76) {
        r77 = sh0[r1];
        r78 = r1 + 2i;
        r79 = sh0[r78];
        r80 = r77 + r79;
        sh0[r1] = r80;
    }
    workgroupBarrier();
    r81 = r1 < 1i;
    if (r81) {
        r82 = sh0[r1];
        r83 = r1 + 1i;
        r84 = sh0[r83];
        r85 = r82 + r84;
        sh0[r1] = r85;
    }
    workgroupBarrier();
    r86 = sh0[0i];
    workgroupBarrier();
    r87 = r45 - r50;
    r88 = exp(r87);
    r89 = r1 < 1i;
    r90 = select(0.0f, r88, r89);
    r91 = r1 < 1i;
    if (r91) {
        sh0[r1] = r90;
    }
    workgroupBarrier();
    r92 = sh0[0i];
    workgroupBarrier();
    r93 = r86 + r92;
    r94 = 1.0f / r93;
    r95 = r7 - r50;
    r96 = exp(r95);
    r97 = r96 * r94;
    r98 = r4 + r1;
    r99 = r1 < 64i;
    if (r99) {
        b1_softmax_66[r98] = r97;
    }
    r100 = r45 - r50;
    r101 = exp(r100);
    r102 = r101 * r94;
    r103 = r42 + r1;
    r104 = r1 < 1i;
    if (r104) {
        b1_softmax_66[r103] = r102;
    }
}
