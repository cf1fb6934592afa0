// Tessera kernel `matmul_bias_3` (generated; do not edit).
// grid [12, 2, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_layer_norm_111: array<f32>; // layer_norm_111: f32[24576]
@group(0) @binding(1) var<storage, read> b1_encoder_layer_0_attention_self_query_wei: array<f32>; // encoder.layer.0.attention.self.query.weight: f32[147456]
@group(0) @binding(2) var<storage, read> b2_encoder_layer_0_attention_self_query_bia: array<f32>; // encoder.layer.0.attention.self.query.bias: f32[384]
@group(0) @binding(3) var<storage, read_write> b3_add_114: array<f32>; // add_114: f32[24576]
var<workgroup> sh0: array<f32, 256>;
var<workgroup> sh1: array<f32, 256>;

@compute @workgroup_size(256)
fn matmul_bias_3(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    var r0: u32;
    var r1: i32;
    var r2: i32;
    var r3: i32;
    var r4: u32;
    var r5: i32;
    var r6: u32;
    var r7: i32;
    var r8: i32;
    var r9: i32;
    var r10: i32;
    var r11: i32;
    var r12: i32;
    var r13: i32;
    var r14: f32;
    var r15: f32;
    var r16: f32;
    var r17: f32;
    var r18: i32;
    var r19: i32;
    var r20: i32;
    var r21: i32;
    var r22: i32;
    var r23: i32;
    var r24: i32;
    var r25: i32;
    var r26: i32;
    var r27: i32;
    var r28: i32;
    var r29: i32;
    var r30: bool;
    var r31: bool;
    var r32: bool;
    var r33: f32;
    var r34: i32;
    var r35: i32;
    var r36: i32;
    var r37: i32;
    var r38: i32;
    var r39: i32;
    var r40: i32;
    var r41: i32;
    var r42: bool;
    var r43: bool;
    var r44: bool;
    var r45: f32;
    var r46: f32;
    var r47: f32;
    var r48: f32;
    var r49: f32;
    var r50: i32;
    var r51: i32;
    var r52: i32;
    var r53: i32;
    var r54: i32;
    var r55: f32;
    var r56: i32;
    var r57: f32;
    var r58: i32;
    var r59: i32;
    var r60: f32;
    var r61: i32;
    var r62: f32;
    var r63: i32;
    var r64: bool;
    var r65: i32;
    var r66: bool;
    var r67: bool;
    var r68: i32;
    var r69: bool;
    var r70: bool;
    var r71: i32;
    var r72: bool;
    var r73: bool;
    var r74: i32;
    var r75: bool;
    var r76: f32;
    var r77: f32;
    var r78: f32;
    var r79: f32;
    var r80: f32;
    var r81: f32;
    var r82: f32;
    var r83: f32;
    var r84: i32;
    var r85: i32;
    var r86: i32;
    var r87: i32;
    var r88: bool;
    var r89: i32;
    var r90: bool;
    var r91: bool;
    var r92: i32;
    var r93: bool;
    var r94: bool;
    var r95: i32;
    var r96: bool;
    var r97: i32;
    var r98: bool;
    var r99: i32;
    var r100: bool;
    r0 = lid.x;
    r1 = i32(r0);
    r2 = r1 / 16i;
    r3 = r1 % 16i;
    r4 = wid.x;
    r5 = i32(r4);
    r6 = wid.y;
    r7 = i32(r6);
    r8 = r7 * 32i;
    r9 = r5 * 32i;
    r10 = 64i - r8;
    r11 = 384i - r9;
    r12 = r8 * 384i;
    r13 = r9 * 384i;
    r14 = 0.0f;
    r15 = 0.0f;
    r16 = 0.0f;
    r17 = 0.0f;
    for (r18 = 0i; r18 < 384i; r18 = r18 + 8i) {
        r19 = 384i - r18;
        r20 = r12 + r18;
        r21 = r13 + r18;
        r22 = min(r10, 32i);
        r23 = r1 / 8i;
        r24 = r1 % 8i;
        r25 = r23 * 384i;
        r26 = r20 + r25;
        r27 = r26 + r24;
        r28 = r23 * 8i;
        r29 = r28 + r24;
        r30 = r23 < r22;
        r31 = r24 < r19;
        r32 = r30 & r31;
        if (r32) {
            r33 = b0_layer_norm_111[r27];
        } else {
            r33 = 0.0f;
        }
        sh0[r29] = r33;
        r34 = min(r19, 8i);
        r35 = r1 / 32i;
        r36 = r1 % 32i;
        r37 = r36 * 384i;
        r38 = r21 + r35;
        r39 = r38 + r37;
        r40 = r35 * 32i;
        r41 = r40 + r36;
        r42 = r35 < r34;
        r43 = r36 < r11;
        r44 = r42 & r43;
        if (r44) {
            r45 = b1_encoder_layer_0_attention_self_query_wei[r39];
        } else {
            r45 = 0.0f;
        }
        sh1[r41] = r45;
        workgroupBarrier();
        r46 = r14;
        r47 = r15;
        r48 = r16;
        r49 = r17;
        r50 = r2 * 8i;
        r51 = r50 + 128i;
        r52 = r3 + 16i;
        for (r53 = 0i; r53 < 8i; r53 = r53 + 1i) {
            r54 = r50 + r53;
            r55 = sh0[r54];
            r56 = r51 + r53;
            r57 = sh0[r56];
            r58 = r53 * 32i;
            r59 = r58 + r3;
            r60 = sh1[r59];
            r61 = r58 + r52;
            r62 = sh1[r61];
            r46 = fma(r55, r60, r46);
            r47 = fma(r55, r62, r47);
            r48 = fma(r57, r60, r48);
            r49 = fma(r57, r62, r49);
        }
        workgroupBarrier();
        r14 = r46;
        r15 = r47;
        r16 = r48;
        r17 = r49;
    }
    r63 = r9 + r3;
    r64 = r2 < r10;
    r65 = r2 + 16i;
    r66 = r65 < r10;
    r67 = r3 < r11;
    r68 = r3 + 16i;
    r69 = r68 < r11;
    r70 = r64 & r67;
    r71 = r63 + 16i;
    r72 = r64 & r69;
    r73 = r66 & r67;
    r74 = r63 + 16i;
    r75 = r66 & r69;
    if (r70) {
        r76 = b2_encoder_layer_0_attention_self_query_bia[r63];
    } else {
        r76 = 0.0f;
    }
    if (r72) {
        r77 = b2_encoder_layer_0_attention_self_query_bia[r71];
    } else {
        r77 = 0.0f;
    }
    if (r73) {
        r78 = b2_encoder_layer_0_attention_self_query_bia[r63];
    } else {
        r78 = 0.0f;
    }
    if (r75) {
        r79 = b2_encoder_layer_0_attention_self_query_bia[r74];
    } else {
        r79 = 0.0f;
    }
    r80 = r14 + r76;
    r81 = r15 + r77;
    r82 = r16 + r78;
    r83 = r17 + r79;
    r84 = r12 + r9;
    r85 = r2 * 384i;
    r86 = r84 + r85;
    r87 = r86 + r3;
    r88 = r2 < r10;
    r89 = r2 + 16i;
    r90 = r89 < r10;
    r91 = r3 < r11;
    r92 = r3 + 16i;
    r93 = r92 < r11;
    r94 = r88 & r91;
    r95 = r87 + 16i;
    r96 = r88 & r93;
    r97 = r87 + 6144i;
    r98 = r90 & r91;
    r99 = r87 + 6160i;
    r100 = r90 & r93;
    if (r94) {
        b3_add_114[r87] = r80;
    }
    if (r96) {
        b3_add_114[r95] = r81;
    }
    if (r98) {
        b3_add_114[r97] = r82;
    }
    if (r100) {
        b3_add_114[r99] = r83;
    }
}
