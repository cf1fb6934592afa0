//! The readable text form of the tile IR (`--emit tile`) and of whole plans.
//!
//! ```text
//! kernel matmul_bias_tanh_0 grid=[4,4,1]
//!   param 0 x: f32 len=4096 read
//!   param 1 out: f32 len=1024 write
//!   %0 = program_id 0 : i32
//!   %7 = load x[%3 + i*64 + j*1, mask i<%5, j<%6] other=0 : tile<32x8xf32>
//!   %9, %10 = for %11 = %1 to %2 step 8 iter(%12 = %4, %13 = %5) {
//!     ...
//!     yield %20, %21
//!   }
//!   store out[%3 + i*1, mask i<%5] = %7
//! ```
//! Tile axes of a block access are named `i, j, k, ..` in order.

use super::{Block, BlockAccess, Inst, InstKind, TileKernel, Ty, ValueId};
use crate::schedule::plan::{BufferRole, Plan};
use std::fmt::Write;

/// Prints a kernel as text.
pub fn print_kernel(kernel: &TileKernel) -> String {
    let mut p = Printer {
        kernel,
        out: String::new(),
    };
    let g = kernel.grid;
    let _ = writeln!(
        p.out,
        "kernel {} grid=[{},{},{}]",
        kernel.name, g[0], g[1], g[2]
    );
    for (i, param) in kernel.params.iter().enumerate() {
        let access = match param.access {
            super::Access::Read => "read",
            super::Access::Write => "write",
            super::Access::ReadWrite => "read_write",
        };
        let _ = writeln!(
            p.out,
            "  param {i} {}: {} len={} {access}",
            param.name, param.dtype, param.len
        );
    }
    p.block(&kernel.body, 1);
    p.out
}

/// Prints a plan: its buffers, storage slots, launches and outputs, then every kernel.
pub fn print_plan(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "plan: {} kernels, {} buffers, {} storage slots, {} launches",
        plan.kernels.len(),
        plan.buffers.len(),
        plan.storage.len(),
        plan.launches.len()
    );
    out.push_str("buffers:\n");
    for b in &plan.buffers {
        let role = match &b.role {
            BufferRole::Input { name } => format!("input `{name}`"),
            BufferRole::Param { name } => format!("param `{name}`"),
            BufferRole::Constant { value } => format!("constant {value}"),
            BufferRole::Output { name } => format!("output `{name}`"),
            BufferRole::Temp => "temp".to_string(),
        };
        let _ = writeln!(
            out,
            "  b{} {}{:?} len={} {role} node={} storage=s{}",
            b.id.0, b.dtype, b.shape, b.len, b.node, b.storage
        );
    }
    out.push_str("storage:\n");
    for (i, s) in plan.storage.iter().enumerate() {
        let _ = writeln!(out, "  s{i} {} bytes", s.bytes);
    }
    out.push_str("launches:\n");
    for (i, l) in plan.launches.iter().enumerate() {
        let name = plan
            .kernels
            .get(l.kernel)
            .map_or("<missing kernel>", |k| k.name.as_str());
        let args: Vec<String> = l.args.iter().map(|a| format!("b{}", a.0)).collect();
        let _ = writeln!(out, "  {i}: {name}({})", args.join(", "));
    }
    out.push_str("outputs:\n");
    for (name, b) in &plan.outputs {
        let _ = writeln!(out, "  `{name}` = b{}", b.0);
    }
    for k in &plan.kernels {
        out.push('\n');
        out.push_str(&print_kernel(k));
    }
    out
}

struct Printer<'a> {
    kernel: &'a TileKernel,
    out: String,
}

/// Name of tile axis `a` in access expressions.
fn axis_name(a: usize) -> String {
    const NAMES: [&str; 6] = ["i", "j", "k", "l", "m", "n"];
    NAMES
        .get(a)
        .map_or_else(|| format!("a{a}"), |s| s.to_string())
}

fn ty_str(ty: &Ty) -> String {
    match ty {
        Ty::Scalar(d) => d.to_string(),
        Ty::Tile(s, d) => {
            let dims: Vec<String> = s.iter().map(|x| x.to_string()).collect();
            format!("tile<{}x{d}>", dims.join("x"))
        }
    }
}

fn list(vs: &[ValueId]) -> String {
    vs.iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Printer<'_> {
    fn ty(&self, v: ValueId) -> String {
        self.kernel
            .values
            .get(v.index())
            .map_or_else(|| "<untyped>".to_string(), ty_str)
    }

    fn buffer(&self, b: usize) -> String {
        self.kernel
            .params
            .get(b)
            .map_or_else(|| format!("<buffer {b}>"), |p| p.name.clone())
    }

    fn access(&self, a: &BlockAccess) -> String {
        let mut s = format!("{}[{}", self.buffer(a.buffer), a.base);
        for (i, stride) in a.strides.iter().enumerate() {
            let _ = write!(s, " + {}*{stride}", axis_name(i));
        }
        if !a.limits.is_empty() {
            let masks: Vec<String> = a
                .limits
                .iter()
                .enumerate()
                .map(|(i, l)| format!("{}<{l}", axis_name(i)))
                .collect();
            let _ = write!(s, ", mask {}", masks.join(", "));
        }
        s.push(']');
        s
    }

    fn block(&mut self, block: &Block, depth: usize) {
        for inst in &block.insts {
            self.inst(inst, depth);
        }
        if !block.yields.is_empty() {
            let pad = "  ".repeat(depth);
            let _ = writeln!(self.out, "{pad}yield {}", list(&block.yields));
        }
    }

    fn inst(&mut self, inst: &Inst, depth: usize) {
        let pad = "  ".repeat(depth);
        let lhs = if inst.results.is_empty() {
            String::new()
        } else {
            format!("{} = ", list(&inst.results))
        };
        let ty = inst
            .results
            .first()
            .map(|&r| format!(" : {}", self.ty(r)))
            .unwrap_or_default();
        let body = match &inst.kind {
            InstKind::ProgramId { axis } => format!("program_id {axis}"),
            InstKind::ConstIndex(v) => format!("const {v}"),
            InstKind::ConstFloat(v, _) => format!("const {v:?}"),
            InstKind::Index { op, a, b } => format!("{} {a}, {b}", op.name()),
            InstKind::Unary { op, x } => format!("{} {x}", op.name()),
            InstKind::Binary { op, a, b } => format!("{} {a}, {b}", op.name()),
            InstKind::Compare { op, a, b } => format!("cmp.{} {a}, {b}", op.name()),
            InstKind::Select { cond, a, b } => format!("select {cond}, {a}, {b}"),
            InstKind::Cast { x, to } => format!("cast {x} to {to}"),
            InstKind::Splat { x, .. } => format!("splat {x}"),
            InstKind::Iota { axis, .. } => format!("iota axis={axis}"),
            InstKind::Expand { x, axis, size } => format!("expand {x} axis={axis} size={size}"),
            InstKind::Load { access, other } => {
                if access.limits.is_empty() {
                    format!("load {}", self.access(access))
                } else {
                    format!("load {} other={other:?}", self.access(access))
                }
            }
            InstKind::Store { access, value } => {
                format!("store {} = {value}", self.access(access))
            }
            InstKind::Reduce { op, x, axis } => format!("reduce_{} {x} axis={axis}", op.name()),
            InstKind::Dot { a, b, acc } => format!("dot {a}, {b}, {acc}"),
            InstKind::For {
                start,
                end,
                step,
                init,
                body,
            } => {
                let iv = body
                    .args
                    .first()
                    .map_or_else(|| "<iv>".to_string(), |v| v.to_string());
                let iters: Vec<String> = body
                    .args
                    .iter()
                    .skip(1)
                    .zip(init)
                    .map(|(a, i)| format!("{a} = {i}"))
                    .collect();
                let _ = writeln!(
                    self.out,
                    "{pad}{lhs}for {iv} = {start} to {end} step {step} iter({}) {{",
                    iters.join(", ")
                );
                self.block(body, depth + 1);
                let _ = writeln!(self.out, "{pad}}}");
                return;
            }
        };
        let _ = writeln!(self.out, "{pad}{lhs}{body}{ty}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{DType, ReduceOp};
    use crate::tile::{Access, BufferParam, IndexOp, TileBuilder};

    #[test]
    fn prints_a_reduction_kernel() {
        let mut b = TileBuilder::new();
        let pid = b.program_id(0);
        let n = b.index(100);
        let row = b.iop(IndexOp::Mul, pid, n);
        let zero = b.index(0);
        let z = b.float(0.0, DType::F32);
        let acc0 = b.splat(z, &[32]);
        let args = b.begin_for(&[acc0]);
        let (iv, acc) = (args[0], args[1]);
        let base = b.iop(IndexOp::Add, row, iv);
        let lim = b.iop(IndexOp::Sub, n, iv);
        let x = b.load(
            BlockAccess {
                buffer: 0,
                base,
                strides: vec![1],
                limits: vec![lim],
                shape: vec![32],
            },
            DType::F32,
            0.0,
        );
        let acc2 = b.binary(crate::graph::BinaryOp::Add, acc, x);
        let res = b.end_for(zero, n, 32, &[acc0], &[acc2]);
        let s = b.reduce(ReduceOp::Sum, res[0], 0);
        b.store(
            BlockAccess {
                buffer: 1,
                base: pid,
                strides: vec![],
                limits: vec![],
                shape: vec![],
            },
            s,
        );
        let params = vec![
            BufferParam {
                name: "x".into(),
                dtype: DType::F32,
                len: 400,
                access: Access::Read,
            },
            BufferParam {
                name: "y".into(),
                dtype: DType::F32,
                len: 4,
                access: Access::Write,
            },
        ];
        let k = b.finish("sum_rows_0".into(), params, [4, 1, 1]);
        let text = print_kernel(&k);
        let expected = "\
kernel sum_rows_0 grid=[4,1,1]
  param 0 x: f32 len=400 read
  param 1 y: f32 len=4 write
  %0 = program_id 0 : i32
  %1 = const 100 : i32
  %2 = imul %0, %1 : i32
  %3 = const 0 : i32
  %4 = const 0.0 : f32
  %5 = splat %4 : tile<32xf32>
  %12 = for %6 = %3 to %1 step 32 iter(%7 = %5) {
    %8 = iadd %2, %6 : i32
    %9 = isub %1, %6 : i32
    %10 = load x[%8 + i*1, mask i<%9] other=0.0 : tile<32xf32>
    %11 = add %7, %10 : tile<32xf32>
    yield %11
  }
  %13 = reduce_sum %12 axis=0 : f32
  store y[%0] = %13
";
        assert_eq!(text, expected, "\n{text}");
    }
}
