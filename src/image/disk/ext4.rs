//! The root file system: ext4 made by the host's `mkfs.ext4 -d STAGING` straight into the disk image at the
//! root partition's offset. A host tool, not the package set's: this builder runs in rixos itself, outside the
//! build sandbox, and mke2fs's populate code (misc/create_inode.c) is not part of libext2fs's API.
//!
//! Reproducible: UUID and directory hash seed are given, every time mke2fs takes itself is
//! `E2FSPROGS_FAKE_TIME`, its configuration is ours (not the host's /etc/mke2fs.conf), directories are read in
//! sorted order (mke2fs 1.47 scans them with alphasort). mke2fs copies each file's ctime, which nobody can set
//! (and hard-linking from the store changes it): afterwards debugfs sets every used inode's ctime and atime to
//! the build's epoch and its owner to root, so the image does not depend on when or by whom it was built.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use uuid::Uuid;

use super::layout::Extent;

/// The file system's block size: what mke2fs picks for anything but tiny file systems, and what
/// [`super::staging`] estimates sizes in.
pub const BLOCK_SIZE: u64 = 4096;

/// mke2fs's configuration, fixed here so the host's /etc/mke2fs.conf cannot change the image (Debian 12's
/// ext4 defaults, without the newer orphan_file and metadata_csum_seed).
const MKE2FS_CONF: &str = "[defaults]
\tbase_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
\tdefault_mntopts = acl,user_xattr
\tenable_periodic_fsck = 0
\tblocksize = 4096
\tinode_size = 256
\tinode_ratio = 16384
[fs_types]
\text4 = {
\t\tfeatures = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
\t}
";

/// What identifies the file system.
#[derive(Debug, Clone)]
pub struct Ext4Options<'a> {
    pub label: &'a str,
    pub uuid: Uuid,
    pub hash_seed: Uuid,
    /// Seconds since the Unix epoch: every time mke2fs records, and every inode's ctime and atime.
    pub epoch: u64,
}

/// Makes the ext4 file system of `staging`'s tree in `image` at `extent`; `work` is a directory for the
/// configuration and command files (removed by the caller).
pub fn make_ext4(image: &Path, extent: Extent, staging: &Path, options: &Ext4Options<'_>, work: &Path) -> Result<()> {
    let conf = work.join("mke2fs.conf");
    std::fs::write(&conf, MKE2FS_CONF).with_context(|| format!("writing {}", conf.display()))?;
    let extended = format!(
        "offset={},hash_seed={},root_owner=0:0",
        extent.offset(),
        options.hash_seed
    );
    let blocks = extent.bytes() / BLOCK_SIZE;
    crate::command::run(
        Command::new("mkfs.ext4")
            .env("MKE2FS_CONFIG", &conf)
            .env("E2FSPROGS_FAKE_TIME", options.epoch.to_string())
            .args(["-q", "-F", "-t", "ext4", "-b", "4096", "-L", options.label])
            .arg("-U")
            .arg(options.uuid.to_string())
            .arg("-E")
            .arg(extended)
            .arg("-d")
            .arg(staging)
            .arg(image)
            .arg(blocks.to_string()),
    )
    .map_err(|err| out_of_space_hint(err, extent))?;
    normalise_inodes(image, extent, options.epoch, work)
}

fn out_of_space_hint(err: anyhow::Error, extent: Extent) -> anyhow::Error {
    let text = format!("{err:#}");
    if text.contains("Could not allocate") || text.contains("No space left") {
        err.context(format!(
            "the root file system of {} MiB is too small for the closure: give a larger image.diskSize (or \"auto\")",
            extent.bytes() >> 20
        ))
    } else {
        err.context("making the root file system (mkfs.ext4)")
    }
}

/// The file system `image?offset=` names for e2fsprogs' tools.
fn at_offset(image: &Path, extent: Extent) -> std::ffi::OsString {
    let mut spec = image.as_os_str().to_owned();
    spec.push(format!("?offset={}", extent.offset()));
    spec
}

/// Sets ctime and atime of every used inode to `epoch` and its owner to root (0:0), through debugfs.
fn normalise_inodes(image: &Path, extent: Extent, epoch: u64, work: &Path) -> Result<()> {
    let dump = crate::command::run(Command::new("dumpe2fs").arg(at_offset(image, extent)))
        .context("listing the root file system's inodes (dumpe2fs)")?;
    let used = used_inodes(&String::from_utf8_lossy(&dump.stdout))?;
    let mut commands = String::new();
    for inode in used {
        for (field, value) in [
            ("ctime", format!("@{epoch}")),
            ("atime", format!("@{epoch}")),
            ("uid", "0".into()),
            ("gid", "0".into()),
        ] {
            writeln!(commands, "sif <{inode}> {field} {value}")?;
        }
    }
    let file = work.join("normalise.debugfs");
    std::fs::write(&file, commands).with_context(|| format!("writing {}", file.display()))?;
    let output = crate::command::run(
        Command::new("debugfs")
            .env("E2FSPROGS_FAKE_TIME", epoch.to_string())
            .arg("-w")
            .arg("-f")
            .arg(&file)
            .arg(at_offset(image, extent)),
    )
    .context("setting the root file system's inode times (debugfs)")?;
    // debugfs reports a failing command on stderr but exits 0.
    let stderr = String::from_utf8_lossy(&output.stderr);
    if let Some(line) = stderr.lines().find(|l| !l.starts_with("debugfs ")) {
        bail!("debugfs could not set an inode's times: {line}");
    }
    Ok(())
}

/// The used inodes (the root directory and every inode from the first non-reserved one) from dumpe2fs's
/// listing: each group's inodes not among its "Free inodes".
fn used_inodes(dump: &str) -> Result<Vec<u64>> {
    let field = |name: &str| -> Result<u64> {
        dump.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("dumpe2fs printed no {name:?}"))
    };
    let per_group = field("Inodes per group:")?;
    let first = field("First inode:")?;
    let mut used = vec![2];
    let mut groups = 0;
    // Each group's section starts `Group N: (Blocks ...)` and lists `  Free inodes: A-B, C, ...` (the
    // superblock's own "Free inodes:" count comes before the first group).
    let mut group = None;
    for line in dump.lines() {
        let heading = line.strip_prefix("Group ").and_then(|rest| rest.split(':').next());
        if let Some(number) = heading.and_then(|n| n.parse::<u64>().ok()) {
            group = Some(number);
            continue;
        }
        let (Some(group), Some(free)) = (group, line.trim_start().strip_prefix("Free inodes: ")) else {
            continue;
        };
        let start = group * per_group + 1;
        let end = start + per_group;
        let mut free_set = Vec::new();
        for range in free.split(", ").filter(|r| !r.trim().is_empty()) {
            let (a, b) = range.trim().split_once('-').unwrap_or((range.trim(), range.trim()));
            let parse = |n: &str| -> Result<u64> {
                n.parse()
                    .with_context(|| format!("dumpe2fs: {range:?} is not an inode range"))
            };
            free_set.push(parse(a)?..=parse(b)?);
        }
        used.extend((start.max(first)..end).filter(|n| !free_set.iter().any(|r| r.contains(n))));
        groups += 1;
    }
    if groups == 0 {
        bail!("dumpe2fs listed no block groups");
    }
    Ok(used)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::require_tool;

    /// A tree of directories and files made in the given order of names, every mtime 1 (as staging leaves
    /// them).
    fn tree(root: &Path, names: &[&str]) {
        let set_mtime = |path: &Path| super::super::staging::set_mtime(path, 1).unwrap();
        for name in names {
            let dir = root.join("nix/store").join(name);
            std::fs::create_dir_all(dir.join("sub")).unwrap();
            std::fs::write(dir.join("sub/file"), format!("{name}\n")).unwrap();
            std::os::unix::fs::symlink("sub/file", dir.join("link")).unwrap();
            for path in [dir.join("sub/file"), dir.join("sub"), dir.join("link"), dir] {
                set_mtime(&path);
            }
        }
        for path in [root.join("nix/store"), root.join("nix"), root.to_path_buf()] {
            set_mtime(&path);
        }
    }

    #[test]
    fn trees_made_in_other_orders_at_other_times_give_the_same_file_system() {
        require_tool("mkfs.ext4", "e2fsprogs");
        require_tool("e2fsck", "e2fsprogs");
        let dir = tempfile::tempdir().unwrap();
        let options = Ext4Options {
            label: "rixos",
            uuid: Uuid::from_u128(1),
            hash_seed: Uuid::from_u128(2),
            epoch: 315_532_800,
        };
        let extent = Extent {
            first_lba: 2048,
            sectors: 64 << 11,
        };
        let mut images = Vec::new();
        for (n, names) in [["a", "b", "c", "d"], ["d", "c", "b", "a"]].iter().enumerate() {
            let staging = dir.path().join(format!("staging-{n}"));
            tree(&staging, names);
            let image = dir.path().join(format!("{n}.img"));
            std::fs::File::create(&image).unwrap().set_len(80 << 20).unwrap();
            make_ext4(&image, extent, &staging, &options, dir.path()).unwrap();
            let fsck = Command::new("e2fsck")
                .arg("-fn")
                .arg(at_offset(&image, extent))
                .output()
                .unwrap();
            assert!(fsck.status.success(), "{}", String::from_utf8_lossy(&fsck.stdout));
            images.push(std::fs::read(&image).unwrap());
            // The second tree's files get other ctimes.
            std::thread::sleep(std::time::Duration::from_millis(1100));
        }
        assert!(images[0] == images[1], "the file systems differ");
    }

    #[test]
    fn used_inodes_are_the_groups_inodes_not_free() {
        let dump = "Free inodes:              250\nInodes per group:         100\nGroup descriptor size:    64\nFirst inode:              11\n\
                    Group 0: (Blocks 0-10)\n  Free inodes: 15-20, 30-100\n\
                    Group 1: (Blocks 11-20)\n  Free inodes: 101-150, 152\n\
                    Group 2: (Blocks 21-30)\n  Free inodes: \n";
        let used = used_inodes(dump).unwrap();
        let expected: Vec<u64> = [2]
            .into_iter()
            .chain(11..15)
            .chain(21..30)
            .chain([151])
            .chain(153..=300)
            .collect();
        assert_eq!(used, expected);
    }
}
