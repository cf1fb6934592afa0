// Tessera kernel `matmul_50` (generated; do not edit).
// grid [4, 4, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_permute_25: array<f32>; // permute_25: f32[32768]
@group(0) @binding(1) var<storage, read> b1_add_158: array<f32>; // add_158: f32[32768]
@group(0) @binding(2) var<storage, read_write> b2_grad_h_0_attn_proj_weight: array<f32>; // grad/h.0.attn.proj.weight: f32[16384]
var<workgroup> sh0: array<f32, 256>;
var<workgroup> sh1: array<f32, 256>;

@compute @workgroup_size(256)
fn matmul_50(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
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
    var r10: f32;
    var r11: f32;
    var r12: f32;
    var r13: f32;
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
    var r25: f32;
    var r26: i32;
    var r27: i32;
    var r28: i32;
    var r29: i32;
    var r30: i32;
    var r31: i32;
    var r32: i32;
    var r33: f32;
    var r34: f32;
    var r35: f32;
    var r36: f32;
    var r37: f32;
    var r38: i32;
    var r39: i32;
    var r40: i32;
    var r41: i32;
    var r42: i32;
    var r43: f32;
    var r44: i32;
    var r45: f32;
    var r46: i32;
    var r47: i32;
    var r48: f32;
    var r49: i32;
    var r50: f32;
    var r51: i32;
    var r52: i32;
    var r53: i32;
    var r54: i32;
    var r55: i32;
    var r56: i32;
    var r57: i32;
    var r58: i32;
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
    r10 = 0.0f;
    r11 = 0.0f;
    r12 = 0.0f;
    r13 = 0.0f;
    for (r14 = 0i; r14 < 256i; r14 = r14 + 8i) {
        r15 = r14 * 128i;
        r16 = r8 + r15;
        r17 = r9 + r15;
        r18 = r1 / 8i;
        r19 = r1 % 8i;
        r20 = r19 * 128i;
        r21 = r16 + r18;
        r22 = r21 + r20;
        r23 = r18 * 8i;
        r24 = r23 + r19;
        r25 = b0_permute_25[r22];
        sh0[r24] = r25;
        r26 = r1 / 32i;
        r27 = r1 % 32i;
        r28 = r26 * 128i;
        r29 = r17 + r28;
        r30 = r29 + r27;
        r31 = r26 * 32i;
        r32 = r31 + r27;
        r33 = b1_add_158[r30];
        sh1[r32] = r33;
        workgroupBarrier();
        r34 = r10;
        r35 = r11;
        r36 = r12;
        r37 = r13;
        r38 = r2 * 8i;
        r39 = r38 + 128i;
        r40 = r3 + 16i;
        for (r41 = 0i; r41 < 8i; r41 = r41 + 1i) {
            r42 = r38 + r41;
            r43 = sh0[r42];
            r44 = r39 + r41;
            r45 = sh0[r44];
            r46 = r41 * 32i;
            r47 = r46 + r3;
            r48 = sh1[r47];
            r49 = r46 + r40;
            r50 = sh1[r49];
            r34 = fma(r43, r48, r34);
            r35 = fma(r43, r50, r35);
            r36 = fma(r45, r48, r36);
            r37 = fma(r45, r50, r37);
        }
        workgroupBarrier();
        r10 = r34;
        r11 = r35;
        r12 = r36;
        r13 = r37;
    }
    r51 = r8 * 128i;
    r52 = r51 + r9;
    r53 = r2 * 128i;
    r54 = r52 + r53;
    r55 = r54 + r3;
    r56 = r55 + 16i;
    r57 = r55 + 2048i;
    r58 = r55 + 2064i;
    b2_grad_h_0_attn_proj_weight[r55] = r10;
    b2_grad_h_0_attn_proj_weight[r56] = r11;
    b2_grad_h_0_attn_proj_weight[r57] = r12;
    b2_grad_h_0_attn_proj_weight[r58] = r13;
}
