//! Scratch (to be deleted).
use tessera_compiler::graph::*;
use tessera_compiler::optim::*;
#[test]
fn scratch() {
    let mut g = Graph::new();
    let mut st = vec![];
    for i in 0..3 {
        let s: &[usize] = if i == 1 { &[5] } else { &[3, 4] };
        let p = g.param(&format!("p{i}"), s, DType::F32).unwrap();
        let gr = g.input(&format!("g{i}"), s, DType::F32).unwrap();
        let m = g.param(&format!("m{i}"), s, DType::F32).unwrap();
        let v = g.param(&format!("v{i}"), s, DType::F32).unwrap();
        st.push(ParamState { param: p, grad: gr, m, v, decay: i != 1 });
    }
    let inp = AdamWInputs::add(&mut g, "o.").unwrap();
    let opt = AdamW { max_grad_norm: Some(1.0), ..AdamW::default() };
    for u in opt.step(&mut g, &inp, &st).unwrap() {
        for x in [u.param, u.m, u.v] { g.mark_output(x).unwrap(); }
    }
    let plan = tessera_compiler::compile(&g, &tessera_compiler::Target::wgsl()).unwrap();
    eprintln!("{} kernels: {:?}", plan.kernels.len(), plan.kernels.iter().map(|k| k.name.clone()).collect::<Vec<_>>());
}
