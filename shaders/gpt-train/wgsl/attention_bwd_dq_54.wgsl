// Tessera kernel `attention_bwd_dq_54` (generated; do not edit).
// grid [2, 4, 4] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_add_14: array<f32>; // add_14: f32[98304]
@group(0) @binding(1) var<storage, read> b1_matmul_160: array<f32>; // matmul_160: f32[32768]
@group(0) @binding(2) var<storage, read> b2_attention_bwd_stats_164: array<f32>; // attention_bwd_stats_164: f32[2048]
@group(0) @binding(3) var<storage, read_write> b3_permute_179: array<f32>; // permute_179: f32[32768]
var<workgroup> sh0: array<f32, 1024>;
var<workgroup> sh1: array<f32, 1024>;

@compute @workgroup_size(256)
fn attention_bwd_dq_54(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
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
    var r21: i32;
    var r22: i32;
    var r23: i32;
    var r24: i32;
    var r25: i32;
    var r26: bool;
    var r27: i32;
    var r28: bool;
    var r29: i32;
    var r30: i32;
    var r31: i32;
    var r32: f32;
    var r33: f32;
    var r34: f32;
    var r35: f32;
    var r36: i32;
    var r37: i32;
    var r38: i32;
    var r39: i32;
    var r40: i32;
    var r41: i32;
    var r42: i32;
    var r43: i32;
    var r44: i32;
    var r45: i32;
    var r46: i32;
    var r47: i32;
    var r48: i32;
    var r49: i32;
    var r50: i32;
    var r51: bool;
    var r52: i32;
    var r53: bool;
    var r54: i32;
    var r55: i32;
    var r56: i32;
    var r57: f32;
    var r58: f32;
    var r59: f32;
    var r60: f32;
    var r61: i32;
    var r62: i32;
    var r63: i32;
    var r64: i32;
    var r65: i32;
    var r66: i32;
    var r67: i32;
    var r68: bool;
    var r69: i32;
    var r70: bool;
    var r71: i32;
    var r72: f32;
    var r73: f32;
    var r74: i32;
    var r75: i32;
    var r76: i32;
    var r77: bool;
    var r78: i32;
    var r79: bool;
    var r80: i32;
    var r81: f32;
    var r82: f32;
    var r83: f32;
    var r84: f32;
    var r85: f32;
    var r86: f32;
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
    var r100: i32;
    var r101: i32;
    var r102: i32;
    var r103: i32;
    var r104: i32;
    var r105: i32;
    var r106: i32;
    var r107: i32;
    var r108: i32;
    var r109: i32;
    var r110: i32;
    var r111: i32;
    var r112: bool;
    var r113: f32;
    var r114: bool;
    var r115: f32;
    var r116: bool;
    var r117: f32;
    var r118: bool;
    var r119: f32;
    var r120: f32;
    var r121: f32;
    var r122: f32;
    var r123: f32;
    var r124: i32;
    var r125: i32;
    var r126: i32;
    var r127: i32;
    var r128: i32;
    var r129: f32;
    var r130: i32;
    var r131: f32;
    var r132: i32;
    var r133: i32;
    var r134: f32;
    var r135: i32;
    var r136: f32;
    var r137: f32;
    var r138: f32;
    var r139: f32;
    var r140: f32;
    var r141: i32;
    var r142: bool;
    var r143: bool;
    var r144: bool;
    var r145: bool;
    var r146: f32;
    var r147: f32;
    var r148: f32;
    var r149: f32;
    var r150: f32;
    var r151: f32;
    var r152: f32;
    var r153: f32;
    var r154: f32;
    var r155: f32;
    var r156: f32;
    var r157: f32;
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
    var r175: i32;
    var r176: i32;
    var r177: i32;
    var r178: i32;
    var r179: i32;
    var r180: i32;
    var r181: i32;
    var r182: bool;
    var r183: f32;
    var r184: bool;
    var r185: f32;
    var r186: bool;
    var r187: f32;
    var r188: bool;
    var r189: f32;
    var r190: f32;
    var r191: f32;
    var r192: f32;
    var r193: f32;
    var r194: i32;
    var r195: i32;
    var r196: i32;
    var r197: i32;
    var r198: i32;
    var r199: f32;
    var r200: i32;
    var r201: f32;
    var r202: i32;
    var r203: i32;
    var r204: f32;
    var r205: i32;
    var r206: f32;
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
    var r219: i32;
    var r220: i32;
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
    var r241: bool;
    var r242: f32;
    var r243: bool;
    var r244: f32;
    var r245: bool;
    var r246: f32;
    var r247: bool;
    var r248: f32;
    var r249: f32;
    var r250: f32;
    var r251: f32;
    var r252: f32;
    var r253: i32;
    var r254: i32;
    var r255: i32;
    var r256: i32;
    var r257: i32;
    var r258: f32;
    var r259: i32;
    var r260: f32;
    var r261: i32;
    var r262: i32;
    var r263: f32;
    var r264: i32;
    var r265: f32;
    var r266: i32;
    var r267: i32;
    var r268: i32;
    var r269: bool;
    var r270: i32;
    var r271: bool;
    var r272: i32;
    var r273: i32;
    var r274: i32;
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
    r13 = r7 * 32i;
    r14 = r12 + r13;
    r15 = r10 * 384i;
    r16 = r14 + r15;
    r17 = 128i + r12;
    r18 = r17 + r13;
    r19 = r9 * 8192i;
    r20 = r19 + r13;
    r21 = r10 * 128i;
    r22 = r20 + r21;
    r23 = r2 * 384i;
    r24 = r16 + r23;
    r25 = r24 + r3;
    r26 = r2 < r11;
    r27 = r2 + 16i;
    r28 = r27 < r11;
    r29 = r25 + 16i;
    r30 = r25 + 6144i;
    r31 = r25 + 6160i;
    if (r26) {
        r32 = b0_add_14[r25];
    } else {
        r32 = 0.0f;
    }
    if (r26) {
        r33 = b0_add_14[r29];
    } else {
        r33 = 0.0f;
    }
    if (r28) {
        r34 = b0_add_14[r30];
    } else {
        r34 = 0.0f;
    }
    if (r28) {
        r35 = b0_add_14[r31];
    } else {
        r35 = 0.0f;
    }
    r36 = r3 + 16i;
    r37 = r3 + 16i;
    r38 = r2 + 16i;
    r39 = r2 + 16i;
    r40 = r3 - r2;
    r41 = r36 - r2;
    r42 = r3 - r38;
    r43 = r37 - r39;
    r44 = r10 + 32i;
    r45 = min(64i, r44);
    r46 = min(r45, 64i);
    r47 = max(r46, 0i);
    r48 = r2 * 128i;
    r49 = r22 + r48;
    r50 = r49 + r3;
    r51 = r2 < r11;
    r52 = r2 + 16i;
    r53 = r52 < r11;
    r54 = r50 + 16i;
    r55 = r50 + 2048i;
    r56 = r50 + 2064i;
    if (r51) {
        r57 = b1_matmul_160[r50];
    } else {
        r57 = 0.0f;
    }
    if (r51) {
        r58 = b1_matmul_160[r54];
    } else {
        r58 = 0.0f;
    }
    if (r53) {
        r59 = b1_matmul_160[r55];
    } else {
        r59 = 0.0f;
    }
    if (r53) {
        r60 = b1_matmul_160[r56];
    } else {
        r60 = 0.0f;
    }
    r61 = r9 * 512i;
    r62 = r7 * 128i;
    r63 = r61 + r62;
    r64 = r10 * 2i;
    r65 = r63 + r64;
    r66 = r2 * 2i;
    r67 = r65 + r66;
    r68 = r2 < r11;
    r69 = r2 + 16i;
    r70 = r69 < r11;
    r71 = r67 + 32i;
    if (r68) {
        r72 = b2_attention_bwd_stats_164[r67];
    } else {
        r72 = 0.0f;
    }
    if (r70) {
        r73 = b2_attention_bwd_stats_164[r71];
    } else {
        r73 = 0.0f;
    }
    r74 = r65 + 1i;
    r75 = r2 * 2i;
    r76 = r74 + r75;
    r77 = r2 < r11;
    r78 = r2 + 16i;
    r79 = r78 < r11;
    r80 = r76 + 32i;
    if (r77) {
        r81 = b2_attention_bwd_stats_164[r76];
    } else {
        r81 = 0.0f;
    }
    if (r79) {
        r82 = b2_attention_bwd_stats_164[r80];
    } else {
        r82 = 0.0f;
    }
    r83 = 0.0f;
    r84 = 0.0f;
    r85 = 0.0f;
    r86 = 0.0f;
    for (r87 = 0i; r87 < r47; r87 = r87 + 32i) {
        r88 = 64i - r87;
        r89 = r87 * 384i;
        r90 = r18 + r89;
        r91 = r2 * 32i;
        r92 = r91 + r3;
        sh0[r92] = r32;
        r93 = r92 + 16i;
        sh0[r93] = r33;
        r94 = r92 + 512i;
        sh0[r94] = r34;
        r95 = r92 + 528i;
        sh0[r95] = r35;
        r96 = r1 / 32i;
        r97 = r1 % 32i;
        r98 = r97 * 384i;
        r99 = r90 + r96;
        r100 = r99 + r98;
        r101 = r96 * 32i;
        r102 = r101 + r97;
        r103 = r96 + 8i;
        r104 = r100 + 8i;
        r105 = r102 + 256i;
        r106 = r96 + 16i;
        r107 = r100 + 16i;
        r108 = r102 + 512i;
        r109 = r96 + 24i;
        r110 = r100 + 24i;
        r111 = r102 + 768i;
        r112 = r97 < r88;
        if (r112) {
            r113 = b0_add_14[r100];
        } else {
            r113 = 0.0f;
        }
        sh1[r102] = r113;
        r114 = r97 < r88;
        if (r114) {
            r115 = b0_add_14[r104];
        } else {
            r115 = 0.0f;
        }
        sh1[r105] = r115;
        r116 = r97 < r88;
        if (r116) {
            r117 = b0_add_14[r107];
        } else {
            r117 = 0.0f;
        }
        sh1[r108] = r117;
        r118 = r97 < r88;
        if (r118) {
            r119 = b0_add_14[r110];
        } else {
            r119 = 0.0f;
        }
        sh1[r111] = r119;
        workgroupBarrier();
        r120 = 0.0f;
        r121 = 0.0f;
        r122 = 0.0f;
        r123 = 0.0f;
        r124 = r2 * 32i;
        r125 = r124 + 512i;
        r126 = r3 + 16i;
        for (r127 = 0i; r127 < 32i; r127 = r127 + 1i) {
            r128 = r124 + r127;
            r129 = sh0[r128];
            r130 = r125 + r127;
            r131 = sh0[r130];
            r132 = r127 * 32i;
            r133 = r132 + r3;
            r134 = sh1[r133];
            r135 = r132 + r126;
            r136 = sh1[r135];
            r120 = fma(r129, r134, r120);
            r121 = fma(r129, r136, r121);
            r122 = fma(r131, r134, r122);
            r123 = fma(r131, r136, r123);
        }
        workgroupBarrier();
        r137 = r120 * 0.17677669f;
        r138 = r121 * 0.17677669f;
        r139 = r122 * 0.17677669f;
        r140 = r123 * 0.17677669f;
        r141 = r10 - r87;
        r142 = r40 <= r141;
        r143 = r41 <= r141;
        r144 = r42 <= r141;
        r145 = r43 <= r141;
        r146 = select((-1e30f), r137, r142);
        r147 = select((-1e30f), r138, r143);
        r148 = select((-1e30f), r139, r144);
        r149 = select((-1e30f), r140, r145);
        r150 = r146 - r72;
        r151 = r147 - r72;
        r152 = r148 - r73;
        r153 = r149 - r73;
        r154 = exp(r150);
        r155 = exp(r151);
        r156 = exp(r152);
        r157 = exp(r153);
        r158 = 256i + r12;
        r159 = r158 + r13;
        r160 = r159 + r89;
        r161 = r2 * 32i;
        r162 = r161 + r3;
        sh0[r162] = r57;
        r163 = r162 + 16i;
        sh0[r163] = r58;
        r164 = r162 + 512i;
        sh0[r164] = r59;
        r165 = r162 + 528i;
        sh0[r165] = r60;
        r166 = r1 / 32i;
        r167 = r1 % 32i;
        r168 = r167 * 384i;
        r169 = r160 + r166;
        r170 = r169 + r168;
        r171 = r166 * 32i;
        r172 = r171 + r167;
        r173 = r166 + 8i;
        r174 = r170 + 8i;
        r175 = r172 + 256i;
        r176 = r166 + 16i;
        r177 = r170 + 16i;
        r178 = r172 + 512i;
        r179 = r166 + 24i;
        r180 = r170 + 24i;
        r181 = r172 + 768i;
        r182 = r167 < r88;
        if (r182) {
            r183 = b0_add_14[r170];
        } else {
            r183 = 0.0f;
        }
        sh1[r172] = r183;
        r184 = r167 < r88;
        if (r184) {
            r185 = b0_add_14[r174];
        } else {
            r185 = 0.0f;
        }
        sh1[r175] = r185;
        r186 = r167 < r88;
        if (r186) {
            r187 = b0_add_14[r177];
        } else {
            r187 = 0.0f;
        }
        sh1[r178] = r187;
        r188 = r167 < r88;
        if (r188) {
            r189 = b0_add_14[r180];
        } else {
            r189 = 0.0f;
        }
        sh1[r181] = r189;
        workgroupBarrier();
        r190 = 0.0f;
        r191 = 0.0f;
        r192 = 0.0f;
        r193 = 0.0f;
        r194 = r2 * 32i;
        r195 = r194 + 512i;
        r196 = r3 + 16i;
        for (r197 = 0i; r197 < 32i; r197 = r197 + 1i) {
            r198 = r194 + r197;
            r199 = sh0[r198];
            r200 = r195 + r197;
            r201 = sh0[r200];
            r202 = r197 * 32i;
            r203 = r202 + r3;
            r204 = sh1[r203];
            r205 = r202 + r196;
            r206 = sh1[r205];
            r190 = fma(r199, r204, r190);
            r191 = fma(r199, r206, r191);
            r192 = fma(r201, r204, r192);
            r193 = fma(r201, r206, r193);
        }
        workgroupBarrier();
        r207 = r190 - r81;
        r208 = r191 - r81;
        r209 = r192 - r82;
        r210 = r193 - r82;
        r211 = r154 * r207;
        r212 = r155 * r208;
        r213 = r156 * r209;
        r214 = r157 * r210;
        r215 = r211 * 0.17677669f;
        r216 = r212 * 0.17677669f;
        r217 = r213 * 0.17677669f;
        r218 = r214 * 0.17677669f;
        r219 = r2 * 32i;
        r220 = r219 + r3;
        sh0[r220] = r215;
        r221 = r220 + 16i;
        sh0[r221] = r216;
        r222 = r220 + 512i;
        sh0[r222] = r217;
        r223 = r220 + 528i;
        sh0[r223] = r218;
        r224 = min(r88, 32i);
        r225 = r1 / 32i;
        r226 = r1 % 32i;
        r227 = r225 * 384i;
        r228 = r90 + r227;
        r229 = r228 + r226;
        r230 = r225 * 32i;
        r231 = r230 + r226;
        r232 = r225 + 8i;
        r233 = r229 + 3072i;
        r234 = r231 + 256i;
        r235 = r225 + 16i;
        r236 = r229 + 6144i;
        r237 = r231 + 512i;
        r238 = r225 + 24i;
        r239 = r229 + 9216i;
        r240 = r231 + 768i;
        r241 = r225 < r224;
        if (r241) {
            r242 = b0_add_14[r229];
        } else {
            r242 = 0.0f;
        }
        sh1[r231] = r242;
        r243 = r232 < r224;
        if (r243) {
            r244 = b0_add_14[r233];
        } else {
            r244 = 0.0f;
        }
        sh1[r234] = r244;
        r245 = r235 < r224;
        if (r245) {
            r246 = b0_add_14[r236];
        } else {
            r246 = 0.0f;
        }
        sh1[r237] = r246;
        r247 = r238 < r224;
        if (r247) {
            r248 = b0_add_14[r239];
        } else {
            r248 = 0.0f;
        }
        sh1[r240] = r248;
        workgroupBarrier();
        r249 = r83;
        r250 = r84;
        r251 = r85;
        r252 = r86;
        r253 = r2 * 32i;
        r254 = r253 + 512i;
        r255 = r3 + 16i;
        for (r256 = 0i; r256 < 32i; r256 = r256 + 1i) {
            r257 = r253 + r256;
            r258 = sh0[r257];
            r259 = r254 + r256;
            r260 = sh0[r259];
            r261 = r256 * 32i;
            r262 = r261 + r3;
            r263 = sh1[r262];
            r264 = r261 + r255;
            r265 = sh1[r264];
            r249 = fma(r258, r263, r249);
            r250 = fma(r258, r265, r250);
            r251 = fma(r260, r263, r251);
            r252 = fma(r260, r265, r252);
        }
        workgroupBarrier();
        r83 = r249;
        r84 = r250;
        r85 = r251;
        r86 = r252;
    }
    r266 = r2 * 128i;
    r267 = r22 + r266;
    r268 = r267 + r3;
    r269 = r2 < r11;
    r270 = r2 + 16i;
    r271 = r270 < r11;
    r272 = r268 + 16i;
    r273 = r268 + 2048i;
    r274 = r268 + 2064i;
    if (r269) {
        b3_permute_179[r268] = r83;
    }
    if (r269) {
        b3_permute_179[r272] = r84;
    }
    if (r271) {
        b3_permute_179[r273] = r85;
    }
    if (r271) {
        b3_permute_179[r274] = r86;
    }
}
