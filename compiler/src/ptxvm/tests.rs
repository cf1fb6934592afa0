//! Unit tests of the PTX VM on hand-written PTX: instruction semantics where PTX differs
//! from the obvious reading, and every check (bounds, alignment, races, barriers).

use super::*;

const HEAD: &str = ".version 7.8\n.target sm_80\n.address_size 64\n";

/// A kernel `k(p0_in, p1_out)` with `block` threads whose body is `body`; registers:
/// `%rd<8>`, `%r<8>`, `%u<8>`, `%f<8>`, `%p<4>`, `%h<4>`; `%rd0` = in, `%rd1` = out.
fn kernel(block: u32, body: &str, shared: &str) -> String {
    format!(
        "{HEAD}.visible .entry k(\n\t.param .u64 p0_in,\n\t.param .u64 p1_out\n)\n.reqntid {block}, 1, 1\n{{\n\
         \t.reg .pred %p<4>;\n\t.reg .b16 %h<4>;\n\t.reg .f32 %f<8>;\n\t.reg .s32 %r<8>;\n\
         \t.reg .u32 %u<8>;\n\t.reg .u64 %rd<8>;\n{shared}\n\
         \tld.param.u64 %rd6, [p0_in];\n\tcvta.to.global.u64 %rd0, %rd6;\n\
         \tld.param.u64 %rd7, [p1_out];\n\tcvta.to.global.u64 %rd1, %rd7;\n{body}\n\tret;\n}}\n"
    )
}

/// Runs `text`'s kernel `k` with `input` words in and `out_words` words out.
fn run(
    text: &str,
    grid: [u32; 3],
    block: u32,
    input: &[u32],
    out_words: usize,
) -> Result<Vec<u32>, VmError> {
    let module = parse(text)?;
    let k = module.kernel("k").expect("kernel k");
    let mut m = Machine::new(&[input.len() * 4, out_words * 4]);
    m.memory
        .slot_mut(0)
        .unwrap()
        .copy_from_slice(bytemuck_cast(input).as_slice());
    let args = [
        Arg {
            slot: 0,
            bytes: input.len() as u64 * 4,
            name: "in".into(),
        },
        Arg {
            slot: 1,
            bytes: out_words as u64 * 4,
            name: "out".into(),
        },
    ];
    m.launch(k, grid, block, &args)?;
    Ok(m.memory
        .slot(1)
        .unwrap()
        .chunks(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn bytemuck_cast(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// One thread: loads in[0], in[1] as `%r0`/`%f0` and `%r1`/`%f1`, runs `ops`, stores
/// `%r2` (or `%f2` with `float`) to out[0].
fn one(ops: &str, a: u32, b: u32, float: bool) -> u32 {
    let store = if float {
        "st.global.f32 [%rd1], %f2;"
    } else {
        "st.global.s32 [%rd1], %r2;"
    };
    let body = format!(
        "\tld.global.s32 %r0, [%rd0];\n\tld.global.s32 %r1, [%rd0+4];\n\
         \tld.global.f32 %f0, [%rd0];\n\tld.global.f32 %f1, [%rd0+4];\n{ops}\n\t{store}"
    );
    run(&kernel(1, &body, ""), [1, 1, 1], 1, &[a, b], 1).unwrap()[0]
}

fn f(x: f32) -> u32 {
    x.to_bits()
}

#[test]
fn copysign_takes_the_sign_of_its_first_operand() {
    // PTX: `copysign d, a, b` is |b| with a's sign (the reverse of C's copysign).
    let out = one("\tcopysign.f32 %f2, %f0, %f1;", f(-1.0), f(3.0), true);
    assert_eq!(f32::from_bits(out), -3.0);
}

#[test]
fn float_to_int_conversion_truncates_saturates_and_maps_nan_to_zero() {
    let cvt = |x: f32| one("\tcvt.rzi.s32.f32 %r2, %f0;", f(x), 0, false) as i32;
    assert_eq!(cvt(-2.7), -2);
    assert_eq!(cvt(3e10), i32::MAX);
    assert_eq!(cvt(-3e10), i32::MIN);
    assert_eq!(cvt(f32::NAN), 0);
    let cvtu = |x: f32| {
        one(
            "\tcvt.rzi.u32.f32 %u2, %f0;\n\tmov.b32 %r2, %u2;",
            f(x),
            0,
            false,
        )
    };
    assert_eq!(cvtu(-5.0), 0);
}

#[test]
fn shifts_clamp_at_the_width() {
    let shr = |x: i32, s: u32| one("\tshr.s32 %r2, %r0, %r1;", x as u32, s, false) as i32;
    assert_eq!(shr(-8, 1), -4);
    assert_eq!(shr(-8, 40), -1);
    let shl = |x: u32, s: u32| one("\tshl.b32 %r2, %r0, %r1;", x, s, false);
    assert_eq!(shl(1, 31), 1 << 31);
    assert_eq!(shl(1, 32), 0);
}

#[test]
fn integer_division_and_wide_multiplication() {
    let div = |x: i32, y: i32| one("\tdiv.s32 %r2, %r0, %r1;", x as u32, y as u32, false) as i32;
    assert_eq!(div(-7, 2), -3);
    // Division by zero is unspecified in PTX: storing its result is an error.
    let body = "\tld.global.s32 %r0, [%rd0];\n\tld.global.s32 %r1, [%rd0+4];\n\
                \tdiv.s32 %r2, %r0, %r1;\n\tst.global.s32 [%rd1], %r2;";
    let err = run(&kernel(1, body, ""), [1, 1, 1], 1, &[7, 0], 1).unwrap_err();
    assert!(
        matches!(&err, VmError::Undefined { origin, .. } if origin.contains("division by zero")),
        "{err:?}"
    );
    let rem = |x: i32, y: i32| one("\trem.s32 %r2, %r0, %r1;", x as u32, y as u32, false) as i32;
    assert_eq!(rem(-7, 2), -1);
    // mul.wide.s32 of a negative index stays negative in 64 bits: -1 * 4 = -4.
    let wide = one(
        "\tmul.wide.s32 %rd2, %r0, %r1;\n\tshr.s64 %rd3, %rd2, 32;\n\tcvt.u32.u64 %u2, %rd3;\n\tmov.b32 %r2, %u2;",
        (-1i32) as u32,
        4,
        false,
    );
    assert_eq!(wide, u32::MAX);
}

#[test]
fn nan_aware_comparisons_and_max() {
    let nan = f32::NAN.to_bits();
    let setp = |op: &str, a: u32, b: u32| {
        one(
            &format!("\tsetp.{op}.f32 %p0, %f0, %f1;\n\tselp.s32 %r2, 1, 0, %p0;"),
            a,
            b,
            false,
        )
    };
    assert_eq!(setp("ne", nan, f(1.0)), 0);
    assert_eq!(setp("neu", nan, f(1.0)), 1);
    assert_eq!(setp("lt", f(1.0), f(2.0)), 1);
    let max = |op: &str, a: u32, b: u32| one(&format!("\t{op} %f2, %f0, %f1;"), a, b, true);
    assert!(f32::from_bits(max("max.NaN.f32", nan, f(1.0))).is_nan());
    assert_eq!(f32::from_bits(max("max.f32", nan, f(1.0))), 1.0);
}

#[test]
fn half_precision_conversions_round_once() {
    // 1 + 2^-11 + 2^-24 is just above the f16 tie between 1 and 1 + 2^-10: rounds up.
    let x = 1.0f32 + 2f32.powi(-11) + 2f32.powi(-23);
    let out = one(
        "\tcvt.rn.f16.f32 %h0, %f0;\n\tcvt.f32.f16 %f2, %h0;",
        f(x),
        0,
        true,
    );
    assert_eq!(f32::from_bits(out), 1.0 + 2f32.powi(-10));
    let bf = one(
        "\tcvt.rn.bf16.f32 %h0, %f0;\n\tmov.b32 %u0, 0;\n\tcvt.u32.u16 %u0, %h0;\n\tshl.b32 %u1, %u0, 16;\n\tmov.b32 %f2, %u1;",
        f(1.0 + 2f32.powi(-8) + 2f32.powi(-20)),
        0,
        true,
    );
    assert_eq!(f32::from_bits(bf), 1.0 + 2f32.powi(-7));
}

/// Each thread adds its two inputs: a grid-stride-free elementwise kernel with a bounds
/// guard, launched over several blocks.
#[test]
fn an_elementwise_kernel_over_several_blocks() {
    let body = "\tmov.u32 %u0, %tid.x;\n\tmov.u32 %u1, %ctaid.x;\n\tmad.lo.u32 %u2, %u1, 4, %u0;\n\
                \tsetp.lt.u32 %p0, %u2, 10;\n\t@!%p0 bra $L_end;\n\
                \tmul.wide.u32 %rd2, %u2, 4;\n\tadd.s64 %rd3, %rd0, %rd2;\n\tld.global.f32 %f0, [%rd3];\n\
                \tadd.rn.f32 %f1, %f0, %f0;\n\tadd.s64 %rd4, %rd1, %rd2;\n\tst.global.f32 [%rd4], %f1;\n$L_end:";
    let input: Vec<u32> = (0..10).map(|i| f(i as f32 * 0.5)).collect();
    let out = run(&kernel(4, body, ""), [3, 1, 1], 4, &input, 10).unwrap();
    let want: Vec<u32> = (0..10).map(|i| f(i as f32)).collect();
    assert_eq!(out, want);
}

#[test]
fn out_of_bounds_accesses_name_the_buffer_and_line() {
    // Without the guard, thread 10 and 11 of 12 store past `out` (10 words).
    let body =
        "\tmov.u32 %u0, %tid.x;\n\tmul.wide.u32 %rd2, %u0, 4;\n\tadd.s64 %rd4, %rd1, %rd2;\n\
                \tst.global.u32 [%rd4], %u0;";
    let err = run(&kernel(12, body, ""), [1, 1, 1], 12, &[0; 10], 10).unwrap_err();
    match &err {
        VmError::OutOfBounds {
            at, what, offset, ..
        } => {
            assert_eq!(at.thread, 10);
            assert_eq!(*offset, 40);
            assert!(what.contains("`out` (40 bytes)"), "{what}");
            assert!(at.text.starts_with("st.global.u32"), "{}", at.text);
        }
        other => panic!("expected OutOfBounds, got {other:?}"),
    }
    // A misaligned word.
    let body = "\tld.global.u32 %u0, [%rd0+2];\n\tst.global.u32 [%rd1], %u0;";
    let err = run(&kernel(1, body, ""), [1, 1, 1], 1, &[0; 2], 1).unwrap_err();
    assert!(matches!(err, VmError::Misaligned { .. }), "{err:?}");
}

#[test]
fn vector_accesses_move_four_elements_and_must_be_aligned() {
    // Thread t reverses the vector at in[4t..4t+4] into out[4t..4t+4] (a guarded load,
    // a store of registers in another order).
    let body = "\tmov.u32 %u0, %tid.x;\n\tmul.wide.u32 %rd2, %u0, 16;\n\
                \tadd.s64 %rd3, %rd0, %rd2;\n\tadd.s64 %rd4, %rd1, %rd2;\n\
                \tsetp.lt.u32 %p0, %u0, 2;\n\
                \t@%p0 ld.global.v4.f32 {%f0, %f1, %f2, %f3}, [%rd3];\n\
                \t@%p0 st.global.v4.f32 [%rd4], {%f3, %f2, %f1, %f0};";
    let input: Vec<u32> = (0..8).map(|i| f(i as f32)).collect();
    let out = run(&kernel(3, body, ""), [1, 1, 1], 3, &input, 8).unwrap();
    let want: Vec<u32> = [3, 2, 1, 0, 7, 6, 5, 4].map(|i| f(i as f32)).to_vec();
    assert_eq!(out, want);
    // Four-byte aligned is not enough for a 16-byte vector.
    let body = "\tld.global.v4.u32 {%u0, %u1, %u2, %u3}, [%rd0+4];\n\
                \tst.global.u32 [%rd1], %u0;";
    let err = run(&kernel(1, body, ""), [1, 1, 1], 1, &[0; 8], 1).unwrap_err();
    match &err {
        VmError::Misaligned {
            bytes, offset, at, ..
        } => {
            assert_eq!((*bytes, *offset), (16, 4));
            assert!(at.text.starts_with("ld.global.v4.u32"), "{}", at.text);
        }
        other => panic!("expected Misaligned, got {other:?}"),
    }
    // A vector reaching past the buffer (6 words: the second vector's last two).
    let body = "\tld.global.v4.s32 {%r0, %r1, %r2, %r3}, [%rd0+16];\n\
                \tst.global.s32 [%rd1], %r0;";
    let err = run(&kernel(1, body, ""), [1, 1, 1], 1, &[0; 6], 1).unwrap_err();
    assert!(matches!(err, VmError::OutOfBounds { .. }), "{err:?}");
    // Malformed vectors are parse errors, vectors in shared memory unsupported.
    for bad in [
        "\tld.global.v4.f32 {%f0, %f1, %f2}, [%rd0];",
        "\tld.global.v4.f32 %f0, %f1, %f2, %f3, [%rd0];",
        "\tld.shared.v4.f32 {%f0, %f1, %f2, %f3}, [%rd0];",
        "\tld.global.v4.u64 {%rd2, %rd3, %rd4, %rd5}, [%rd0];",
        "\tld.global.v4.u32 {%u0, %u1, %u2, %u3}, [%u1];",
        "\tadd.v4.f32 %f0, %f1, %f2;",
    ] {
        assert!(parse(&kernel(1, bad, "")).is_err(), "{bad}");
    }
}

const SMEM: &str = "\t.shared .align 16 .f32 smem0[4];";

/// Thread t writes smem[t], then reads smem[3 - t]: with the barrier that is the
/// reversal; without it, a race.
fn reversal(barrier: bool) -> String {
    let body = format!(
        "\tmov.u64 %rd5, smem0;\n\tmov.u32 %u0, %tid.x;\n\tmul.wide.u32 %rd2, %u0, 4;\n\
         \tadd.s64 %rd3, %rd0, %rd2;\n\tld.global.f32 %f0, [%rd3];\n\
         \tadd.s64 %rd4, %rd5, %rd2;\n\tst.shared.f32 [%rd4], %f0;\n{}\
         \tsub.u32 %u1, 3, %u0;\n\tmul.wide.u32 %rd2, %u1, 4;\n\tadd.s64 %rd4, %rd5, %rd2;\n\
         \tld.shared.f32 %f1, [%rd4];\n\tmul.wide.u32 %rd2, %u0, 4;\n\tadd.s64 %rd3, %rd1, %rd2;\n\
         \tst.global.f32 [%rd3], %f1;",
        if barrier { "\tbar.sync 0;\n" } else { "" }
    );
    kernel(4, &body, SMEM)
}

#[test]
fn barriers_order_shared_memory_and_missing_ones_are_races() {
    let input: Vec<u32> = (1..=4).map(|i| f(i as f32)).collect();
    let out = run(&reversal(true), [1, 1, 1], 4, &input, 4).unwrap();
    assert_eq!(out, vec![f(4.0), f(3.0), f(2.0), f(1.0)]);
    let err = run(&reversal(false), [1, 1, 1], 4, &input, 4).unwrap_err();
    match &err {
        // Thread 0 reads smem[3] before thread 3 wrote it, and stores what it read.
        VmError::Undefined { at, what, origin } => {
            assert_eq!(at.thread, 0);
            assert_eq!(*what, "the stored value");
            assert!(at.text.starts_with("st.global.f32"), "{}", at.text);
            assert!(origin.contains("ld.shared.f32 %f1"), "{origin}");
        }
        other => panic!("expected an undefined value, got {other:?}"),
    }
}

/// Padding lanes may compute with shared memory nobody wrote as long as `selp`
/// discards the result (as Tessera's reductions do); storing it is an error.
#[test]
fn undefined_values_may_be_computed_but_not_stored() {
    let body = |keep: &str| {
        format!(
            "	mov.u64 %rd5, smem0;
	ld.shared.f32 %f0, [%rd5+12];
	add.rn.f32 %f1, %f0, 0f3F800000;
             	setp.lt.s32 %p0, 0, 1;
	selp.f32 %f2, {keep}, %p0;
	st.global.f32 [%rd1], %f2;"
        )
    };
    let out = run(
        &kernel(1, &body("0f40000000, %f1"), SMEM),
        [1, 1, 1],
        1,
        &[0],
        1,
    )
    .unwrap();
    assert_eq!(out, vec![f(2.0)]);
    let err = run(
        &kernel(1, &body("%f1, 0f40000000"), SMEM),
        [1, 1, 1],
        1,
        &[0],
        1,
    )
    .unwrap_err();
    assert!(matches!(err, VmError::Undefined { .. }), "{err:?}");
    // A branch on an undefined predicate.
    let body = "	mov.u64 %rd5, smem0;
	ld.shared.f32 %f0, [%rd5];
	setp.lt.f32 %p0, %f0, 0f00000000;
                	@%p0 bra $L_x;
$L_x:";
    let err = run(&kernel(1, body, SMEM), [1, 1, 1], 1, &[0], 1).unwrap_err();
    assert!(
        matches!(&err, VmError::Undefined { what, .. } if *what == "the guard predicate"),
        "{err:?}"
    );
    // A register nobody wrote.
    let err = run(
        &kernel(1, "	st.global.f32 [%rd1], %f3;", ""),
        [1, 1, 1],
        1,
        &[0],
        1,
    )
    .unwrap_err();
    assert!(
        matches!(&err, VmError::Undefined { origin, .. } if origin.contains("register")),
        "{err:?}"
    );
}

#[test]
fn a_write_after_another_threads_read_in_the_same_interval_is_a_race() {
    // Every thread writes smem[0], then reads it: thread 1's write follows thread 0's
    // read in the same barrier interval.
    let body = "\tmov.u64 %rd5, smem0;\n\tmov.u32 %u0, %tid.x;\n\tst.shared.u32 [%rd5], %u0;\n\
                \tld.shared.u32 %u1, [%rd5];";
    let err = run(&kernel(2, body, SMEM), [1, 1, 1], 2, &[0], 1).unwrap_err();
    match &err {
        VmError::Race { at, other, .. } => {
            assert_eq!(at.thread, 1);
            assert!(other.contains("thread 0"), "{other}");
        }
        other => panic!("expected a race, got {other:?}"),
    }
}

#[test]
fn two_blocks_writing_one_word_is_a_race() {
    let body = "\tmov.u32 %u0, %ctaid.x;\n\tst.global.u32 [%rd1], %u0;";
    let err = run(&kernel(1, body, ""), [2, 1, 1], 1, &[0], 1).unwrap_err();
    match &err {
        VmError::Race {
            at, other, space, ..
        } => {
            assert_eq!(*space, "global");
            assert_eq!(at.block, [1, 0, 0]);
            assert!(other.contains("block [0, 0, 0]"), "{other}");
        }
        other => panic!("expected a race, got {other:?}"),
    }
}

#[test]
fn a_barrier_in_divergent_code_is_refused() {
    let body = "\tmov.u32 %u0, %tid.x;\n\tsetp.lt.u32 %p0, %u0, 1;\n\t@!%p0 bra $L_end;\n\
                \tbar.sync 0;\n$L_end:";
    let err = run(&kernel(2, body, ""), [1, 1, 1], 2, &[0], 1).unwrap_err();
    assert!(
        matches!(&err, VmError::BarrierDivergence { message, .. } if message.contains("finished")),
        "{err:?}"
    );
}

#[test]
fn an_endless_loop_stops_at_the_step_limit() {
    let text = kernel(1, "$L_top:\n\tbra $L_top;", "");
    let module = parse(&text).unwrap();
    let mut m = Machine::new(&[4, 4]);
    m.step_limit = 1000;
    let args = [
        Arg {
            slot: 0,
            bytes: 4,
            name: "in".into(),
        },
        Arg {
            slot: 1,
            bytes: 4,
            name: "out".into(),
        },
    ];
    let err = m
        .launch(&module.kernels[0], [1, 1, 1], 1, &args)
        .unwrap_err();
    assert!(
        matches!(err, VmError::StepLimit { limit: 1000, .. }),
        "{err:?}"
    );
}

#[test]
fn launches_that_do_not_match_the_entry_are_refused() {
    let text = kernel(4, "", "");
    let module = parse(&text).unwrap();
    let mut m = Machine::new(&[4, 4]);
    let one_arg = [Arg {
        slot: 0,
        bytes: 4,
        name: "in".into(),
    }];
    assert!(matches!(
        m.launch(&module.kernels[0], [1, 1, 1], 4, &one_arg),
        Err(VmError::Launch { .. })
    ));
    let args = [
        Arg {
            slot: 0,
            bytes: 4,
            name: "in".into(),
        },
        Arg {
            slot: 1,
            bytes: 4,
            name: "out".into(),
        },
    ];
    let err = m
        .launch(&module.kernels[0], [1, 1, 1], 8, &args)
        .unwrap_err();
    assert!(err.to_string().contains(".reqntid 4"), "{err}");
}

#[test]
fn narrow_values_widen_to_their_register_and_roundings_are_honoured() {
    // cvt to s16 into a 32-bit register sign-extends; an integer rounding of a float
    // keeps the float type; a leading zero is octal.
    let sx = one("\tcvt.s16.s32 %r2, %r0;", (-1i32) as u32, 0, false);
    assert_eq!(sx as i32, -1);
    let zx = one(
        "\tcvt.u16.u32 %u2, %r0;\n\tmov.b32 %r2, %u2;",
        0x1_FFFF,
        0,
        false,
    );
    assert_eq!(zx, 0xFFFF);
    let rni = one("\tcvt.rni.f32.f32 %f2, %f0;", f(2.5), 0, true);
    assert_eq!(f32::from_bits(rni), 2.0);
    let oct = one("\tadd.s32 %r2, %r0, 010;", 0, 0, false);
    assert_eq!(oct, 8);
    let ld = run(
        &kernel(
            1,
            "\tld.global.s16 %r2, [%rd0];\n\tst.global.s32 [%rd1], %r2;",
            "",
        ),
        [1, 1, 1],
        1,
        &[0xFFFE],
        1,
    )
    .unwrap();
    assert_eq!(ld[0] as i32, -2);
}

#[test]
fn modifiers_it_does_not_implement_are_refused_not_ignored() {
    for ins in [
        "add.sat.f32 %f0, %f0, %f0",
        "add.rz.f32 %f0, %f0, %f0",
        "max.relu.s32 %r0, %r0, %r0",
        "ld.volatile.global.f32 %f0, [%rd0]",
        "ld.global.v2.f32 %f0, [%rd0]",
        "add.f32 %f0, %f0, 0d3FF0000000000000",
    ] {
        let text = kernel(1, &format!("\t{ins};"), "");
        assert!(
            matches!(parse(&text), Err(VmError::Unsupported { .. })),
            "{ins}: {:?}",
            parse(&text).map(|_| ())
        );
    }
}

#[test]
fn absurd_declarations_are_errors_not_panics() {
    for decl in [
        "\t.shared .f32 a[9223372036854775807];",
        "\t.shared .align 16 .f32 a[200000];\n\t.shared .align 16 .f32 b[200000];",
        "\t.shared .align 3 .f32 a[4];",
        "\t.reg .b32 %big<4000000000>;",
    ] {
        let text = kernel(1, "", decl);
        assert!(matches!(parse(&text), Err(VmError::Parse { .. })), "{decl}");
    }
    // An 8-byte access in an array only 4-aligned: the hardware address may not be.
    let body = "\tmov.u64 %rd5, smem0;\n\tst.shared.u64 [%rd5+8], %rd0;";
    let err = run(
        &kernel(1, body, "\t.shared .align 4 .f32 smem0[4];"),
        [1, 1, 1],
        1,
        &[0],
        1,
    )
    .unwrap_err();
    assert!(matches!(err, VmError::Misaligned { .. }), "{err:?}");
}

#[test]
fn text_outside_the_subset_is_refused_by_line() {
    let text = kernel(1, "\tatom.global.add.u32 %u0, [%rd1], 1;", "");
    match parse(&text) {
        Err(VmError::Unsupported { line, text, .. }) => {
            assert!(text.starts_with("atom.global"), "{text}");
            assert!(line > 10);
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
    let text = kernel(1, "\tadd.s32 %r0, %r9, 1;", "");
    assert!(matches!(parse(&text), Err(VmError::Parse { .. })));
    let text = kernel(1, "\tbra $L_nowhere;", "");
    assert!(
        matches!(parse(&text), Err(VmError::Parse { message, .. }) if message.contains("$L_nowhere"))
    );
    assert!(matches!(parse(HEAD), Err(VmError::Parse { .. })));
}

/// The approximate-instruction error: within the asked ulps, deterministic, and zero by
/// default.
#[test]
fn approximate_instructions_err_by_at_most_the_asked_ulps() {
    let text = kernel(
        64,
        "\tmov.u32 %u0, %tid.x;\n\tmul.wide.u32 %rd2, %u0, 4;\n\tadd.s64 %rd3, %rd0, %rd2;\n\
         \tld.global.f32 %f0, [%rd3];\n\tex2.approx.f32 %f1, %f0;\n\tadd.s64 %rd4, %rd1, %rd2;\n\
         \tst.global.f32 [%rd4], %f1;",
        "",
    );
    let module = parse(&text).unwrap();
    let input: Vec<u32> = (0..64).map(|i| f(i as f32 * 0.37 - 11.0)).collect();
    let go = |ulps: u32| {
        let mut m = Machine::new(&[256, 256]);
        m.approx_ulps = ulps;
        m.memory
            .slot_mut(0)
            .unwrap()
            .copy_from_slice(&bytemuck_cast(&input));
        let args = [
            Arg {
                slot: 0,
                bytes: 256,
                name: "in".into(),
            },
            Arg {
                slot: 1,
                bytes: 256,
                name: "out".into(),
            },
        ];
        m.launch(&module.kernels[0], [1, 1, 1], 64, &args).unwrap();
        m.memory
            .slot(1)
            .unwrap()
            .chunks(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect::<Vec<u32>>()
    };
    let exact = go(0);
    for (x, e) in input.iter().zip(&exact) {
        let want = (f64::from(f32::from_bits(*x)).exp2() as f32).to_bits();
        assert_eq!(*e, want, "ex2 of {}", f32::from_bits(*x));
    }
    let noisy = go(2);
    assert_eq!(noisy, go(2), "not deterministic");
    let moved: Vec<i64> = noisy
        .iter()
        .zip(&exact)
        .map(|(a, b)| *a as i64 - *b as i64)
        .collect();
    assert!(moved.iter().all(|d| d.abs() <= 2), "{moved:?}");
    assert!(moved.iter().any(|d| *d != 0), "nothing moved");
    assert!(
        moved.iter().any(|d| d.abs() == 2),
        "never the full 2 ulps: {moved:?}"
    );
}
