// Tessera kernel `reduce_sum_56` (generated; do not edit).
// grid [384, 1, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_concat_183: array<f32>; // concat_183: f32[98304]
@group(0) @binding(1) var<storage, read_write> b1_grad_h_0_attn_qkv_bias: array<f32>; // grad/h.0.attn.qkv.bias: f32[384]
var<workgroup> sh0: array<f32, 256>;

@compute @workgroup_size(256)
fn reduce_sum_56(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    var r0: u32;
    var r1: i32;
    var r2: u32;
    var r3: i32;
    var r4: f32;
    var r5: i32;
    var r6: i32;
    var r7: i32;
    var r8: i32;
    var r9: i32;
    var r10: i32;
    var r11: bool;
    var r12: f32;
    var r13: f32;
    var r14: bool;
    var r15: bool;
    var r16: f32;
    var r17: i32;
    var r18: f32;
    var r19: f32;
    var r20: bool;
    var r21: f32;
    var r22: i32;
    var r23: f32;
    var r24: f32;
    var r25: bool;
    var r26: f32;
    var r27: i32;
    var r28: f32;
    var r29: f32;
    var r30: bool;
    var r31: f32;
    var r32: i32;
    var r33: f32;
    var r34: f32;
    var r35: bool;
    var r36: f32;
    var r37: i32;
    var r38: f32;
    var r39: f32;
    var r40: bool;
    var r41: f32;
    var r42: i32;
    var r43: f32;
    var r44: f32;
    var r45: bool;
    var r46: f32;
    var r47: i32;
    var r48: f32;
    var r49: f32;
    var r50: bool;
    var r51: f32;
    var r52: i32;
    var r53: f32;
    var r54: f32;
    var r55: f32;
    var r56: bool;
    r0 = lid.x;
    r1 = i32(r0);
    r2 = wid.x;
    r3 = i32(r2);
    r4 = 0.0f;
    for (r5 = 0i; r5 < 256i; r5 = r5 + 256i) {
        r6 = 256i - r5;
        r7 = r5 * 384i;
        r8 = r3 + r7;
        r9 = r1 * 384i;
        r10 = r8 + r9;
        r11 = r1 < r6;
        if (r11) {
            r12 = b0_concat_183[r10];
        } else {
            r12 = 0.0f;
        }
        r13 = r4 + r12;
        r4 = r13;
    }
    r14 = r1 < 256i;
    if (r14) {
        sh0[r1] = r4;
    }
    workgroupBarrier();
    r15 = r1 < 128i;
    if (r15) {
        r16 = sh0[r1];
        r17 = r1 + 128i;
        r18 = sh0[r17];
        r19 = r16 + r18;
        sh0[r1] = r19;
    }
    workgroupBarrier();
    r20 = r1 < 64i;
    if (r20) {
        r21 = sh0[r1];
        r22 = r1 + 64i;
        r23 = sh0[r22];
        r24 = r21 + r23;
        sh0[r1] = r24;
    }
    workgroupBarrier();
    r25 = r1 < 32i;
    if (r25) {
        r26 = sh0[r1];
        r27 = r1 + 32i;
        r28 = sh0[r27];
        r29 = r26 + r28;
        sh0[r1] = r29;
    }
    workgroupBarrier();
    r30 = r1 < 16i;
    if (r30) {
        r31 = sh0[r1];
        r32 = r1 + 16i;
        r33 = sh0[r32];
        r34 = r31 + r33;
        sh0[r1] = r34;
    }
    workgroupBarrier();
    r35 = r1 < 8i;
    if (r35) {
        r36 = sh0[r1];
        r37 = r1 + 8i;
        r38 = sh0[r37];
        r39 = r36 + r38;
        sh0[r1] = r39;
    }
    workgroupBarrier();
    r40 = r1 < 4i;
    if (r40) {
        r41 = sh0[r1];
        r42 = r1 + 4i;
        r43 = sh0[r42];
        r44 = r41 + r43;
        sh0[r1] = r44;
    }
    workgroupBarrier();
    r45 = r1 < 2i;
    if (r45) {
        r46 = sh0[r1];
        r47 = r1 + 2i;
        r48 = sh0[r47];
        r49 = r46 + r48;
        sh0[r1] = r49;
    }
    workgroupBarrier();
    r50 = r1 < 1i;
    if (r50) {
        r51 = sh0[r1];
        r52 = r1 + 1i;
        r53 = sh0[r52];
        r54 = r51 + r53;
        sh0[r1] = r54;
    }
    workgroupBarrier();
    r55 = sh0[0i];
    workgroupBarrier();
    r56 = r1 < 1i;
    if (r56) {
        b1_grad_h_0_attn_qkv_bias[r3] = r55;
    }
}
