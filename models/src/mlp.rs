//! The demo MLP block: matmul, bias add, tanh, then a row reduction.

use tessera_compiler::graph::{DType, Graph, GraphError};

/// Builds `sum(tanh(x @ w + b), axis = 1)` for `x: [batch, d_in]`, `w: [d_in, d_hidden]`,
/// `b: [d_hidden]`; the output is named `y`.
pub fn mlp_block(batch: usize, d_in: usize, d_hidden: usize) -> Result<Graph, GraphError> {
    let mut g = Graph::new();
    let x = g.input("x", &[batch, d_in], DType::F32)?;
    let w = g.param("w", &[d_in, d_hidden], DType::F32)?;
    let b = g.param("b", &[d_hidden], DType::F32)?;
    let h = g.matmul(x, w)?;
    let h = g.add(h, b)?;
    let h = g.tanh(h)?;
    let y = g.sum(h, 1, false)?;
    g.set_name(y, "y")?;
    g.mark_output(y)?;
    Ok(g)
}
