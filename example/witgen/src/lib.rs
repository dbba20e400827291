//! For the example guests' build scripts: assembles a world for wit-bindgen in
//! OUT_DIR from this repository's `wit/world.wit` (the `rvm:lambda` package),
//! a guest's own WIT if it has one, and the WASI packages they include, taken
//! from the `wit/deps` folder that the wasip2 crate ships. No third-party WIT
//! is kept in the repository; the version comes from Cargo.lock like any other
//! dependency.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

/// Writes `OUT_DIR/bindings.rs`, which generates the bindings of `world`:
/// with `own_wit` (a file of the guest's package), that package with
/// `rvm:lambda` among its dependencies; without, `rvm:lambda` itself.
pub fn bindings(own_wit: Option<&Path>, world: &str) {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let lambda = manifest_dir.join("../../wit/world.wit");
    println!("cargo::rerun-if-changed={}", lambda.display());

    let wit = out_dir.join("wit");
    let deps = wit.join("deps");
    let _ = fs::remove_dir_all(&wit);
    fs::create_dir_all(&deps).expect("create OUT_DIR/wit/deps");
    match own_wit {
        Some(own) => {
            let own = manifest_dir.join(own);
            println!("cargo::rerun-if-changed={}", own.display());
            fs::copy(&own, wit.join("world.wit")).expect("copy the guest's WIT");
            fs::create_dir_all(deps.join("lambda")).expect("create deps/lambda");
            fs::copy(&lambda, deps.join("lambda/world.wit")).expect("copy wit/world.wit");
        }
        None => {
            fs::copy(&lambda, wit.join("world.wit")).expect("copy wit/world.wit");
        }
    }
    let wasi_deps = package_dir(&manifest_dir, "wasip2").join("wit/deps");
    for entry in fs::read_dir(&wasi_deps).expect("read wasip2's wit/deps") {
        let path = entry.expect("list wasip2's wit/deps").path();
        fs::copy(&path, deps.join(path.file_name().expect("a file name")))
            .expect("copy a WASI package");
    }

    let bindings = format!(
        "wit_bindgen::generate!({{ path: {:?}, world: {world:?}, generate_all }});\n",
        wit.display().to_string()
    );
    fs::write(out_dir.join("bindings.rs"), bindings).expect("write bindings.rs");
}

/// Where Cargo unpacked the named dependency.
fn package_dir(manifest_dir: &Path, name: &str) -> PathBuf {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(manifest_dir)
        .output()
        .expect("run cargo metadata");
    assert!(output.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).expect("cargo metadata JSON");
    let manifest = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|package| package["name"] == name)
        .and_then(|package| package["manifest_path"].as_str())
        .unwrap_or_else(|| panic!("{name} is not among the workspace's dependencies"));
    Path::new(manifest).parent().expect("a manifest has a folder").to_path_buf()
}
