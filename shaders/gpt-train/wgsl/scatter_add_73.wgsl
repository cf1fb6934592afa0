// Tessera kernel `scatter_add_73` (generated; do not edit).
// grid [1, 65, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_add_213: array<f32>; // add_213: f32[32768]
@group(0) @binding(1) var<storage, read> b1_tokens: array<i32>; // tokens: i32[256]
@group(0) @binding(2) var<storage, read> b2_scatter_add_216_order: array<i32>; // scatter_add_216_order: i32[256]
@group(0) @binding(3) var<storage, read> b3_scatter_add_216_starts: array<i32>; // scatter_add_216_starts: i32[66]
@group(0) @binding(4) var<storage, read_write> b4_scatter_add_216: array<f32>; // scatter_add_216: f32[8320]

@compute @workgroup_size(256)
fn scatter_add_73(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
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
    var r11: f32;
    var r12: i32;
    var r13: i32;
    var r14: i32;
    var r15: i32;
    var r16: i32;
    var r17: i32;
    var r18: bool;
    var r19: f32;
    var r20: f32;
    var r21: i32;
    var r22: i32;
    var r23: bool;
    r0 = lid.x;
    r1 = i32(r0);
    r2 = wid.y;
    r3 = i32(r2);
    r4 = b3_scatter_add_216_starts[r3];
    r5 = min(r4, 256i);
    r6 = max(r5, 0i);
    r7 = r3 + 1i;
    r8 = b3_scatter_add_216_starts[r7];
    r9 = min(r8, 256i);
    r10 = max(r9, 0i);
    r11 = 0.0f;
    for (r12 = r6; r12 < r10; r12 = r12 + 1i) {
        r13 = b2_scatter_add_216_order[r12];
        r14 = min(r13, 255i);
        r15 = max(r14, 0i);
        r16 = r15 * 128i;
        r17 = r16 + r1;
        r18 = r1 < 128i;
        if (r18) {
            r19 = b0_add_213[r17];
        } else {
            r19 = 0.0f;
        }
        r20 = r11 + r19;
        r11 = r20;
    }
    r21 = r3 * 128i;
    r22 = r21 + r1;
    r23 = r1 < 128i;
    if (r23) {
        b4_scatter_add_216[r22] = r11;
    }
}
