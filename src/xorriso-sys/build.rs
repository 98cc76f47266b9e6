//! Links libisoburn (Debian: libisoburn-dev). pkg-config is asked first so a non-standard prefix works; without
//! it the library is linked by name from the default search path.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    let libs = Command::new("pkg-config").args(["--libs", "libisoburn-1"]).output();
    match libs {
        Ok(out) if out.status.success() => {
            for flag in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                if let Some(dir) = flag.strip_prefix("-L") {
                    println!("cargo:rustc-link-search=native={dir}");
                } else if let Some(lib) = flag.strip_prefix("-l") {
                    println!("cargo:rustc-link-lib={lib}");
                }
            }
        }
        _ => println!("cargo:rustc-link-lib=isoburn"),
    }
}
