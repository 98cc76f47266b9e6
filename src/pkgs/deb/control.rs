//! The package's `control.tar`: the `control` stanza, the maintainer scripts and other control files.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use tar::EntryType;

use super::ar::DebFile;
use super::data::type_name;
use super::paths::archive_path;
use super::{DebError, drain, reading_after};

/// All control files together may not exceed this: they are held in memory, and real ones are at most a
/// few MiB (the `md5sums` of a large package).
const MAX_CONTROL_BYTES: u64 = 64 << 20;

/// The files of a package's `control.tar`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlInfo {
    /// The `control` file: the package's stanza (Package, Version, Depends, ...).
    pub control: String,
    /// Every other file (preinst, postinst, prerm, postrm, config, triggers, conffiles, md5sums, ...) by
    /// name, sorted by name.
    pub files: Vec<(String, Vec<u8>)>,
}

impl ControlInfo {
    /// The contents of the control file `name` other than `control` (e.g. `postinst`), if the package has it.
    pub fn file(&self, name: &str) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, bytes)| bytes.as_slice())
    }
}

/// Reads the package's `control.tar`: the `control` stanza and the maintainer scripts and other files.
pub fn read_control(deb: &Path) -> Result<ControlInfo, DebError> {
    let package = DebFile::open(deb)?;
    let member = &package.control;
    let mut archive = tar::Archive::new(package.member_reader(member)?);
    let corrupt = |reason: String| DebError::Corrupt {
        path: deb.to_path_buf(),
        reason: format!("{}: {reason}", member.name),
    };
    let unsafe_entry = |entry: &str, reason: &str| DebError::Unsafe {
        path: deb.to_path_buf(),
        entry: entry.to_string(),
        reason: format!("in {} {reason}", member.name),
    };
    let mut control = None;
    let mut files = Vec::new();
    let mut names = HashSet::new();
    let mut total = 0u64;
    let entries = archive
        .entries()
        .map_err(|e| corrupt(format!("reading the first entry: {e}")))?;
    let mut previous = String::new();
    for entry in entries {
        let mut entry = entry.map_err(|e| corrupt(reading_after(&previous, &e)))?;
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let components = archive_path(&raw).map_err(|reason| unsafe_entry(&name, reason))?;
        let entry_type = entry.header().entry_type();
        match (entry_type, components.as_slice()) {
            (EntryType::XGlobalHeader, _) => {}
            (EntryType::Directory, []) => {}
            (EntryType::Regular | EntryType::Continuous, [file]) => {
                let file =
                    String::from_utf8(file.clone()).map_err(|_| unsafe_entry(&name, "has a name that is not UTF-8"))?;
                if !names.insert(file.clone()) {
                    return Err(unsafe_entry(&name, "appears twice"));
                }
                total += entry.size();
                if total > MAX_CONTROL_BYTES {
                    return Err(unsafe_entry(
                        &name,
                        &format!("makes the control files larger than {} MiB", MAX_CONTROL_BYTES >> 20),
                    ));
                }
                let mut bytes = Vec::with_capacity(entry.size() as usize);
                entry
                    .read_to_end(&mut bytes)
                    .map_err(|e| corrupt(format!("reading entry '{name}': {e}")))?;
                if bytes.len() as u64 != entry.size() {
                    return Err(corrupt(format!(
                        "entry '{name}' ended after {} of its {} bytes",
                        bytes.len(),
                        entry.size()
                    )));
                }
                if file == "control" {
                    control = Some(String::from_utf8(bytes).map_err(|_| DebError::NotADeb {
                        path: deb.to_path_buf(),
                        reason: format!("the control file in {} is not UTF-8", member.name),
                    })?);
                } else {
                    files.push((file, bytes));
                }
            }
            _ => {
                return Err(unsafe_entry(
                    &name,
                    &format!(
                        "is a {}, but control.tar may only hold files at its top level",
                        type_name(entry_type)
                    ),
                ));
            }
        }
        previous = name;
    }
    drain(archive.into_inner()).map_err(|e| corrupt(format!("after its last entry: {e}")))?;
    let control = control.ok_or_else(|| DebError::NotADeb {
        path: deb.to_path_buf(),
        reason: format!("{} has no 'control' file", member.name),
    })?;
    files.sort();
    Ok(ControlInfo { control, files })
}

/// Writes the package's control files (`control`, maintainer scripts, ...) into `dir` (created if missing),
/// each with mode 0644, replacing files of the same name; returns what it wrote.
pub fn extract_control_into(deb: &Path, dir: &Path) -> Result<ControlInfo, DebError> {
    let info = read_control(deb)?;
    fs::create_dir_all(dir).map_err(|source| DebError::Io {
        action: "creating",
        path: dir.to_path_buf(),
        source,
    })?;
    let all = std::iter::once(("control", info.control.as_bytes()))
        .chain(info.files.iter().map(|(n, b)| (n.as_str(), b.as_slice())));
    for (name, bytes) in all {
        let path = dir.join(name);
        let io_error = |source| DebError::Io {
            action: "writing",
            path: path.clone(),
            source,
        };
        // O_NOFOLLOW: a symlink left in `dir` must not redirect the write elsewhere.
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(io_error)?;
        file.write_all(bytes).map_err(io_error)?;
        file.set_permissions(fs::Permissions::from_mode(0o644))
            .map_err(io_error)?;
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::pkgs::deb::test_debs::Node::*;
    use crate::pkgs::deb::test_debs::{
        CONTROL, Compression, Node, ar, compress, control_tar, deb_bytes, mode, tar, write_deb,
    };

    #[test]
    fn reads_control_and_maintainer_scripts() {
        for compression in [Compression::None, Compression::Gzip, Compression::Xz, Compression::Zstd] {
            let dir = tempfile::tempdir().unwrap();
            let (control, suffix) = compress(&control_tar(), compression);
            let (data, _) = compress(&tar(&[Dir("./")]), Compression::Xz);
            let deb = write_deb(
                dir.path(),
                &ar(&[
                    ("debian-binary", b"2.0\n"),
                    (&format!("control.tar{suffix}"), &control),
                    ("data.tar.xz", &data),
                ]),
            );
            let info = read_control(&deb).unwrap();
            assert_eq!(info.control, CONTROL);
            assert_eq!(
                info.file("postinst"),
                Some(&b"#!/bin/sh\nset -e\necho configured\n"[..])
            );
            let names: Vec<&str> = info.files.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, ["md5sums", "postinst"]);

            let scripts = dir.path().join("nix-support/debian");
            let written = extract_control_into(&deb, &scripts).unwrap();
            assert_eq!(written, info);
            assert_eq!(fs::read_to_string(scripts.join("control")).unwrap(), CONTROL);
            assert_eq!(
                fs::read(scripts.join("postinst")).unwrap(),
                b"#!/bin/sh\nset -e\necho configured\n"
            );
            assert_eq!(mode(&scripts.join("postinst")), 0o644);
            assert_eq!(mode(&scripts.join("md5sums")), 0o644);
        }
    }

    #[test]
    fn extract_control_into_does_not_follow_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let deb = write_deb(dir.path(), &deb_bytes(&[Dir("./")], Compression::Gzip));
        let scripts = dir.path().join("scripts");
        fs::create_dir(&scripts).unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        std::os::unix::fs::symlink(&victim, scripts.join("postinst")).unwrap();
        let error = extract_control_into(&deb, &scripts).unwrap_err();
        assert!(error.to_string().contains("postinst"), "{error}");
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
    }

    #[test]
    fn refuses_hostile_control_members() {
        let cases: &[(Node, &str, &str)] = &[
            (
                File("./../postinst", b"x", 0o755),
                "./../postinst",
                "has a '..' component",
            ),
            (
                File("./scripts/postinst", b"x", 0o755),
                "./scripts/postinst",
                "may only hold files at its top level",
            ),
            (Symlink("./postinst", "/etc/shadow"), "./postinst", "is a symlink"),
            (
                File("./control", b"Package: twice\n", 0o644),
                "./control",
                "appears twice",
            ),
        ];
        for (hostile, entry, reason) in cases {
            let dir = tempfile::tempdir().unwrap();
            let control = tar(&[File("./control", CONTROL.as_bytes(), 0o644), *hostile]);
            let (data, _) = compress(&tar(&[Dir("./")]), Compression::Xz);
            let deb = write_deb(
                dir.path(),
                &ar(&[
                    ("debian-binary", b"2.0\n"),
                    ("control.tar", &control),
                    ("data.tar.xz", &data),
                ]),
            );
            let error = read_control(&deb).expect_err(entry).to_string();
            assert!(error.contains(&format!("'{entry}'")), "{error}");
            assert!(error.contains(reason), "{error}");
            let scripts = dir.path().join("scripts");
            assert!(extract_control_into(&deb, &scripts).is_err());
            assert!(!scripts.exists(), "nothing is written when control.tar is refused");
        }
    }
}
