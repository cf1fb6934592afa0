// Tessera kernel `scatter_order_71` (generated; do not edit).
// grid [1, 1, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_scatter_add_216_ranks: array<i32>; // scatter_add_216_ranks: i32[256]
@group(0) @binding(1) var<storage, read_write> b1_scatter_add_216_order: array<i32>; // scatter_add_216_order: i32[256]

@compute @workgroup_size(256)
fn scatter_order_71(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    var r0: u32;
    var r1: i32;
    var r2: f32;
    var r3: f32;
    var r4: i32;
    var r5: i32;
    var r6: f32;
    var r7: f32;
    var r8: f32;
    var r9: f32;
    var r10: f32;
    var r11: f32;
    var r12: f32;
    var r13: f32;
    var r14: f32;
    var r15: i32;
    r0 = lid.x;
    r1 = i32(r0);
    r2 = f32(r1);
    r3 = 0.0f;
    for (r4 = 0i; r4 < 256i; r4 = r4 + 1i) {
        r5 = b0_scatter_add_216_ranks[r4];
        r6 = f32(r5);
        r7 = r2 - r6;
        r8 = -(r7);
        r9 = max(r7, r8);
        r10 = 1.0f - r9;
        r11 = max(r10, 0.0f);
        r12 = f32(r4);
        r13 = r11 * r12;
        r14 = r3 + r13;
        r3 = r14;
    }
    r15 = i32(r3);
    b1_scatter_add_216_order[r1] = r15;
}
