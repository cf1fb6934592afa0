// Tessera kernel `matmul_21` (generated; do not edit).
// grid [4, 8, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_mul_76: array<f32>; // mul_76: f32[16640]
@group(0) @binding(1) var<storage, read> b1_wte_weight: array<f32>; // wte.weight: f32[8320]
@group(0) @binding(2) var<storage, read_write> b2_matmul_77: array<f32>; // matmul_77: f32[32768]
var<workgroup> sh0: array<f32, 256>;
var<workgroup> sh1: array<f32, 256>;

@compute @workgroup_size(256)
fn matmul_21(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
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
    var r11: f32;
    var r12: f32;
    var r13: f32;
    var r14: f32;
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
    var r26: i32;
    var r27: bool;
    var r28: f32;
    var r29: i32;
    var r30: i32;
    var r31: i32;
    var r32: i32;
    var r33: i32;
    var r34: i32;
    var r35: i32;
    var r36: i32;
    var r37: bool;
    var r38: f32;
    var r39: f32;
    var r40: f32;
    var r41: f32;
    var r42: f32;
    var r43: i32;
    var r44: i32;
    var r45: i32;
    var r46: i32;
    var r47: i32;
    var r48: f32;
    var r49: i32;
    var r50: f32;
    var r51: i32;
    var r52: i32;
    var r53: f32;
    var r54: i32;
    var r55: f32;
    var r56: i32;
    var r57: i32;
    var r58: i32;
    var r59: i32;
    var r60: i32;
    var r61: i32;
    var r62: i32;
    var r63: i32;
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
    r10 = r8 * 65i;
    r11 = 0.0f;
    r12 = 0.0f;
    r13 = 0.0f;
    r14 = 0.0f;
    for (r15 = 0i; r15 < 65i; r15 = r15 + 8i) {
        r16 = 65i - r15;
        r17 = r10 + r15;
        r18 = r15 * 128i;
        r19 = r9 + r18;
        r20 = r1 / 8i;
        r21 = r1 % 8i;
        r22 = r20 * 65i;
        r23 = r17 + r22;
        r24 = r23 + r21;
        r25 = r20 * 8i;
        r26 = r25 + r21;
        r27 = r21 < r16;
        if (r27) {
            r28 = b0_mul_76[r24];
        } else {
            r28 = 0.0f;
        }
        sh0[r26] = r28;
        r29 = min(r16, 8i);
        r30 = r1 / 32i;
        r31 = r1 % 32i;
        r32 = r30 * 128i;
        r33 = r19 + r32;
        r34 = r33 + r31;
        r35 = r30 * 32i;
        r36 = r35 + r31;
        r37 = r30 < r29;
        if (r37) {
            r38 = b1_wte_weight[r34];
        } else {
            r38 = 0.0f;
        }
        sh1[r36] = r38;
        workgroupBarrier();
        r39 = r11;
        r40 = r12;
        r41 = r13;
        r42 = r14;
        r43 = r2 * 8i;
        r44 = r43 + 128i;
        r45 = r3 + 16i;
        for (r46 = 0i; r46 < 8i; r46 = r46 + 1i) {
            r47 = r43 + r46;
            r48 = sh0[r47];
            r49 = r44 + r46;
            r50 = sh0[r49];
            r51 = r46 * 32i;
            r52 = r51 + r3;
            r53 = sh1[r52];
            r54 = r51 + r45;
            r55 = sh1[r54];
            r39 = fma(r48, r53, r39);
            r40 = fma(r48, r55, r40);
            r41 = fma(r50, r53, r41);
            r42 = fma(r50, r55, r42);
        }
        workgroupBarrier();
        r11 = r39;
        r12 = r40;
        r13 = r41;
        r14 = r42;
    }
    r56 = r8 * 128i;
    r57 = r56 + r9;
    r58 = r2 * 128i;
    r59 = r57 + r58;
    r60 = r59 + r3;
    r61 = r60 + 16i;
    r62 = r60 + 2048i;
    r63 = r60 + 2064i;
    b2_matmul_77[r60] = r11;
    b2_matmul_77[r61] = r12;
    b2_matmul_77[r62] = r13;
    b2_matmul_77[r63] = r14;
}
