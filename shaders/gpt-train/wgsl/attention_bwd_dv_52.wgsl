// Tessera kernel `attention_bwd_dv_52` (generated; do not edit).
// grid [2, 4, 4] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_add_14: array<f32>; // add_14: f32[98304]
@group(0) @binding(1) var<storage, read> b1_matmul_160: array<f32>; // matmul_160: f32[32768]
@group(0) @binding(2) var<storage, read> b2_attention_bwd_stats_164: array<f32>; // attention_bwd_stats_164: f32[2048]
@group(0) @binding(3) var<storage, read_write> b3_permute_168: array<f32>; // permute_168: f32[32768]
var<workgroup> sh0: array<f32, 1024>;
var<workgroup> sh1: array<f32, 1024>;

@compute @workgroup_size(256)
fn attention_bwd_dv_52(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    var r0: u32;
    var r1: i32;
    var r2: i32;
    var r3: i32;
    var r4: u32;
    var r5: i32;
    var r6: u32;
    var r7: i32;
    var r8: u32;
    var r9: i32;
    var r10: i32;
    var r11: i32;
    var r12: i32;
    var r13: i32;
    var r14: i32;
    var r15: i32;
    var r16: i32;
    var r17: i32;
    var r18: i32;
    var r19: i32;
    var r20: i32;
    var r21: bool;
    var r22: i32;
    var r23: bool;
    var r24: i32;
    var r25: i32;
    var r26: i32;
    var r27: f32;
    var r28: f32;
    var r29: f32;
    var r30: f32;
    var r31: i32;
    var r32: i32;
    var r33: i32;
    var r34: i32;
    var r35: i32;
    var r36: i32;
    var r37: i32;
    var r38: i32;
    var r39: i32;
    var r40: i32;
    var r41: i32;
    var r42: i32;
    var r43: i32;
    var r44: f32;
    var r45: f32;
    var r46: f32;
    var r47: f32;
    var r48: i32;
    var r49: i32;
    var r50: i32;
    var r51: i32;
    var r52: i32;
    var r53: i32;
    var r54: i32;
    var r55: i32;
    var r56: i32;
    var r57: i32;
    var r58: i32;
    var r59: i32;
    var r60: i32;
    var r61: i32;
    var r62: i32;
    var r63: i32;
    var r64: i32;
    var r65: i32;
    var r66: i32;
    var r67: i32;
    var r68: i32;
    var r69: i32;
    var r70: i32;
    var r71: i32;
    var r72: i32;
    var r73: i32;
    var r74: i32;
    var r75: i32;
    var r76: i32;
    var r77: i32;
    var r78: i32;
    var r79: i32;
    var r80: i32;
    var r81: i32;
    var r82: i32;
    var r83: i32;
    var r84: bool;
    var r85: f32;
    var r86: bool;
    var r87: f32;
    var r88: bool;
    var r89: f32;
    var r90: bool;
    var r91: f32;
    var r92: f32;
    var r93: f32;
    var r94: f32;
    var r95: f32;
    var r96: i32;
    var r97: i32;
    var r98: i32;
    var r99: i32;
    var r100: i32;
    var r101: f32;
    var r102: i32;
    var r103: f32;
    var r104: i32;
    var r105: i32;
    var r106: f32;
    var r107: i32;
    var r108: f32;
    var r109: f32;
    var r110: f32;
    var r111: f32;
    var r112: f32;
    var r113: i32;
    var r114: bool;
    var r115: bool;
    var r116: bool;
    var r117: bool;
    var r118: f32;
    var r119: f32;
    var r120: f32;
    var r121: f32;
    var r122: i32;
    var r123: i32;
    var r124: bool;
    var r125: i32;
    var r126: bool;
    var r127: i32;
    var r128: f32;
    var r129: f32;
    var r130: f32;
    var r131: f32;
    var r132: f32;
    var r133: f32;
    var r134: f32;
    var r135: f32;
    var r136: f32;
    var r137: f32;
    var r138: i32;
    var r139: i32;
    var r140: i32;
    var r141: i32;
    var r142: i32;
    var r143: i32;
    var r144: i32;
    var r145: i32;
    var r146: i32;
    var r147: i32;
    var r148: i32;
    var r149: i32;
    var r150: i32;
    var r151: i32;
    var r152: i32;
    var r153: i32;
    var r154: i32;
    var r155: i32;
    var r156: i32;
    var r157: i32;
    var r158: i32;
    var r159: i32;
    var r160: bool;
    var r161: f32;
    var r162: bool;
    var r163: f32;
    var r164: bool;
    var r165: f32;
    var r166: bool;
    var r167: f32;
    var r168: f32;
    var r169: f32;
    var r170: f32;
    var r171: f32;
    var r172: i32;
    var r173: i32;
    var r174: i32;
    var r175: i32;
    var r176: i32;
    var r177: f32;
    var r178: i32;
    var r179: f32;
    var r180: i32;
    var r181: i32;
    var r182: f32;
    var r183: i32;
    var r184: f32;
    var r185: i32;
    var r186: i32;
    var r187: i32;
    var r188: i32;
    var r189: i32;
    var r190: i32;
    var r191: i32;
    var r192: bool;
    var r193: i32;
    var r194: bool;
    var r195: i32;
    var r196: i32;
    var r197: i32;
    r0 = lid.x;
    r1 = i32(r0);
    r2 = r1 / 16i;
    r3 = r1 % 16i;
    r4 = wid.x;
    r5 = i32(r4);
    r6 = wid.y;
    r7 = i32(r6);
    r8 = wid.z;
    r9 = i32(r8);
    r10 = r5 * 32i;
    r11 = 64i - r10;
    r12 = r9 * 24576i;
    r13 = 128i + r12;
    r14 = r7 * 32i;
    r15 = r13 + r14;
    r16 = r10 * 384i;
    r17 = r15 + r16;
    r18 = r2 * 384i;
    r19 = r17 + r18;
    r20 = r19 + r3;
    r21 = r2 < r11;
    r22 = r2 + 16i;
    r23 = r22 < r11;
    r24 = r20 + 16i;
    r25 = r20 + 6144i;
    r26 = r20 + 6160i;
    if (r21) {
        r27 = b0_add_14[r20];
    } else {
        r27 = 0.0f;
    }
    if (r21) {
        r28 = b0_add_14[r24];
    } else {
        r28 = 0.0f;
    }
    if (r23) {
        r29 = b0_add_14[r25];
    } else {
        r29 = 0.0f;
    }
    if (r23) {
        r30 = b0_add_14[r26];
    } else {
        r30 = 0.0f;
    }
    r31 = r2 + 16i;
    r32 = r2 + 16i;
    r33 = r3 + 16i;
    r34 = r3 + 16i;
    r35 = r2 - r3;
    r36 = r2 - r33;
    r37 = r31 - r3;
    r38 = r32 - r34;
    r39 = max(r10, 0i);
    r40 = min(r39, 64i);
    r41 = r40 / 32i;
    r42 = r41 * 32i;
    r43 = 64i - r42;
    r44 = 0.0f;
    r45 = 0.0f;
    r46 = 0.0f;
    r47 = 0.0f;
    for (r48 = 0i; r48 < r43; r48 = r48 + 32i) {
        r49 = r42 + r48;
        r50 = 64i - r49;
        r51 = r12 + r14;
        r52 = r49 * 384i;
        r53 = r51 + r52;
        r54 = r9 * 8192i;
        r55 = r54 + r14;
        r56 = r49 * 128i;
        r57 = r55 + r56;
        r58 = r9 * 512i;
        r59 = r7 * 128i;
        r60 = r58 + r59;
        r61 = r49 * 2i;
        r62 = r60 + r61;
        r63 = r2 * 32i;
        r64 = r63 + r3;
        sh0[r64] = r27;
        r65 = r64 + 16i;
        sh0[r65] = r28;
        r66 = r64 + 512i;
        sh0[r66] = r29;
        r67 = r64 + 528i;
        sh0[r67] = r30;
        r68 = r1 / 32i;
        r69 = r1 % 32i;
        r70 = r69 * 384i;
        r71 = r53 + r68;
        r72 = r71 + r70;
        r73 = r68 * 32i;
        r74 = r73 + r69;
        r75 = r68 + 8i;
        r76 = r72 + 8i;
        r77 = r74 + 256i;
        r78 = r68 + 16i;
        r79 = r72 + 16i;
        r80 = r74 + 512i;
        r81 = r68 + 24i;
        r82 = r72 + 24i;
        r83 = r74 + 768i;
        r84 = r69 < r50;
        if (r84) {
            r85 = b0_add_14[r72];
        } else {
            r85 = 0.0f;
        }
        sh1[r74] = r85;
        r86 = r69 < r50;
        if (r86) {
            r87 = b0_add_14[r76];
        } else {
            r87 = 0.0f;
        }
        sh1[r77] = r87;
        r88 = r69 < r50;
        if (r88) {
            r89 = b0_add_14[r79];
        } else {
            r89 = 0.0f;
        }
        sh1[r80] = r89;
        r90 = r69 < r50;
        if (r90) {
            r91 = b0_add_14[r82];
        } else {
            r91 = 0.0f;
        }
        sh1[r83] = r91;
        workgroupBarrier();
        r92 = 0.0f;
        r93 = 0.0f;
        r94 = 0.0f;
        r95 = 0.0f;
        r96 = r2 * 32i;
        r97 = r96 + 512i;
        r98 = r3 + 16i;
        for (r99 = 0i; r99 < 32i; r99 = r99 + 1i) {
            r100 = r96 + r99;
            r101 = sh0[r100];
            r102 = r97 + r99;
            r103 = sh0[r102];
            r104 = r99 * 32i;
            r105 = r104 + r3;
            r106 = sh1[r105];
            r107 = r104 + r98;
            r108 = sh1[r107];
            r92 = fma(r101, r106, r92);
            r93 = fma(r101, r108, r93);
            r94 = fma(r103, r106, r94);
            r95 = fma(r103, r108, r95);
        }
        workgroupBarrier();
        r109 = r92 * 0.17677669f;
        r110 = r93 * 0.17677669f;
        r111 = r94 * 0.17677669f;
        r112 = r95 * 0.17677669f;
        r113 = r49 - r10;
        r114 = r35 <= r113;
        r115 = r36 <= r113;
        r116 = r37 <= r113;
        r117 = r38 <= r113;
        r118 = select((-1e30f), r109, r114);
        r119 = select((-1e30f), r110, r115);
        r120 = select((-1e30f), r111, r116);
        r121 = select((-1e30f), r112, r117);
        r122 = r3 * 2i;
        r123 = r62 + r122;
        r124 = r3 < r50;
        r125 = r3 + 16i;
        r126 = r125 < r50;
        r127 = r123 + 32i;
        if (r124) {
            r128 = b2_attention_bwd_stats_164[r123];
        } else {
            r128 = 1e30f;
        }
        if (r126) {
            r129 = b2_attention_bwd_stats_164[r127];
        } else {
            r129 = 1e30f;
        }
        r130 = r118 - r128;
        r131 = r119 - r129;
        r132 = r120 - r128;
        r133 = r121 - r129;
        r134 = exp(r130);
        r135 = exp(r131);
        r136 = exp(r132);
        r137 = exp(r133);
        r138 = r2 * 32i;
        r139 = r138 + r3;
        sh0[r139] = r134;
        r140 = r139 + 16i;
        sh0[r140] = r135;
        r141 = r139 + 512i;
        sh0[r141] = r136;
        r142 = r139 + 528i;
        sh0[r142] = r137;
        r143 = min(r50, 32i);
        r144 = r1 / 32i;
        r145 = r1 % 32i;
        r146 = r144 * 128i;
        r147 = r57 + r146;
        r148 = r147 + r145;
        r149 = r144 * 32i;
        r150 = r149 + r145;
        r151 = r144 + 8i;
        r152 = r148 + 1024i;
        r153 = r150 + 256i;
        r154 = r144 + 16i;
        r155 = r148 + 2048i;
        r156 = r150 + 512i;
        r157 = r144 + 24i;
        r158 = r148 + 3072i;
        r159 = r150 + 768i;
        r160 = r144 < r143;
        if (r160) {
            r161 = b1_matmul_160[r148];
        } else {
            r161 = 0.0f;
        }
        sh1[r150] = r161;
        r162 = r151 < r143;
        if (r162) {
            r163 = b1_matmul_160[r152];
        } else {
            r163 = 0.0f;
        }
        sh1[r153] = r163;
        r164 = r154 < r143;
        if (r164) {
            r165 = b1_matmul_160[r155];
        } else {
            r165 = 0.0f;
        }
        sh1[r156] = r165;
        r166 = r157 < r143;
        if (r166) {
            r167 = b1_matmul_160[r158];
        } else {
            r167 = 0.0f;
        }
        sh1[r159] = r167;
        workgroupBarrier();
        r168 = r44;
        r169 = r45;
        r170 = r46;
        r171 = r47;
        r172 = r2 * 32i;
        r173 = r172 + 512i;
        r174 = r3 + 16i;
        for (r175 = 0i; r175 < 32i; r175 = r175 + 1i) {
            r176 = r172 + r175;
            r177 = sh0[r176];
            r178 = r173 + r175;
            r179 = sh0[r178];
            r180 = r175 * 32i;
            r181 = r180 + r3;
            r182 = sh1[r181];
            r183 = r180 + r174;
            r184 = sh1[r183];
            r168 = fma(r177, r182, r168);
            r169 = fma(r177, r184, r169);
            r170 = fma(r179, r182, r170);
            r171 = fma(r179, r184, r171);
        }
        workgroupBarrier();
        r44 = r168;
        r45 = r169;
        r46 = r170;
        r47 = r171;
    }
    r185 = r9 * 8192i;
    r186 = r185 + r14;
    r187 = r10 * 128i;
    r188 = r186 + r187;
    r189 = r2 * 128i;
    r190 = r188 + r189;
    r191 = r190 + r3;
    r192 = r2 < r11;
    r193 = r2 + 16i;
    r194 = r193 < r11;
    r195 = r191 + 16i;
    r196 = r191 + 2048i;
    r197 = r191 + 2064i;
    if (r192) {
        b3_permute_168[r191] = r44;
    }
    if (r192) {
        b3_permute_168[r195] = r45;
    }
    if (r194) {
        b3_permute_168[r196] = r46;
    }
    if (r194) {
        b3_permute_168[r197] = r47;
    }
}
