// Tessera kernel `concat_55` (generated; do not edit).
// grid [2, 256, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_permute_179: array<f32>; // permute_179: f32[32768]
@group(0) @binding(1) var<storage, read> b1_permute_172: array<f32>; // permute_172: f32[32768]
@group(0) @binding(2) var<storage, read> b2_permute_168: array<f32>; // permute_168: f32[32768]
@group(0) @binding(3) var<storage, read_write> b3_concat_183: array<f32>; // concat_183: f32[98304]

@compute @workgroup_size(256)
fn concat_55(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
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
    var r44: bool;
    var r45: f32;
    var r46: i32;
    var r47: bool;
    var r48: i32;
    var r49: i32;
    var r50: i32;
    var r51: i32;
    var r52: i32;
    var r53: i32;
    var r54: i32;
    var r55: i32;
    var r56: i32;
    var r57: i32;
    var r58: i32;
    var r59: i32;
    var r60: i32;
    var r61: i32;
    var r62: i32;
    var r63: i32;
    var r64: bool;
    var r65: f32;
    var r66: i32;
    var r67: bool;
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
        r25 = b0_permute_179[r23];
    } else {
        r25 = 0.0f;
    }
    r26 = r22 + r1;
    r27 = r1 < r15;
    if (r27) {
        b3_concat_183[r26] = r25;
    }
    r28 = 128i - r6;
    r29 = min(r28, 256i);
    r30 = max(r29, 0i);
    r31 = r6 + r30;
    r32 = r31 - 128i;
    r33 = 128i - r32;
    r34 = 256i - r30;
    r35 = min(r33, r34);
    r36 = max(r35, 0i);
    r37 = min(r32, 127i);
    r38 = max(r37, 0i);
    r39 = min(r31, 383i);
    r40 = max(r39, 0i);
    r41 = r20 + r38;
    r42 = r7 + r40;
    r43 = r41 + r1;
    r44 = r1 < r36;
    if (r44) {
        r45 = b1_permute_172[r43];
    } else {
        r45 = 0.0f;
    }
    r46 = r42 + r1;
    r47 = r1 < r36;
    if (r47) {
        b3_concat_183[r46] = r45;
    }
    r48 = 256i - r6;
    r49 = min(r48, 256i);
    r50 = max(r49, 0i);
    r51 = r6 + r50;
    r52 = r51 - 256i;
    r53 = 128i - r52;
    r54 = 256i - r50;
    r55 = min(r53, r54);
    r56 = max(r55, 0i);
    r57 = min(r52, 127i);
    r58 = max(r57, 0i);
    r59 = min(r51, 383i);
    r60 = max(r59, 0i);
    r61 = r20 + r58;
    r62 = r7 + r60;
    r63 = r61 + r1;
    r64 = r1 < r56;
    if (r64) {
        r65 = b2_permute_168[r63];
    } else {
        r65 = 0.0f;
    }
    r66 = r62 + r1;
    r67 = r1 < r56;
    if (r67) {
        b3_concat_183[r66] = r65;
    }
}
