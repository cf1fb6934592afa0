// Tessera kernel `reduce_mean_22` (generated; do not edit).
// grid [256, 1, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_add_47: array<f32>; // add_47: f32[32768]
@group(0) @binding(1) var<storage, read_write> b1_reduce_mean_79: array<f32>; // reduce_mean_79: f32[256]
var<workgroup> sh0: array<f32, 256>;

@compute @workgroup_size(256)
fn reduce_mean_22(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
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
    var r42: bool;
    var r43: f32;
    var r44: i32;
    var r45: f32;
    var r46: f32;
    var r47: bool;
    var r48: f32;
    var r49: i32;
    var r50: f32;
    var r51: f32;
    var r52: f32;
    var r53: f32;
    var r54: bool;
    r0 = lid.x;
    r1 = i32(r0);
    r2 = wid.x;
    r3 = i32(r2);
    r4 = r3 * 128i;
    r5 = 0.0f;
    for (r6 = 0i; r6 < 128i; r6 = r6 + 128i) {
        r7 = 128i - r6;
        r8 = r4 + r6;
        r9 = r8 + r1;
        r10 = min(r7, 128i);
        r11 = r1 < r10;
        if (r11) {
            r12 = b0_add_47[r9];
        } else {
            r12 = 0.0f;
        }
        r13 = r5 + r12;
        r5 = r13;
    }
    r14 = r1 < 128i;
    r15 = select(0.0f, r5, r14);
    r16 = r1 < 128i;
    if (r16) {
        sh0[r1] = r15;
    }
    workgroupBarrier();
    r17 = r1 < 64i;
    if (r17) {
        r18 = sh0[r1];
        r19 = r1 + 64i;
        r20 = sh0[r19];
        r21 = r18 + r20;
        sh0[r1] = r21;
    }
    workgroupBarrier();
    r22 = r1 < 32i;
    if (r22) {
        r23 = sh0[r1];
        r24 = r1 + 32i;
        r25 = sh0[r24];
        r26 = r23 + r25;
        sh0[r1] = r26;
    }
    workgroupBarrier();
    r27 = r1 < 16i;
    if (r27) {
        r28 = sh0[r1];
        r29 = r1 + 16i;
        r30 = sh0[r29];
        r31 = r28 + r30;
        sh0[r1] = r31;
    }
    workgroupBarrier();
    r32 = r1 < 8i;
    if (r32) {
        r33 = sh0[r1];
        r34 = r1 + 8i;
        r35 = sh0[r34];
        r36 = r33 + r35;
        sh0[r1] = r36;
    }
    workgroupBarrier();
    r37 = r1 < 4i;
    if (r37) {
        r38 = sh0[r1];
        r39 = r1 + 4i;
        r40 = sh0[r39];
        r41 = r38 + r40;
        sh0[r1] = r41;
    }
    workgroupBarrier();
    r42 = r1 < 2i;
    if (r42) {
        r43 = sh0[r1];
        r44 = r1 + 2i;
        r45 = sh0[r44];
        r46 = r43 + r45;
        sh0[r1] = r46;
    }
    workgroupBarrier();
    r47 = r1 < 1i;
    if (r47) {
        r48 = sh0[r1];
        r49 = r1 + 1i;
        r50 = sh0[r49];
        r51 = r48 + r50;
        sh0[r1] = r51;
    }
    workgroupBarrier();
    r52 = sh0[0i];
    workgroupBarrier();
    r53 = r52 * 0.0078125f;
    r54 = r1 < 1i;
    if (r54) {
        b1_reduce_mean_79[r3] = r53;
    }
}
