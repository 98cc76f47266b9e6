//! `builtin:initrd`: the stage-1 initrd of a system, as one reproducible newc archive (`$out/initrd`).
//!
//! It holds rixos' static stage-1 init as `/init`, its configuration (`/etc/rixos-initrd.conf`), the kernel
//! modules the configuration names with everything they depend on (decompressed, so stage 1 needs no
//! decompressor and the kernel no in-kernel decompression), a static shell for the rescue prompt, and the
//! programs stage 1 runs (e2fsck) with the libraries they load, kept at their store paths so their ELF
//! interpreters and RUNPATHs hold inside the initrd as they do in the store.
//!
//! The derivation's environment:
//! - `init`: the stage-1 executable; `shell`: a static shell (`/bin/sh`), may be empty;
//! - `modulesTree`: a depmod'ed tree (`lib/modules/<version>/modules.dep`) whose files may link into the kernel;
//! - `kernelModules` (always loaded; failures are reported) and `availableKernelModules` (loaded when the
//!   hardware is there), module names;
//! - `programs`: store paths of executables to carry with their ELF closure;
//! - `config`: the rest of the stage-1 configuration, appended after the module lines.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::cpio::Initramfs;
use super::kmod::{ModuleIndex, module_name};
use crate::store::derivation::Derivation;
use crate::store::resolve::{normalise, resolve_with as resolve};

/// Everything is dated 1 (as store files are), so the archive depends on contents only.
const MTIME: u32 = 1;

/// Builds the initrd of `drv` into `target` (a directory); `real` maps a logical store path to the file.
pub fn build(drv: &Derivation, target: &Path, real: &dyn Fn(&str) -> PathBuf) -> Result<()> {
    let env = |key: &str| drv.env.get(key).map_or("", String::as_str);
    let mut archive = Initramfs::new(MTIME);
    for dir in ["/dev", "/proc", "/sys", "/run", "/mnt-root", "/etc", "/bin", "/tmp"] {
        archive.directory(rel(dir), 0o755)?;
    }
    // The console node, so the kernel can open it for /init before devtmpfs is mounted.
    archive.char_device("dev/console", 0o600, 5, 1)?;

    let init = env("init");
    if init.is_empty() {
        bail!("builtin:initrd needs `init`, the stage-1 executable");
    }
    archive.file_from_host("init", 0o755, &resolve(init, real)?)?;
    let shell = env("shell");
    if !shell.is_empty() {
        archive.file_from_host("bin/sh", 0o755, &resolve(shell, real)?)?;
    }

    let mut config = String::from("# rixos stage-1 configuration, written by builtin:initrd.\n");
    let tree = env("modulesTree");
    if !tree.is_empty() {
        let lines = add_modules(
            &mut archive,
            tree,
            env("kernelModules"),
            env("availableKernelModules"),
            real,
        )?;
        config.push_str(&lines);
    }

    // Programs scanned, and paths already in the archive: a library reached by two names (a link and its
    // target) or needed by two programs goes in once.
    let (mut carried, mut entries) = (BTreeSet::new(), BTreeSet::new());
    for program in env("programs").split_whitespace() {
        add_with_libraries(&mut archive, program, real, &mut carried, &mut entries)?;
    }

    config.push_str(env("config"));
    archive.file("etc/rixos-initrd.conf", 0o644, config.into_bytes())?;

    fs::create_dir_all(target)?;
    let out = target.join("initrd");
    let file = fs::File::create(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut writer = std::io::BufWriter::new(file);
    archive.write_to(&mut writer)?;
    std::io::Write::flush(&mut writer)?;
    Ok(())
}

/// An absolute path as the archive names it (relative to the initrd's root).
fn rel(path: &str) -> &str {
    path.trim_start_matches('/')
}

/// Adds the modules named (and their dependencies) under `/lib/modules/<version>/`, decompressed; returns
/// the `module` lines of the configuration, in load order.
fn add_modules(
    archive: &mut Initramfs,
    tree: &str,
    always: &str,
    available: &str,
    real: &dyn Fn(&str) -> PathBuf,
) -> Result<String> {
    let base = format!("{tree}/lib/modules");
    let mut versions: Vec<String> = fs::read_dir(resolve(&base, real)?)
        .with_context(|| format!("reading {base}"))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    versions.sort();
    let [version] = versions.as_slice() else {
        bail!("{base} should hold one kernel version, it holds {versions:?}");
    };
    let dir_logical = format!("{base}/{version}");
    let dir = resolve(&dir_logical, real)?;
    let index = ModuleIndex::load(&dir)?;
    let builtin: BTreeSet<String> = fs::read_to_string(dir.join("modules.builtin"))
        .unwrap_or_default()
        .lines()
        .map(|l| module_name(Path::new(l)))
        .collect();

    let mut lines = String::new();
    let mut seen = BTreeSet::new();
    for (names, optional) in [(always, false), (available, true)] {
        let names: Vec<&str> = names
            .split_whitespace()
            .filter(|n| !builtin.contains(&n.replace('-', "_")))
            .collect();
        for file in index.load_order(&names)? {
            if !seen.insert(file.clone()) {
                continue;
            }
            let name = file.to_string_lossy();
            let plain = ["xz", "zst", "gz"]
                .iter()
                .find_map(|ext| name.strip_suffix(&format!(".{ext}")))
                .unwrap_or(&name)
                .to_string();
            let source = resolve(&format!("{dir_logical}/{name}"), real)?;
            let contents = read_module(&source)?;
            let inside = format!("/lib/modules/{version}/{plain}");
            archive.file(rel(&inside), 0o644, contents)?;
            lines.push_str(&format!("module {inside}{}\n", if optional { " optional" } else { "" }));
        }
    }
    Ok(lines)
}

/// A module file's contents, decompressed when it is `.ko.xz`, `.ko.zst` or `.ko.gz`.
fn read_module(path: &Path) -> Result<Vec<u8>> {
    let file = fs::File::open(path).with_context(|| format!("reading the kernel module {}", path.display()))?;
    let mut data = Vec::new();
    let name = path.to_string_lossy();
    let read = if name.ends_with(".xz") {
        xz2::read::XzDecoder::new(file).read_to_end(&mut data)
    } else if name.ends_with(".zst") {
        zstd::stream::read::Decoder::new(file)?.read_to_end(&mut data)
    } else if name.ends_with(".gz") {
        flate2::read::GzDecoder::new(file).read_to_end(&mut data)
    } else {
        std::io::BufReader::new(file).read_to_end(&mut data)
    };
    read.with_context(|| format!("decompressing the kernel module {}", path.display()))?;
    Ok(data)
}

/// Adds `program` at its store path, with its ELF interpreter and every library it needs (found through the
/// RUNPATHs, as the dynamic loader finds them), each at its store path; symlinks on the way are kept.
fn add_with_libraries(
    archive: &mut Initramfs,
    program: &str,
    real: &dyn Fn(&str) -> PathBuf,
    carried: &mut BTreeSet<String>,
    entries: &mut BTreeSet<String>,
) -> Result<()> {
    let mut queue = vec![(program.to_string(), None::<String>)];
    let mut by_name = Vec::new();
    while let Some((logical, wanted_by)) = queue.pop() {
        if !carried.insert(logical.clone()) {
            continue;
        }
        let file = add_store_file(archive, &logical, real, entries).with_context(|| match &wanted_by {
            Some(by) => format!("carrying {logical} (needed by {by}) into the initrd"),
            None => format!("carrying {logical} into the initrd"),
        })?;
        let Some(elf) = DynamicInfo::read(&file)? else { continue };
        if let Some(interp) = elf.interpreter {
            queue.push((interp, Some(logical.clone())));
        }
        for needed in &elf.needed {
            let found = elf
                .runpath
                .iter()
                .map(|dir| format!("{dir}/{needed}"))
                .find(|candidate| candidate.starts_with("/nix/store/") && resolve(candidate, real).is_ok());
            match found {
                Some(lib) => queue.push((lib, Some(logical.clone()))),
                // The loader takes a library already loaded under that name (a library's own RUNPATH need
                // not list what the program loads for it): checked once everything is in.
                None => by_name.push((needed.clone(), logical.clone(), elf.runpath.join(":"))),
            }
        }
    }
    for (needed, by, runpath) in by_name {
        if !carried.iter().any(|c| c.rsplit('/').next() == Some(needed.as_str())) {
            bail!(
                "{by} needs {needed}, which is in none of its RUNPATH directories ({runpath}) and not loaded by {program}"
            );
        }
    }
    Ok(())
}

/// Adds one store file at its logical path, following (and recording) symlinks; returns the real file.
fn add_store_file(
    archive: &mut Initramfs,
    logical: &str,
    real: &dyn Fn(&str) -> PathBuf,
    entries: &mut BTreeSet<String>,
) -> Result<PathBuf> {
    let mut path = logical.to_string();
    for _ in 0..40 {
        let physical = real(&path);
        let new = entries.insert(path.clone());
        let meta = fs::symlink_metadata(&physical).with_context(|| format!("{}", physical.display()))?;
        if meta.file_type().is_symlink() {
            let to = fs::read_link(&physical)?.to_string_lossy().into_owned();
            if new {
                archive.symlink(rel(&path), &to)?;
            }
            path = if to.starts_with('/') {
                to
            } else {
                normalise(&Path::new(&path).parent().unwrap_or(Path::new("/")).join(&to))
            };
            continue;
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = if meta.permissions().mode() & 0o111 != 0 {
            0o555
        } else {
            0o444
        };
        if new {
            archive.file_from_host(rel(&path), mode, &physical)?;
        }
        return Ok(physical);
    }
    bail!("{logical}: too many levels of symbolic links")
}

/// What the dynamic loader reads of an ELF file: PT_INTERP, DT_NEEDED and DT_RUNPATH (or DT_RPATH).
#[derive(Debug, Default, PartialEq)]
struct DynamicInfo {
    interpreter: Option<String>,
    needed: Vec<String>,
    runpath: Vec<String>,
}

impl DynamicInfo {
    /// `None` for a file that is not a 64-bit little-endian ELF (a script, data).
    fn read(path: &Path) -> Result<Option<DynamicInfo>> {
        let data = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&data).with_context(|| format!("{} is a damaged ELF file", path.display()))
    }

    fn parse(data: &[u8]) -> Result<Option<DynamicInfo>> {
        if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 || data[5] != 1 {
            return Ok(None);
        }
        // Every offset comes from the file: checked, so a damaged file is an error, never a panic.
        let bytes = |o: usize, n: usize| -> Result<&[u8]> {
            o.checked_add(n)
                .and_then(|end| data.get(o..end))
                .context("an offset points outside the file")
        };
        let u16_at = |o: usize| -> Result<u64> { Ok(u16::from_le_bytes(bytes(o, 2)?.try_into()?) as u64) };
        let u64_at = |o: usize| -> Result<u64> { Ok(u64::from_le_bytes(bytes(o, 8)?.try_into()?)) };
        let phoff = u64_at(0x20)? as usize;
        let phentsize = u16_at(0x36)? as usize;
        let phnum = u16_at(0x38)? as usize;
        // (vaddr, offset, filesz) of each PT_LOAD, to turn DT_STRTAB's address into a file offset.
        let mut loads = Vec::new();
        let mut dynamic = None;
        let mut info = DynamicInfo::default();
        for i in 0..phnum {
            let ph = phoff
                .checked_add(i * phentsize)
                .context("program headers outside the file")?;
            let kind = u32::from_le_bytes(bytes(ph, 4)?.try_into()?);
            let offset = u64_at(ph + 8)? as usize;
            let vaddr = u64_at(ph + 16)?;
            let filesz = u64_at(ph + 32)? as usize;
            match kind {
                1 => loads.push((vaddr, offset, filesz)),
                2 => dynamic = Some((offset, filesz)),
                3 => {
                    let raw = bytes(offset, filesz)?;
                    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
                    info.interpreter = Some(String::from_utf8_lossy(&raw[..end]).into_owned());
                }
                _ => {}
            }
        }
        let Some((offset, size)) = dynamic else {
            return Ok(Some(info));
        };
        let mut entries = Vec::new();
        let mut strtab = None;
        for e in (offset..offset.saturating_add(size)).step_by(16) {
            let tag = u64_at(e)?;
            let value = u64_at(e + 8)?;
            match tag {
                0 => break,
                5 => strtab = Some(value),
                1 | 15 | 29 => entries.push((tag, value)),
                _ => {}
            }
        }
        let Some(strtab) = strtab else { return Ok(Some(info)) };
        let (vaddr, file_offset, _) = loads
            .iter()
            .find(|(v, _, sz)| strtab >= *v && strtab - v < *sz as u64)
            .context("DT_STRTAB outside every PT_LOAD")?;
        let strtab = ((strtab - vaddr) as usize).saturating_add(*file_offset);
        let string = |at: u64| -> Result<String> {
            let start = strtab.checked_add(at as usize).context("a string outside the file")?;
            let raw = data.get(start..).context("a string outside the file")?;
            let end = raw.iter().position(|&b| b == 0).context("unterminated string")?;
            Ok(String::from_utf8_lossy(&raw[..end]).into_owned())
        };
        let mut rpath = Vec::new();
        for (tag, value) in entries {
            match tag {
                1 => info.needed.push(string(value)?),
                29 => info.runpath.extend(string(value)?.split(':').map(str::to_string)),
                _ => rpath.extend(string(value)?.split(':').map(str::to_string)),
            }
        }
        // DT_RPATH counts only when there is no DT_RUNPATH, as for the loader.
        if info.runpath.is_empty() {
            info.runpath = rpath;
        }
        Ok(Some(info))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_loader_reads_from_a_real_program() {
        // The test binary itself is a dynamically linked ELF: it has an interpreter and needs libc.
        let me = std::env::current_exe().unwrap();
        let info = DynamicInfo::read(&me).unwrap().expect("an ELF file");
        assert!(
            info.interpreter.as_deref().is_some_and(|i| i.contains("ld-linux")),
            "{info:?}"
        );
        assert!(info.needed.iter().any(|n| n.starts_with("libc.so")), "{info:?}");
    }

    #[test]
    fn scripts_and_data_are_not_elf() {
        assert_eq!(DynamicInfo::parse(b"#!/bin/sh\necho hi\n").unwrap(), None);
        assert_eq!(DynamicInfo::parse(&[0u8; 100]).unwrap(), None);
    }

    #[test]
    fn a_truncated_elf_is_an_error_not_a_panic() {
        let me = fs::read(std::env::current_exe().unwrap()).unwrap();
        for len in [64, 100, 4096] {
            let _ = DynamicInfo::parse(&me[..len]);
        }
        let mut header = me[..64].to_vec();
        header[0x20..0x28].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(DynamicInfo::parse(&header).is_err());
    }

    #[test]
    fn paths_are_normalised_lexically() {
        assert_eq!(
            normalise(Path::new("/nix/store/a/lib/../lib64/./x")),
            "/nix/store/a/lib64/x"
        );
    }
}
