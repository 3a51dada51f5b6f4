//! Links the ect-run binary as a position-dependent executable on Linux:
//! with no relative relocations for the dynamic loader to apply at every
//! start, `ect-run -- true` starts measurably faster (README, Benchmarks).
//! Only the binary: the library, tests and examples link as usual.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
