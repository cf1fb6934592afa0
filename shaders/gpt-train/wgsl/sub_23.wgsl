// Tessera kernel `sub_23` (generated; do not edit).
// grid [1, 256, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_add_47: array<f32>; // add_47: f32[32768]
@group(0) @binding(1) var<storage, read> b1_reduce_mean_79: array<f32>; // reduce_mean_79: f32[256]
@group(0) @binding(2) var<storage, read_write> b2_sub_81: array<f32>; // sub_81: f32[32768]

@compute @workgroup_size(256)
fn sub_23(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    var r0: u32;
    var r1: i32;
    var r2: u32;
    var r3: i32;
    var r4: i32;
    var r5: i32;
    var r6: bool;
    var r7: f32;
    var r8: bool;
    var r9: f32;
    var r10: f32;
    var r11: i32;
    var r12: bool;
    r0 = lid.x;
    r1 = i32(r0);
    r2 = wid.y;
    r3 = i32(r2);
    r4 = r3 * 128i;
    r5 = r4 + r1;
    r6 = r1 < 128i;
    if (r6) {
        r7 = b0_add_47[r5];
    } else {
        r7 = 0.0f;
    }
    r8 = r1 < 128i;
    if (r8) {
        r9 = b1_reduce_mean_79[r3];
    } else {
        r9 = 0.0f;
    }
    r10 = r7 - r9;
    r11 = r4 + r1;
    r12 = r1 < 128i;
    if (r12) {
        b2_sub_81[r11] = r10;
    }
}
