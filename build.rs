//! Links the ect-run binary as a position-dependent executable on Linux:
//! with no relative relocations for the dynamic loader to apply at every
//! start, `ect-run -- true` starts measurably faster (README, Benchmarks).
//! Only the binary: the library, tests and examples link as usual.
//!
//! Turns the scrubbing rules (`src/scrub/rules.toml`, kept as TOML for
//! people to read and review) into JSON in `OUT_DIR`, which the library
//! parses at run time five times faster than TOML.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    let rules = "src/scrub/rules.toml";
    let text = std::fs::read_to_string(rules).expect("src/scrub/rules.toml is readable");
    let table: toml::Table = toml::from_str(&text).expect("src/scrub/rules.toml is valid TOML");
    let json = serde_json::to_string(&table).expect("TOML values are JSON values");
    let out = std::path::Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("scrub-rules.json");
    std::fs::write(out, json).expect("OUT_DIR is writable");
    println!("cargo:rerun-if-changed={rules}");
    println!("cargo:rerun-if-changed=build.rs");
}
