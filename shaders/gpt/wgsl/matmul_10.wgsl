// Tessera kernel `matmul_10` (generated; do not edit).
// grid [3, 8, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_layer_norm_50: array<f32>; // layer_norm_50: f32[32768]
@group(0) @binding(1) var<storage, read> b1_wte_weight: array<f32>; // wte.weight: f32[8320]
@group(0) @binding(2) var<storage, read_write> b2_matmul_51: array<f32>; // matmul_51: f32[16640]
var<workgroup> sh0: array<f32, 256>;
var<workgroup> sh1: array<f32, 256>;

@compute @workgroup_size(256)
fn matmul_10(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
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
    var r13: f32;
    var r14: f32;
    var r15: f32;
    var r16: f32;
    var r17: i32;
    var r18: i32;
    var r19: i32;
    var r20: i32;
    var r21: i32;
    var r22: i32;
    var r23: i32;
    var r24: i32;
    var r25: i32;
    var r26: i32;
    var r27: f32;
    var r28: i32;
    var r29: i32;
    var r30: i32;
    var r31: i32;
    var r32: i32;
    var r33: i32;
    var r34: i32;
    var r35: bool;
    var r36: f32;
    var r37: f32;
    var r38: f32;
    var r39: f32;
    var r40: f32;
    var r41: i32;
    var r42: i32;
    var r43: i32;
    var r44: i32;
    var r45: i32;
    var r46: f32;
    var r47: i32;
    var r48: f32;
    var r49: i32;
    var r50: i32;
    var r51: f32;
    var r52: i32;
    var r53: f32;
    var r54: i32;
    var r55: i32;
    var r56: i32;
    var r57: i32;
    var r58: i32;
    var r59: bool;
    var r60: i32;
    var r61: bool;
    var r62: i32;
    var r63: i32;
    var r64: i32;
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
    r10 = 65i - r9;
    r11 = r8 * 128i;
    r12 = r9 * 128i;
    r13 = 0.0f;
    r14 = 0.0f;
    r15 = 0.0f;
    r16 = 0.0f;
    for (r17 = 0i; r17 < 128i; r17 = r17 + 8i) {
        r18 = r11 + r17;
        r19 = r12 + r17;
        r20 = r1 / 8i;
        r21 = r1 % 8i;
        r22 = r20 * 128i;
        r23 = r18 + r22;
        r24 = r23 + r21;
        r25 = r20 * 8i;
        r26 = r25 + r21;
        r27 = b0_layer_norm_50[r24];
        sh0[r26] = r27;
        r28 = r1 / 32i;
        r29 = r1 % 32i;
        r30 = r29 * 128i;
        r31 = r19 + r28;
        r32 = r31 + r30;
        r33 = r28 * 32i;
        r34 = r33 + r29;
        r35 = r29 < r10;
        if (r35) {
            r36 = b1_wte_weight[r32];
        } else {
            r36 = 0.0f;
        }
        sh1[r34] = r36;
        workgroupBarrier();
        r37 = r13;
        r38 = r14;
        r39 = r15;
        r40 = r16;
        r41 = r2 * 8i;
        r42 = r41 + 128i;
        r43 = r3 + 16i;
        for (r44 = 0i; r44 < 8i; r44 = r44 + 1i) {
            r45 = r41 + r44;
            r46 = sh0[r45];
            r47 = r42 + r44;
            r48 = sh0[r47];
            r49 = r44 * 32i;
            r50 = r49 + r3;
            r51 = sh1[r50];
            r52 = r49 + r43;
            r53 = sh1[r52];
            r37 = fma(r46, r51, r37);
            r38 = fma(r46, r53, r38);
            r39 = fma(r48, r51, r39);
            r40 = fma(r48, r53, r40);
        }
        workgroupBarrier();
        r13 = r37;
        r14 = r38;
        r15 = r39;
        r16 = r40;
    }
    r54 = r8 * 65i;
    r55 = r54 + r9;
    r56 = r2 * 65i;
    r57 = r55 + r56;
    r58 = r57 + r3;
    r59 = r3 < r10;
    r60 = r3 + 16i;
    r61 = r60 < r10;
    r62 = r58 + 16i;
    r63 = r58 + 1040i;
    r64 = r58 + 1056i;
    if (r59) {
        b2_matmul_51[r58] = r13;
    }
    if (r61) {
        b2_matmul_51[r62] = r14;
    }
    if (r59) {
        b2_matmul_51[r63] = r15;
    }
    if (r61) {
        b2_matmul_51[r64] = r16;
    }
}
