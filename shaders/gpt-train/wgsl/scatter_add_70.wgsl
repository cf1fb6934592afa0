// Tessera kernel `scatter_add_70` (generated; do not edit).
// grid [1, 65, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_add_213: array<f32>; // add_213: f32[32768]
@group(0) @binding(1) var<storage, read> b1_tokens: array<i32>; // tokens: i32[256]
@group(0) @binding(2) var<storage, read_write> b2_scatter_add_216: array<f32>; // scatter_add_216: f32[8320]

@compute @workgroup_size(256)
fn scatter_add_70(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
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
    var r11: i32;
    var r12: i32;
    var r13: i32;
    var r14: i32;
    var r15: i32;
    var r16: bool;
    var r17: f32;
    var r18: f32;
    var r19: i32;
    var r20: i32;
    var r21: bool;
    r0 = lid.x;
    r1 = i32(r0);
    r2 = wid.y;
    r3 = i32(r2);
    r4 = 0.0f;
    for (r5 = 0i; r5 < 256i; r5 = r5 + 1i) {
        r6 = b1_tokens[r5];
        r7 = r6 - r3;
        r8 = 0i - r7;
        r9 = max(r7, r8);
        r10 = min(r9, 1i);
        r11 = 1i - r10;
        r12 = 128i * r11;
        r13 = r5 * 128i;
        r14 = r13 + r1;
        r15 = min(r12, 128i);
        r16 = r1 < r15;
        if (r16) {
            r17 = b0_add_213[r14];
        } else {
            r17 = 0.0f;
        }
        r18 = r4 + r17;
        r4 = r18;
    }
    r19 = r3 * 128i;
    r20 = r19 + r1;
    r21 = r1 < 128i;
    if (r21) {
        b2_scatter_add_216[r20] = r4;
    }
}
