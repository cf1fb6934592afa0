// Tessera kernel `layer_norm_2` (generated; do not edit).
// grid [256, 1, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_add_5: array<f32>; // add_5: f32[32768]
@group(0) @binding(1) var<storage, read> b1_h_0_ln_1_weight: array<f32>; // h.0.ln_1.weight: f32[128]
@group(0) @binding(2) var<storage, read> b2_h_0_ln_1_bias: array<f32>; // h.0.ln_1.bias: f32[128]
@group(0) @binding(3) var<storage, read_write> b3_layer_norm_9: array<f32>; // layer_norm_9: f32[32768]
var<workgroup> sh0: array<f32, 256>;

@compute @workgroup_size(256)
fn layer_norm_2(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
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
    var r41: bool;
    var r42: f32;
    var r43: i32;
    var r44: f32;
    var r45: f32;
    var r46: f32;
    var r47: f32;
    var r48: f32;
    var r49: f32;
    var r50: bool;
    var r51: f32;
    var r52: bool;
    var r53: bool;
    var r54: f32;
    var r55: i32;
    var r56: f32;
    var r57: f32;
    var r58: bool;
    var r59: f32;
    var r60: i32;
    var r61: f32;
    var r62: f32;
    var r63: bool;
    var r64: f32;
    var r65: i32;
    var r66: f32;
    var r67: f32;
    var r68: bool;
    var r69: f32;
    var r70: i32;
    var r71: f32;
    var r72: f32;
    var r73: bool;
    var r74: f32;
    var r75: i32;
    var r76: f32;
    var r77: f32;
    var r78: bool;
    var r79: f32;
    var r80: i32;
    var r81: f32;
    var r82: f32;
    var r83: bool;
    var r84: f32;
    var r85: i32;
    var r86: f32;
    var r87: f32;
    var r88: f32;
    var r89: f32;
    var r90: f32;
    var r91: f32;
    var r92: f32;
    var r93: f32;
    var r94: f32;
    var r95: bool;
    var r96: f32;
    var r97: bool;
    var r98: f32;
    var r99: f32;
    var r100: f32;
    var r101: i32;
    var r102: bool;
    r0 = lid.x;
    r1 = i32(r0);
    r2 = wid.x;
    r3 = i32(r2);
    r4 = r3 * 128i;
    r5 = r4 + r1;
    r6 = r1 < 128i;
    if (r6) {
        r7 = b0_add_5[r5];
    } else {
        r7 = 0.0f;
    }
    r8 = r1 < 128i;
    r9 = select(0.0f, r7, r8);
    r10 = r1 < 128i;
    if (r10) {
        sh0[r1] = r9;
    }
    workgroupBarrier();
    r11 = r1 < 64i;
    if (r11) {
        r12 = sh0[r1];
        r13 = r1 + 64i;
        r14 = sh0[r13];
        r15 = r12 + r14;
        sh0[r1] = r15;
    }
    workgroupBarrier();
    r16 = r1 < 32i;
    if (r16) {
        r17 = sh0[r1];
        r18 = r1 + 32i;
        r19 = sh0[r18];
        r20 = r17 + r19;
        sh0[r1] = r20;
    }
    workgroupBarrier();
    r21 = r1 < 16i;
    if (r21) {
        r22 = sh0[r1];
        r23 = r1 + 16i;
        r24 = sh0[r23];
        r25 = r22 + r24;
        sh0[r1] = r25;
    }
    workgroupBarrier();
    r26 = r1 < 8i;
    if (r26) {
        r27 = sh0[r1];
        r28 = r1 + 8i;
        r29 = sh0[r28];
        r30 = r27 + r29;
        sh0[r1] = r30;
    }
    workgroupBarrier();
    r31 = r1 < 4i;
    if (r31) {
        r32 = sh0[r1];
        r33 = r1 + 4i;
        r34 = sh0[r33];
        r35 = r32 + r34;
        sh0[r1] = r35;
    }
    workgroupBarrier();
    r36 = r1 < 2i;
    if (r36) {
        r37 = sh0[r1];
        r38 = r1 + 2i;
        r39 = sh0[r38];
        r40 = r37 + r39;
        sh0[r1] = r40;
    }
    workgroupBarrier();
    r41 = r1 < 1i;
    if (r41) {
        r42 = sh0[r1];
        r43 = r1 + 1i;
        r44 = sh0[r43];
        r45 = r42 + r44;
        sh0[r1] = r45;
    }
    workgroupBarrier();
    r46 = sh0[0i];
    workgroupBarrier();
    r47 = r46 * 0.0078125f;
    r48 = r7 - r47;
    r49 = r48 * r48;
    r50 = r1 < 128i;
    r51 = select(0.0f, r49, r50);
    r52 = r1 < 128i;
    if (r52) {
        sh0[r1] = r51;
    }
    workgroupBarrier();
    r53 = r1 < 64i;
    if (r53) {
        r54 = sh0[r1];
        r55 = r1 + 64i;
        r56 = sh0[r55];
        r57 = r54 + r56;
        sh0[r1] = r57;
    }
    workgroupBarrier();
    r58 = r1 < 32i;
    if (r58) {
        r59 = sh0[r1];
        r60 = r1 + 32i;
        r61 = sh0[r60];
        r62 = r59 + r61;
        sh0[r1] = r62;
    }
    workgroupBarrier();
    r63 = r1 < 16i;
    if (r63) {
        r64 = sh0[r1];
        r65 = r1 + 16i;
        r66 = sh0[r65];
        r67 = r64 + r66;
        sh0[r1] = r67;
    }
    workgroupBarrier();
    r68 = r1 < 8i;
    if (r68) {
        r69 = sh0[r1];
        r70 = r1 + 8i;
        r71 = sh0[r70];
        r72 = r69 + r71;
        sh0[r1] = r72;
    }
    workgroupBarrier();
    r73 = r1 < 4i;
    if (r73) {
        r74 = sh0[r1];
        r75 = r1 + 4i;
        r76 = sh0[r75];
        r77 = r74 + r76;
        sh0[r1] = r77;
    }
    workgroupBarrier();
    r78 = r1 < 2i;
    if (r78) {
        r79 = sh0[r1];
        r80 = r1 + 2i;
        r81 = sh0[r80];
        r82 = r79 + r81;
        sh0[r1] = r82;
    }
    workgroupBarrier();
    r83 = r1 < 1i;
    if (r83) {
        r84 = sh0[r1];
        r85 = r1 + 1i;
        r86 = sh0[r85];
        r87 = r84 + r86;
        sh0[r1] = r87;
    }
    workgroupBarrier();
    r88 = sh0[0i];
    workgroupBarrier();
    r89 = r88 * 0.0078125f;
    r90 = r89 + 1e-5f;
    r91 = sqrt(r90);
    r92 = 1.0f / r91;
    r93 = r7 - r47;
    r94 = r93 * r92;
    r95 = r1 < 128i;
    if (r95) {
        r96 = b1_h_0_ln_1_weight[r1];
    } else {
        r96 = 0.0f;
    }
    r97 = r1 < 128i;
    if (r97) {
        r98 = b2_h_0_ln_1_bias[r1];
    } else {
        r98 = 0.0f;
    }
    r99 = r94 * r96;
    r100 = r99 + r98;
    r101 = r4 + r1;
    r102 = r1 < 128i;
    if (r102) {
        b3_layer_norm_9[r101] = r100;
    }
}
