// Tessera kernel `matmul_bias_add_28` (generated; do not edit).
// grid [12, 2, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_gelu_202: array<f32>; // gelu_202: f32[98304]
@group(0) @binding(1) var<storage, read> b1_encoder_layer_2_output_dense_weight: array<f32>; // encoder.layer.2.output.dense.weight: f32[589824]
@group(0) @binding(2) var<storage, read> b2_layer_norm_198: array<f32>; // layer_norm_198: f32[24576]
@group(0) @binding(3) var<storage, read> b3_encoder_layer_2_output_dense_bias: array<f32>; // encoder.layer.2.output.dense.bias: f32[384]
@group(0) @binding(4) var<storage, read_write> b4_add_206: array<f32>; // add_206: f32[24576]
var<workgroup> sh0: array<f32, 256>;
var<workgroup> sh1: array<f32, 256>;

@compute @workgroup_size(256)
fn matmul_bias_add_28(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
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
    var r67: i32;
    var r68: bool;
    var r69: i32;
    var r70: bool;
    var r71: bool;
    var r72: i32;
    var r73: bool;
    var r74: bool;
    var r75: i32;
    var r76: bool;
    var r77: i32;
    var r78: bool;
    var r79: i32;
    var r80: bool;
    var r81: f32;
    var r82: f32;
    var r83: f32;
    var r84: f32;
    var r85: i32;
    var r86: bool;
    var r87: i32;
    var r88: bool;
    var r89: bool;
    var r90: i32;
    var r91: bool;
    var r92: bool;
    var r93: i32;
    var r94: bool;
    var r95: bool;
    var r96: i32;
    var r97: bool;
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
    var r109: f32;
    var r110: i32;
    var r111: i32;
    var r112: i32;
    var r113: bool;
    var r114: i32;
    var r115: bool;
    var r116: bool;
    var r117: i32;
    var r118: bool;
    var r119: bool;
    var r120: i32;
    var r121: bool;
    var r122: i32;
    var r123: bool;
    var r124: i32;
    var r125: bool;
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
    r12 = r8 * 1536i;
    r13 = r9 * 1536i;
    r14 = 0.0f;
    r15 = 0.0f;
    r16 = 0.0f;
    r17 = 0.0f;
    for (r18 = 0i; r18 < 1536i; r18 = r18 + 8i) {
        r19 = 1536i - r18;
        r20 = r12 + r18;
        r21 = r13 + r18;
        r22 = min(r10, 32i);
        r23 = r1 / 8i;
        r24 = r1 % 8i;
        r25 = r23 * 1536i;
        r26 = r20 + r25;
        r27 = r26 + r24;
        r28 = r23 * 8i;
        r29 = r28 + r24;
        r30 = r23 < r22;
        r31 = r24 < r19;
        r32 = r30 & r31;
        if (r32) {
            r33 = b0_gelu_202[r27];
        } else {
            r33 = 0.0f;
        }
        sh0[r29] = r33;
        r34 = min(r19, 8i);
        r35 = r1 / 32i;
        r36 = r1 % 32i;
        r37 = r36 * 1536i;
        r38 = r21 + r35;
        r39 = r38 + r37;
        r40 = r35 * 32i;
        r41 = r40 + r36;
        r42 = r35 < r34;
        r43 = r36 < r11;
        r44 = r42 & r43;
        if (r44) {
            r45 = b1_encoder_layer_2_output_dense_weight[r39];
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
    r63 = r8 * 384i;
    r64 = r63 + r9;
    r65 = r2 * 384i;
    r66 = r64 + r65;
    r67 = r66 + r3;
    r68 = r2 < r10;
    r69 = r2 + 16i;
    r70 = r69 < r10;
    r71 = r3 < r11;
    r72 = r3 + 16i;
    r73 = r72 < r11;
    r74 = r68 & r71;
    r75 = r67 + 16i;
    r76 = r68 & r73;
    r77 = r67 + 6144i;
    r78 = r70 & r71;
    r79 = r67 + 6160i;
    r80 = r70 & r73;
    if (r74) {
        r81 = b2_layer_norm_198[r67];
    } else {
        r81 = 0.0f;
    }
    if (r76) {
        r82 = b2_layer_norm_198[r75];
    } else {
        r82 = 0.0f;
    }
    if (r78) {
        r83 = b2_layer_norm_198[r77];
    } else {
        r83 = 0.0f;
    }
    if (r80) {
        r84 = b2_layer_norm_198[r79];
    } else {
        r84 = 0.0f;
    }
    r85 = r9 + r3;
    r86 = r2 < r10;
    r87 = r2 + 16i;
    r88 = r87 < r10;
    r89 = r3 < r11;
    r90 = r3 + 16i;
    r91 = r90 < r11;
    r92 = r86 & r89;
    r93 = r85 + 16i;
    r94 = r86 & r91;
    r95 = r88 & r89;
    r96 = r85 + 16i;
    r97 = r88 & r91;
    if (r92) {
        r98 = b3_encoder_layer_2_output_dense_bias[r85];
    } else {
        r98 = 0.0f;
    }
    if (r94) {
        r99 = b3_encoder_layer_2_output_dense_bias[r93];
    } else {
        r99 = 0.0f;
    }
    if (r95) {
        r100 = b3_encoder_layer_2_output_dense_bias[r85];
    } else {
        r100 = 0.0f;
    }
    if (r97) {
        r101 = b3_encoder_layer_2_output_dense_bias[r96];
    } else {
        r101 = 0.0f;
    }
    r102 = r14 + r98;
    r103 = r15 + r99;
    r104 = r16 + r100;
    r105 = r17 + r101;
    r106 = r81 + r102;
    r107 = r82 + r103;
    r108 = r83 + r104;
    r109 = r84 + r105;
    r110 = r2 * 384i;
    r111 = r64 + r110;
    r112 = r111 + r3;
    r113 = r2 < r10;
    r114 = r2 + 16i;
    r115 = r114 < r10;
    r116 = r3 < r11;
    r117 = r3 + 16i;
    r118 = r117 < r11;
    r119 = r113 & r116;
    r120 = r112 + 16i;
    r121 = r113 & r118;
    r122 = r112 + 6144i;
    r123 = r115 & r116;
    r124 = r112 + 6160i;
    r125 = r115 & r118;
    if (r119) {
        b4_add_206[r112] = r106;
    }
    if (r121) {
        b4_add_206[r120] = r107;
    }
    if (r123) {
        b4_add_206[r122] = r108;
    }
    if (r125) {
        b4_add_206[r124] = r109;
    }
}
