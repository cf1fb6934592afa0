// Tessera kernel `copy_5` (generated; do not edit).
// grid [1, 1024, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_attention_24: array<f32>; // attention_24: f32[32768]
@group(0) @binding(1) var<storage, read_write> b1_permute_25: array<f32>; // permute_25: f32[32768]

@compute @workgroup_size(256)
fn copy_5(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
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
    var r11: i32;
    var r12: i32;
    var r13: i32;
    var r14: i32;
    var r15: i32;
    var r16: i32;
    var r17: i32;
    var r18: bool;
    var r19: f32;
    var r20: i32;
    var r21: bool;
    r0 = lid.x;
    r1 = i32(r0);
    r2 = wid.y;
    r3 = i32(r2);
    r4 = r3 % 4i;
    r5 = r3 / 4i;
    r6 = r5 % 64i;
    r7 = r5 / 64i;
    r8 = r7 * 8192i;
    r9 = r6 * 128i;
    r10 = r8 + r9;
    r11 = r4 * 32i;
    r12 = r10 + r11;
    r13 = r6 * 32i;
    r14 = r8 + r13;
    r15 = r4 * 2048i;
    r16 = r14 + r15;
    r17 = r16 + r1;
    r18 = r1 < 32i;
    if (r18) {
        r19 = b0_attention_24[r17];
    } else {
        r19 = 0.0f;
    }
    r20 = r12 + r1;
    r21 = r1 < 32i;
    if (r21) {
        b1_permute_25[r20] = r19;
    }
}
