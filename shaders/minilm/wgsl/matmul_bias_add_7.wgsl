// Tessera kernel `matmul_bias_add_7` (generated; do not edit).
// grid [12, 2, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_permute_128: array<f32>; // permute_128: f32[24576]
@group(0) @binding(1) var<storage, read> b1_encoder_layer_0_attention_output_dense_w: array<f32>; // encoder.layer.0.attention.output.dense.weight: f32[147456]
@group(0) @binding(2) var<storage, read> b2_layer_norm_111: array<f32>; // layer_norm_111: f32[24576]
@group(0) @binding(3) var<storage, read> b3_encoder_layer_0_attention_output_dense_b: array<f32>; // encoder.layer.0.attention.output.dense.bias: f32[384]
@group(0) @binding(4) var<storage, read_write> b4_add_133: array<f32>; // add_133: f32[24576]
var<workgroup> sh0: array<f32, 256>;
var<workgroup> sh1: array<f32, 256>;

@compute @workgroup_size(256)
fn matmul_bias_add_7(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
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
    var r64: i32;
    var r65: i32;
    var r66: i32;
    var r67: bool;
    var r68: i32;
    var r69: bool;
    var r70: bool;
    var r71: i32;
    var r72: bool;
    var r73: bool;
    var r74: i32;
    var r75: bool;
    var r76: i32;
    var r77: bool;
    var r78: i32;
    var r79: bool;
    var r80: f32;
    var r81: f32;
    var r82: f32;
    var r83: f32;
    var r84: i32;
    var r85: bool;
    var r86: i32;
    var r87: bool;
    var r88: bool;
    var r89: i32;
    var r90: bool;
    var r91: bool;
    var r92: i32;
    var r93: bool;
    var r94: bool;
    var r95: i32;
    var r96: bool;
    var r97: f32;
    var r98: f32;
    var r99: f32;
    var r100: f32;
    var r101: f32;
    var r102: f32;
    var r103: f32;
    var r104: f32;
    var r105: f32;
    var r106: f32;
    var r107: f32;
    var r108: f32;
    var r109: i32;
    var r110: i32;
    var r111: i32;
    var r112: bool;
    var r113: i32;
    var r114: bool;
    var r115: bool;
    var r116: i32;
    var r117: bool;
    var r118: bool;
    var r119: i32;
    var r120: bool;
    var r121: i32;
    var r122: bool;
    var r123: i32;
    var r124: bool;
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
            r33 = b0_permute_128[r27];
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
            r45 = b1_encoder_layer_0_attention_output_dense_w[r39];
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
    r63 = r12 + r9;
    r64 = r2 * 384i;
    r65 = r63 + r64;
    r66 = r65 + r3;
    r67 = r2 < r10;
    r68 = r2 + 16i;
    r69 = r68 < r10;
    r70 = r3 < r11;
    r71 = r3 + 16i;
    r72 = r71 < r11;
    r73 = r67 & r70;
    r74 = r66 + 16i;
    r75 = r67 & r72;
    r76 = r66 + 6144i;
    r77 = r69 & r70;
    r78 = r66 + 6160i;
    r79 = r69 & r72;
    if (r73) {
        r80 = b2_layer_norm_111[r66];
    } else {
        r80 = 0.0f;
    }
    if (r75) {
        r81 = b2_layer_norm_111[r74];
    } else {
        r81 = 0.0f;
    }
    if (r77) {
        r82 = b2_layer_norm_111[r76];
    } else {
        r82 = 0.0f;
    }
    if (r79) {
        r83 = b2_layer_norm_111[r78];
    } else {
        r83 = 0.0f;
    }
    r84 = r9 + r3;
    r85 = r2 < r10;
    r86 = r2 + 16i;
    r87 = r86 < r10;
    r88 = r3 < r11;
    r89 = r3 + 16i;
    r90 = r89 < r11;
    r91 = r85 & r88;
    r92 = r84 + 16i;
    r93 = r85 & r90;
    r94 = r87 & r88;
    r95 = r84 + 16i;
    r96 = r87 & r90;
    if (r91) {
        r97 = b3_encoder_layer_0_attention_output_dense_b[r84];
    } else {
        r97 = 0.0f;
    }
    if (r93) {
        r98 = b3_encoder_layer_0_attention_output_dense_b[r92];
    } else {
        r98 = 0.0f;
    }
    if (r94) {
        r99 = b3_encoder_layer_0_attention_output_dense_b[r84];
    } else {
        r99 = 0.0f;
    }
    if (r96) {
        r100 = b3_encoder_layer_0_attention_output_dense_b[r95];
    } else {
        r100 = 0.0f;
    }
    r101 = r14 + r97;
    r102 = r15 + r98;
    r103 = r16 + r99;
    r104 = r17 + r100;
    r105 = r80 + r101;
    r106 = r81 + r102;
    r107 = r82 + r103;
    r108 = r83 + r104;
    r109 = r2 * 384i;
    r110 = r63 + r109;
    r111 = r110 + r3;
    r112 = r2 < r10;
    r113 = r2 + 16i;
    r114 = r113 < r10;
    r115 = r3 < r11;
    r116 = r3 + 16i;
    r117 = r116 < r11;
    r118 = r112 & r115;
    r119 = r111 + 16i;
    r120 = r112 & r117;
    r121 = r111 + 6144i;
    r122 = r114 & r115;
    r123 = r111 + 6160i;
    r124 = r114 & r117;
    if (r118) {
        b4_add_133[r111] = r105;
    }
    if (r120) {
        b4_add_133[r119] = r106;
    }
    if (r122) {
        b4_add_133[r121] = r107;
    }
    if (r124) {
        b4_add_133[r123] = r108;
    }
}
