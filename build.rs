//! Builds the Unit module against a built source tree of NGINX Unit or
//! FreeUnit named by `UNIT_SRC`: bindgen over `c/wrapper.h` with the tree's
//! `src/` and `build/include/`, and the tree's `build/src/nxt_unit.o`
//! (libunit, which unitd does not export) linked in.
//!
//! What the module reads of libunit's private state comes from the tree
//! itself: the shared-memory segment header and its sizes from its headers,
//! the largest plain message from its `nxt_unit.c`. A tree of a version the
//! module was not made for, or whose layout it cannot find, stops the build
//! with one message saying what is supported, so that no `libnxt_rvm.so` is
//! made that would misread shared memory, or that Unit would load and ignore.

use std::env;
use std::path::{Path, PathBuf};

/// What a built tree must hold: headers, the generated configuration and
/// version, libunit's source and object.
const NEEDED: [&str; 6] = [
    "src/nxt_unit.h",
    "src/nxt_application.h",
    "src/nxt_unit.c",
    "build/include/nxt_auto_config.h",
    "build/include/nxt_version.h",
    "build/src/nxt_unit.o",
];

/// The versions (`NXT_VERNUM`) whose libunit the module was checked against:
/// NGINX Unit 1.35.x, FreeUnit 1.35.x and 1.36.x. Their shared-memory
/// allocation, port reading and quit are the same as far as the module goes.
const SUPPORTED: std::ops::Range<u32> = 13500..13700;
const SUPPORTED_TEXT: &str = "NGINX Unit 1.35.x, or FreeUnit 1.35.x or 1.36.x";

/// The fields of the segment header the module reads, as bindgen writes them.
const SEGMENT_HEADER_FIELDS: [&str; 2] = ["pub sent_over: nxt_port_id_t", "pub free_map: ["];

fn main() {
    println!("cargo::rerun-if-env-changed=UNIT_SRC");
    println!("cargo::rerun-if-changed=c/wrapper.h");
    let unit = unit_tree();
    for file in NEEDED {
        println!("cargo::rerun-if-changed={}", unit.join(file).display());
    }
    let version = version(&unit);
    let plain_max = plain_message_max(&unit);

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
        })
        .to_string();
    check_segment_header(&unit, &version, &bindings);
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let private = format!(
        "\n/// `NXT_UNIT_MAX_PLAIN_SIZE` of this tree's nxt_unit.c, private to it.\n\
         pub const NXT_UNIT_MAX_PLAIN_SIZE: usize = {plain_max};\n"
    );
    std::fs::write(out.join("unit.rs"), bindings + &private).expect("write the Unit bindings");

    cc::Build::new()
        .object(unit.join("build/src/nxt_unit.o"))
        .compile("nxt_unit");
}

/// The Unit tree named by `UNIT_SRC`, checked to be built.
fn unit_tree() -> PathBuf {
    let help = format!(
        "UNIT_SRC must name a built source tree of {SUPPORTED_TEXT}: the folder where \
         `./configure && make && make build/lib/libunit.a` ran"
    );
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

/// The tree's version (`NXT_VERSION`), if the module supports it.
fn version(unit: &Path) -> String {
    let header = std::fs::read_to_string(unit.join("build/include/nxt_version.h"))
        .expect("read nxt_version.h");
    let define = |name: &str| {
        header.lines().find_map(|line| {
            let rest = line.strip_prefix("#define ")?.trim_start();
            Some(
                rest.strip_prefix(name)?
                    .trim()
                    .trim_matches('"')
                    .to_string(),
            )
        })
    };
    let (Some(version), Some(vernum)) = (define("NXT_VERSION"), define("NXT_VERNUM")) else {
        panic!(
            "\n\nUNIT_SRC={}: build/include/nxt_version.h names no version; the module \
             supports {SUPPORTED_TEXT}.\n\n",
            unit.display()
        );
    };
    match vernum.parse::<u32>() {
        Ok(vernum) if SUPPORTED.contains(&vernum) => version,
        _ => panic!(
            "\n\nUNIT_SRC={} is Unit {version}, which this module does not support: it \
             supports {SUPPORTED_TEXT}, whose libunit internals it was checked against.\n\n",
            unit.display()
        ),
    }
}

/// `NXT_UNIT_MAX_PLAIN_SIZE`, which only the tree's `nxt_unit.c` defines.
fn plain_message_max(unit: &Path) -> usize {
    let source = std::fs::read_to_string(unit.join("src/nxt_unit.c")).expect("read nxt_unit.c");
    source
        .lines()
        .find_map(|line| {
            let rest = line.strip_prefix("#define")?.trim_start();
            rest.strip_prefix("NXT_UNIT_MAX_PLAIN_SIZE")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| {
            panic!(
                "\n\nUNIT_SRC={}: src/nxt_unit.c defines no NXT_UNIT_MAX_PLAIN_SIZE; the \
                 module supports {SUPPORTED_TEXT}.\n\n",
                unit.display()
            )
        })
}

/// Stops the build unless the segment header has the fields the module reads.
fn check_segment_header(unit: &Path, version: &str, bindings: &str) {
    let header = bindings
        .split("pub struct nxt_port_mmap_header_s {")
        .nth(1)
        .and_then(|rest| rest.split('}').next());
    let found = header.is_some_and(|fields| {
        SEGMENT_HEADER_FIELDS
            .iter()
            .all(|field| fields.contains(field))
    });
    if !found {
        panic!(
            "\n\nUNIT_SRC={} (Unit {version}): the shared-memory segment header \
             (nxt_port_mmap_header_t) is not as the module reads it; the module supports \
             {SUPPORTED_TEXT}.\n\n",
            unit.display()
        );
    }
}
