//! Kernel count of the profile-size GPT training graph (2 layers, 4 heads, width 64,
//! context 64, vocabulary 65, batch 16: `examples/profile_gpt.rs`) with and without the scheduler's multi-output
//! elementwise kernels (`ScheduleOptions::multi_output`), which store several values per
//! kernel (AdamW's `m'`, `v'`, `p'`: one kernel of 8 buffers per parameter on every
//! target). Every kernel stays within the target's storage-buffer limit, both plans have
//! the same graph outputs and every output buffer is written by some launch of the
//! merged plan, and on every target the merged plan has fewer launches. `--nocapture` prints the counts.

use tessera::compiler::optim::AdamW;
use tessera::compiler::schedule::plan::BufferRole;
use tessera::compiler::schedule::{schedule_with_options, ScheduleOptions};
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

/// Names of the kernels storing more than one value.
fn multi_output(plan: &Plan) -> Vec<&str> {
    plan.kernels
        .iter()
        .filter(|k| k.params.iter().filter(|p| p.access != Access::Read).count() > 1)
        .map(|k| k.name.as_str())
        .collect()
}

#[test]
fn demo_gpt_training_graph_kernel_count() {
    let (tg, _) = gpt_training_graph(&demo_config(), 16, 64, &AdamW::default()).unwrap();
    let params = tg.params.len();
    for target in [Target::wgsl(), Target::ptx(), Target::ascend_910b()] {
        let plan = compile(&tg.graph, &target).unwrap();
        let unmerged = schedule_with_options(
            &tg.graph,
            &target,
            &ScheduleOptions {
                multi_output: false,
            },
        )
        .unwrap();
        assert!(multi_output(&unmerged).is_empty());
        for k in &plan.kernels {
            assert!(
                k.params.len() <= target.max_storage_buffers,
                "{} binds {} buffers",
                k.name,
                k.params.len()
            );
        }
        let names = |p: &Plan| p.outputs.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(names(&plan), names(&unmerged));
        for (name, id) in &plan.outputs {
            let role = &plan.buffer(*id).role;
            if matches!(role, BufferRole::Input { .. } | BufferRole::Param { .. }) {
                continue;
            }
            let written = plan.launches.iter().any(|l| {
                l.args
                    .iter()
                    .zip(&plan.kernels[l.kernel].params)
                    .any(|(a, p)| a == id && p.access != Access::Read)
            });
            assert!(
                written,
                "{:?}: output `{name}` is never written",
                target.kind
            );
        }
        let (after, before) = (plan.launches.len(), unmerged.launches.len());
        println!(
            "{:?}: {after} launches of {} kernels ({before} launches of {} kernels without \
             multi-output kernels; {params} parameters); multi-output kernels: {:?}",
            target.kind,
            plan.kernels.len(),
            unmerged.kernels.len(),
            multi_output(&plan)
        );
        // AdamW alone saves 2 launches per parameter (3 kernels become 1).
        let saved = 2;
        assert!(
            before - after >= saved * params,
            "{:?}: {before} -> {after} launches",
            target.kind
        );
    }
}
