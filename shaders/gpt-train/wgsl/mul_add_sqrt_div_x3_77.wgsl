// Tessera kernel `mul_add_sqrt_div_x3_77` (generated; do not edit).
// grid [1, 1, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_adamw_m_h_0_ln_1_weight: array<f32>; // adamw.m/h.0.ln_1.weight: f32[128]
@group(0) @binding(1) var<storage, read> b1_grad_h_0_ln_1_weight: array<f32>; // grad/h.0.ln_1.weight: f32[128]
@group(0) @binding(2) var<storage, read> b2_adamw_v_h_0_ln_1_weight: array<f32>; // adamw.v/h.0.ln_1.weight: f32[128]
@group(0) @binding(3) var<storage, read> b3_h_0_ln_1_weight: array<f32>; // h.0.ln_1.weight: f32[128]
@group(0) @binding(4) var<storage, read> b4_adamw_step: array<f32>; // adamw.step: f32[3]
@group(0) @binding(5) var<storage, read_write> b5_new_adamw_m_h_0_ln_1_weight: array<f32>; // new/adamw.m/h.0.ln_1.weight: f32[128]
@group(0) @binding(6) var<storage, read_write> b6_new_adamw_v_h_0_ln_1_weight: array<f32>; // new/adamw.v/h.0.ln_1.weight: f32[128]
@group(0) @binding(7) var<storage, read_write> b7_new_h_0_ln_1_weight: array<f32>; // new/h.0.ln_1.weight: f32[128]

@compute @workgroup_size(256)
fn mul_add_sqrt_div_x3_77(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    var r0: u32;
    var r1: i32;
    var r2: bool;
    var r3: f32;
    var r4: f32;
    var r5: bool;
    var r6: f32;
    var r7: f32;
    var r8: f32;
    var r9: bool;
    var r10: bool;
    var r11: f32;
    var r12: f32;
    var r13: f32;
    var r14: f32;
    var r15: f32;
    var r16: bool;
    var r17: bool;
    var r18: f32;
    var r19: bool;
    var r20: f32;
    var r21: f32;
    var r22: bool;
    var r23: f32;
    var r24: f32;
    var r25: f32;
    var r26: f32;
    var r27: f32;
    var r28: bool;
    var r29: f32;
    var r30: f32;
    var r31: f32;
    var r32: bool;
    r0 = lid.x;
    r1 = i32(r0);
    r2 = r1 < 128i;
    if (r2) {
        r3 = b0_adamw_m_h_0_ln_1_weight[r1];
    } else {
        r3 = 0.0f;
    }
    r4 = r3 * 0.9f;
    r5 = r1 < 128i;
    if (r5) {
        r6 = b1_grad_h_0_ln_1_weight[r1];
    } else {
        r6 = 0.0f;
    }
    r7 = r6 * 0.1f;
    r8 = r4 + r7;
    r9 = r1 < 128i;
    if (r9) {
        b5_new_adamw_m_h_0_ln_1_weight[r1] = r8;
    }
    r10 = r1 < 128i;
    if (r10) {
        r11 = b2_adamw_v_h_0_ln_1_weight[r1];
    } else {
        r11 = 0.0f;
    }
    r12 = r11 * 0.999f;
    r13 = r6 * r6;
    r14 = r13 * 0.001f;
    r15 = r12 + r14;
    r16 = r1 < 128i;
    if (r16) {
        b6_new_adamw_v_h_0_ln_1_weight[r1] = r15;
    }
    r17 = r1 < 128i;
    if (r17) {
        r18 = b3_h_0_ln_1_weight[r1];
    } else {
        r18 = 0.0f;
    }
    r19 = r1 < 128i;
    if (r19) {
        r20 = b4_adamw_step[1i];
    } else {
        r20 = 0.0f;
    }
    r21 = r8 * r20;
    r22 = r1 < 128i;
    if (r22) {
        r23 = b4_adamw_step[2i];
    } else {
        r23 = 0.0f;
    }
    r24 = r15 * r23;
    r25 = sqrt(r24);
    r26 = r25 + 1e-8f;
    r27 = r21 / r26;
    r28 = r1 < 128i;
    if (r28) {
        r29 = b4_adamw_step[0i];
    } else {
        r29 = 0.0f;
    }
    r30 = r27 * r29;
    r31 = r18 - r30;
    r32 = r1 < 128i;
    if (r32) {
        b7_new_h_0_ln_1_weight[r1] = r31;
    }
}
