// Tessera kernel `matmul_49` (generated; do not edit).
// grid [4, 8, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_add_158: array<f32>; // add_158: f32[32768]
@group(0) @binding(1) var<storage, read> b1_h_0_attn_proj_weight: array<f32>; // h.0.attn.proj.weight: f32[16384]
@group(0) @binding(2) var<storage, read_write> b2_matmul_160: array<f32>; // matmul_160: f32[32768]
var<workgroup> sh0: array<f32, 256>;
var<workgroup> sh1: array<f32, 256>;

@compute @workgroup_size(256)
fn matmul_49(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
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
    var r12: f32;
    var r13: f32;
    var r14: f32;
    var r15: f32;
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
    var r26: f32;
    var r27: i32;
    var r28: i32;
    var r29: i32;
    var r30: i32;
    var r31: i32;
    var r32: i32;
    var r33: i32;
    var r34: f32;
    var r35: f32;
    var r36: f32;
    var r37: f32;
    var r38: f32;
    var r39: i32;
    var r40: i32;
    var r41: i32;
    var r42: i32;
    var r43: i32;
    var r44: f32;
    var r45: i32;
    var r46: f32;
    var r47: i32;
    var r48: i32;
    var r49: f32;
    var r50: i32;
    var r51: f32;
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
    r10 = r8 * 128i;
    r11 = r9 * 128i;
    r12 = 0.0f;
    r13 = 0.0f;
    r14 = 0.0f;
    r15 = 0.0f;
    for (r16 = 0i; r16 < 128i; r16 = r16 + 8i) {
        r17 = r10 + r16;
        r18 = r11 + r16;
        r19 = r1 / 8i;
        r20 = r1 % 8i;
        r21 = r19 * 128i;
        r22 = r17 + r21;
        r23 = r22 + r20;
        r24 = r19 * 8i;
        r25 = r24 + r20;
        r26 = b0_add_158[r23];
        sh0[r25] = r26;
        r27 = r1 / 32i;
        r28 = r1 % 32i;
        r29 = r28 * 128i;
        r30 = r18 + r27;
        r31 = r30 + r29;
        r32 = r27 * 32i;
        r33 = r32 + r28;
        r34 = b1_h_0_attn_proj_weight[r31];
        sh1[r33] = r34;
        workgroupBarrier();
        r35 = r12;
        r36 = r13;
        r37 = r14;
        r38 = r15;
        r39 = r2 * 8i;
        r40 = r39 + 128i;
        r41 = r3 + 16i;
        for (r42 = 0i; r42 < 8i; r42 = r42 + 1i) {
            r43 = r39 + r42;
            r44 = sh0[r43];
            r45 = r40 + r42;
            r46 = sh0[r45];
            r47 = r42 * 32i;
            r48 = r47 + r3;
            r49 = sh1[r48];
            r50 = r47 + r41;
            r51 = sh1[r50];
            r35 = fma(r44, r49, r35);
            r36 = fma(r44, r51, r36);
            r37 = fma(r46, r49, r37);
            r38 = fma(r46, r51, r38);
        }
        workgroupBarrier();
        r12 = r35;
        r13 = r36;
        r14 = r37;
        r15 = r38;
    }
    r52 = r10 + r9;
    r53 = r2 * 128i;
    r54 = r52 + r53;
    r55 = r54 + r3;
    r56 = r55 + 16i;
    r57 = r55 + 2048i;
    r58 = r55 + 2064i;
    b2_matmul_160[r55] = r12;
    b2_matmul_160[r56] = r13;
    b2_matmul_160[r57] = r14;
    b2_matmul_160[r58] = r15;
}
