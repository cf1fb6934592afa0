//! The GPT training step: forward, backward and a clipped AdamW update of every
//! parameter, on a fixed batch of tiny-shakespeare.
//!
//! Tessera: the [`Trainer`] (one compiled graph, one submission per step, the loss read
//! back). Burn: the same model (`tests/support/burn_gpt.rs`, also the reference of
//! `tests/burn_reference.rs`) on its autodiff wgpu backend, with the same AdamW written
//! in Burn tensor ops on the device (Burn's optimizer clips per parameter, not by the
//! global norm), the loss read back. Both start from the same initial weights; the check
//! compares their first three losses.

#[path = "../../../tests/support/burn_gpt.rs"]
mod burn_gpt;

use crate::Case;
use anyhow::{anyhow, bail, Context, Result};
use burn::tensor::{Device as BurnDevice, Tensor as BurnTensor};
use burn_gpt::{adamw_update, burn_loss, burn_params, leaf, Params};
use std::collections::HashMap;
use tessera::compiler::optim::{AdamW, CLIP_EPS};
use tessera::models::data::{Dataset, Split};
use tessera::models::gpt::GptConfig;
use tessera::models::rng::Rng;
use tessera::runtime::WgpuDevice;
use tessera::train::trainer::{gpt_inputs, gpt_training_graph};
use tessera::train::{LrSchedule, Trainer, TrainerOptions};

/// Largest accepted relative difference of the two sides' first losses.
const AGREE: f64 = 1e-4;
/// Steps compared before timing.
const CHECK_STEPS: usize = 3;
const LR: f64 = 1e-3;
const SEED: u64 = 7;

/// The GPT cases: the demo's model, and a 2-layer one.
pub fn cases(device: &WgpuDevice, dev: &BurnDevice) -> Result<Vec<Case>> {
    let demo = GptConfig {
        n_layer: 1,
        n_head: 4,
        n_embd: 64,
        block_size: 32,
        vocab_size: 65,
    };
    let two = GptConfig {
        n_layer: 2,
        n_embd: 64,
        n_head: 4,
        block_size: 64,
        vocab_size: 65,
    };
    Ok(vec![
        gpt_case(device, dev, "gpt_step_demo", &demo, 8)?,
        gpt_case(device, dev, "gpt_step_2layer", &two, 16)?,
    ])
}

fn optimizer() -> AdamW {
    AdamW {
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
        weight_decay: 0.1,
        max_grad_norm: Some(1.0),
    }
}

fn gpt_case(
    device: &WgpuDevice,
    dev: &BurnDevice,
    name: &str,
    cfg: &GptConfig,
    batch: usize,
) -> Result<Case> {
    let seq = cfg.block_size;
    let opt = optimizer();
    let data = Dataset::tiny_shakespeare()?;
    let b = data.batch(Split::Train, batch, seq, &mut Rng::new(SEED))?;
    let init = cfg.init_params(SEED)?;

    let (tg, _) = gpt_training_graph(cfg, batch, seq, &opt)?;
    let specs = tg.params.clone();
    let options = TrainerOptions {
        schedule: LrSchedule::constant(LR),
        seed: SEED,
        config: serde_json::to_value(cfg)?,
    };
    let mut trainer = Trainer::new(device, tg, &init, options)
        .with_context(|| format!("loading {name} on Tessera"))?;
    let inputs = gpt_inputs(&b);

    let mut burn = BurnTrainer {
        params: burn_params(&init, &dev.clone().autodiff()),
        m: HashMap::new(),
        v: HashMap::new(),
        specs,
        opt,
        step: 0,
        cfg: cfg.clone(),
        shape: (batch, seq),
        tokens: b.tokens.data.clone(),
        targets: b.targets.data.clone(),
    };

    let mut worst = 0.0f64;
    for step in 0..CHECK_STEPS {
        let t = trainer.step(&inputs)?;
        let u = burn.step()?;
        let rel = (t - u).abs() / u.abs();
        if rel.is_nan() || rel > AGREE {
            bail!("{name}: step {step}: loss Tessera {t} Burn {u} (rel {rel:.2e} > {AGREE:.0e})");
        }
        println!("{name}: step {step}: loss Tessera {t:.9}, Burn {u:.9}");
        worst = worst.max(rel);
    }

    let params = cfg.num_params()?;
    Ok(Case {
        name: name.to_string(),
        what: format!(
            "GPT training step: {} layer(s), {} heads, width {}, context {seq}, batch {batch} \
             ({params} parameters; forward + backward + AdamW)",
            cfg.n_layer, cfg.n_head, cfg.n_embd
        ),
        flops: None,
        agreement: format!("{worst:.1e} (losses of {CHECK_STEPS} steps)"),
        tessera: Box::new(move || {
            trainer.step(&inputs)?;
            Ok(())
        }),
        burn: Box::new(move || {
            burn.step()?;
            Ok(())
        }),
    })
}

/// The Burn side's training state.
struct BurnTrainer {
    params: Params,
    m: HashMap<String, BurnTensor<2>>,
    v: HashMap<String, BurnTensor<2>>,
    /// Parameter names and whether weight decay applies (Tessera's list).
    specs: Vec<(String, bool)>,
    opt: AdamW,
    step: i32,
    cfg: GptConfig,
    shape: (usize, usize),
    tokens: Vec<f64>,
    targets: Vec<f64>,
}

impl BurnTrainer {
    /// One step: loss, gradients, the clipped AdamW update (as Tessera's, see
    /// `tessera_compiler::optim`); returns the loss (read back, which waits for the step).
    fn step(&mut self) -> Result<f64> {
        let loss = burn_loss(
            &self.params,
            &self.cfg,
            self.shape,
            &self.tokens,
            &self.targets,
        );
        let grads = loss.backward();
        self.step += 1;
        let opt = &self.opt;
        let mut gs = Vec::with_capacity(self.specs.len());
        for (name, _) in &self.specs {
            let g = self.params[name]
                .grad(&grads)
                .ok_or_else(|| anyhow!("Burn computed no gradient for {name}"))?;
            gs.push(g);
        }
        let clip = match opt.max_grad_norm {
            Some(max) => {
                let sq = gs
                    .iter()
                    .map(|g| g.clone().square().sum())
                    .reduce(|a, b| a + b)
                    .context("no parameters")?;
                let scale = sq.sqrt().add_scalar(CLIP_EPS).recip().mul_scalar(max);
                Some(scale.clamp_max(1.0).reshape([1, 1]))
            }
            None => None,
        };
        let bc1 = 1.0 - opt.beta1.powi(self.step);
        let bc2 = 1.0 - opt.beta2.powi(self.step);
        for ((name, decay), g) in self.specs.iter().zip(gs) {
            let g = match &clip {
                Some(c) => g * c.clone(),
                None => g,
            };
            let p0 = self.params[name].clone().inner();
            let m0 = self.m.remove(name).unwrap_or_else(|| p0.zeros_like());
            let v0 = self.v.remove(name).unwrap_or_else(|| p0.zeros_like());
            let (p1, m1, v1) = adamw_update(opt, LR, (bc1, bc2), *decay, g, (p0, m0, v0));
            self.params.insert(name.clone(), leaf(p1));
            self.m.insert(name.clone(), m1);
            self.v.insert(name.clone(), v1);
        }
        let value: f32 = loss
            .inner()
            .try_into_scalar()
            .map_err(|e| anyhow!("reading Burn's loss back: {e:?}"))?;
        Ok(f64::from(value))
    }
}
