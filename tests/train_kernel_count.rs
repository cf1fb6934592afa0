//! Kernel count of the demo-size GPT training graph (2 layers, 4 heads, width 64,
//! context 64, vocabulary 65, batch 16): the scheduler's multi-output elementwise
//! kernels store several values per kernel (AdamW's `m'`, `v'`, `p'`, backward values
//! read by several kernels). Without them every stored value is the root of a kernel of
//! its own, so the count without merging is the number of values the launches store
//! (each launch's written buffers). Every kernel stays within the target's
//! storage-buffer limit, and on every target the merged plan has fewer launches.

use tessera::compiler::optim::AdamW;
use tessera::compiler::tile::Access;
use tessera::compiler::{compile, Plan, Target};
use tessera::models::gpt::GptConfig;
use tessera::train::trainer::gpt_training_graph;

fn demo_config() -> GptConfig {
    GptConfig {
        n_layer: 2,
        n_head: 4,
        n_embd: 64,
        block_size: 64,
        vocab_size: 65,
    }
}

/// `(launches, launches one value each would need)`.
fn counts(plan: &Plan) -> (usize, usize) {
    let unmerged = plan
        .launches
        .iter()
        .map(|l| {
            plan.kernels[l.kernel]
                .params
                .iter()
                .filter(|p| p.access != Access::Read)
                .count()
        })
        .sum();
    (plan.launches.len(), unmerged)
}

#[test]
fn demo_gpt_training_graph_kernel_count() {
    let (tg, _) = gpt_training_graph(&demo_config(), 16, 64, &AdamW::default()).unwrap();
    for target in [Target::wgsl(), Target::ptx(), Target::ascend_910b()] {
        let plan = compile(&tg.graph, &target).unwrap();
        for k in &plan.kernels {
            assert!(
                k.params.len() <= target.max_storage_buffers,
                "{} binds {} buffers",
                k.name,
                k.params.len()
            );
        }
        if std::env::var("TESSERA_DEBUG_KERNELS").is_ok() {
            for l in &plan.launches {
                let k = &plan.kernels[l.kernel];
                let args: Vec<String> = l.args.iter().zip(&k.params).map(|(a, p)| {
                    let b = plan.buffer(*a);
                    format!("{}{:?}{:?}", if p.access == Access::Read { "r" } else { "W" }, a.0, b.shape)
                }).collect();
                println!("{} {:?}", k.name, args);
            }
        }
        let (after, before) = counts(&plan);
        let multi: Vec<&str> = plan
            .kernels
            .iter()
            .filter(|k| k.params.iter().filter(|p| p.access != Access::Read).count() > 1)
            .map(|k| k.name.as_str())
            .collect();
        println!(
            "{:?}: {after} launches ({} kernels), {before} without multi-output kernels; \
             multi-output: {multi:?}",
            target.kind,
            plan.kernels.len()
        );
        assert!(after < before, "{:?}: no kernel was merged", target.kind);
    }
}
