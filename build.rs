//! Builds the Unit module against a built NGINX Unit source tree named by
//! `UNIT_SRC`: bindgen over `c/wrapper.h` with the tree's `src/` and
//! `build/include/`, and the tree's `build/src/nxt_unit.o` (libunit, which
//! unitd does not export) linked in.
//!
//! Without such a tree this stops with one message saying what is needed, so
//! that no `libnxt_rvm.so` is made that Unit would load and then ignore.

use std::env;
use std::path::{Path, PathBuf};

/// What a built tree must hold: headers, the generated configuration, libunit.
const NEEDED: [&str; 4] = [
    "src/nxt_unit.h",
    "src/nxt_application.h",
    "build/include/nxt_auto_config.h",
    "build/src/nxt_unit.o",
];

fn main() {
    println!("cargo::rerun-if-env-changed=UNIT_SRC");
    println!("cargo::rerun-if-changed=c/wrapper.h");
    let unit = unit_tree();
    for file in NEEDED {
        println!("cargo::rerun-if-changed={}", unit.join(file).display());
    }

    let bindings = bindgen::Builder::default()
        .header("c/wrapper.h")
        .clang_arg(format!("-I{}", unit.join("src").display()))
        .clang_arg(format!("-I{}", unit.join("build/include").display()))
        // Unit's own declarations only, not the C library's.
        .allowlist_file(".*/nxt_[^/]*\\.h")
        .blocklist_function("nxt_vsprintf")
        .layout_tests(false)
        .derive_debug(false)
        .generate()
        .unwrap_or_else(|e| {
            panic!(
                "bindgen over c/wrapper.h with UNIT_SRC={}: {e}",
                unit.display()
            )
        });
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    bindings
        .write_to_file(out.join("unit.rs"))
        .expect("write the Unit bindings");

    cc::Build::new()
        .object(unit.join("build/src/nxt_unit.o"))
        .compile("nxt_unit");
}

/// The Unit tree named by `UNIT_SRC`, checked to be built.
fn unit_tree() -> PathBuf {
    let help = "UNIT_SRC must name a built NGINX Unit source tree (1.35.x): the folder where \
                `./configure && make` ran, holding src/nxt_unit.h and build/src/nxt_unit.o";
    let Some(unit) = env::var_os("UNIT_SRC") else {
        panic!("\n\nUNIT_SRC is not set. {help}.\n\n");
    };
    let unit = PathBuf::from(unit);
    let missing: Vec<&str> = NEEDED
        .into_iter()
        .filter(|file| !Path::new(&unit).join(file).exists())
        .collect();
    if !missing.is_empty() {
        panic!(
            "\n\nUNIT_SRC={} lacks {}. {help}.\n\n",
            unit.display(),
            missing.join(", ")
        );
    }
    unit
}
