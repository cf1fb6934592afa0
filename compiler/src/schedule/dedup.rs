//! Deduplication of identical kernels: the blocks of a transformer compile to kernels that
//! differ only in their names (`layer_norm_0`, `layer_norm_3`, …) and in the names of the
//! buffers they bind. Kernels whose tile programs, grids and parameter types are equal are
//! merged into the first of them, and every launch of a duplicate launches that kernel on
//! its own buffers. Each target then emits, assembles and (on wgpu) compiles a pipeline for
//! every *distinct* kernel once.

use super::plan::Launch;
use crate::tile::TileKernel;
use std::collections::HashMap;

/// Everything of a kernel that decides what it computes: the kernel with its name and its
/// parameters' names blanked (parameters bind by position), printed with `Debug`, which
/// keeps every constant exact (infinities and NaN included, unlike JSON).
fn key(kernel: &TileKernel) -> String {
    let mut k = kernel.clone();
    k.name.clear();
    for p in &mut k.params {
        p.name.clear();
    }
    format!("{k:?}")
}

/// Merges identical kernels, keeping the first of each set (and its name) in plan order,
/// and renumbers the launches.
pub(crate) fn dedup_kernels(kernels: Vec<TileKernel>, launches: &mut [Launch]) -> Vec<TileKernel> {
    let mut first_of: HashMap<String, usize> = HashMap::new();
    let mut new_index = Vec::with_capacity(kernels.len());
    let mut kept = Vec::new();
    for kernel in kernels {
        let k = key(&kernel);
        match first_of.get(&k) {
            Some(&i) => new_index.push(i),
            None => {
                first_of.insert(k, kept.len());
                new_index.push(kept.len());
                kept.push(kernel);
            }
        }
    }
    for l in launches {
        l.kernel = new_index[l.kernel];
    }
    kept
}

#[cfg(test)]
mod tests {
    use crate::graph::{DType, Graph};
    use crate::interp::{run_graph, run_plan, Tensor};
    use crate::{compile, Target};
    use std::collections::HashMap;

    /// Two blocks `tanh(x @ w_i)` then softmax, alike but for their names: one matmul
    /// kernel and one softmax kernel, each launched twice, with the interpreter's results.
    #[test]
    fn identical_blocks_share_kernels() {
        let mut g = Graph::new();
        let mut x = g.input("x", &[7, 33], DType::F32).unwrap();
        let mut inputs = HashMap::new();
        inputs.insert(
            "x".to_string(),
            Tensor::from_vec(
                &[7, 33],
                DType::F32,
                (0..7 * 33)
                    .map(|i| ((i * 37 % 101) as f64) / 101.0 - 0.5)
                    .collect(),
            )
            .unwrap(),
        );
        for layer in 0..2 {
            let name = format!("w{layer}");
            let w = g.param(&name, &[33, 33], DType::F32).unwrap();
            let data = (0..33 * 33)
                .map(|i| (((i + layer) * 53 % 97) as f64) / 97.0 - 0.5)
                .collect();
            inputs.insert(name, Tensor::from_vec(&[33, 33], DType::F32, data).unwrap());
            let h = g.matmul(x, w).unwrap();
            let h = g.tanh(h).unwrap();
            x = g.softmax(h).unwrap();
        }
        g.mark_output(x).unwrap();
        let want = run_graph(&g, &inputs).unwrap();
        for target in [Target::wgsl(), Target::ptx(), Target::ascend_910b()] {
            let plan = compile(&g, &target).unwrap();
            assert_eq!(plan.launches.len(), 4, "{}", target.kind);
            assert_eq!(plan.kernels.len(), 2, "{}", target.kind);
            assert_eq!(plan.launches[0].kernel, plan.launches[2].kernel);
            assert_eq!(plan.launches[1].kernel, plan.launches[3].kernel);
            let got = run_plan(&plan, &inputs).unwrap();
            let out = &g.node(x).name;
            for (a, b) in want[out].data.iter().zip(&got[out].data) {
                assert!((a - b).abs() <= 1e-6, "{}: {a} vs {b}", target.kind);
            }
            crate::backend::emit(&plan, &target).unwrap();
        }
    }

    /// Kernels that differ only in a constant (+inf vs -inf: equal once printed as JSON)
    /// stay apart; the same kernels with equal constants are merged. Two inputs, so the
    /// multi-output merge (which joins kernels sharing an input) leaves two kernels.
    #[test]
    fn kernels_differing_in_a_constant_stay_apart() {
        let plan_for = |c0: f64, c1: f64| {
            let mut g = Graph::new();
            let x = g.input("x", &[5], DType::F32).unwrap();
            let y = g.input("y", &[5], DType::F32).unwrap();
            let k0 = g.constant(c0, &[5], DType::F32).unwrap();
            let k1 = g.constant(c1, &[5], DType::F32).unwrap();
            let a = g.min(x, k0).unwrap();
            let b = g.min(y, k1).unwrap();
            g.mark_output(a).unwrap();
            g.mark_output(b).unwrap();
            compile(&g, &Target::wgsl()).unwrap()
        };
        let apart = plan_for(f64::INFINITY, f64::NEG_INFINITY);
        assert_eq!(apart.launches.len(), 2);
        assert_ne!(apart.launches[0].kernel, apart.launches[1].kernel);
        assert_eq!(apart.kernels.len(), 2);
        let merged = plan_for(f64::INFINITY, f64::INFINITY);
        assert_eq!(merged.launches.len(), 2);
        assert_eq!(merged.launches[0].kernel, merged.launches[1].kernel);
        assert_eq!(merged.kernels.len(), 1);
    }
}
