// Tessera kernel `scatter_ranks_70` (generated; do not edit).
// grid [1, 1, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_tokens: array<i32>; // tokens: i32[256]
@group(0) @binding(1) var<storage, read_write> b1_scatter_add_216_ranks: array<i32>; // scatter_add_216_ranks: i32[256]

@compute @workgroup_size(256)
fn scatter_ranks_70(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    var r0: u32;
    var r1: i32;
    var r2: f32;
    var r3: f32;
    var r4: i32;
    var r5: i32;
    var r6: i32;
    var r7: i32;
    var r8: f32;
    var r9: f32;
    var r10: f32;
    var r11: f32;
    var r12: f32;
    var r13: f32;
    var r14: f32;
    var r15: f32;
    var r16: f32;
    var r17: f32;
    var r18: f32;
    var r19: i32;
    var r20: i32;
    var r21: i32;
    var r22: i32;
    var r23: i32;
    var r24: i32;
    var r25: i32;
    var r26: i32;
    var r27: i32;
    var r28: i32;
    var r29: i32;
    var r30: f32;
    var r31: f32;
    var r32: f32;
    var r33: f32;
    var r34: f32;
    var r35: f32;
    var r36: i32;
    var r37: i32;
    var r38: i32;
    var r39: i32;
    var r40: f32;
    var r41: f32;
    var r42: f32;
    var r43: f32;
    var r44: f32;
    var r45: f32;
    var r46: f32;
    var r47: f32;
    var r48: f32;
    var r49: f32;
    var r50: i32;
    r0 = lid.x;
    r1 = i32(r0);
    r2 = f32(r1);
    r3 = 0.0f;
    for (r4 = 0i; r4 < 256i; r4 = r4 + 1i) {
        r5 = b0_tokens[r4];
        r6 = min(r5, 65i);
        r7 = max(r6, (-1i));
        r8 = f32(r7);
        r9 = f32(r4);
        r10 = r2 - r9;
        r11 = -(r10);
        r12 = max(r10, r11);
        r13 = max(r12, 0.0f);
        r14 = min(r13, 1.0f);
        r15 = 1.0f - r14;
        r16 = r15 * r8;
        r17 = r3 + r16;
        r3 = r17;
    }
    r18 = 0.0f;
    for (r19 = 0i; r19 < 0i; r19 = r19 + 1i) {
        r20 = r19 + 1i;
        r21 = max(r20, 0i);
        r22 = min(r21, 1i);
        r23 = r22 * 256i;
        r24 = r19 + r23;
        r25 = b0_tokens[r24];
        r26 = min(r25, 65i);
        r27 = max(r26, (-1i));
        r28 = r27 + r22;
        r29 = r28 - 1i;
        r30 = f32(r29);
        r31 = r3 - r30;
        r32 = max(r31, 0.0f);
        r33 = min(r32, 1.0f);
        r34 = r18 + r33;
        r18 = r34;
    }
    r35 = r18;
    for (r36 = 0i; r36 < 256i; r36 = r36 + 1i) {
        r37 = b0_tokens[r36];
        r38 = min(r37, 65i);
        r39 = max(r38, (-1i));
        r40 = f32(r39);
        r41 = f32(r36);
        r42 = r2 - r41;
        r43 = max(r42, 0.0f);
        r44 = min(r43, 1.0f);
        r45 = r3 + r44;
        r46 = r45 - r40;
        r47 = max(r46, 0.0f);
        r48 = min(r47, 1.0f);
        r49 = r35 + r48;
        r35 = r49;
    }
    r50 = i32(r35);
    b1_scatter_add_216_ranks[r1] = r50;
}
