//! Putting the planned files onto the ESP: each one atomically (a temporary file beside it, synced, then renamed
//! over the old), in the plan's order (kernels and loaders first, the menu last), so a crash leaves either the
//! old menu with the old files or the new one with the new; then what an earlier install wrote and no
//! generation needs any more is removed. The files written are listed in `rixos/installed-files`, so later
//! installs (switch, rollback, gc on a mounted /boot) know which are theirs.

use std::collections::BTreeSet;
use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};

/// The ESP's list of what rixos wrote there, one relative path a line.
pub const MANIFEST: &str = "rixos/installed-files";
/// Where rixos is the only writer (`DIR`, names starting with `PREFIX`): anything there it did not plan is
/// stale, even when an interrupted install never listed it.
const OWNED: &[(&str, &str)] = &[("kernels", ""), ("EFI/rixos", ""), ("loader/entries", "rixos-")];
/// The suffix of files being written; one left behind by a crash is removed by the next install.
const TEMPORARY: &str = ".rixos-tmp";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    Text(String),
    /// A file here (a store file, already resolved).
    Copy(PathBuf),
    /// As `Copy`, but named by its store path, so a file of that name already there is the same file.
    StoreFile(PathBuf),
}

/// A file to have on the ESP: its path there (relative, `/`-separated) and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EspFile {
    pub path: String,
    pub content: Content,
}

/// Writes `files` into `esp` in order, then removes the stale ones and records the new list.
pub fn apply(esp: &Path, files: &[EspFile]) -> Result<()> {
    apply_with(esp, files, false)
}

/// As [`apply`], on the mounted ESP of a running machine: the whole file system is synced after each file
/// that changed and after the removals. FAT has no journal, so a file's own fsync leaves the directory
/// entry of its rename and the allocation table in the page cache; a power cut then could leave a menu
/// naming a kernel whose directory entry never reached the disk, or a damaged directory GRUB cannot read.
pub fn apply_durably(esp: &Path, files: &[EspFile]) -> Result<()> {
    apply_with(esp, files, true)
}

fn apply_with(esp: &Path, files: &[EspFile], durable: bool) -> Result<()> {
    let sync = || -> Result<()> {
        if durable {
            let handle = fs::File::open(esp).with_context(|| format!("opening {}", esp.display()))?;
            nix::unistd::syncfs(&handle).with_context(|| format!("syncing the ESP {}", esp.display()))?;
        }
        Ok(())
    };
    for file in files {
        if write(esp, file).with_context(|| format!("writing {} on the ESP {}", file.path, esp.display()))? {
            sync()?;
        }
    }
    let wanted: BTreeSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
    for stale in earlier(esp, &wanted)? {
        remove(esp, &stale)?;
    }
    sync()?;
    let mut list: String = wanted.iter().map(|p| format!("{p}\n")).collect();
    list.insert_str(
        0,
        "# Files rixos wrote on this ESP; the next install removes those it no longer needs.\n",
    );
    write(
        esp,
        &EspFile {
            path: MANIFEST.into(),
            content: Content::Text(list),
        },
    )
    .with_context(|| format!("writing {MANIFEST} on the ESP {}", esp.display()))?;
    sync()
}

/// Writes one file by rename unless it is there already; gives whether it wrote.
fn write(esp: &Path, file: &EspFile) -> Result<bool> {
    let dest = esp.join(&file.path);
    if unchanged(&dest, &file.content)? {
        return Ok(false);
    }
    let parent = dest.parent().context("an ESP file has no directory")?;
    fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let temporary = PathBuf::from(format!("{}{TEMPORARY}", dest.display()));
    match &file.content {
        Content::Text(text) => {
            let mut out = fs::File::create(&temporary)?;
            out.write_all(text.as_bytes())?;
            out.sync_all()?;
        }
        Content::Copy(source) | Content::StoreFile(source) => {
            fs::copy(source, &temporary).with_context(|| format!("copying {}", source.display()))?;
            // Store files are read-only; the copy is the ESP's own.
            fs::set_permissions(&temporary, fs::Permissions::from_mode(0o644))?;
            fs::File::open(&temporary)?.sync_all()?;
        }
    }
    fs::rename(&temporary, &dest).with_context(|| format!("renaming {} to {}", temporary.display(), dest.display()))?;
    Ok(true)
}

/// Whether `dest` already holds `content` (a store-named file: whether it is there with the right size).
fn unchanged(dest: &Path, content: &Content) -> Result<bool> {
    let Ok(meta) = fs::metadata(dest) else { return Ok(false) };
    Ok(match content {
        Content::Text(text) => meta.len() == text.len() as u64 && fs::read(dest)? == text.as_bytes(),
        Content::StoreFile(source) => meta.len() == fs::metadata(source)?.len(),
        Content::Copy(source) => meta.len() == fs::metadata(source)?.len() && fs::read(dest)? == fs::read(source)?,
    })
}

/// What an earlier install left that is not `wanted`: the files its list names, everything in the directories
/// only rixos writes, and temporary files of an interrupted install.
fn earlier(esp: &Path, wanted: &BTreeSet<&str>) -> Result<BTreeSet<String>> {
    let mut found = BTreeSet::new();
    match fs::read_to_string(esp.join(MANIFEST)) {
        Ok(list) => {
            // Only plain relative paths: a damaged list must not delete anything outside the ESP.
            let inside = |p: &str| Path::new(p).components().all(|c| matches!(c, Component::Normal(_)));
            found.extend(
                list.lines()
                    .filter(|l| !l.is_empty() && !l.starts_with('#') && inside(l))
                    .map(String::from),
            );
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {MANIFEST} on the ESP {}", esp.display())),
    }
    let mut dirs: BTreeSet<String> = wanted
        .iter()
        .filter_map(|p| Path::new(p).parent())
        .map(|d| d.display().to_string())
        .collect();
    dirs.extend(OWNED.iter().map(|(dir, _)| dir.to_string()));
    for dir in dirs {
        let entries = match fs::read_dir(esp.join(&dir)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("listing {dir} on the ESP {}", esp.display())),
        };
        let owned_prefix = OWNED.iter().find(|(d, _)| *d == dir).map(|(_, prefix)| *prefix);
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours = name.ends_with(TEMPORARY) || owned_prefix.is_some_and(|prefix| name.starts_with(prefix));
            if ours && !entry.file_type()?.is_dir() {
                found.insert(if dir.is_empty() { name } else { format!("{dir}/{name}") });
            }
        }
    }
    Ok(found
        .into_iter()
        .filter(|p| !wanted.contains(p.as_str()) && p != MANIFEST)
        .collect())
}

/// Removes a file of the ESP and then its directories that became empty.
fn remove(esp: &Path, path: &str) -> Result<()> {
    match fs::remove_file(esp.join(path)) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing the stale {path} from the ESP {}", esp.display())),
    }
    let mut dir = Path::new(path).parent();
    while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) {
        if fs::remove_dir(esp.join(d)).is_err() {
            break; // not empty (or not ours to judge)
        }
        dir = d.parent();
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn text(path: &str, content: &str) -> EspFile {
        EspFile {
            path: path.into(),
            content: Content::Text(content.into()),
        }
    }

    /// Every file under `dir`, relative, with its content.
    pub(crate) fn tree(dir: &Path) -> Vec<(String, String)> {
        let mut files = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let rel = path.strip_prefix(dir).unwrap().display().to_string();
                    files.push((rel, String::from_utf8_lossy(&fs::read(&path).unwrap()).into_owned()));
                }
            }
        }
        files.sort();
        files
    }

    #[test]
    fn stale_files_go_and_others_stay() {
        let esp = tempfile::tempdir().unwrap();
        fs::write(esp.path().join("vendor.txt"), "not ours").unwrap();
        fs::create_dir_all(esp.path().join("loader/entries")).unwrap();
        fs::write(esp.path().join("loader/entries/other-os.conf"), "not ours either").unwrap();
        // Left by an interrupted install, never listed.
        fs::create_dir_all(esp.path().join("kernels")).unwrap();
        fs::write(esp.path().join("kernels/orphan"), "x").unwrap();
        fs::create_dir_all(esp.path().join("grub")).unwrap();
        fs::write(esp.path().join("grub/grub.cfg.rixos-tmp"), "half a menu").unwrap();
        apply(
            esp.path(),
            &[
                text("kernels/a", "A"),
                text("EFI/rixos/b", "B"),
                text("grub/grub.cfg", "menu 1"),
            ],
        )
        .unwrap();
        apply(esp.path(), &[text("kernels/a", "A"), text("grub/grub.cfg", "menu 2")]).unwrap();
        let names: Vec<String> = tree(esp.path()).into_iter().map(|(p, _)| p).collect();
        assert_eq!(
            names,
            [
                "grub/grub.cfg",
                "kernels/a",
                "loader/entries/other-os.conf",
                "rixos/installed-files",
                "vendor.txt"
            ]
        );
        assert_eq!(fs::read_to_string(esp.path().join("grub/grub.cfg")).unwrap(), "menu 2");
        // EFI/rixos became empty and went; EFI with it.
        assert!(!esp.path().join("EFI").exists());
    }

    #[test]
    fn a_damaged_list_deletes_nothing_outside_the_esp() {
        let outer = tempfile::tempdir().unwrap();
        let esp = outer.path().join("esp");
        fs::create_dir_all(esp.join("rixos")).unwrap();
        fs::write(outer.path().join("precious"), "keep").unwrap();
        fs::write(esp.join(MANIFEST), "../precious\n/etc/passwd\n").unwrap();
        apply(&esp, &[text("grub/grub.cfg", "menu")]).unwrap();
        assert!(outer.path().join("precious").exists());
    }

    #[test]
    fn store_files_are_copied_once_and_writable() {
        let dir = tempfile::tempdir().unwrap();
        let esp = dir.path().join("esp");
        let kernel = dir.path().join("vmlinuz");
        fs::write(&kernel, "kernel").unwrap();
        fs::set_permissions(&kernel, fs::Permissions::from_mode(0o444)).unwrap();
        let files = [EspFile {
            path: "kernels/k".into(),
            content: Content::StoreFile(kernel.clone()),
        }];
        apply(&esp, &files).unwrap();
        let copied = esp.join("kernels/k");
        let first = fs::metadata(&copied).unwrap();
        assert_eq!(first.permissions().mode() & 0o777, 0o644);
        std::thread::sleep(std::time::Duration::from_millis(20));
        apply(&esp, &files).unwrap();
        assert_eq!(
            fs::metadata(&copied).unwrap().modified().unwrap(),
            first.modified().unwrap()
        );
        assert_eq!(fs::read_to_string(copied).unwrap(), "kernel");
    }
}
