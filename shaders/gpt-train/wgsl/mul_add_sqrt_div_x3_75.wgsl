// Tessera kernel `mul_add_sqrt_div_x3_75` (generated; do not edit).
// grid [33, 1, 1] workgroups of 256 threads.

@group(0) @binding(0) var<storage, read> b0_adamw_m_wte_weight: array<f32>; // adamw.m/wte.weight: f32[8320]
@group(0) @binding(1) var<storage, read> b1_grad_wte_weight: array<f32>; // grad/wte.weight: f32[8320]
@group(0) @binding(2) var<storage, read> b2_adamw_v_wte_weight: array<f32>; // adamw.v/wte.weight: f32[8320]
@group(0) @binding(3) var<storage, read> b3_wte_weight: array<f32>; // wte.weight: f32[8320]
@group(0) @binding(4) var<storage, read> b4_adamw_step: array<f32>; // adamw.step: f32[3]
@group(0) @binding(5) var<storage, read_write> b5_new_adamw_m_wte_weight: array<f32>; // new/adamw.m/wte.weight: f32[8320]
@group(0) @binding(6) var<storage, read_write> b6_new_adamw_v_wte_weight: array<f32>; // new/adamw.v/wte.weight: f32[8320]
@group(0) @binding(7) var<storage, read_write> b7_new_wte_weight: array<f32>; // new/wte.weight: f32[8320]

@compute @workgroup_size(256)
fn mul_add_sqrt_div_x3_75(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    var r0: u32;
    var r1: i32;
    var r2: u32;
    var r3: i32;
    var r4: i32;
    var r5: i32;
    var r6: i32;
    var r7: bool;
    var r8: f32;
    var r9: f32;
    var r10: i32;
    var r11: bool;
    var r12: f32;
    var r13: f32;
    var r14: f32;
    var r15: i32;
    var r16: bool;
    var r17: i32;
    var r18: bool;
    var r19: f32;
    var r20: f32;
    var r21: f32;
    var r22: f32;
    var r23: f32;
    var r24: i32;
    var r25: bool;
    var r26: i32;
    var r27: bool;
    var r28: f32;
    var r29: bool;
    var r30: f32;
    var r31: f32;
    var r32: f32;
    var r33: f32;
    var r34: bool;
    var r35: f32;
    var r36: f32;
    var r37: bool;
    var r38: f32;
    var r39: f32;
    var r40: f32;
    var r41: f32;
    var r42: f32;
    var r43: f32;
    var r44: f32;
    var r45: i32;
    var r46: bool;
    r0 = lid.x;
    r1 = i32(r0);
    r2 = wid.x;
    r3 = i32(r2);
    r4 = r3 * 256i;
    r5 = 8320i - r4;
    r6 = r4 + r1;
    r7 = r1 < r5;
    if (r7) {
        r8 = b0_adamw_m_wte_weight[r6];
    } else {
        r8 = 0.0f;
    }
    r9 = r8 * 0.9f;
    r10 = r4 + r1;
    r11 = r1 < r5;
    if (r11) {
        r12 = b1_grad_wte_weight[r10];
    } else {
        r12 = 0.0f;
    }
    r13 = r12 * 0.1f;
    r14 = r9 + r13;
    r15 = r4 + r1;
    r16 = r1 < r5;
    if (r16) {
        b5_new_adamw_m_wte_weight[r15] = r14;
    }
    r17 = r4 + r1;
    r18 = r1 < r5;
    if (r18) {
        r19 = b2_adamw_v_wte_weight[r17];
    } else {
        r19 = 0.0f;
    }
    r20 = r19 * 0.999f;
    r21 = r12 * r12;
    r22 = r21 * 0.001f;
    r23 = r20 + r22;
    r24 = r4 + r1;
    r25 = r1 < r5;
    if (r25) {
        b6_new_adamw_v_wte_weight[r24] = r23;
    }
    r26 = r4 + r1;
    r27 = r1 < r5;
    if (r27) {
        r28 = b3_wte_weight[r26];
    } else {
        r28 = 0.0f;
    }
    r29 = r1 < r5;
    if (r29) {
        r30 = b4_adamw_step[0i];
    } else {
        r30 = 0.0f;
    }
    r31 = r30 * 0.01f;
    r32 = 1.0f - r31;
    r33 = r28 * r32;
    r34 = r1 < r5;
    if (r34) {
        r35 = b4_adamw_step[1i];
    } else {
        r35 = 0.0f;
    }
    r36 = r14 * r35;
    r37 = r1 < r5;
    if (r37) {
        r38 = b4_adamw_step[2i];
    } else {
        r38 = 0.0f;
    }
    r39 = r23 * r38;
    r40 = sqrt(r39);
    r41 = r40 + 1e-8f;
    r42 = r36 / r41;
    r43 = r42 * r30;
    r44 = r33 - r43;
    r45 = r4 + r1;
    r46 = r1 < r5;
    if (r46) {
        b7_new_wte_weight[r45] = r44;
    }
}
