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

    /// Appends one line at the current indentation (an empty line stays empty). A `//`
    /// comment at its end (outside string literals) may quote node names: it is made
    /// printable ASCII by [`crate::backend::comment_safe`].
    pub(crate) fn line(&mut self, text: impl AsRef<str>) {
        let text = text.as_ref();
        if text.is_empty() {
            self.out.push('\n');
            return;
        }
        for _ in 0..self.indent {
            self.out.push_str("    ");
        }
        match comment_start(text) {
            Some(i) => {
                self.out.push_str(&text[..i]);
                self.out.push_str(&crate::backend::comment_safe(&text[i..]));
            }
            None => self.out.push_str(text),
        }
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

/// The byte offset of the `//` that starts a comment in a line of C++, if any: the first
/// one outside a string literal.
fn comment_start(line: &str) -> Option<usize> {
    let mut in_string = false;
    let mut escaped = false;
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if b == b'/' && bytes.get(i + 1) == Some(&b'/') {
            return Some(i);
        }
    }
    None
}

/// A valid C identifier made from `name`: non-alphanumerics become `_`, a leading digit
/// gets a `_` prefix, an empty name becomes `_`, and a spelling that could mean something
/// else in the emitted code gets a `_` suffix: a C++ keyword or literal (`nullptr`,
/// `true`), a name starting with a capital (the Ascend C API, `using namespace AscendC`
/// in every kernel, and macros such as `GM_ADDR`), a `..._t` type name (`uint8_t`), a
/// kernel's `..._do` helper, or a C library macro (`stdout`, `errno`, `assert`).
pub(crate) fn ident(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    // Reserved spellings (`__x`, `_X`) are legal but confusing; keep them readable.
    if is_cpp_keyword(&s)
        || s.starts_with(|c: char| c.is_ascii_uppercase())
        || s.ends_with("_t")
        || s.ends_with("_do")
    {
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
            // Literals, alternative tokens and the other C++ keywords.
            | "nullptr"
            | "true"
            | "false"
            | "alignas"
            | "alignof"
            | "and"
            | "and_eq"
            | "asm"
            | "bitand"
            | "bitor"
            | "catch"
            | "compl"
            | "concept"
            | "consteval"
            | "constexpr"
            | "constinit"
            | "const_cast"
            | "co_await"
            | "co_return"
            | "co_yield"
            | "decltype"
            | "dynamic_cast"
            | "explicit"
            | "export"
            | "friend"
            | "inline"
            | "mutable"
            | "namespace"
            | "noexcept"
            | "not"
            | "not_eq"
            | "or"
            | "or_eq"
            | "protected"
            | "reinterpret_cast"
            | "requires"
            | "static_assert"
            | "static_cast"
            | "thread_local"
            | "throw"
            | "try"
            | "typeid"
            | "typename"
            | "using"
            | "virtual"
            | "xor"
            | "xor_eq"
            | "restrict"
            // C library macros and the namespace of the standard library.
            | "stdin"
            | "stdout"
            | "stderr"
            | "errno"
            | "assert"
            | "offsetof"
            | "std"
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
        assert_eq!(comment_start(r#"f("a//b\"//c"); // x"#), Some(16));
        assert_eq!(comment_start("int x; // y"), Some(7));
        assert_eq!(comment_start(r#"g("//");"#), None);
        let mut w = Writer::new(0);
        w.line("x = 1; // größe\\");
        w.line(r#"f("é");"#);
        assert_eq!(w.out, "x = 1; // gr<U+00F6><U+00DF>e<U+005C>\nf(\"é\");\n");
        assert_eq!(ident("float"), "float_");
        assert_eq!(ident(""), "_");
        for (name, want) in [
            ("nullptr", "nullptr_"),
            ("true", "true_"),
            ("GM_ADDR", "GM_ADDR_"),
            ("Exp", "Exp_"),
            ("uint8_t", "uint8_t_"),
            ("add_1_do", "add_1_do_"),
            ("stdout", "stdout_"),
            ("w_q", "w_q"),
        ] {
            assert_eq!(ident(name), want);
        }
    }
}
