//! The Unit module's build refuses a tree it was not made for, saying what is
//! supported, rather than make a module that would misread libunit's shared
//! memory. Needs no built Unit tree: the refusal comes before anything is
//! compiled against the tree.

use rvm_e2e::{TempDir, try_building_the_module};

const SUPPORTED: &str = "NGINX Unit 1.35.x, or FreeUnit 1.35.x or 1.36.x";

/// A tree with the files the build looks for, of version `version`, whose
/// nxt_unit.c holds `unit_c`.
fn tree(version: &str, vernum: u32, unit_c: &str) -> TempDir {
    let tree = TempDir::new("unit-tree");
    for file in [
        "src/nxt_unit.h",
        "src/nxt_application.h",
        "build/include/nxt_auto_config.h",
        "build/src/nxt_unit.o",
    ] {
        let path = tree.path().join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "").unwrap();
    }
    std::fs::write(tree.path().join("src/nxt_unit.c"), unit_c).unwrap();
    std::fs::write(
        tree.path().join("build/include/nxt_version.h"),
        format!("#define NXT_VERSION \"{version}\"\n#define NXT_VERNUM  {vernum}\n"),
    )
    .unwrap();
    tree
}

#[test]
fn a_tree_of_a_version_the_module_does_not_know_stops_the_build() {
    for (version, vernum) in [("1.34.2", 13402), ("1.37.0", 13700)] {
        let tree = tree(version, vernum, "#define NXT_UNIT_MAX_PLAIN_SIZE  1024\n");
        let (built, said) = try_building_the_module(tree.path());
        assert!(!built, "a module was built against Unit {version}");
        assert!(
            said.contains(&format!(
                "is Unit {version}, which this module does not support"
            )) && said.contains(SUPPORTED),
            "{said}"
        );
    }
}

#[test]
fn a_tree_whose_libunit_hides_what_the_module_reads_stops_the_build() {
    let tree = tree("1.36.0", 13600, "/* no plain-message limit here */\n");
    let (built, said) = try_building_the_module(tree.path());
    assert!(!built);
    assert!(
        said.contains("defines no NXT_UNIT_MAX_PLAIN_SIZE") && said.contains(SUPPORTED),
        "{said}"
    );
}
