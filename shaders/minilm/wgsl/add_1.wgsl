// Tessera kernel `add_1` (generated; do not edit).
// grid [2, 64, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_gather_103: array<f32>; // gather_103: f32[24576]
@group(0) @binding(1) var<storage, read> b1_embeddings_position_embeddings_weight: array<f32>; // embeddings.position_embeddings.weight: f32[196608]
@group(0) @binding(2) var<storage, read> b2_embeddings_token_type_embeddings_weight: array<f32>; // embeddings.token_type_embeddings.weight: f32[768]
@group(0) @binding(3) var<storage, read_write> b3_add_109: array<f32>; // add_109: f32[24576]

@compute @workgroup_size(256)
fn add_1(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
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
    var r16: bool;
    var r17: f32;
    var r18: i32;
    var r19: bool;
    var r20: f32;
    var r21: f32;
    var r22: i32;
    var r23: bool;
    var r24: f32;
    var r25: f32;
    var r26: i32;
    var r27: bool;
    r0 = lid.x;
    r1 = i32(r0);
    r2 = wid.x;
    r3 = i32(r2);
    r4 = wid.y;
    r5 = i32(r4);
    r6 = r3 * 256i;
    r7 = r5 % 32i;
    r8 = r5 / 32i;
    r9 = 384i - r6;
    r10 = r8 * 12288i;
    r11 = r7 * 384i;
    r12 = r10 + r11;
    r13 = r12 + r6;
    r14 = r11 + r6;
    r15 = r13 + r1;
    r16 = r1 < r9;
    if (r16) {
        r17 = b0_gather_103[r15];
    } else {
        r17 = 0.0f;
    }
    r18 = r14 + r1;
    r19 = r1 < r9;
    if (r19) {
        r20 = b1_embeddings_position_embeddings_weight[r18];
    } else {
        r20 = 0.0f;
    }
    r21 = r17 + r20;
    r22 = r6 + r1;
    r23 = r1 < r9;
    if (r23) {
        r24 = b2_embeddings_token_type_embeddings_weight[r22];
    } else {
        r24 = 0.0f;
    }
    r25 = r21 + r24;
    r26 = r13 + r1;
    r27 = r1 < r9;
    if (r27) {
        b3_add_109[r26] = r25;
    }
}
