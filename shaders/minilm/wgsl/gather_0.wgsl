// Tessera kernel `gather_0` (generated; do not edit).
// grid [2, 64, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_embeddings_word_embeddings_weight: array<f32>; // embeddings.word_embeddings.weight: f32[11720448]
@group(0) @binding(1) var<storage, read> b1_input_ids: array<i32>; // input_ids: i32[64]
@group(0) @binding(2) var<storage, read_write> b2_gather_103: array<f32>; // gather_103: f32[24576]

@compute @workgroup_size(256)
fn gather_0(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
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
    r0 = lid.x;
    r1 = i32(r0);
    r2 = wid.x;
    r3 = i32(r2);
    r4 = wid.y;
    r5 = i32(r4);
    r6 = r3 * 256i;
    r7 = b1_input_ids[r5];
    r8 = min(r7, 30521i);
    r9 = max(r8, 0i);
    r10 = r9 * 384i;
    r11 = r10 + r6;
    r12 = r5 * 384i;
    r13 = r12 + r6;
    r14 = 384i - r6;
    r15 = r11 + r1;
    r16 = r1 < r14;
    if (r16) {
        r17 = b0_embeddings_word_embeddings_weight[r15];
    } else {
        r17 = 0.0f;
    }
    r18 = r13 + r1;
    r19 = r1 < r14;
    if (r19) {
        b2_gather_103[r18] = r17;
    }
}
