// Tessera kernel `eq_select_16` (generated; do not edit).
// grid [1, 256, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_targets: array<i32>; // targets: i32[256]
@group(0) @binding(1) var<storage, read_write> b1_select_64: array<f32>; // select_64: f32[16640]

@compute @workgroup_size(256)
fn eq_select_16(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    var r0: u32;
    var r1: i32;
    var r2: u32;
    var r3: i32;
    var r4: i32;
    var r5: bool;
    var r6: i32;
    var r7: bool;
    var r8: f32;
    var r9: i32;
    var r10: bool;
    r0 = lid.x;
    r1 = i32(r0);
    r2 = wid.y;
    r3 = i32(r2);
    r4 = r3 * 65i;
    r5 = r1 < 65i;
    if (r5) {
        r6 = b0_targets[r3];
    } else {
        r6 = 0i;
    }
    r7 = r1 == r6;
    r8 = select(0.0f, 1.0f, r7);
    r9 = r4 + r1;
    r10 = r1 < 65i;
    if (r10) {
        b1_select_64[r9] = r8;
    }
}
