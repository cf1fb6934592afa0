// Tessera kernel `gather_0` (generated; do not edit).
// grid [1, 256, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_wte_weight: array<f32>; // wte.weight: f32[8320]
@group(0) @binding(1) var<storage, read> b1_tokens: array<i32>; // tokens: i32[256]
@group(0) @binding(2) var<storage, read_write> b2_gather_2: array<f32>; // gather_2: f32[32768]

@compute @workgroup_size(256)
fn gather_0(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
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
    var r10: bool;
    var r11: f32;
    var r12: i32;
    var r13: bool;
    r0 = lid.x;
    r1 = i32(r0);
    r2 = wid.y;
    r3 = i32(r2);
    r4 = b1_tokens[r3];
    r5 = min(r4, 64i);
    r6 = max(r5, 0i);
    r7 = r6 * 128i;
    r8 = r3 * 128i;
    r9 = r7 + r1;
    r10 = r1 < 128i;
    if (r10) {
        r11 = b0_wte_weight[r9];
    } else {
        r11 = 0.0f;
    }
    r12 = r8 + r1;
    r13 = r1 < 128i;
    if (r13) {
        b2_gather_2[r12] = r11;
    }
}
