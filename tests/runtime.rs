//! Runtime tests: parameters stay on the device across runs, bad inputs give typed errors,
//! and the MLP demo matches the f64 interpreter on every device.
//!
//! Two kinds of executables are used: the MLP demo compiled by the real pipeline
//! (`compile` + `backend::emit`), and a hand-written two-kernel WGSL plan loaded with
//! [`WgpuDevice::load_plan`] that exercises the wgpu buffer/dispatch path on its own
//! (storage-slot sharing, constants, parameters, a 1-D grid with a masked tail).
//!
//! The tests need a wgpu adapter: without one they fail with the reason (install lavapipe
//! with `apt-get install -y mesa-vulkan-drivers libvulkan1`), they never pass silently.

use std::collections::HashMap;
use std::sync::OnceLock;
use tessera::compiler::backend::{Artifact, KernelInfo, SourceFile};
use tessera::compiler::interp::{run_graph, Tensor};
use tessera::compiler::schedule::plan::{
    BufferId, BufferInfo, BufferRole, Launch, Plan, StorageSlot,
};
use tessera::compiler::tile::{Access, Block, BufferParam, TileKernel};
use tessera::compiler::{DType, Graph, NodeId, TargetKind};
use tessera::models::mlp::mlp_block;
use tessera::runtime::{CpuDevice, Device, DeviceKind, Executable, RuntimeError, WgpuDevice};

fn wgpu() -> &'static WgpuDevice {
    static DEVICE: OnceLock<Result<WgpuDevice, String>> = OnceLock::new();
    match DEVICE.get_or_init(|| WgpuDevice::new().map_err(|e| e.to_string())) {
        Ok(d) => d,
        Err(e) => panic!("no wgpu device, so the wgpu tests cannot run: {e}"),
    }
}

fn inputs(pairs: &[(&str, Tensor)]) -> HashMap<String, Tensor> {
    pairs
        .iter()
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect()
}

// ---------------------------------------------------------------------------------------
// A hand-written plan: t = x * w + c (c a constant 0.5), then y = 2 * t. `y` reuses the
// storage slot of `x` (x is dead after the first launch), so slot sharing is exercised.

const N: usize = 1000;
const WG: usize = 64;

fn k0_wgsl() -> String {
    format!(
        "@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> c: array<f32>;
@group(0) @binding(3) var<storage, read_write> t: array<f32>;
@compute @workgroup_size({WG})
fn fma_const(@builtin(global_invocation_id) gid: vec3<u32>) {{
    let i = gid.x;
    if (i < {N}u) {{
        t[i] = x[i] * w[i] + c[i];
    }}
}}
"
    )
}

fn k1_wgsl() -> String {
    format!(
        "@group(0) @binding(0) var<storage, read> t: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@compute @workgroup_size({WG})
fn double(@builtin(global_invocation_id) gid: vec3<u32>) {{
    let i = gid.x;
    if (i < {N}u) {{
        y[i] = 2.0 * t[i];
    }}
}}
"
    )
}

fn param(name: &str, access: Access) -> BufferParam {
    BufferParam {
        name: name.into(),
        dtype: DType::F32,
        len: N,
        access,
    }
}

fn kernel(name: &str, params: Vec<BufferParam>) -> TileKernel {
    TileKernel {
        name: name.into(),
        params,
        grid: [N.div_ceil(WG) as u32, 1, 1],
        values: vec![],
        body: Block::default(),
    }
}

fn buffer(id: u32, role: BufferRole, storage: usize) -> BufferInfo {
    BufferInfo {
        id: BufferId(id),
        node: NodeId(id),
        dtype: DType::F32,
        shape: vec![N],
        len: N,
        role,
        storage,
    }
}

fn hand_plan() -> (Plan, Artifact) {
    let plan = Plan {
        kernels: vec![
            kernel(
                "fma_const",
                vec![
                    param("x", Access::Read),
                    param("w", Access::Read),
                    param("c", Access::Read),
                    param("t", Access::Write),
                ],
            ),
            kernel(
                "double",
                vec![param("t", Access::Read), param("y", Access::Write)],
            ),
        ],
        buffers: vec![
            buffer(0, BufferRole::Input { name: "x".into() }, 0),
            buffer(1, BufferRole::Param { name: "w".into() }, 1),
            buffer(2, BufferRole::Constant { value: 0.5 }, 2),
            buffer(3, BufferRole::Temp, 3),
            buffer(4, BufferRole::Output { name: "y".into() }, 0),
        ],
        launches: vec![
            Launch {
                kernel: 0,
                args: vec![BufferId(0), BufferId(1), BufferId(2), BufferId(3)],
            },
            Launch {
                kernel: 1,
                args: vec![BufferId(3), BufferId(4)],
            },
        ],
        storage: vec![StorageSlot { bytes: N * 4 }; 4],
        outputs: vec![("y".into(), BufferId(4))],
    };
    let info = |name: &str, params: &[&str]| KernelInfo {
        name: name.into(),
        file: format!("{name}.wgsl"),
        params: params.iter().map(|s| s.to_string()).collect(),
        grid: [N.div_ceil(WG) as u32, 1, 1],
        block: WG as u32,
    };
    let artifact = Artifact {
        target: TargetKind::Wgsl,
        files: vec![
            SourceFile {
                name: "fma_const.wgsl".into(),
                contents: k0_wgsl(),
            },
            SourceFile {
                name: "double.wgsl".into(),
                contents: k1_wgsl(),
            },
        ],
        kernels: vec![
            info("fma_const", &["x", "w", "c", "t"]),
            info("double", &["t", "y"]),
        ],
    };
    (plan, artifact)
}

/// What the hand plan computes, in f64 (exact for these f32 inputs up to one rounding).
fn hand_expected(x: &Tensor, w: &Tensor) -> Vec<f64> {
    x.data
        .iter()
        .zip(&w.data)
        .map(|(a, b)| 2.0 * (a * b + 0.5))
        .collect()
}

/// f32 computes `x*w + 0.5` with at most two roundings (or one with fma), and the
/// doubling is exact: 4 ulp of slack relative to the magnitude (which is at most 3).
const HAND_TOL: f64 = 4.0 * 3.0 / (1u64 << 23) as f64;

fn hand_exe() -> Executable {
    let (plan, artifact) = hand_plan();
    match wgpu().load_plan(plan, artifact) {
        Ok(e) => e,
        Err(e) => panic!("loading the hand-written plan failed: {e}"),
    }
}

#[test]
fn wgpu_device_reports_its_adapter() {
    let d = wgpu();
    assert_eq!(d.kind(), DeviceKind::Wgpu);
    assert!(!d.adapter().name.is_empty(), "adapter has no name");
    assert!(d.name().contains(&d.adapter().name));
    let t = d.target().expect("the wgpu device compiles for a target");
    assert_eq!(t.kind, TargetKind::Wgsl);
    assert!(t.max_storage_buffers >= 4 && t.max_workgroup_size >= 64);
    println!("{}", d.name());
}

#[test]
fn hand_plan_params_stay_on_device_across_runs() {
    let mut exe = hand_exe();
    let w = Tensor::random(&[N], DType::F32, 11);
    exe.set_param("w", &w).unwrap();
    for seed in [1, 2] {
        let x = Tensor::random(&[N], DType::F32, seed);
        let out = exe.run(&inputs(&[("x", x.clone())])).unwrap();
        let y = &out["y"];
        assert_eq!(y.shape, vec![N]);
        let want = hand_expected(&x, &w);
        let err = tessera::compiler::interp::max_abs_diff(&y.data, &want);
        assert!(err <= HAND_TOL, "run with seed {seed}: max error {err}");
    }
    // The parameter reads back unchanged from the device after two runs (and after its
    // neighbour slot 0 was overwritten by both inputs and outputs).
    assert_eq!(exe.get_param("w").unwrap(), w);
    // Setting it again takes effect.
    let w2 = Tensor::full(&[N], DType::F32, 1.0);
    exe.set_param("w", &w2).unwrap();
    let x = Tensor::random(&[N], DType::F32, 3);
    let y = &exe.run(&inputs(&[("x", x.clone())])).unwrap()["y"];
    let want = hand_expected(&x, &w2);
    assert!(tessera::compiler::interp::max_abs_diff(&y.data, &want) <= HAND_TOL);
}

#[test]
fn hand_plan_typed_errors() {
    let mut exe = hand_exe();
    let x = Tensor::random(&[N], DType::F32, 1);
    // A parameter never set.
    match exe.run(&inputs(&[("x", x.clone())])) {
        Err(RuntimeError::ParamNotSet { name }) => assert_eq!(name, "w"),
        other => panic!("expected ParamNotSet, got {other:?}"),
    }
    exe.set_param("w", &Tensor::random(&[N], DType::F32, 2))
        .unwrap();
    match exe.run(&HashMap::new()) {
        Err(RuntimeError::MissingInput { name }) => assert_eq!(name, "x"),
        other => panic!("expected MissingInput, got {other:?}"),
    }
    match exe.run(&inputs(&[("x", Tensor::random(&[N + 1], DType::F32, 1))])) {
        Err(RuntimeError::ShapeMismatch {
            name,
            expected,
            got,
        }) => {
            assert_eq!((name.as_str(), expected, got), ("x", vec![N], vec![N + 1]));
        }
        other => panic!("expected ShapeMismatch, got {other:?}"),
    }
    match exe.run(&inputs(&[("x", Tensor::random(&[N], DType::I32, 1))])) {
        Err(RuntimeError::DTypeMismatch { name, .. }) => assert_eq!(name, "x"),
        other => panic!("expected DTypeMismatch, got {other:?}"),
    }
    let mut short = x.clone();
    short.data.pop();
    match exe.run(&inputs(&[("x", short)])) {
        Err(RuntimeError::DataLength { name, .. }) => assert_eq!(name, "x"),
        other => panic!("expected DataLength, got {other:?}"),
    }
    match exe.run(&inputs(&[("x", x.clone()), ("z", x.clone())])) {
        Err(RuntimeError::UnknownInput { name, .. }) => assert_eq!(name, "z"),
        other => panic!("expected UnknownInput, got {other:?}"),
    }
    match exe.set_param("nope", &x) {
        Err(RuntimeError::UnknownParam { name, known }) => {
            assert_eq!((name.as_str(), known), ("nope", vec!["w".to_string()]));
        }
        other => panic!("expected UnknownParam, got {other:?}"),
    }
    match exe.set_param("w", &Tensor::random(&[2], DType::F32, 1)) {
        Err(RuntimeError::ShapeMismatch { name, .. }) => assert_eq!(name, "w"),
        other => panic!("expected ShapeMismatch, got {other:?}"),
    }
    // After all those errors the executable still works.
    assert!(exe.run(&inputs(&[("x", x)])).is_ok());
}

#[test]
fn hand_plan_inconsistent_plans_are_rejected_before_launch() {
    // A parameter sharing its storage slot with a temporary would be overwritten.
    let (mut plan, artifact) = hand_plan();
    plan.buffers[3].storage = 1;
    match wgpu().load_plan(plan, artifact) {
        Err(RuntimeError::InvalidPlan { message }) => assert!(message.contains("shares")),
        other => panic!("expected InvalidPlan, got {other:?}"),
    }
    // A kernel whose WGSL lacks its entry point.
    let (plan, mut artifact) = hand_plan();
    artifact.kernels[1].name = "missing".into();
    match wgpu().load_plan(plan, artifact) {
        Err(RuntimeError::InvalidPlan { message }) => assert!(message.contains("entry point")),
        other => panic!("expected InvalidPlan, got {other:?}"),
    }
    // One launch binding the same storage for reading and writing.
    let (mut plan, artifact) = hand_plan();
    plan.buffers[4].storage = 3;
    match wgpu().load_plan(plan, artifact) {
        Err(RuntimeError::InvalidPlan { message }) => assert!(message.contains("written")),
        other => panic!("expected InvalidPlan, got {other:?}"),
    }
    // A manifest that disagrees with the WGSL's workgroup size, or with the plan's grid.
    let (plan, mut artifact) = hand_plan();
    artifact.kernels[0].block = 32;
    match wgpu().load_plan(plan, artifact) {
        Err(RuntimeError::InvalidPlan { message }) => assert!(message.contains("workgroup")),
        other => panic!("expected InvalidPlan, got {other:?}"),
    }
    let (plan, mut artifact) = hand_plan();
    artifact.kernels[1].grid = [1, 1, 1];
    match wgpu().load_plan(plan, artifact) {
        Err(RuntimeError::InvalidPlan { message }) => assert!(message.contains("grid")),
        other => panic!("expected InvalidPlan, got {other:?}"),
    }
    // WGSL that wgpu rejects comes back as a typed error, not a panic.
    let (plan, mut artifact) = hand_plan();
    artifact.files[1].contents = artifact.files[1]
        .contents
        .replace("y[i] = 2.0 * t[i];", "y[i] = 2.0 * t[i] + undefined_name;");
    match wgpu().load_plan(plan, artifact) {
        Err(RuntimeError::InvalidPlan { .. }) | Err(RuntimeError::Wgpu { .. }) => {}
        other => panic!("expected a typed error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// The MLP demo through the real compiler.

const MLP_DIMS: (usize, usize, usize) = (7, 17, 64);

fn mlp_graph() -> Graph {
    let (b, i, h) = MLP_DIMS;
    mlp_block(b, i, h).expect("the MLP demo graph builds")
}

fn mlp_params() -> (Tensor, Tensor) {
    let (_, i, h) = MLP_DIMS;
    (
        Tensor::random(&[i, h], DType::F32, 101),
        Tensor::random(&[h], DType::F32, 102),
    )
}

fn reference(graph: &Graph, x: &Tensor, w: &Tensor, b: &Tensor) -> Tensor {
    let all = inputs(&[("x", x.clone()), ("w", w.clone()), ("b", b.clone())]);
    run_graph(graph, &all).expect("the interpreter runs the MLP")["y"].clone()
}

/// y = sum over 64 hidden units of tanh(17-term dot products + bias): f32 rounding of
/// the 17-term sums (< 17 * 2^-24 * 17 relative to inputs in [-1, 1]) passes through
/// tanh (slope <= 1) and 64 more additions: 1e-4 absolute is ~10x the worst case seen.
const MLP_TOL: f64 = 1e-4;

fn check_mlp_on(device: &dyn Device) {
    let graph = mlp_graph();
    let mut exe = match device.load(&graph) {
        Ok(e) => e,
        Err(e) => panic!("{}: loading the MLP demo failed: {e}", device.name()),
    };
    let (w, b) = mlp_params();
    exe.set_param("w", &w).unwrap();
    exe.set_param("b", &b).unwrap();
    let (batch, d_in, _) = MLP_DIMS;
    // Two runs with different inputs and the parameters set once.
    for seed in [1, 2] {
        let x = Tensor::random(&[batch, d_in], DType::F32, seed);
        let out = exe.run(&inputs(&[("x", x.clone())])).unwrap();
        let want = reference(&graph, &x, &w, &b);
        let got = &out["y"];
        assert_eq!(got.shape, want.shape);
        let err = got.max_abs_diff(&want);
        println!("{}: MLP run {seed}: max abs error {err:.3e}", device.name());
        assert!(
            err <= MLP_TOL,
            "{}: MLP run {seed}: max abs error {err} > {MLP_TOL}",
            device.name()
        );
    }
    assert_eq!(exe.get_param("w").unwrap(), w);
    assert_eq!(exe.get_param("b").unwrap(), b);
}

#[test]
fn mlp_matches_interpreter_on_wgpu() {
    check_mlp_on(wgpu());
}

#[test]
fn mlp_matches_interpreter_on_tile_interpreter() {
    check_mlp_on(&CpuDevice::tile());
}

#[test]
fn mlp_on_reference_device_is_the_oracle() {
    check_mlp_on(&CpuDevice::reference());
}

#[test]
fn mlp_typed_errors_on_every_device() {
    let graph = mlp_graph();
    let (batch, d_in, _) = MLP_DIMS;
    let devices: Vec<Box<dyn Device>> =
        vec![Box::new(wgpu().clone()), Box::new(CpuDevice::reference())];
    for device in devices {
        let mut exe = device
            .load(&graph)
            .unwrap_or_else(|e| panic!("{}: {e}", device.name()));
        let (w, b) = mlp_params();
        exe.set_param("w", &w).unwrap();
        exe.set_param("b", &b).unwrap();
        match exe.run(&HashMap::new()) {
            Err(RuntimeError::MissingInput { name }) => assert_eq!(name, "x"),
            other => panic!("{}: expected MissingInput, got {other:?}", device.name()),
        }
        let bad = Tensor::random(&[batch, d_in + 1], DType::F32, 1);
        match exe.run(&inputs(&[("x", bad)])) {
            Err(RuntimeError::ShapeMismatch { name, expected, .. }) => {
                assert_eq!((name.as_str(), expected), ("x", vec![batch, d_in]));
            }
            other => panic!("{}: expected ShapeMismatch, got {other:?}", device.name()),
        }
        match exe.get_param("x") {
            Err(RuntimeError::UnknownParam { .. }) => {}
            other => panic!("{}: expected UnknownParam, got {other:?}", device.name()),
        }
    }
}

#[test]
fn invalid_graph_gives_a_compile_error() {
    // A graph without outputs is rejected by validation, on every device.
    let mut g = Graph::new();
    g.input("x", &[3], DType::F32).unwrap();
    for device in [
        Box::new(wgpu().clone()) as Box<dyn Device>,
        Box::new(CpuDevice::reference()),
        Box::new(CpuDevice::tile()),
    ] {
        match device.load(&g) {
            Err(RuntimeError::Compile(_)) => {}
            other => panic!("{}: expected a compile error, got {other:?}", device.name()),
        }
    }
}

/// Elementwise kernels with four or more elements per thread move 16-byte vectors
/// (`simt::lower`'s vector layout): on a PTX record with 64-thread CTAs that is
/// `ld.global.v4` / `st.global.v4`, which the PTX VM runs with its bounds, alignment and
/// race checks. Sizes are ragged (a last vector cut by the limit), one operand is a
/// slice at an odd offset (read element by element), one a broadcast row, and the
/// results match the f64 interpreter.
#[test]
fn vector_elementwise_kernels_run_on_the_ptx_vm() {
    use tessera::compiler::{compile_and_emit, Target};
    use tessera::runtime::PtxVmDevice;
    let mut g = Graph::new();
    let x = g.param("x", &[3, 1000], DType::F32).unwrap();
    let r = g.param("r", &[1000], DType::F32).unwrap();
    let s = g.param("s", &[3, 1005], DType::F32).unwrap();
    let s = g.slice(s, 1, 3, 1000).unwrap();
    let xr = g.mul(x, r).unwrap();
    let y = g.add(xr, s).unwrap();
    let y = g.gelu(y, false).unwrap();
    g.mark_output(y).unwrap();
    let t = g.param("t", &[1001], DType::F32).unwrap();
    let z = g.exp(t).unwrap();
    g.mark_output(z).unwrap();
    let target = Target {
        workgroup_size: 64,
        ..Target::ptx()
    };
    let (plan, artifact) = compile_and_emit(&g, &target).expect("compiles");
    let text: String = artifact.files.iter().map(|f| f.contents.as_str()).collect();
    for ins in ["ld.global.v4.f32", "st.global.v4.f32"] {
        assert!(text.contains(ins), "no {ins} in\n{text}");
    }
    let params = [
        ("x", Tensor::random(&[3, 1000], DType::F32, 1)),
        ("r", Tensor::random(&[1000], DType::F32, 2)),
        ("s", Tensor::random(&[3, 1005], DType::F32, 3)),
        ("t", Tensor::random(&[1001], DType::F32, 4)),
    ];
    let want = run_graph(&g, &inputs(&params)).expect("the interpreter runs");
    let mut exe = PtxVmDevice::new()
        .load_plan(plan, artifact)
        .expect("the PTX VM loads");
    for (n, v) in &params {
        exe.set_param(n, v).unwrap();
    }
    let out = exe.run(&HashMap::new()).expect("the PTX VM runs");
    assert_eq!(out.len(), 2);
    for (name, w) in &want {
        let got = &out[name];
        assert_eq!(got.shape, w.shape);
        // erf's and exp's f32 evaluation: a few ulps of values below 3.
        let err = got.max_abs_diff(w);
        assert!(err <= 1e-6, "{name}: max abs error {err}");
    }
}

/// Both CPU devices run under the memory bound given to them: too small a bound is a
/// typed error naming the node (or the plan's storage), the default runs the MLP.
#[test]
fn cpu_devices_run_under_their_memory_bound() {
    use tessera::compiler::interp::{InterpError, Limits};
    let graph = mlp_graph();
    let (batch, d_in, _) = MLP_DIMS;
    let tiny = Limits { max_bytes: 1024 };
    for device in [
        CpuDevice::reference().with_limits(tiny),
        CpuDevice::tile().with_limits(tiny),
    ] {
        assert_eq!(device.limits(), tiny);
        let mut exe = device.load(&graph).unwrap();
        let (w, b) = mlp_params();
        exe.set_param("w", &w).unwrap();
        exe.set_param("b", &b).unwrap();
        let x = Tensor::random(&[batch, d_in], DType::F32, 1);
        match exe.run(&inputs(&[("x", x)])) {
            Err(RuntimeError::Interp(InterpError::MemoryLimit { limit, .. })) => {
                assert_eq!(limit, 1024)
            }
            other => panic!("{}: expected MemoryLimit, got {other:?}", device.name()),
        }
        check_mlp_on(&device.with_limits(Limits::default()));
    }
}
