// Tessera kernel `scatter_add_72` (generated; do not edit).
// grid [1, 65, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_add_213: array<f32>; // add_213: f32[32768]
@group(0) @binding(1) var<storage, read> b1_tokens: array<i32>; // tokens: i32[256]
@group(0) @binding(2) var<storage, read> b2_scatter_add_216_order: array<i32>; // scatter_add_216_order: i32[256]
@group(0) @binding(3) var<storage, read_write> b3_scatter_add_216: array<f32>; // scatter_add_216: f32[8320]

@compute @workgroup_size(256)
fn scatter_add_72(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    var r0: u32;
    var r1: i32;
    var r2: u32;
    var r3: i32;
    var r4: i32;
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
    var r24: i32;
    var r25: i32;
    var r26: i32;
    var r27: i32;
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
    var r45: i32;
    var r46: i32;
    var r47: i32;
    var r48: i32;
    var r49: i32;
    var r50: i32;
    var r51: i32;
    var r52: i32;
    var r53: i32;
    var r54: i32;
    var r55: i32;
    var r56: f32;
    var r57: i32;
    var r58: i32;
    var r59: i32;
    var r60: i32;
    var r61: i32;
    var r62: i32;
    var r63: bool;
    var r64: f32;
    var r65: f32;
    var r66: i32;
    var r67: i32;
    var r68: bool;
    r0 = lid.x;
    r1 = i32(r0);
    r2 = wid.y;
    r3 = i32(r2);
    r4 = r3 + 1i;
    r5 = 0i;
    r6 = 256i;
    r7 = 0i;
    r8 = 256i;
    for (r9 = 0i; r9 < 9i; r9 = r9 + 1i) {
        r10 = r6 - r5;
        r11 = min(r10, 1i);
        r12 = r5 + r6;
        r13 = r12 / 2i;
        r14 = min(r13, 255i);
        r15 = b2_scatter_add_216_order[r14];
        r16 = min(r15, 255i);
        r17 = max(r16, 0i);
        r18 = b1_tokens[r17];
        r19 = min(r18, 65i);
        r20 = max(r19, (-1i));
        r21 = r3 - r20;
        r22 = min(r21, 1i);
        r23 = max(r22, 0i);
        r24 = r11 * r23;
        r25 = r11 - r24;
        r26 = r13 + 1i;
        r27 = r26 - r5;
        r28 = r24 * r27;
        r29 = r5 + r28;
        r30 = r6 - r13;
        r31 = r25 * r30;
        r32 = r6 - r31;
        r33 = r8 - r7;
        r34 = min(r33, 1i);
        r35 = r7 + r8;
        r36 = r35 / 2i;
        r37 = min(r36, 255i);
        r38 = b2_scatter_add_216_order[r37];
        r39 = min(r38, 255i);
        r40 = max(r39, 0i);
        r41 = b1_tokens[r40];
        r42 = min(r41, 65i);
        r43 = max(r42, (-1i));
        r44 = r4 - r43;
        r45 = min(r44, 1i);
        r46 = max(r45, 0i);
        r47 = r34 * r46;
        r48 = r34 - r47;
        r49 = r36 + 1i;
        r50 = r49 - r7;
        r51 = r47 * r50;
        r52 = r7 + r51;
        r53 = r8 - r36;
        r54 = r48 * r53;
        r55 = r8 - r54;
        r5 = r29;
        r6 = r32;
        r7 = r52;
        r8 = r55;
    }
    r56 = 0.0f;
    for (r57 = r5; r57 < r7; r57 = r57 + 1i) {
        r58 = b2_scatter_add_216_order[r57];
        r59 = min(r58, 255i);
        r60 = max(r59, 0i);
        r61 = r60 * 128i;
        r62 = r61 + r1;
        r63 = r1 < 128i;
        if (r63) {
            r64 = b0_add_213[r62];
        } else {
            r64 = 0.0f;
        }
        r65 = r56 + r64;
        r56 = r65;
    }
    r66 = r3 * 128i;
    r67 = r66 + r1;
    r68 = r1 < 128i;
    if (r68) {
        b3_scatter_add_216[r67] = r56;
    }
}
