//! `cargo xtask setup | test | demo | shaders`.

fn main() {}
