// Tessera kernel `matmul_add_74` (generated; do not edit).
// grid [4, 3, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_mul_76: array<f32>; // mul_76: f32[16640]
@group(0) @binding(1) var<storage, read> b1_layer_norm_50: array<f32>; // layer_norm_50: f32[32768]
@group(0) @binding(2) var<storage, read> b2_scatter_add_216: array<f32>; // scatter_add_216: f32[8320]
@group(0) @binding(3) var<storage, read_write> b3_grad_wte_weight: array<f32>; // grad/wte.weight: f32[8320]
var<workgroup> sh0: array<f32, 256>;
var<workgroup> sh1: array<f32, 256>;

@compute @workgroup_size(256)
fn matmul_add_74(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
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
    var r27: i32;
    var r28: bool;
    var r29: f32;
    var r30: i32;
    var r31: i32;
    var r32: i32;
    var r33: i32;
    var r34: i32;
    var r35: i32;
    var r36: i32;
    var r37: f32;
    var r38: f32;
    var r39: f32;
    var r40: f32;
    var r41: f32;
    var r42: i32;
    var r43: i32;
    var r44: i32;
    var r45: i32;
    var r46: i32;
    var r47: f32;
    var r48: i32;
    var r49: f32;
    var r50: i32;
    var r51: i32;
    var r52: f32;
    var r53: i32;
    var r54: f32;
    var r55: i32;
    var r56: i32;
    var r57: i32;
    var r58: i32;
    var r59: i32;
    var r60: bool;
    var r61: i32;
    var r62: bool;
    var r63: i32;
    var r64: i32;
    var r65: i32;
    var r66: f32;
    var r67: f32;
    var r68: f32;
    var r69: f32;
    var r70: f32;
    var r71: f32;
    var r72: f32;
    var r73: f32;
    var r74: i32;
    var r75: i32;
    var r76: i32;
    var r77: bool;
    var r78: i32;
    var r79: bool;
    var r80: i32;
    var r81: i32;
    var r82: i32;
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
    r10 = 65i - r8;
    r11 = 0.0f;
    r12 = 0.0f;
    r13 = 0.0f;
    r14 = 0.0f;
    for (r15 = 0i; r15 < 256i; r15 = r15 + 8i) {
        r16 = r15 * 65i;
        r17 = r8 + r16;
        r18 = r15 * 128i;
        r19 = r9 + r18;
        r20 = min(r10, 32i);
        r21 = r1 / 8i;
        r22 = r1 % 8i;
        r23 = r22 * 65i;
        r24 = r17 + r21;
        r25 = r24 + r23;
        r26 = r21 * 8i;
        r27 = r26 + r22;
        r28 = r21 < r20;
        if (r28) {
            r29 = b0_mul_76[r25];
        } else {
            r29 = 0.0f;
        }
        sh0[r27] = r29;
        r30 = r1 / 32i;
        r31 = r1 % 32i;
        r32 = r30 * 128i;
        r33 = r19 + r32;
        r34 = r33 + r31;
        r35 = r30 * 32i;
        r36 = r35 + r31;
        r37 = b1_layer_norm_50[r34];
        sh1[r36] = r37;
        workgroupBarrier();
        r38 = r11;
        r39 = r12;
        r40 = r13;
        r41 = r14;
        r42 = r2 * 8i;
        r43 = r42 + 128i;
        r44 = r3 + 16i;
        for (r45 = 0i; r45 < 8i; r45 = r45 + 1i) {
            r46 = r42 + r45;
            r47 = sh0[r46];
            r48 = r43 + r45;
            r49 = sh0[r48];
            r50 = r45 * 32i;
            r51 = r50 + r3;
            r52 = sh1[r51];
            r53 = r50 + r44;
            r54 = sh1[r53];
            r38 = fma(r47, r52, r38);
            r39 = fma(r47, r54, r39);
            r40 = fma(r49, r52, r40);
            r41 = fma(r49, r54, r41);
        }
        workgroupBarrier();
        r11 = r38;
        r12 = r39;
        r13 = r40;
        r14 = r41;
    }
    r55 = r8 * 128i;
    r56 = r55 + r9;
    r57 = r2 * 128i;
    r58 = r56 + r57;
    r59 = r58 + r3;
    r60 = r2 < r10;
    r61 = r2 + 16i;
    r62 = r61 < r10;
    r63 = r59 + 16i;
    r64 = r59 + 2048i;
    r65 = r59 + 2064i;
    if (r60) {
        r66 = b2_scatter_add_216[r59];
    } else {
        r66 = 0.0f;
    }
    if (r60) {
        r67 = b2_scatter_add_216[r63];
    } else {
        r67 = 0.0f;
    }
    if (r62) {
        r68 = b2_scatter_add_216[r64];
    } else {
        r68 = 0.0f;
    }
    if (r62) {
        r69 = b2_scatter_add_216[r65];
    } else {
        r69 = 0.0f;
    }
    r70 = r11 + r66;
    r71 = r12 + r67;
    r72 = r13 + r68;
    r73 = r14 + r69;
    r74 = r2 * 128i;
    r75 = r56 + r74;
    r76 = r75 + r3;
    r77 = r2 < r10;
    r78 = r2 + 16i;
    r79 = r78 < r10;
    r80 = r76 + 16i;
    r81 = r76 + 2048i;
    r82 = r76 + 2064i;
    if (r77) {
        b3_grad_wte_weight[r76] = r70;
    }
    if (r77) {
        b3_grad_wte_weight[r80] = r71;
    }
    if (r79) {
        b3_grad_wte_weight[r81] = r72;
    }
    if (r79) {
        b3_grad_wte_weight[r82] = r73;
    }
}
