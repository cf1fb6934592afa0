//! Small helpers for writing readable C++: an indenting line writer, identifier
//! sanitisation, literals and the C++ spelling of tile-IR dtypes.

use crate::graph::DType;
use std::fmt::Write as _;

/// Bytes of one UB / L1 data block: the alignment unit of every local buffer.
pub(crate) const BLOCK_BYTES: usize = 32;

/// Rounds `n` up to a multiple of `m` (`m > 0`).
pub(crate) fn round_up(n: usize, m: usize) -> usize {
    n.div_ceil(m) * m
}

/// An indenting line writer.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    out: String,
    indent: usize,
}

impl Writer {
    /// A writer starting at indentation level `indent` (4 spaces per level).
    pub(crate) fn new(indent: usize) -> Self {
        Writer {
            out: String::new(),
            indent,
        }
    }

    /// Appends one line at the current indentation (an empty line stays empty).
    pub(crate) fn line(&mut self, text: impl AsRef<str>) {
        let text = text.as_ref();
        if text.is_empty() {
            self.out.push('\n');
            return;
        }
        for _ in 0..self.indent {
            self.out.push_str("    ");
        }
        self.out.push_str(text);
        self.out.push('\n');
    }

    /// Appends a `// comment` line.
    pub(crate) fn comment(&mut self, text: impl AsRef<str>) {
        self.line(format!("// {}", text.as_ref()));
    }

    /// Opens a block: writes `head {` and indents.
    pub(crate) fn open(&mut self, head: impl AsRef<str>) {
        let head = head.as_ref();
        if head.is_empty() {
            self.line("{");
        } else {
            self.line(format!("{head} {{"));
        }
        self.indent += 1;
    }

    /// Closes a block opened with [`Writer::open`].
    pub(crate) fn close(&mut self) {
        self.indent = self.indent.saturating_sub(1);
        self.line("}");
    }

    /// Appends text produced by another writer verbatim.
    pub(crate) fn raw(&mut self, text: &str) {
        self.out.push_str(text);
    }

    /// The text written so far.
    pub(crate) fn finish(self) -> String {
        self.out
    }
}

/// A valid C identifier made from `name`: non-alphanumerics become `_`, a leading digit
/// gets a `_` prefix, an empty name becomes `_`.
pub(crate) fn ident(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    // Reserved spellings (`__x`, `_X`) are legal but confusing; keep them readable.
    if is_cpp_keyword(&s) {
        s.push('_');
    }
    s
}

fn is_cpp_keyword(s: &str) -> bool {
    matches!(
        s,
        "auto"
            | "bool"
            | "break"
            | "case"
            | "char"
            | "class"
            | "const"
            | "continue"
            | "default"
            | "delete"
            | "do"
            | "double"
            | "else"
            | "enum"
            | "extern"
            | "float"
            | "for"
            | "goto"
            | "if"
            | "int"
            | "long"
            | "new"
            | "operator"
            | "private"
            | "public"
            | "register"
            | "return"
            | "short"
            | "signed"
            | "sizeof"
            | "static"
            | "struct"
            | "switch"
            | "template"
            | "this"
            | "typedef"
            | "union"
            | "unsigned"
            | "void"
            | "volatile"
            | "while"
            | "half"
            | "pipe"
            | "main"
    )
}

/// A C++ `float` literal that reads back as exactly `v as f32`.
pub(crate) fn f32_lit(v: f64) -> String {
    let f = v as f32;
    if f.is_nan() {
        "__builtin_nanf(\"\")".to_string()
    } else if f.is_infinite() {
        if f > 0.0 {
            "__builtin_huge_valf()".to_string()
        } else {
            "(-__builtin_huge_valf())".to_string()
        }
    } else {
        // `{:?}` prints the shortest string that round-trips to the same f32, always
        // with a `.` or an exponent, so appending `f` gives a valid C++ float literal.
        let s = format!("{f:?}");
        if s.starts_with('-') {
            format!("({s}f)")
        } else {
            format!("{s}f")
        }
    }
}

/// A C++ literal of the given dtype for `v` (ints truncated toward zero).
pub(crate) fn lit(v: f64, dtype: DType) -> String {
    match dtype {
        DType::F32 | DType::F16 | DType::BF16 => f32_lit(v),
        DType::I32 => {
            let i = if v.is_finite() {
                v.trunc().clamp(i32::MIN as f64, i32::MAX as f64) as i64
            } else {
                0
            };
            if i == i32::MIN as i64 {
                "(-2147483647 - 1)".to_string()
            } else if i < 0 {
                format!("({i})")
            } else {
                format!("{i}")
            }
        }
        DType::U32 | DType::Bool => {
            let u = if v.is_finite() && v > 0.0 {
                v.trunc().min(u32::MAX as f64) as u64
            } else {
                0
            };
            format!("{u}u")
        }
    }
}

/// A C++ integer literal for an i64 (parenthesised when negative).
pub(crate) fn int_lit(v: i64) -> String {
    if v < 0 {
        format!("({v})")
    } else {
        format!("{v}")
    }
}

/// The C++ element type of a global-memory buffer of `dtype`.
pub(crate) fn gm_type(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "float",
        DType::F16 => "half",
        DType::BF16 => "bfloat16_t",
        DType::I32 => "int32_t",
        DType::U32 | DType::Bool => "uint32_t",
    }
}

/// The C++ type tile values of `dtype` are computed in (in UB) and scalars are held in:
/// every float dtype is computed in `float` (A2 has no bf16 arithmetic; f16 is widened so
/// results match the f32 tile interpreter), integers as themselves.
pub(crate) fn compute_type(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 | DType::F16 | DType::BF16 => "float",
        DType::I32 => "int32_t",
        DType::U32 | DType::Bool => "uint32_t",
    }
}

/// Bytes of one element of [`compute_type`].
pub(crate) fn compute_size(dtype: DType) -> usize {
    match dtype {
        DType::F32 | DType::F16 | DType::BF16 | DType::I32 | DType::U32 | DType::Bool => 4,
    }
}

/// Joins a comment-friendly list.
pub(crate) fn join<I: IntoIterator<Item = String>>(items: I, sep: &str) -> String {
    let mut s = String::new();
    for (i, it) in items.into_iter().enumerate() {
        if i > 0 {
            s.push_str(sep);
        }
        let _ = write!(s, "{it}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_literals_round_trip() {
        assert_eq!(f32_lit(1.0), "1.0f");
        assert_eq!(f32_lit(-2.5), "(-2.5f)");
        assert_eq!(f32_lit(0.1), "0.1f");
        assert_eq!(f32_lit(f64::NEG_INFINITY), "(-__builtin_huge_valf())");
        assert_eq!(f32_lit(1e-10), "1e-10f");
    }

    #[test]
    fn identifiers_are_sanitised() {
        assert_eq!(ident("x.1"), "x_1");
        assert_eq!(ident("1abc"), "_1abc");
        assert_eq!(ident("float"), "float_");
        assert_eq!(ident(""), "_");
    }
}
