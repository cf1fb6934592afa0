// Tessera kernel `add_1` (generated; do not edit).
// grid [32, 4, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_gather_2: array<f32>; // gather_2: f32[32768]
@group(0) @binding(1) var<storage, read> b1_wpe_weight: array<f32>; // wpe.weight: f32[8192]
@group(0) @binding(2) var<storage, read_write> b2_add_5: array<f32>; // add_5: f32[32768]

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
    var r11: bool;
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
    r4 = wid.y;
    r5 = i32(r4);
    r6 = r3 * 256i;
    r7 = 8192i - r6;
    r8 = r5 * 8192i;
    r9 = r8 + r6;
    r10 = r9 + r1;
    r11 = r1 < r7;
    if (r11) {
        r12 = b0_gather_2[r10];
    } else {
        r12 = 0.0f;
    }
    r13 = r6 + r1;
    r14 = r1 < r7;
    if (r14) {
        r15 = b1_wpe_weight[r13];
    } else {
        r15 = 0.0f;
    }
    r16 = r12 + r15;
    r17 = r9 + r1;
    r18 = r1 < r7;
    if (r18) {
        b2_add_5[r17] = r16;
    }
}
