//! `builtin:unpack-deb`, the builder that turns `.deb` files into self-contained store paths.
//!
//! For each package of the derivation (one output each): its data is extracted with `usr/` merged into the
//! output's root (`deb::extract_data`), its control files and maintainer scripts are kept aside in
//! `nix-support/debian/` (the modules do declaratively what they did imperatively), every ELF file's
//! interpreter is pointed at the store's dynamic loader and its RUNPATH at the libraries of the package and its
//! dependencies, and every script's `#!` line at an interpreter in the store. What is left pointing outside
//! the store (`#!/usr/bin/env`, which every system has) is noted in `nix-support/outside-references`.
//!
//! ELF files are edited with Debian's patchelf taken from the same snapshot, unpacked unpatched
//! (`patch = ""`) and run through the snapshot's own dynamic loader, so nothing of the host is involved.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::store::derivation::Derivation;

/// Where the dynamic loader lives inside libc6.
const LOADER: &str = "lib64/ld-linux-x86-64.so.2";
/// Library directories of a Debian package, after the usr merge.
const LIB_DIRS: &[&str] = &["lib/x86_64-linux-gnu", "lib", "lib64"];

/// What a build needs to know, read from the derivation's environment.
struct Plan {
    packages: Vec<(String, PathBuf, String)>,
    /// Logical store paths: the outputs of this derivation, by output name.
    own: BTreeMap<String, String>,
    /// Where each output (by logical path) is being built.
    building: BTreeMap<String, PathBuf>,
    deps: Vec<String>,
    libc: Option<String>,
    tools: Vec<String>,
    patchelf: Option<Patchelf>,
}

/// patchelf from the snapshot: the binary, the loader and the library path it runs with (real paths).
struct Patchelf {
    binary: PathBuf,
    loader: PathBuf,
    library_path: String,
}

fn words(drv: &Derivation, key: &str) -> Vec<String> {
    drv.env
        .get(key)
        .map(|v| v.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// Builds every output of `drv`; `targets` are where each output must be created (real paths) and `real` maps
/// logical store paths to real ones.
pub fn build(drv: &Derivation, targets: &BTreeMap<String, PathBuf>, real: &dyn Fn(&str) -> PathBuf) -> Result<()> {
    let names = words(drv, "packages");
    let debs = words(drv, "debs");
    let outputs = words(drv, "outputs");
    let outputs = if outputs.is_empty() {
        vec!["out".to_string()]
    } else {
        outputs
    };
    if names.len() != debs.len() || names.len() != outputs.len() {
        bail!(
            "builtin:unpack-deb needs as many packages ({}), debs ({}) and outputs ({})",
            names.len(),
            debs.len(),
            outputs.len()
        );
    }
    let mut packages = Vec::new();
    let mut own = BTreeMap::new();
    let mut building = BTreeMap::new();
    for ((name, deb), output) in names.into_iter().zip(debs).zip(outputs) {
        let target = targets
            .get(&output)
            .with_context(|| format!("builtin:unpack-deb: no output {output:?}"))?
            .clone();
        own.insert(output.clone(), drv.outputs[&output].path.clone());
        building.insert(drv.outputs[&output].path.clone(), target);
        packages.push((name, real(&deb), output));
    }
    let patchelf = match drv.env.get("patchelf").filter(|p| !p.is_empty()) {
        Some(p) => {
            let libs = words(drv, "patchelfLibs");
            let loader = libs
                .iter()
                .map(|l| real(l).join(LOADER))
                .find(|l| l.exists())
                .context("patchelf's libraries hold no dynamic loader (libc6)")?;
            let library_path = libs
                .iter()
                .flat_map(|l| LIB_DIRS.iter().map(move |d| real(l).join(d)))
                .filter(|d| d.is_dir())
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(":");
            Some(Patchelf {
                binary: real(p),
                loader,
                library_path,
            })
        }
        None => None,
    };
    let plan = Plan {
        packages,
        own,
        building,
        deps: words(drv, "deps"),
        libc: drv.env.get("libc").filter(|l| !l.is_empty()).cloned(),
        tools: words(drv, "tools"),
        patchelf,
    };
    for (name, deb, output) in &plan.packages {
        let target = &targets[output];
        super::deb::extract_data(deb, target).with_context(|| format!("unpacking {name} from {}", deb.display()))?;
        super::deb::extract_control_into(deb, &target.join("nix-support/debian"))
            .with_context(|| format!("keeping the control files of {name}"))?;
        link_alternatives(target).with_context(|| format!("linking the alternatives of {name}"))?;
    }
    if plan.patchelf.is_none() {
        return Ok(());
    }
    for (name, _, output) in &plan.packages {
        fix_up(&plan, &targets[output], real).with_context(|| format!("making {name} self-contained"))?;
    }
    Ok(())
}

/// Debian's alternatives, declared: for each `update-alternatives --install LINK NAME PATH PRIORITY` the package's
/// postinst runs, with LINK and PATH both inside the package, LINK is made a relative symlink to PATH (so vim's
/// `bin/vim` exists beside `bin/vim.basic`). A LINK the package already has is left alone.
fn link_alternatives(target: &Path) -> Result<()> {
    let Ok(script) = std::fs::read_to_string(target.join("nix-support/debian/postinst")) else {
        return Ok(());
    };
    for line in script.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(at) = words.windows(2).position(|w| w == ["update-alternatives", "--install"]) else {
            continue;
        };
        let [link, _name, path, priority, ..] = &words[at + 2..] else {
            continue;
        };
        if !link.starts_with('/') || !path.starts_with('/') || priority.parse::<u32>().is_err() {
            continue;
        }
        let merged = |p: &str| p.trim_start_matches("/usr").trim_start_matches('/').to_string();
        let (link, path) = (target.join(merged(link)), target.join(merged(path)));
        if std::fs::symlink_metadata(&link).is_ok() || !path.exists() {
            continue;
        }
        // Relative, from the link's directory to the path.
        let from = link.parent().expect("a link inside the output");
        let up = from.strip_prefix(target).map_or(0, |r| r.components().count());
        let rel = Path::new(&"../".repeat(up)).join(path.strip_prefix(target).expect("inside the output"));
        std::fs::create_dir_all(from)?;
        std::os::unix::fs::symlink(&rel, &link)?;
    }
    Ok(())
}

/// Points ELF files and scripts of one output into the store.
fn fix_up(plan: &Plan, target: &Path, store_real: &dyn Fn(&str) -> PathBuf) -> Result<()> {
    // This derivation's outputs are still being built: their files are in the build directory.
    let real = |logical: &str| -> PathBuf {
        for (out, building) in &plan.building {
            if let Some(rest) = logical.strip_prefix(out.as_str()) {
                return building.join(rest.trim_start_matches('/'));
            }
        }
        store_real(logical)
    };
    // The loader: libc6's, which is this derivation's own when it holds libc6.
    let loader = match &plan.libc {
        Some(libc) => Some(format!("{libc}/{LOADER}")),
        None => plan
            .own
            .values()
            .map(|o| format!("{o}/{LOADER}"))
            .find(|l| real(l).exists()),
    };
    // Library directories: this derivation's outputs first, then the dependencies'.
    let mut search: Vec<String> = Vec::new();
    for p in plan.own.values().chain(plan.deps.iter()).chain(plan.libc.iter()) {
        for d in LIB_DIRS {
            let dir = format!("{p}/{d}");
            if real(&dir).is_dir() && !search.contains(&dir) {
                search.push(dir);
            }
        }
    }
    // Script interpreters by file name: this derivation's programs, then the tools and dependencies'.
    let mut programs: BTreeMap<String, String> = BTreeMap::new();
    for p in plan.own.values().chain(plan.tools.iter()).chain(plan.deps.iter()) {
        for dir in ["bin", "sbin"] {
            let Ok(entries) = std::fs::read_dir(real(&format!("{p}/{dir}"))) else {
                continue;
            };
            for e in entries.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                programs.entry(n.clone()).or_insert(format!("{p}/{dir}/{n}"));
            }
        }
    }
    let own_logical: BTreeMap<PathBuf, String> = plan.building.iter().map(|(o, b)| (b.clone(), o.clone())).collect();
    let dep_roots: Vec<(PathBuf, String)> = plan.deps.iter().map(|d| (real(d), d.clone())).collect();
    let mut outside = Vec::new();
    let mut stack = vec![target.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let meta = std::fs::symlink_metadata(&path)?;
            if meta.is_dir() {
                if path.file_name().is_some_and(|n| n == "nix-support") && dir == target {
                    continue;
                }
                stack.push(path);
                continue;
            }
            if !meta.is_file() {
                continue;
            }
            let mut head = [0u8; 256];
            let n = std::fs::File::open(&path)?.read(&mut head)?;
            let head = &head[..n];
            if head.starts_with(b"\x7fELF") {
                patch_elf(plan, &path, loader.as_deref(), &search, &own_logical, &dep_roots)?;
            } else if head.starts_with(b"#!")
                && let Some(left) = fix_shebang(&path, &programs)?
            {
                let rel = path.strip_prefix(target).unwrap_or(&path).display().to_string();
                outside.push(format!("{rel}: {left}"));
            }
        }
    }
    if !outside.is_empty() {
        std::fs::create_dir_all(target.join("nix-support"))?;
        std::fs::write(target.join("nix-support/outside-references"), outside.join("\n") + "\n")?;
    }
    Ok(())
}

fn patchelf(p: &Patchelf, args: &[&str], file: &Path) -> Result<String> {
    let out = crate::command::run(
        Command::new(&p.loader)
            .arg("--library-path")
            .arg(&p.library_path)
            .arg(&p.binary)
            .args(args)
            .arg(file),
    )?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Sets the interpreter (executables) and RUNPATH (anything dynamically linked) of one ELF file.
fn patch_elf(
    plan: &Plan,
    file: &Path,
    loader: Option<&str>,
    search: &[String],
    own: &BTreeMap<PathBuf, String>,
    deps: &[(PathBuf, String)],
) -> Result<()> {
    let p = plan.patchelf.as_ref().expect("patching was asked for");
    // Static and non-dynamic files (kernel modules, firmware, object files) have nothing to point anywhere.
    let (interp, dynamic) = elf_segments(file)?;
    if !interp && !dynamic {
        return Ok(());
    }
    let needed = if dynamic {
        patchelf(p, &["--print-needed"], file).unwrap_or_default()
    } else {
        String::new()
    };
    let mode = std::fs::metadata(file)?.permissions().mode();
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode | 0o200))?;
    // One patchelf run sets both, where both apply.
    let mut args: Vec<String> = Vec::new();
    if interp {
        let loader = loader.with_context(|| {
            format!(
                "{} needs a dynamic loader, and neither libc6 nor this package has one",
                file.display()
            )
        })?;
        args.extend(["--set-interpreter".to_string(), loader.to_string()]);
    }
    if !needed.is_empty() {
        // Keep the package's own RUNPATH entries (private library directories), moved into the store: to this
        // package's outputs, or to the dependency that holds the directory (systemd's private libraries are in
        // libsystemd-shared).
        let mut rpath: Vec<String> = Vec::new();
        if let Ok(old) = patchelf(p, &["--print-rpath"], file) {
            for entry in old.split(':').filter(|e| !e.is_empty()) {
                let rel = entry.trim_start_matches("/usr").trim_start_matches('/');
                for (real_root, logical) in own.iter().chain(deps.iter().map(|(r, l)| (r, l))) {
                    let dir = format!("{logical}/{rel}");
                    if real_root.join(rel).is_dir() && !rpath.contains(&dir) {
                        rpath.push(dir);
                    }
                }
            }
        }
        for s in search {
            if !rpath.contains(s) {
                rpath.push(s.clone());
            }
        }
        args.extend(["--set-rpath".to_string(), rpath.join(":")]);
    }
    if !args.is_empty() {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        patchelf(p, &args, file)?;
    }
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Whether a 64-bit little-endian ELF file has an interpreter (PT_INTERP) and a dynamic section (PT_DYNAMIC),
/// read from its program headers. Anything else (32-bit objects, damaged files) has neither.
fn elf_segments(file: &Path) -> Result<(bool, bool)> {
    const PT_DYNAMIC: u32 = 2;
    const PT_INTERP: u32 = 3;
    let data = std::fs::read(file)?;
    let u16_at = |o: usize| data.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let u32_at = |o: usize| data.get(o..o + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let u64_at = |o: usize| {
        data.get(o..o + 8)
            .map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as usize)
    };
    // ELFCLASS64, little-endian.
    if data.get(4) != Some(&2) || data.get(5) != Some(&1) {
        return Ok((false, false));
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38)) else {
        return Ok((false, false));
    };
    let (mut interp, mut dynamic) = (false, false);
    for i in 0..phnum {
        let Some(kind) = u32_at(phoff.saturating_add(i.saturating_mul(phentsize))) else {
            break;
        };
        interp |= kind == PT_INTERP;
        dynamic |= kind == PT_DYNAMIC;
    }
    Ok((interp, dynamic))
}

/// Rewrites a `#!` line to a store interpreter; gives the interpreter left outside the store, if any.
fn fix_shebang(file: &Path, programs: &BTreeMap<String, String>) -> Result<Option<String>> {
    let data = std::fs::read(file)?;
    let end = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let Ok(line) = std::str::from_utf8(&data[2..end]) else {
        return Ok(None);
    };
    let line = line.trim_start();
    let (interpreter, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    if interpreter.starts_with("/nix/store/") || !interpreter.starts_with('/') {
        return Ok(None);
    }
    // `/usr/bin/env` is one of the two paths every rixos system has.
    if interpreter == "/usr/bin/env" {
        return Ok(Some(interpreter.to_string()));
    }
    let base = interpreter.rsplit('/').next().unwrap_or(interpreter);
    let Some(replacement) = programs.get(base) else {
        return Ok(Some(interpreter.to_string()));
    };
    let mut new = format!("#!{replacement}");
    if !rest.is_empty() {
        new.push(' ');
        new.push_str(rest);
    }
    let mode = std::fs::metadata(file)?.permissions().mode();
    let mut out = std::fs::File::create(file)?;
    out.write_all(new.as_bytes())?;
    out.write_all(&data[end..])?;
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode))?;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebangs_point_into_the_store_or_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let programs = BTreeMap::from([
            ("sh".to_string(), "/nix/store/aaa-dash/bin/sh".to_string()),
            ("perl".to_string(), "/nix/store/bbb-perl/bin/perl".to_string()),
        ]);
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            p
        };
        let sh = write("a", "#!/bin/sh -e\necho hi\n");
        assert_eq!(fix_shebang(&sh, &programs).unwrap(), None);
        assert_eq!(
            std::fs::read_to_string(&sh).unwrap(),
            "#!/nix/store/aaa-dash/bin/sh -e\necho hi\n"
        );
        assert_eq!(std::fs::metadata(&sh).unwrap().permissions().mode() & 0o777, 0o755);
        let perl = write("b", "#! /usr/bin/perl\n1;\n");
        fix_shebang(&perl, &programs).unwrap();
        assert!(
            std::fs::read_to_string(&perl)
                .unwrap()
                .starts_with("#!/nix/store/bbb-perl/bin/perl\n")
        );
        let env = write("c", "#!/usr/bin/env python3\n");
        assert_eq!(fix_shebang(&env, &programs).unwrap().as_deref(), Some("/usr/bin/env"));
        let unknown = write("d", "#!/usr/bin/tclsh\n");
        assert_eq!(
            fix_shebang(&unknown, &programs).unwrap().as_deref(),
            Some("/usr/bin/tclsh")
        );
    }
}
