// Tessera kernel `scatter_add_70` (generated; do not edit).
// grid [1, 65, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_add_213: array<f32>; // add_213: f32[32768]
@group(0) @binding(1) var<storage, read> b1_tokens: array<i32>; // tokens: i32[256]
@group(0) @binding(2) var<storage, read_write> b2_scatter_add_216: array<f32>; // scatter_add_216: f32[8320]
var<workgroup> sh0: array<f32, 256>;

@compute @workgroup_size(256)
fn scatter_add_70(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    var r0: u32;
    var r1: i32;
    var r2: u32;
    var r3: i32;
    var r4: f32;
    var r5: f32;
    var r6: i32;
    var r7: i32;
    var r8: i32;
    var r9: bool;
    var r10: i32;
    var r11: f32;
    var r12: f32;
    var r13: f32;
    var r14: f32;
    var r15: f32;
    var r16: f32;
    var r17: bool;
    var r18: bool;
    var r19: f32;
    var r20: i32;
    var r21: f32;
    var r22: f32;
    var r23: bool;
    var r24: f32;
    var r25: i32;
    var r26: f32;
    var r27: f32;
    var r28: bool;
    var r29: f32;
    var r30: i32;
    var r31: f32;
    var r32: f32;
    var r33: bool;
    var r34: f32;
    var r35: i32;
    var r36: f32;
    var r37: f32;
    var r38: bool;
    var r39: f32;
    var r40: i32;
    var r41: f32;
    var r42: f32;
    var r43: bool;
    var r44: f32;
    var r45: i32;
    var r46: f32;
    var r47: f32;
    var r48: bool;
    var r49: f32;
    var r50: i32;
    var r51: f32;
    var r52: f32;
    var r53: bool;
    var r54: f32;
    var r55: i32;
    var r56: f32;
    var r57: f32;
    var r58: f32;
    var r59: i32;
    var r60: i32;
    var r61: f32;
    var r62: f32;
    var r63: f32;
    var r64: f32;
    var r65: f32;
    var r66: i32;
    var r67: f32;
    var r68: f32;
    var r69: f32;
    var r70: f32;
    var r71: bool;
    var r72: bool;
    var r73: f32;
    var r74: i32;
    var r75: f32;
    var r76: f32;
    var r77: bool;
    var r78: f32;
    var r79: i32;
    var r80: f32;
    var r81: f32;
    var r82: bool;
    var r83: f32;
    var r84: i32;
    var r85: f32;
    var r86: f32;
    var r87: bool;
    var r88: f32;
    var r89: i32;
    var r90: f32;
    var r91: f32;
    var r92: bool;
    var r93: f32;
    var r94: i32;
    var r95: f32;
    var r96: f32;
    var r97: bool;
    var r98: f32;
    var r99: i32;
    var r100: f32;
    var r101: f32;
    var r102: bool;
    var r103: f32;
    var r104: i32;
    var r105: f32;
    var r106: f32;
    var r107: bool;
    var r108: f32;
    var r109: i32;
    var r110: f32;
    var r111: f32;
    var r112: f32;
    var r113: f32;
    var r114: i32;
    var r115: i32;
    var r116: i32;
    var r117: bool;
    var r118: f32;
    var r119: f32;
    var r120: i32;
    var r121: i32;
    var r122: bool;
    r0 = lid.x;
    r1 = i32(r0);
    r2 = wid.y;
    r3 = i32(r2);
    r4 = f32(r3);
    r5 = 0.0f;
    for (r6 = 0i; r6 < 256i; r6 = r6 + 256i) {
        r7 = 256i - r6;
        r8 = r6 + r1;
        r9 = r1 < r7;
        if (r9) {
            r10 = b1_tokens[r8];
        } else {
            r10 = (-1i);
        }
        r11 = f32(r10);
        r12 = r11 - r4;
        r13 = -(r12);
        r14 = max(r12, r13);
        r15 = min(r14, 1.0f);
        r16 = 1.0f - r15;
        r17 = r1 < 256i;
        if (r17) {
            sh0[r1] = r16;
        }
        workgroupBarrier();
        r18 = r1 < 128i;
        if (r18) {
            r19 = sh0[r1];
            r20 = r1 + 128i;
            r21 = sh0[r20];
            r22 = r19 + r21;
            sh0[r1] = r22;
        }
        workgroupBarrier();
        r23 = r1 < 64i;
        if (r23) {
            r24 = sh0[r1];
            r25 = r1 + 64i;
            r26 = sh0[r25];
            r27 = r24 + r26;
            sh0[r1] = r27;
        }
        workgroupBarrier();
        r28 = r1 < 32i;
        if (r28) {
            r29 = sh0[r1];
            r30 = r1 + 32i;
            r31 = sh0[r30];
            r32 = r29 + r31;
            sh0[r1] = r32;
        }
        workgroupBarrier();
        r33 = r1 < 16i;
        if (r33) {
            r34 = sh0[r1];
            r35 = r1 + 16i;
            r36 = sh0[r35];
            r37 = r34 + r36;
            sh0[r1] = r37;
        }
        workgroupBarrier();
        r38 = r1 < 8i;
        if (r38) {
            r39 = sh0[r1];
            r40 = r1 + 8i;
            r41 = sh0[r40];
            r42 = r39 + r41;
            sh0[r1] = r42;
        }
        workgroupBarrier();
        r43 = r1 < 4i;
        if (r43) {
            r44 = sh0[r1];
            r45 = r1 + 4i;
            r46 = sh0[r45];
            r47 = r44 + r46;
            sh0[r1] = r47;
        }
        workgroupBarrier();
        r48 = r1 < 2i;
        if (r48) {
            r49 = sh0[r1];
            r50 = r1 + 2i;
            r51 = sh0[r50];
            r52 = r49 + r51;
            sh0[r1] = r52;
        }
        workgroupBarrier();
        r53 = r1 < 1i;
        if (r53) {
            r54 = sh0[r1];
            r55 = r1 + 1i;
            r56 = sh0[r55];
            r57 = r54 + r56;
            sh0[r1] = r57;
        }
        workgroupBarrier();
        r58 = sh0[0i];
        workgroupBarrier();
        r59 = i32(r58);
        r60 = r1 + r6;
        r61 = f32(r60);
        r62 = 16777216.0f - r61;
        r63 = r62 * r16;
        r64 = r5;
        r65 = (-1.0f);
        for (r66 = 0i; r66 < r59; r66 = r66 + 1i) {
            r67 = r61 - r65;
            r68 = max(r67, 0.0f);
            r69 = min(r68, 1.0f);
            r70 = r63 * r69;
            r71 = r1 < 256i;
            if (r71) {
                sh0[r1] = r70;
            }
            workgroupBarrier();
            r72 = r1 < 128i;
            if (r72) {
                r73 = sh0[r1];
                r74 = r1 + 128i;
                r75 = sh0[r74];
                r76 = max(r73, r75);
                sh0[r1] = r76;
            }
            workgroupBarrier();
            r77 = r1 < 64i;
            if (r77) {
                r78 = sh0[r1];
                r79 = r1 + 64i;
                r80 = sh0[r79];
                r81 = max(r78, r80);
                sh0[r1] = r81;
            }
            workgroupBarrier();
            r82 = r1 < 32i;
            if (r82) {
                r83 = sh0[r1];
                r84 = r1 + 32i;
                r85 = sh0[r84];
                r86 = max(r83, r85);
                sh0[r1] = r86;
            }
            workgroupBarrier();
            r87 = r1 < 16i;
            if (r87) {
                r88 = sh0[r1];
                r89 = r1 + 16i;
                r90 = sh0[r89];
                r91 = max(r88, r90);
                sh0[r1] = r91;
            }
            workgroupBarrier();
            r92 = r1 < 8i;
            if (r92) {
                r93 = sh0[r1];
                r94 = r1 + 8i;
                r95 = sh0[r94];
                r96 = max(r93, r95);
                sh0[r1] = r96;
            }
            workgroupBarrier();
            r97 = r1 < 4i;
            if (r97) {
                r98 = sh0[r1];
                r99 = r1 + 4i;
                r100 = sh0[r99];
                r101 = max(r98, r100);
                sh0[r1] = r101;
            }
            workgroupBarrier();
            r102 = r1 < 2i;
            if (r102) {
                r103 = sh0[r1];
                r104 = r1 + 2i;
                r105 = sh0[r104];
                r106 = max(r103, r105);
                sh0[r1] = r106;
            }
            workgroupBarrier();
            r107 = r1 < 1i;
            if (r107) {
                r108 = sh0[r1];
                r109 = r1 + 1i;
                r110 = sh0[r109];
                r111 = max(r108, r110);
                sh0[r1] = r111;
            }
            workgroupBarrier();
            r112 = sh0[0i];
            workgroupBarrier();
            r113 = 16777216.0f - r112;
            r114 = i32(r113);
            r115 = r114 * 128i;
            r116 = r115 + r1;
            r117 = r1 < 128i;
            if (r117) {
                r118 = b0_add_213[r116];
            } else {
                r118 = 0.0f;
            }
            r119 = r64 + r118;
            r64 = r119;
            r65 = r113;
        }
        r5 = r64;
    }
    r120 = r3 * 128i;
    r121 = r120 + r1;
    r122 = r1 < 128i;
    if (r122) {
        b2_scatter_add_216[r121] = r5;
    }
}
