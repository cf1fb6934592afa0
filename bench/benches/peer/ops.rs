//! Single-op cases: matmul, softmax, layer norm, GELU, causal attention and the
//! embedding-table gradient (scatter-add), each as a one-op Tessera graph (parameters
//! resident on the device, the output left there) and the equivalent Burn call on the
//! same data.

use crate::Case;
use anyhow::{bail, Context, Result};
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::module::{attention, layer_norm};
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Device as BurnDevice, IndexingUpdateOp, Int, Tensor as BurnTensor, TensorData};
use std::collections::HashMap;
use tessera::compiler::graph::DType;
use tessera::compiler::{Graph, NodeId};
use tessera::runtime::{Device, Executable, Tensor, WgpuDevice};

/// Largest accepted `max |tessera - burn| / max |burn|`: both sides compute in f32 with
/// different summation orders; a wrong computation is off by far more.
const AGREE: f64 = 1e-4;

/// The op cases.
pub fn cases(device: &WgpuDevice, dev: &BurnDevice) -> Result<Vec<Case>> {
    let mut out = Vec::new();
    for n in [256usize, 512, 1024] {
        out.push(matmul(device, dev, n)?);
    }
    out.push(softmax_rows(device, dev, 1024, 4096)?);
    out.push(layer_norm_rows(device, dev, 4096, 768)?);
    out.push(gelu_elementwise(device, dev, 1 << 22)?);
    out.push(causal_attention(device, dev, [2, 8, 256, 64])?);
    out.push(scatter_add_rows(device, dev, 8192, 4096, 64)?);
    Ok(out)
}

/// A graph of f32 parameters `specs` and one output `y = body(params)`.
fn graph(
    specs: &[(&str, &[usize])],
    body: impl FnOnce(&mut Graph, &[NodeId]) -> Result<NodeId>,
) -> Result<Graph> {
    let mut g = Graph::new();
    let ids = specs
        .iter()
        .map(|(n, s)| g.param(n, s, DType::F32))
        .collect::<Result<Vec<_>, _>>()?;
    let y = body(&mut g, &ids)?;
    g.set_name(y, "y")?;
    g.mark_output(y)?;
    Ok(g)
}

/// Random inputs (`Tensor::random`, uniform in [-1, 1), seeds 1, 2, ...).
fn inputs(specs: &[(&str, &[usize])]) -> Vec<Tensor> {
    specs
        .iter()
        .enumerate()
        .map(|(i, (_, s))| Tensor::random(s, DType::F32, i as u64 + 1))
        .collect()
}

/// The same values as a Burn tensor.
fn to_burn<const D: usize>(t: &Tensor, dev: &BurnDevice) -> Result<BurnTensor<D>> {
    let shape: [usize; D] = t
        .shape
        .clone()
        .try_into()
        .map_err(|s| anyhow::anyhow!("shape {s:?} is not of rank {D}"))?;
    let data: Vec<f32> = t.data.iter().map(|&v| v as f32).collect();
    Ok(BurnTensor::<D>::from_data(
        TensorData::new(data, shape),
        dev,
    ))
}

/// Loads `graph` on Tessera's device with `values` as its parameters (named by `specs`),
/// runs it once and returns the executable (its output now discarded: later runs leave
/// it on the device) and that first output.
fn load(
    device: &WgpuDevice,
    graph: &Graph,
    specs: &[(&str, &[usize])],
    values: &[Tensor],
) -> Result<(Executable, Tensor)> {
    let mut exe = device.load(graph)?;
    for ((name, _), v) in specs.iter().zip(values) {
        exe.set_param(name, v)?;
    }
    let mut out = exe.run(&HashMap::new())?;
    let y = out.remove("y").context("the graph has no output `y`")?;
    exe.discard_output("y")?;
    Ok((exe, y))
}

/// `max |a - b| / max |b|`, failing beyond [`AGREE`].
fn agree(name: &str, tessera: &Tensor, burn: BurnTensor<4>) -> Result<String> {
    let b: Vec<f32> = burn
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("reading Burn's result back: {e:?}"))?;
    if b.len() != tessera.data.len() {
        bail!(
            "{name}: Burn gave {} values, Tessera {}",
            b.len(),
            tessera.data.len()
        );
    }
    let scale = b.iter().fold(0.0f64, |m, &v| m.max(f64::from(v).abs()));
    let diff = tessera
        .data
        .iter()
        .zip(&b)
        .fold(0.0f64, |m, (&t, &v)| m.max((t - f64::from(v)).abs()));
    let rel = diff / scale.max(f64::MIN_POSITIVE);
    if rel.is_nan() || rel > AGREE {
        bail!(
            "{name}: Tessera and Burn disagree: max |diff| / max |value| = {rel:.2e} > {AGREE:.0e}"
        );
    }
    Ok(format!("{rel:.1e}"))
}

/// What a case is called and computes (see [`Case`]).
struct Label {
    name: String,
    what: String,
    flops: Option<f64>,
}

/// Builds a case from a Tessera graph and a Burn function of the same inputs.
fn case<const D: usize>(
    device: &WgpuDevice,
    dev: &BurnDevice,
    Label { name, what, flops }: Label,
    specs: &[(&str, &[usize])],
    body: impl FnOnce(&mut Graph, &[NodeId]) -> Result<NodeId>,
    burn_fn: impl Fn(&[BurnTensor<D>]) -> BurnTensor<D> + 'static,
) -> Result<Case> {
    let g = graph(specs, body).with_context(|| format!("building {name}"))?;
    let values = inputs(specs);
    let (mut exe, y) =
        load(device, &g, specs, &values).with_context(|| format!("loading {name}"))?;
    let b_in = values
        .iter()
        .map(|v| to_burn::<D>(v, dev))
        .collect::<Result<Vec<_>>>()?;
    let first = burn_fn(&b_in);
    let agreement = agree(&name, &y, first.reshape([1, 1, 1, -1]))?;
    let empty = HashMap::new();
    let sync_dev = dev.clone();
    Ok(Case {
        name,
        what,
        flops,
        agreement,
        tessera: Box::new(move || {
            exe.run(&empty)?;
            Ok(())
        }),
        burn: Box::new(move || {
            let y = burn_fn(&b_in);
            sync_dev
                .sync()
                .map_err(|e| anyhow::anyhow!("Burn sync: {e:?}"))?;
            drop(y);
            Ok(())
        }),
    })
}

fn matmul(device: &WgpuDevice, dev: &BurnDevice, n: usize) -> Result<Case> {
    case::<2>(
        device,
        dev,
        Label {
            name: format!("matmul_f32_{n}"),
            what: format!("matmul f32 {n}x{n} @ {n}x{n}"),
            flops: Some(2.0 * (n as f64).powi(3)),
        },
        &[("a", &[n, n]), ("b", &[n, n])],
        |g, p| Ok(g.matmul(p[0], p[1])?),
        |t| t[0].clone().matmul(t[1].clone()),
    )
}

fn softmax_rows(device: &WgpuDevice, dev: &BurnDevice, rows: usize, cols: usize) -> Result<Case> {
    case::<2>(
        device,
        dev,
        Label {
            name: format!("softmax_{rows}x{cols}"),
            what: format!("softmax over the last axis of {rows}x{cols}"),
            flops: None,
        },
        &[("x", &[rows, cols])],
        |g, p| Ok(g.softmax(p[0])?),
        |t| softmax(t[0].clone(), 1),
    )
}

fn layer_norm_rows(
    device: &WgpuDevice,
    dev: &BurnDevice,
    rows: usize,
    cols: usize,
) -> Result<Case> {
    const EPS: f64 = 1e-5;
    // gamma, beta as [1, cols] parameters on Tessera's side (broadcast rows), [cols] on
    // Burn's (its layer_norm takes rank-1 affine tensors).
    case::<2>(
        device,
        dev,
        Label {
            name: format!("layer_norm_{rows}x{cols}"),
            what: format!("layer norm (affine) over the last axis of {rows}x{cols}"),
            flops: None,
        },
        &[
            ("x", &[rows, cols]),
            ("gamma", &[1, cols]),
            ("beta", &[1, cols]),
        ],
        |g, p| {
            let gamma = g.reshape(p[1], &[cols])?;
            let beta = g.reshape(p[2], &[cols])?;
            Ok(g.layer_norm(p[0], Some((gamma, beta)), EPS)?)
        },
        move |t| {
            let gamma: BurnTensor<1> = t[1].clone().reshape([cols]);
            let beta: BurnTensor<1> = t[2].clone().reshape([cols]);
            layer_norm(t[0].clone(), gamma, Some(beta), EPS)
        },
    )
}

fn gelu_elementwise(device: &WgpuDevice, dev: &BurnDevice, n: usize) -> Result<Case> {
    case::<1>(
        device,
        dev,
        Label {
            name: format!("gelu_{n}"),
            what: format!("GELU (erf) of {n} values"),
            flops: None,
        },
        &[("x", &[n])],
        |g, p| Ok(g.gelu(p[0], false)?),
        |t| gelu(t[0].clone()),
    )
}

/// The gradient of an embedding table of `v` rows of `d`: `n` rows scattered by id and
/// summed (Tessera `scatter_add`; Burn `select_assign` with `IndexingUpdateOp::Add` into
/// zeros). Ids `i * 7919 mod v`: spread over the table, as a real vocabulary's are.
fn scatter_add_rows(
    device: &WgpuDevice,
    dev: &BurnDevice,
    v: usize,
    n: usize,
    d: usize,
) -> Result<Case> {
    let name = format!("scatter_add_v{v}_n{n}_d{d}");
    let mut g = Graph::new();
    let src = g.param("src", &[n, d], DType::F32)?;
    let ids = g.param("ids", &[n], DType::I32)?;
    let y = g.scatter_add(src, ids, 0, v)?;
    g.set_name(y, "y")?;
    g.mark_output(y)?;
    let src_v = Tensor::random(&[n, d], DType::F32, 1);
    let id_list: Vec<i64> = (0..n).map(|i| ((i * 7919) % v) as i64).collect();
    let ids_v = Tensor {
        shape: vec![n],
        dtype: DType::I32,
        data: id_list.iter().map(|&i| i as f64).collect(),
    };
    let specs: [(&str, &[usize]); 2] = [("src", &[n, d]), ("ids", &[n])];
    let (mut exe, y) = load(device, &g, &specs, &[src_v.clone(), ids_v])
        .with_context(|| format!("loading {name}"))?;
    let b_src: BurnTensor<2> = to_burn(&src_v, dev)?;
    let b_ids = BurnTensor::<1, Int>::from_data(TensorData::new(id_list, [n]), dev);
    let table = dev.clone();
    let burn_fn = move || {
        BurnTensor::<2>::zeros([v, d], &table).select_assign(
            0,
            b_ids.clone(),
            b_src.clone(),
            IndexingUpdateOp::Add,
        )
    };
    let agreement = agree(&name, &y, burn_fn().reshape([1, 1, 1, -1]))?;
    let empty = HashMap::new();
    let sync_dev = dev.clone();
    Ok(Case {
        name,
        what: format!("scatter-add (embedding gradient) of {n} rows of {d} into {v} rows"),
        flops: None,
        agreement,
        tessera: Box::new(move || {
            exe.run(&empty)?;
            Ok(())
        }),
        burn: Box::new(move || {
            let y = burn_fn();
            sync_dev
                .sync()
                .map_err(|e| anyhow::anyhow!("Burn sync: {e:?}"))?;
            drop(y);
            Ok(())
        }),
    })
}

fn causal_attention(device: &WgpuDevice, dev: &BurnDevice, shape: [usize; 4]) -> Result<Case> {
    let [b, h, t, d] = shape;
    let s: &[usize] = &shape;
    case::<4>(
        device,
        dev,
        Label {
            name: format!("attention_causal_b{b}_h{h}_t{t}_d{d}"),
            what: format!("causal attention, batch {b}, {h} heads, {t} tokens, head dim {d}"),
            // Half of the T x T scores, two matmuls, 2 flops per multiply-add.
            flops: Some(2.0 * (b * h * t * t * d) as f64),
        },
        &[("q", s), ("k", s), ("v", s)],
        |g, p| Ok(g.attention(p[0], p[1], p[2], None, true, None)?),
        |x| {
            attention(
                x[0].clone(),
                x[1].clone(),
                x[2].clone(),
                None,
                None,
                AttentionModuleOptions {
                    scale: None,
                    softcap: None,
                    is_causal: true,
                },
            )
        },
    )
}
