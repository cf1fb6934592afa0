// Tessera kernel `add_61` (generated; do not edit).
// grid [384, 1, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_concat_171: array<f32>; // concat_171: f32[98304]
@group(0) @binding(1) var<storage, read> b1_concat_176: array<f32>; // concat_176: f32[98304]
@group(0) @binding(2) var<storage, read> b2_concat_181: array<f32>; // concat_181: f32[98304]
@group(0) @binding(3) var<storage, read_write> b3_add_182: array<f32>; // add_182: f32[98304]

@compute @workgroup_size(256)
fn add_61(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    var r0: u32;
    var r1: i32;
    var r2: u32;
    var r3: i32;
    var r4: i32;
    var r5: i32;
    var r6: i32;
    var r7: bool;
    var r8: f32;
    var r9: i32;
    var r10: bool;
    var r11: f32;
    var r12: f32;
    var r13: i32;
    var r14: bool;
    var r15: f32;
    var r16: f32;
    var r17: i32;
    var r18: bool;
    r0 = lid.x;
    r1 = i32(r0);
    r2 = wid.x;
    r3 = i32(r2);
    r4 = r3 * 256i;
    r5 = 98304i - r4;
    r6 = r4 + r1;
    r7 = r1 < r5;
    if (r7) {
        r8 = b0_concat_171[r6];
    } else {
        r8 = 0.0f;
    }
    r9 = r4 + r1;
    r10 = r1 < r5;
    if (r10) {
        r11 = b1_concat_176[r9];
    } else {
        r11 = 0.0f;
    }
    r12 = r8 + r11;
    r13 = r4 + r1;
    r14 = r1 < r5;
    if (r14) {
        r15 = b2_concat_181[r13];
    } else {
        r15 = 0.0f;
    }
    r16 = r12 + r15;
    r17 = r4 + r1;
    r18 = r1 < r5;
    if (r18) {
        b3_add_182[r17] = r16;
    }
}
