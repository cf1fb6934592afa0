// Tessera kernel `concat_60` (generated; do not edit).
// grid [2, 256, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_permute_178: array<f32>; // permute_178: f32[32768]
@group(0) @binding(1) var<storage, read> b1_constant_180: array<f32>; // constant_180: f32[65536]
@group(0) @binding(2) var<storage, read_write> b2_concat_181: array<f32>; // concat_181: f32[98304]

@compute @workgroup_size(256)
fn concat_60(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    var r0: u32;
    var r1: i32;
    var r2: u32;
    var r3: i32;
    var r4: u32;
    var r5: i32;
    var r6: i32;
    var r7: i32;
    var r8: i32;
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
    var r24: bool;
    var r25: f32;
    var r26: i32;
    var r27: bool;
    var r28: i32;
    var r29: i32;
    var r30: i32;
    var r31: i32;
    var r32: i32;
    var r33: i32;
    var r34: i32;
    var r35: i32;
    var r36: i32;
    var r37: i32;
    var r38: i32;
    var r39: i32;
    var r40: i32;
    var r41: i32;
    var r42: i32;
    var r43: i32;
    var r44: i32;
    var r45: bool;
    var r46: f32;
    var r47: i32;
    var r48: bool;
    r0 = lid.x;
    r1 = i32(r0);
    r2 = wid.x;
    r3 = i32(r2);
    r4 = wid.y;
    r5 = i32(r4);
    r6 = r3 * 256i;
    r7 = r5 * 384i;
    r8 = 0i - r6;
    r9 = min(r8, 256i);
    r10 = max(r9, 0i);
    r11 = r6 + r10;
    r12 = 128i - r11;
    r13 = 256i - r10;
    r14 = min(r12, r13);
    r15 = max(r14, 0i);
    r16 = min(r11, 127i);
    r17 = max(r16, 0i);
    r18 = min(r11, 383i);
    r19 = max(r18, 0i);
    r20 = r5 * 128i;
    r21 = r20 + r17;
    r22 = r7 + r19;
    r23 = r21 + r1;
    r24 = r1 < r15;
    if (r24) {
        r25 = b0_permute_178[r23];
    } else {
        r25 = 0.0f;
    }
    r26 = r22 + r1;
    r27 = r1 < r15;
    if (r27) {
        b2_concat_181[r26] = r25;
    }
    r28 = 128i - r6;
    r29 = min(r28, 256i);
    r30 = max(r29, 0i);
    r31 = r6 + r30;
    r32 = r31 - 128i;
    r33 = 256i - r32;
    r34 = 256i - r30;
    r35 = min(r33, r34);
    r36 = max(r35, 0i);
    r37 = min(r32, 255i);
    r38 = max(r37, 0i);
    r39 = min(r31, 383i);
    r40 = max(r39, 0i);
    r41 = r5 * 256i;
    r42 = r41 + r38;
    r43 = r7 + r40;
    r44 = r42 + r1;
    r45 = r1 < r36;
    if (r45) {
        r46 = b1_constant_180[r44];
    } else {
        r46 = 0.0f;
    }
    r47 = r43 + r1;
    r48 = r1 < r36;
    if (r48) {
        b2_concat_181[r47] = r46;
    }
}
