// Tessera kernel `attention_bwd_dk_53` (generated; do not edit).
// grid [2, 4, 4] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_add_14: array<f32>; // add_14: f32[98304]
@group(0) @binding(1) var<storage, read> b1_matmul_160: array<f32>; // matmul_160: f32[32768]
@group(0) @binding(2) var<storage, read> b2_attention_bwd_stats_164: array<f32>; // attention_bwd_stats_164: f32[2048]
@group(0) @binding(3) var<storage, read_write> b3_permute_172: array<f32>; // permute_172: f32[32768]
var<workgroup> sh0: array<f32, 1024>;
var<workgroup> sh1: array<f32, 1024>;

@compute @workgroup_size(256)
fn attention_bwd_dk_53(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
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
    var r37: bool;
    var r38: i32;
    var r39: bool;
    var r40: i32;
    var r41: i32;
    var r42: i32;
    var r43: f32;
    var r44: f32;
    var r45: f32;
    var r46: f32;
    var r47: i32;
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
    var r60: f32;
    var r61: f32;
    var r62: f32;
    var r63: f32;
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
    var r84: i32;
    var r85: i32;
    var r86: i32;
    var r87: i32;
    var r88: i32;
    var r89: i32;
    var r90: i32;
    var r91: i32;
    var r92: i32;
    var r93: i32;
    var r94: i32;
    var r95: i32;
    var r96: i32;
    var r97: i32;
    var r98: i32;
    var r99: i32;
    var r100: bool;
    var r101: f32;
    var r102: bool;
    var r103: f32;
    var r104: bool;
    var r105: f32;
    var r106: bool;
    var r107: f32;
    var r108: f32;
    var r109: f32;
    var r110: f32;
    var r111: f32;
    var r112: i32;
    var r113: i32;
    var r114: i32;
    var r115: i32;
    var r116: i32;
    var r117: f32;
    var r118: i32;
    var r119: f32;
    var r120: i32;
    var r121: i32;
    var r122: f32;
    var r123: i32;
    var r124: f32;
    var r125: f32;
    var r126: f32;
    var r127: f32;
    var r128: f32;
    var r129: i32;
    var r130: bool;
    var r131: bool;
    var r132: bool;
    var r133: bool;
    var r134: f32;
    var r135: f32;
    var r136: f32;
    var r137: f32;
    var r138: i32;
    var r139: i32;
    var r140: bool;
    var r141: i32;
    var r142: bool;
    var r143: i32;
    var r144: f32;
    var r145: f32;
    var r146: f32;
    var r147: f32;
    var r148: f32;
    var r149: f32;
    var r150: f32;
    var r151: f32;
    var r152: f32;
    var r153: f32;
    var r154: i32;
    var r155: i32;
    var r156: i32;
    var r157: i32;
    var r158: i32;
    var r159: i32;
    var r160: i32;
    var r161: i32;
    var r162: i32;
    var r163: i32;
    var r164: i32;
    var r165: i32;
    var r166: i32;
    var r167: i32;
    var r168: i32;
    var r169: i32;
    var r170: i32;
    var r171: i32;
    var r172: i32;
    var r173: i32;
    var r174: i32;
    var r175: bool;
    var r176: f32;
    var r177: bool;
    var r178: f32;
    var r179: bool;
    var r180: f32;
    var r181: bool;
    var r182: f32;
    var r183: f32;
    var r184: f32;
    var r185: f32;
    var r186: f32;
    var r187: i32;
    var r188: i32;
    var r189: i32;
    var r190: i32;
    var r191: i32;
    var r192: f32;
    var r193: i32;
    var r194: f32;
    var r195: i32;
    var r196: i32;
    var r197: f32;
    var r198: i32;
    var r199: f32;
    var r200: i32;
    var r201: i32;
    var r202: i32;
    var r203: bool;
    var r204: i32;
    var r205: bool;
    var r206: i32;
    var r207: f32;
    var r208: f32;
    var r209: f32;
    var r210: f32;
    var r211: f32;
    var r212: f32;
    var r213: f32;
    var r214: f32;
    var r215: f32;
    var r216: f32;
    var r217: f32;
    var r218: f32;
    var r219: f32;
    var r220: f32;
    var r221: i32;
    var r222: i32;
    var r223: i32;
    var r224: i32;
    var r225: i32;
    var r226: i32;
    var r227: i32;
    var r228: i32;
    var r229: i32;
    var r230: i32;
    var r231: i32;
    var r232: i32;
    var r233: i32;
    var r234: i32;
    var r235: i32;
    var r236: i32;
    var r237: i32;
    var r238: i32;
    var r239: i32;
    var r240: i32;
    var r241: i32;
    var r242: i32;
    var r243: bool;
    var r244: f32;
    var r245: bool;
    var r246: f32;
    var r247: bool;
    var r248: f32;
    var r249: bool;
    var r250: f32;
    var r251: f32;
    var r252: f32;
    var r253: f32;
    var r254: f32;
    var r255: i32;
    var r256: i32;
    var r257: i32;
    var r258: i32;
    var r259: i32;
    var r260: f32;
    var r261: i32;
    var r262: f32;
    var r263: i32;
    var r264: i32;
    var r265: f32;
    var r266: i32;
    var r267: f32;
    var r268: i32;
    var r269: i32;
    var r270: i32;
    var r271: i32;
    var r272: i32;
    var r273: i32;
    var r274: i32;
    var r275: bool;
    var r276: i32;
    var r277: bool;
    var r278: i32;
    var r279: i32;
    var r280: i32;
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
    r31 = 256i + r12;
    r32 = r31 + r14;
    r33 = r32 + r16;
    r34 = r2 * 384i;
    r35 = r33 + r34;
    r36 = r35 + r3;
    r37 = r2 < r11;
    r38 = r2 + 16i;
    r39 = r38 < r11;
    r40 = r36 + 16i;
    r41 = r36 + 6144i;
    r42 = r36 + 6160i;
    if (r37) {
        r43 = b0_add_14[r36];
    } else {
        r43 = 0.0f;
    }
    if (r37) {
        r44 = b0_add_14[r40];
    } else {
        r44 = 0.0f;
    }
    if (r39) {
        r45 = b0_add_14[r41];
    } else {
        r45 = 0.0f;
    }
    if (r39) {
        r46 = b0_add_14[r42];
    } else {
        r46 = 0.0f;
    }
    r47 = r2 + 16i;
    r48 = r2 + 16i;
    r49 = r3 + 16i;
    r50 = r3 + 16i;
    r51 = r2 - r3;
    r52 = r2 - r49;
    r53 = r47 - r3;
    r54 = r48 - r50;
    r55 = max(r10, 0i);
    r56 = min(r55, 64i);
    r57 = r56 / 32i;
    r58 = r57 * 32i;
    r59 = 64i - r58;
    r60 = 0.0f;
    r61 = 0.0f;
    r62 = 0.0f;
    r63 = 0.0f;
    for (r64 = 0i; r64 < r59; r64 = r64 + 32i) {
        r65 = r58 + r64;
        r66 = 64i - r65;
        r67 = r12 + r14;
        r68 = r65 * 384i;
        r69 = r67 + r68;
        r70 = r9 * 8192i;
        r71 = r70 + r14;
        r72 = r65 * 128i;
        r73 = r71 + r72;
        r74 = r9 * 512i;
        r75 = r7 * 128i;
        r76 = r74 + r75;
        r77 = r65 * 2i;
        r78 = r76 + r77;
        r79 = r2 * 32i;
        r80 = r79 + r3;
        sh0[r80] = r27;
        r81 = r80 + 16i;
        sh0[r81] = r28;
        r82 = r80 + 512i;
        sh0[r82] = r29;
        r83 = r80 + 528i;
        sh0[r83] = r30;
        r84 = r1 / 32i;
        r85 = r1 % 32i;
        r86 = r85 * 384i;
        r87 = r69 + r84;
        r88 = r87 + r86;
        r89 = r84 * 32i;
        r90 = r89 + r85;
        r91 = r84 + 8i;
        r92 = r88 + 8i;
        r93 = r90 + 256i;
        r94 = r84 + 16i;
        r95 = r88 + 16i;
        r96 = r90 + 512i;
        r97 = r84 + 24i;
        r98 = r88 + 24i;
        r99 = r90 + 768i;
        r100 = r85 < r66;
        if (r100) {
            r101 = b0_add_14[r88];
        } else {
            r101 = 0.0f;
        }
        sh1[r90] = r101;
        r102 = r85 < r66;
        if (r102) {
            r103 = b0_add_14[r92];
        } else {
            r103 = 0.0f;
        }
        sh1[r93] = r103;
        r104 = r85 < r66;
        if (r104) {
            r105 = b0_add_14[r95];
        } else {
            r105 = 0.0f;
        }
        sh1[r96] = r105;
        r106 = r85 < r66;
        if (r106) {
            r107 = b0_add_14[r98];
        } else {
            r107 = 0.0f;
        }
        sh1[r99] = r107;
        workgroupBarrier();
        r108 = 0.0f;
        r109 = 0.0f;
        r110 = 0.0f;
        r111 = 0.0f;
        r112 = r2 * 32i;
        r113 = r112 + 512i;
        r114 = r3 + 16i;
        for (r115 = 0i; r115 < 32i; r115 = r115 + 1i) {
            r116 = r112 + r115;
            r117 = sh0[r116];
            r118 = r113 + r115;
            r119 = sh0[r118];
            r120 = r115 * 32i;
            r121 = r120 + r3;
            r122 = sh1[r121];
            r123 = r120 + r114;
            r124 = sh1[r123];
            r108 = fma(r117, r122, r108);
            r109 = fma(r117, r124, r109);
            r110 = fma(r119, r122, r110);
            r111 = fma(r119, r124, r111);
        }
        workgroupBarrier();
        r125 = r108 * 0.17677669f;
        r126 = r109 * 0.17677669f;
        r127 = r110 * 0.17677669f;
        r128 = r111 * 0.17677669f;
        r129 = r65 - r10;
        r130 = r51 <= r129;
        r131 = r52 <= r129;
        r132 = r53 <= r129;
        r133 = r54 <= r129;
        r134 = select((-1e30f), r125, r130);
        r135 = select((-1e30f), r126, r131);
        r136 = select((-1e30f), r127, r132);
        r137 = select((-1e30f), r128, r133);
        r138 = r3 * 2i;
        r139 = r78 + r138;
        r140 = r3 < r66;
        r141 = r3 + 16i;
        r142 = r141 < r66;
        r143 = r139 + 32i;
        if (r140) {
            r144 = b2_attention_bwd_stats_164[r139];
        } else {
            r144 = 1e30f;
        }
        if (r142) {
            r145 = b2_attention_bwd_stats_164[r143];
        } else {
            r145 = 1e30f;
        }
        r146 = r134 - r144;
        r147 = r135 - r145;
        r148 = r136 - r144;
        r149 = r137 - r145;
        r150 = exp(r146);
        r151 = exp(r147);
        r152 = exp(r148);
        r153 = exp(r149);
        r154 = r2 * 32i;
        r155 = r154 + r3;
        sh0[r155] = r43;
        r156 = r155 + 16i;
        sh0[r156] = r44;
        r157 = r155 + 512i;
        sh0[r157] = r45;
        r158 = r155 + 528i;
        sh0[r158] = r46;
        r159 = r1 / 32i;
        r160 = r1 % 32i;
        r161 = r160 * 128i;
        r162 = r73 + r159;
        r163 = r162 + r161;
        r164 = r159 * 32i;
        r165 = r164 + r160;
        r166 = r159 + 8i;
        r167 = r163 + 8i;
        r168 = r165 + 256i;
        r169 = r159 + 16i;
        r170 = r163 + 16i;
        r171 = r165 + 512i;
        r172 = r159 + 24i;
        r173 = r163 + 24i;
        r174 = r165 + 768i;
        r175 = r160 < r66;
        if (r175) {
            r176 = b1_matmul_160[r163];
        } else {
            r176 = 0.0f;
        }
        sh1[r165] = r176;
        r177 = r160 < r66;
        if (r177) {
            r178 = b1_matmul_160[r167];
        } else {
            r178 = 0.0f;
        }
        sh1[r168] = r178;
        r179 = r160 < r66;
        if (r179) {
            r180 = b1_matmul_160[r170];
        } else {
            r180 = 0.0f;
        }
        sh1[r171] = r180;
        r181 = r160 < r66;
        if (r181) {
            r182 = b1_matmul_160[r173];
        } else {
            r182 = 0.0f;
        }
        sh1[r174] = r182;
        workgroupBarrier();
        r183 = 0.0f;
        r184 = 0.0f;
        r185 = 0.0f;
        r186 = 0.0f;
        r187 = r2 * 32i;
        r188 = r187 + 512i;
        r189 = r3 + 16i;
        for (r190 = 0i; r190 < 32i; r190 = r190 + 1i) {
            r191 = r187 + r190;
            r192 = sh0[r191];
            r193 = r188 + r190;
            r194 = sh0[r193];
            r195 = r190 * 32i;
            r196 = r195 + r3;
            r197 = sh1[r196];
            r198 = r195 + r189;
            r199 = sh1[r198];
            r183 = fma(r192, r197, r183);
            r184 = fma(r192, r199, r184);
            r185 = fma(r194, r197, r185);
            r186 = fma(r194, r199, r186);
        }
        workgroupBarrier();
        r200 = r78 + 1i;
        r201 = r3 * 2i;
        r202 = r200 + r201;
        r203 = r3 < r66;
        r204 = r3 + 16i;
        r205 = r204 < r66;
        r206 = r202 + 32i;
        if (r203) {
            r207 = b2_attention_bwd_stats_164[r202];
        } else {
            r207 = 0.0f;
        }
        if (r205) {
            r208 = b2_attention_bwd_stats_164[r206];
        } else {
            r208 = 0.0f;
        }
        r209 = r183 - r207;
        r210 = r184 - r208;
        r211 = r185 - r207;
        r212 = r186 - r208;
        r213 = r150 * r209;
        r214 = r151 * r210;
        r215 = r152 * r211;
        r216 = r153 * r212;
        r217 = r213 * 0.17677669f;
        r218 = r214 * 0.17677669f;
        r219 = r215 * 0.17677669f;
        r220 = r216 * 0.17677669f;
        r221 = r2 * 32i;
        r222 = r221 + r3;
        sh0[r222] = r217;
        r223 = r222 + 16i;
        sh0[r223] = r218;
        r224 = r222 + 512i;
        sh0[r224] = r219;
        r225 = r222 + 528i;
        sh0[r225] = r220;
        r226 = min(r66, 32i);
        r227 = r1 / 32i;
        r228 = r1 % 32i;
        r229 = r227 * 384i;
        r230 = r69 + r229;
        r231 = r230 + r228;
        r232 = r227 * 32i;
        r233 = r232 + r228;
        r234 = r227 + 8i;
        r235 = r231 + 3072i;
        r236 = r233 + 256i;
        r237 = r227 + 16i;
        r238 = r231 + 6144i;
        r239 = r233 + 512i;
        r240 = r227 + 24i;
        r241 = r231 + 9216i;
        r242 = r233 + 768i;
        r243 = r227 < r226;
        if (r243) {
            r244 = b0_add_14[r231];
        } else {
            r244 = 0.0f;
        }
        sh1[r233] = r244;
        r245 = r234 < r226;
        if (r245) {
            r246 = b0_add_14[r235];
        } else {
            r246 = 0.0f;
        }
        sh1[r236] = r246;
        r247 = r237 < r226;
        if (r247) {
            r248 = b0_add_14[r238];
        } else {
            r248 = 0.0f;
        }
        sh1[r239] = r248;
        r249 = r240 < r226;
        if (r249) {
            r250 = b0_add_14[r241];
        } else {
            r250 = 0.0f;
        }
        sh1[r242] = r250;
        workgroupBarrier();
        r251 = r60;
        r252 = r61;
        r253 = r62;
        r254 = r63;
        r255 = r2 * 32i;
        r256 = r255 + 512i;
        r257 = r3 + 16i;
        for (r258 = 0i; r258 < 32i; r258 = r258 + 1i) {
            r259 = r255 + r258;
            r260 = sh0[r259];
            r261 = r256 + r258;
            r262 = sh0[r261];
            r263 = r258 * 32i;
            r264 = r263 + r3;
            r265 = sh1[r264];
            r266 = r263 + r257;
            r267 = sh1[r266];
            r251 = fma(r260, r265, r251);
            r252 = fma(r260, r267, r252);
            r253 = fma(r262, r265, r253);
            r254 = fma(r262, r267, r254);
        }
        workgroupBarrier();
        r60 = r251;
        r61 = r252;
        r62 = r253;
        r63 = r254;
    }
    r268 = r9 * 8192i;
    r269 = r268 + r14;
    r270 = r10 * 128i;
    r271 = r269 + r270;
    r272 = r2 * 128i;
    r273 = r271 + r272;
    r274 = r273 + r3;
    r275 = r2 < r11;
    r276 = r2 + 16i;
    r277 = r276 < r11;
    r278 = r274 + 16i;
    r279 = r274 + 2048i;
    r280 = r274 + 2064i;
    if (r275) {
        b3_permute_172[r274] = r60;
    }
    if (r275) {
        b3_permute_172[r278] = r61;
    }
    if (r277) {
        b3_permute_172[r279] = r62;
    }
    if (r277) {
        b3_permute_172[r280] = r63;
    }
}
