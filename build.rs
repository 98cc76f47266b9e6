//! Builds rixos' stage-1 init (`src/boot/stage1/`) as a static executable and hands it to the library, which
//! puts it into initrds. It uses only `std` and glibc, so one `rustc` call makes it: no second cargo, no crates,
//! no musl target to install. `crt-static` links glibc in; paths are remapped so the bytes do not depend on
//! where the checkout lives.
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let main = manifest.join("src/boot/stage1/main.rs");
    println!("cargo:rerun-if-changed=src/boot/stage1");
    let target = out.join("rixos-stage1");
    let status = Command::new(&rustc)
        .arg("--edition=2024")
        .args(["--crate-name", "rixos_stage1", "--crate-type", "bin"])
        .args(["-C", "opt-level=2", "-C", "panic=abort", "-C", "codegen-units=1"])
        .args([
            "-C",
            "target-feature=+crt-static",
            "-C",
            "strip=symbols",
            "-C",
            "debuginfo=0",
        ])
        .arg(format!("--remap-path-prefix={}=rixos", manifest.display()))
        .arg("-o")
        .arg(&target)
        .arg(&main)
        .status()
        .unwrap_or_else(|e| panic!("running {rustc:?} for the stage-1 init: {e}"));
    assert!(
        status.success(),
        "compiling the stage-1 init ({}) failed",
        main.display()
    );
}
