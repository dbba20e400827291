//! The `rvm` world's bindings (see the witgen crate).

fn main() {
    witgen::bindings(None, "rvm:lambda/rvm");
}
