// Tessera kernel `reduce_sum_max_58` (generated; do not edit).
// grid [2, 1, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_cast_305: array<f32>; // cast_305: f32[64]
@group(0) @binding(1) var<storage, read_write> b1_max_312: array<f32>; // max_312: f32[2]
var<workgroup> sh0: array<f32, 256>;

@compute @workgroup_size(256)
fn reduce_sum_max_58(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    var r0: u32;
    var r1: i32;
    var r2: u32;
    var r3: i32;
    var r4: i32;
    var r5: f32;
    var r6: i32;
    var r7: i32;
    var r8: i32;
    var r9: i32;
    var r10: i32;
    var r11: bool;
    var r12: f32;
    var r13: f32;
    var r14: bool;
    var r15: f32;
    var r16: bool;
    var r17: bool;
    var r18: f32;
    var r19: i32;
    var r20: f32;
    var r21: f32;
    var r22: bool;
    var r23: f32;
    var r24: i32;
    var r25: f32;
    var r26: f32;
    var r27: bool;
    var r28: f32;
    var r29: i32;
    var r30: f32;
    var r31: f32;
    var r32: bool;
    var r33: f32;
    var r34: i32;
    var r35: f32;
    var r36: f32;
    var r37: bool;
    var r38: f32;
    var r39: i32;
    var r40: f32;
    var r41: f32;
    var r42: f32;
    var r43: f32;
    var r44: bool;
    r0 = lid.x;
    r1 = i32(r0);
    r2 = wid.x;
    r3 = i32(r2);
    r4 = r3 * 32i;
    r5 = 0.0f;
    for (r6 = 0i; r6 < 32i; r6 = r6 + 32i) {
        r7 = 32i - r6;
        r8 = r4 + r6;
        r9 = r8 + r1;
        r10 = min(r7, 32i);
        r11 = r1 < r10;
        if (r11) {
            r12 = b0_cast_305[r9];
        } else {
            r12 = 0.0f;
        }
        r13 = r5 + r12;
        r5 = r13;
    }
    r14 = r1 < 32i;
    r15 = select(0.0f, r5, r14);
    r16 = r1 < 32i;
    if (r16) {
        sh0[r1] = r15;
    }
    workgroupBarrier();
    r17 = r1 < 16i;
    if (r17) {
        r18 = sh0[r1];
        r19 = r1 + 16i;
        r20 = sh0[r19];
        r21 = r18 + r20;
        sh0[r1] = r21;
    }
    workgroupBarrier();
    r22 = r1 < 8i;
    if (r22) {
        r23 = sh0[r1];
        r24 = r1 + 8i;
        r25 = sh0[r24];
        r26 = r23 + r25;
        sh0[r1] = r26;
    }
    workgroupBarrier();
    r27 = r1 < 4i;
    if (r27) {
        r28 = sh0[r1];
        r29 = r1 + 4i;
        r30 = sh0[r29];
        r31 = r28 + r30;
        sh0[r1] = r31;
    }
    workgroupBarrier();
    r32 = r1 < 2i;
    if (r32) {
        r33 = sh0[r1];
        r34 = r1 + 2i;
        r35 = sh0[r34];
        r36 = r33 + r35;
        sh0[r1] = r36;
    }
    workgroupBarrier();
    r37 = r1 < 1i;
    if (r37) {
        r38 = sh0[r1];
        r39 = r1 + 1i;
        r40 = sh0[r39];
        r41 = r38 + r40;
        sh0[r1] = r41;
    }
    workgroupBarrier();
    r42 = sh0[0i];
    workgroupBarrier();
    r43 = max(r42, 1e-9f);
    r44 = r1 < 1i;
    if (r44) {
        b1_max_312[r3] = r43;
    }
}
