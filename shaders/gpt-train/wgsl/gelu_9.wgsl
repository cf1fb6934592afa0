// Tessera kernel `gelu_9` (generated; do not edit).
// grid [512, 1, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_add_40: array<f32>; // add_40: f32[131072]
@group(0) @binding(1) var<storage, read_write> b1_gelu_41: array<f32>; // gelu_41: f32[131072]

@compute @workgroup_size(256)
fn gelu_9(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    var r0: u32;
    var r1: i32;
    var r2: u32;
    var r3: i32;
    var r4: i32;
    var r5: i32;
    var r6: i32;
    var r7: bool;
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
    var r19: f32;
    var r20: f32;
    var r21: f32;
    var r22: f32;
    var r23: f32;
    var r24: f32;
    var r25: f32;
    var r26: f32;
    var r27: f32;
    var r28: f32;
    var r29: f32;
    var r30: f32;
    var r31: f32;
    var r32: f32;
    var r33: f32;
    var r34: f32;
    var r35: f32;
    var r36: f32;
    var r37: f32;
    var r38: f32;
    var r39: f32;
    var r40: f32;
    var r41: f32;
    var r42: bool;
    var r43: f32;
    var r44: bool;
    var r45: f32;
    var r46: f32;
    var r47: f32;
    var r48: f32;
    var r49: f32;
    var r50: i32;
    var r51: bool;
    r0 = lid.x;
    r1 = i32(r0);
    r2 = wid.x;
    r3 = i32(r2);
    r4 = r3 * 256i;
    r5 = 131072i - r4;
    r6 = r4 + r1;
    r7 = r1 < r5;
    if (r7) {
        r8 = b0_add_40[r6];
    } else {
        r8 = 0.0f;
    }
    r9 = r8 * 0.70710677f;
    r10 = -(r9);
    r11 = max(r9, r10);
    r12 = r11 * r11;
    r13 = 0.000120553326f * r12;
    r14 = r13 + (-0.0008548327f);
    r15 = r14 * r12;
    r16 = r15 + 0.005223978f;
    r17 = r16 * r12;
    r18 = r17 + (-0.026866172f);
    r19 = r18 * r12;
    r20 = r19 + 0.11283792f;
    r21 = r20 * r12;
    r22 = r21 + (-0.37612638f);
    r23 = r22 * r12;
    r24 = r23 + 1.1283792f;
    r25 = r24 * r11;
    r26 = r11 * 0.3275911f;
    r27 = r26 + 1.0f;
    r28 = 1.0f / r27;
    r29 = 1.0614054f * r28;
    r30 = r29 + (-1.4531521f);
    r31 = r30 * r28;
    r32 = r31 + 1.4214138f;
    r33 = r32 * r28;
    r34 = r33 + (-0.28449672f);
    r35 = r34 * r28;
    r36 = r35 + 0.2548296f;
    r37 = r36 * r28;
    r38 = -(r12);
    r39 = exp(r38);
    r40 = r37 * r39;
    r41 = 1.0f - r40;
    r42 = r11 < 0.5f;
    r43 = select(r41, r25, r42);
    r44 = r9 < 0.0f;
    r45 = -(r43);
    r46 = select(r43, r45, r44);
    r47 = r46 + 1.0f;
    r48 = r8 * r47;
    r49 = r48 * 0.5f;
    r50 = r4 + r1;
    r51 = r1 < r5;
    if (r51) {
        b1_gelu_41[r50] = r49;
    }
}
