// Tessera kernel `layer_norm_8` (generated; do not edit).
// grid [64, 1, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_add_133: array<f32>; // add_133: f32[24576]
@group(0) @binding(1) var<storage, read> b1_encoder_layer_0_attention_output_LayerNo: array<f32>; // encoder.layer.0.attention.output.LayerNorm.weight: f32[384]
@group(0) @binding(2) var<storage, read> b2_encoder_layer_0_attention_output_LayerNo: array<f32>; // encoder.layer.0.attention.output.LayerNorm.bias: f32[384]
@group(0) @binding(3) var<storage, read_write> b3_layer_norm_134: array<f32>; // layer_norm_134: f32[24576]
var<workgroup> sh0: array<f32, 256>;

@compute @workgroup_size(256)
fn layer_norm_8(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    var r0: u32;
    var r1: i32;
    var r2: u32;
    var r3: i32;
    var r4: i32;
    var r5: f32;
    var r6: i32;
    var r7: i32;
    var r8: i32;
    var r9: f32;
    var r10: f32;
    var r11: bool;
    var r12: bool;
    var r13: f32;
    var r14: i32;
    var r15: f32;
    var r16: f32;
    var r17: bool;
    var r18: f32;
    var r19: i32;
    var r20: f32;
    var r21: f32;
    var r22: bool;
    var r23: f32;
    var r24: i32;
    var r25: f32;
    var r26: f32;
    var r27: bool;
    var r28: f32;
    var r29: i32;
    var r30: f32;
    var r31: f32;
    var r32: bool;
    var r33: f32;
    var r34: i32;
    var r35: f32;
    var r36: f32;
    var r37: bool;
    var r38: f32;
    var r39: i32;
    var r40: f32;
    var r41: f32;
    var r42: bool;
    var r43: f32;
    var r44: i32;
    var r45: f32;
    var r46: f32;
    var r47: bool;
    var r48: f32;
    var r49: i32;
    var r50: f32;
    var r51: f32;
    var r52: f32;
    var r53: i32;
    var r54: i32;
    var r55: bool;
    var r56: f32;
    var r57: bool;
    var r58: f32;
    var r59: bool;
    var r60: bool;
    var r61: f32;
    var r62: i32;
    var r63: f32;
    var r64: f32;
    var r65: bool;
    var r66: f32;
    var r67: i32;
    var r68: f32;
    var r69: f32;
    var r70: bool;
    var r71: f32;
    var r72: i32;
    var r73: f32;
    var r74: f32;
    var r75: bool;
    var r76: f32;
    var r77: i32;
    var r78: f32;
    var r79: f32;
    var r80: bool;
    var r81: f32;
    var r82: i32;
    var r83: f32;
    var r84: f32;
    var r85: bool;
    var r86: f32;
    var r87: i32;
    var r88: f32;
    var r89: f32;
    var r90: bool;
    var r91: f32;
    var r92: i32;
    var r93: f32;
    var r94: f32;
    var r95: f32;
    var r96: f32;
    var r97: f32;
    var r98: f32;
    var r99: i32;
    var r100: i32;
    var r101: i32;
    var r102: f32;
    var r103: f32;
    var r104: f32;
    var r105: f32;
    var r106: bool;
    var r107: bool;
    var r108: f32;
    var r109: i32;
    var r110: f32;
    var r111: f32;
    var r112: bool;
    var r113: f32;
    var r114: i32;
    var r115: f32;
    var r116: f32;
    var r117: bool;
    var r118: f32;
    var r119: i32;
    var r120: f32;
    var r121: f32;
    var r122: bool;
    var r123: f32;
    var r124: i32;
    var r125: f32;
    var r126: f32;
    var r127: bool;
    var r128: f32;
    var r129: i32;
    var r130: f32;
    var r131: f32;
    var r132: bool;
    var r133: f32;
    var r134: i32;
    var r135: f32;
    var r136: f32;
    var r137: bool;
    var r138: f32;
    var r139: i32;
    var r140: f32;
    var r141: f32;
    var r142: bool;
    var r143: f32;
    var r144: i32;
    var r145: f32;
    var r146: f32;
    var r147: f32;
    var r148: i32;
    var r149: bool;
    var r150: f32;
    var r151: f32;
    var r152: f32;
    var r153: bool;
    var r154: f32;
    var r155: bool;
    var r156: bool;
    var r157: f32;
    var r158: i32;
    var r159: f32;
    var r160: f32;
    var r161: bool;
    var r162: f32;
    var r163: i32;
    var r164: f32;
    var r165: f32;
    var r166: bool;
    var r167: f32;
    var r168: i32;
    var r169: f32;
    var r170: f32;
    var r171: bool;
    var r172: f32;
    var r173: i32;
    var r174: f32;
    var r175: f32;
    var r176: bool;
    var r177: f32;
    var r178: i32;
    var r179: f32;
    var r180: f32;
    var r181: bool;
    var r182: f32;
    var r183: i32;
    var r184: f32;
    var r185: f32;
    var r186: bool;
    var r187: f32;
    var r188: i32;
    var r189: f32;
    var r190: f32;
    var r191: f32;
    var r192: f32;
    var r193: f32;
    var r194: f32;
    var r195: f32;
    var r196: f32;
    var r197: i32;
    var r198: i32;
    var r199: i32;
    var r200: i32;
    var r201: bool;
    var r202: f32;
    var r203: f32;
    var r204: f32;
    var r205: i32;
    var r206: bool;
    var r207: f32;
    var r208: i32;
    var r209: bool;
    var r210: f32;
    var r211: f32;
    var r212: f32;
    var r213: i32;
    var r214: bool;
    r0 = lid.x;
    r1 = i32(r0);
    r2 = wid.x;
    r3 = i32(r2);
    r4 = r3 * 384i;
    r5 = 0.0f;
    for (r6 = 0i; r6 < 256i; r6 = r6 + 256i) {
        r7 = r4 + r6;
        r8 = r7 + r1;
        r9 = b0_add_133[r8];
        r10 = r5 + r9;
        r5 = r10;
    }
    r11 = r1 < 256i;
    if (r11) {
        sh0[r1] = r5;
    }
    workgroupBarrier();
    r12 = r1 < 128i;
    if (r12) {
        r13 = sh0[r1];
        r14 = r1 + 128i;
        r15 = sh0[r14];
        r16 = r13 + r15;
        sh0[r1] = r16;
    }
    workgroupBarrier();
    r17 = r1 < 64i;
    if (r17) {
        r18 = sh0[r1];
        r19 = r1 + 64i;
        r20 = sh0[r19];
        r21 = r18 + r20;
        sh0[r1] = r21;
    }
    workgroupBarrier();
    r22 = r1 < 32i;
    if (r22) {
        r23 = sh0[r1];
        r24 = r1 + 32i;
        r25 = sh0[r24];
        r26 = r23 + r25;
        sh0[r1] = r26;
    }
    workgroupBarrier();
    r27 = r1 < 16i;
    if (r27) {
        r28 = sh0[r1];
        r29 = r1 + 16i;
        r30 = sh0[r29];
        r31 = r28 + r30;
        sh0[r1] = r31;
    }
    workgroupBarrier();
    r32 = r1 < 8i;
    if (r32) {
        r33 = sh0[r1];
        r34 = r1 + 8i;
        r35 = sh0[r34];
        r36 = r33 + r35;
        sh0[r1] = r36;
    }
    workgroupBarrier();
    r37 = r1 < 4i;
    if (r37) {
        r38 = sh0[r1];
        r39 = r1 + 4i;
        r40 = sh0[r39];
        r41 = r38 + r40;
        sh0[r1] = r41;
    }
    workgroupBarrier();
    r42 = r1 < 2i;
    if (r42) {
        r43 = sh0[r1];
        r44 = r1 + 2i;
        r45 = sh0[r44];
        r46 = r43 + r45;
        sh0[r1] = r46;
    }
    workgroupBarrier();
    r47 = r1 < 1i;
    if (r47) {
        r48 = sh0[r1];
        r49 = r1 + 1i;
        r50 = sh0[r49];
        r51 = r48 + r50;
        sh0[r1] = r51;
    }
    workgroupBarrier();
    r52 = sh0[0i];
    workgroupBarrier();
    r53 = r4 + 256i;
    r54 = r53 + r1;
    r55 = r1 < 128i;
    if (r55) {
        r56 = b0_add_133[r54];
    } else {
        r56 = 0.0f;
    }
    r57 = r1 < 128i;
    r58 = select(0.0f, r56, r57);
    r59 = r1 < 128i;
    if (r59) {
        sh0[r1] = r58;
    }
    workgroupBarrier();
    r60 = r1 < 64i;
    if (r60) {
        r61 = sh0[r1];
        r62 = r1 + 64i;
        r63 = sh0[r62];
        r64 = r61 + r63;
        sh0[r1] = r64;
    }
    workgroupBarrier();
    r65 = r1 < 32i;
    if (r65) {
        r66 = sh0[r1];
        r67 = r1 + 32i;
        r68 = sh0[r67];
        r69 = r66 + r68;
        sh0[r1] = r69;
    }
    workgroupBarrier();
    r70 = r1 < 16i;
    if (r70) {
        r71 = sh0[r1];
        r72 = r1 + 16i;
        r73 = sh0[r72];
        r74 = r71 + r73;
        sh0[r1] = r74;
    }
    workgroupBarrier();
    r75 = r1 < 8i;
    if (r75) {
        r76 = sh0[r1];
        r77 = r1 + 8i;
        r78 = sh0[r77];
        r79 = r76 + r78;
        sh0[r1] = r79;
    }
    workgroupBarrier();
    r80 = r1 < 4i;
    if (r80) {
        r81 = sh0[r1];
        r82 = r1 + 4i;
        r83 = sh0[r82];
        r84 = r81 + r83;
        sh0[r1] = r84;
    }
    workgroupBarrier();
    r85 = r1 < 2i;
    if (r85) {
        r86 = sh0[r1];
        r87 = r1 + 2i;
        r88 = sh0[r87];
        r89 = r86 + r88;
        sh0[r1] = r89;
    }
    workgroupBarrier();
    r90 = r1 < 1i;
    if (r90) {
        r91 = sh0[r1];
        r92 = r1 + 1i;
        r93 = sh0[r92];
        r94 = r91 + r93;
        sh0[r1] = r94;
    }
    workgroupBarrier();
    r95 = sh0[0i];
    workgroupBarrier();
    r96 = r52 + r95;
    r97 = r96 * 0.0026041667f;
    r98 = 0.0f;
    for (r99 = 0i; r99 < 256i; r99 = r99 + 256i) {
        r100 = r4 + r99;
        r101 = r100 + r1;
        r102 = b0_add_133[r101];
        r103 = r102 - r97;
        r104 = r103 * r103;
        r105 = r98 + r104;
        r98 = r105;
    }
    r106 = r1 < 256i;
    if (r106) {
        sh0[r1] = r98;
    }
    workgroupBarrier();
    r107 = r1 < 128i;
    if (r107) {
        r108 = sh0[r1];
        r109 = r1 + 128i;
        r110 = sh0[r109];
        r111 = r108 + r110;
        sh0[r1] = r111;
    }
    workgroupBarrier();
    r112 = r1 < 64i;
    if (r112) {
        r113 = sh0[r1];
        r114 = r1 + 64i;
        r115 = sh0[r114];
        r116 = r113 + r115;
        sh0[r1] = r116;
    }
    workgroupBarrier();
    r117 = r1 < 32i;
    if (r117) {
        r118 = sh0[r1];
        r119 = r1 + 32i;
        r120 = sh0[r119];
        r121 = r118 + r120;
        sh0[r1] = r121;
    }
    workgroupBarrier();
    r122 = r1 < 16i;
    if (r122) {
        r123 = sh0[r1];
        r124 = r1 + 16i;
        r125 = sh0[r124];
        r126 = r123 + r125;
        sh0[r1] = r126;
    }
    workgroupBarrier();
    r127 = r1 < 8i;
    if (r127) {
        r128 = sh0[r1];
        r129 = r1 + 8i;
        r130 = sh0[r129];
        r131 = r128 + r130;
        sh0[r1] = r131;
    }
    workgroupBarrier();
    r132 = r1 < 4i;
    if (r132) {
        r133 = sh0[r1];
        r134 = r1 + 4i;
        r135 = sh0[r134];
        r136 = r133 + r135;
        sh0[r1] = r136;
    }
    workgroupBarrier();
    r137 = r1 < 2i;
    if (r137) {
        r138 = sh0[r1];
        r139 = r1 + 2i;
        r140 = sh0[r139];
        r141 = r138 + r140;
        sh0[r1] = r141;
    }
    workgroupBarrier();
    r142 = r1 < 1i;
    if (r142) {
        r143 = sh0[r1];
        r144 = r1 + 1i;
        r145 = sh0[r144];
        r146 = r143 + r145;
        sh0[r1] = r146;
    }
    workgroupBarrier();
    r147 = sh0[0i];
    workgroupBarrier();
    r148 = r53 + r1;
    r149 = r1 < 128i;
    if (r149) {
        r150 = b0_add_133[r148];
    } else {
        r150 = 0.0f;
    }
    r151 = r150 - r97;
    r152 = r151 * r151;
    r153 = r1 < 128i;
    r154 = select(0.0f, r152, r153);
    r155 = r1 < 128i;
    if (r155) {
        sh0[r1] = r154;
    }
    workgroupBarrier();
    r156 = r1 < 64i;
    if (r156) {
        r157 = sh0[r1];
        r158 = r1 + 64i;
        r159 = sh0[r158];
        r160 = r157 + r159;
        sh0[r1] = r160;
    }
    workgroupBarrier();
    r161 = r1 < 32i;
    if (r161) {
        r162 = sh0[r1];
        r163 = r1 + 32i;
        r164 = sh0[r163];
        r165 = r162 + r164;
        sh0[r1] = r165;
    }
    workgroupBarrier();
    r166 = r1 < 16i;
    if (r166) {
        r167 = sh0[r1];
        r168 = r1 + 16i;
        r169 = sh0[r168];
        r170 = r167 + r169;
        sh0[r1] = r170;
    }
    workgroupBarrier();
    r171 = r1 < 8i;
    if (r171) {
        r172 = sh0[r1];
        r173 = r1 + 8i;
        r174 = sh0[r173];
        r175 = r172 + r174;
        sh0[r1] = r175;
    }
    workgroupBarrier();
    r176 = r1 < 4i;
    if (r176) {
        r177 = sh0[r1];
        r178 = r1 + 4i;
        r179 = sh0[r178];
        r180 = r177 + r179;
        sh0[r1] = r180;
    }
    workgroupBarrier();
    r181 = r1 < 2i;
    if (r181) {
        r182 = sh0[r1];
        r183 = r1 + 2i;
        r184 = sh0[r183];
        r185 = r182 + r184;
        sh0[r1] = r185;
    }
    workgroupBarrier();
    r186 = r1 < 1i;
    if (r186) {
        r187 = sh0[r1];
        r188 = r1 + 1i;
        r189 = sh0[r188];
        r190 = r187 + r189;
        sh0[r1] = r190;
    }
    workgroupBarrier();
    r191 = sh0[0i];
    workgroupBarrier();
    r192 = r147 + r191;
    r193 = r192 * 0.0026041667f;
    r194 = r193 + 1e-12f;
    r195 = sqrt(r194);
    r196 = 1.0f / r195;
    for (r197 = 0i; r197 < 384i; r197 = r197 + 256i) {
        r198 = 384i - r197;
        r199 = r4 + r197;
        r200 = r199 + r1;
        r201 = r1 < r198;
        if (r201) {
            r202 = b0_add_133[r200];
        } else {
            r202 = 0.0f;
        }
        r203 = r202 - r97;
        r204 = r203 * r196;
        r205 = r197 + r1;
        r206 = r1 < r198;
        if (r206) {
            r207 = b1_encoder_layer_0_attention_output_LayerNo[r205];
        } else {
            r207 = 0.0f;
        }
        r208 = r197 + r1;
        r209 = r1 < r198;
        if (r209) {
            r210 = b2_encoder_layer_0_attention_output_LayerNo[r208];
        } else {
            r210 = 0.0f;
        }
        r211 = r204 * r207;
        r212 = r211 + r210;
        r213 = r199 + r1;
        r214 = r1 < r198;
        if (r214) {
            b3_layer_norm_134[r213] = r212;
        }
    }
}
