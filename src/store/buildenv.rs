//! `builtin:buildenv`: the symlink forest profiles are made of (a user environment, a system's `sw`).
//!
//! Packages are merged in priority order (lower number wins, then by path). A directory present in one
//! package only is one symlink; where two packages share a directory it becomes a real one holding links
//! into both. Two different files at the same place: the higher priority keeps it; equal priorities are a
//! collision error naming both.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

pub struct Package {
    /// Logical store path (`/nix/store/...`), what the links point at.
    pub path: String,
    pub active: bool,
    pub priority: i64,
}

/// Parses the `derivations` variable: groups of `active priority count path...`.
pub fn parse_packages(text: &str) -> Result<Vec<Package>> {
    let mut tokens = text.split_whitespace();
    let mut packages = Vec::new();
    while let Some(active) = tokens.next() {
        let active = match active {
            "1" | "true" => true,
            "" | "0" | "false" => false,
            other => bail!("buildenv: {other:?} is not an 'active' flag (true/false)"),
        };
        let priority: i64 = tokens
            .next()
            .context("buildenv: a package lacks its priority")?
            .parse()?;
        let count: usize = tokens
            .next()
            .context("buildenv: a package lacks its output count")?
            .parse()?;
        for _ in 0..count {
            let path = tokens.next().context("buildenv: fewer output paths than announced")?;
            packages.push(Package {
                path: path.to_string(),
                active,
                priority,
            });
        }
    }
    Ok(packages)
}

/// Builds the forest at `out` (physical). `real` maps a logical store path (or a path inside one) to where it
/// is on disk.
/// Paths Nix's buildenv never links into a profile.
const IGNORED: &[&str] = &[
    "/propagated-build-inputs",
    "/nix-support",
    "/perllocal.pod",
    "/info/dir",
    "/log",
    "/manifest.nix",
    "/manifest.json",
];

pub fn build_profile(out: &Path, mut packages: Vec<Package>, real: &dyn Fn(&str) -> PathBuf) -> Result<()> {
    packages.sort_by(|a, b| a.priority.cmp(&b.priority).then_with(|| a.path.cmp(&b.path)));
    fs::create_dir_all(out)?;
    let mut forest = Forest {
        real,
        priorities: HashMap::new(),
    };
    let mut done = BTreeSet::new();
    for package in packages.iter().filter(|p| p.active) {
        if done.insert(package.path.clone()) {
            forest.link_tree(&package.path, out, package.priority)?;
        }
    }
    Ok(())
}

struct Forest<'a> {
    real: &'a dyn Fn(&str) -> PathBuf,
    /// The priority of the package each link in the forest came from.
    priorities: HashMap<PathBuf, i64>,
}

impl Forest<'_> {
    /// Links the entries of logical directory `source` into physical directory `target`.
    fn link_tree(&mut self, source: &str, target: &Path, priority: i64) -> Result<()> {
        let physical = (self.real)(source);
        let mut names: Vec<_> = fs::read_dir(&physical)
            .with_context(|| format!("buildenv: reading {source}"))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort();
        for name in names {
            let name = name.to_string_lossy().into_owned();
            let src = format!("{source}/{name}");
            // What Nix's buildenv leaves out of profiles: package metadata, not files to use.
            if IGNORED.iter().any(|i| src.ends_with(i)) {
                continue;
            }
            let dst = target.join(&name);
            let src_is_dir = fs::metadata((self.real)(&src)).map(|m| m.is_dir()).unwrap_or(false);
            match fs::symlink_metadata(&dst) {
                Err(_) => self.link(&src, &dst, priority)?,
                Ok(meta) if meta.is_dir() && src_is_dir => self.link_tree(&src, &dst, priority)?,
                Ok(meta) if meta.file_type().is_symlink() && src_is_dir && self.points_to_dir(&dst)? => {
                    // A directory one package brought: turn the link into a real directory holding both.
                    let previous = fs::read_link(&dst)?.to_string_lossy().into_owned();
                    let previous_priority = self.priorities.remove(&dst).unwrap_or(priority);
                    fs::remove_file(&dst)?;
                    fs::create_dir(&dst)?;
                    self.link_tree(&previous, &dst, previous_priority)?;
                    self.link_tree(&src, &dst, priority)?;
                }
                Ok(_) => {
                    let previous = fs::read_link(&dst)
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let previous_priority = self.priorities.get(&dst).copied().unwrap_or(i64::MIN);
                    if previous == src || previous_priority < priority {
                        continue;
                    }
                    if previous_priority == priority {
                        bail!(
                            "collision between '{previous}' and '{src}': both packages have priority {priority}; \
                             give one of them another priority"
                        );
                    }
                    fs::remove_file(&dst)?;
                    self.link(&src, &dst, priority)?;
                }
            }
        }
        Ok(())
    }

    fn points_to_dir(&self, link: &Path) -> Result<bool> {
        let target = fs::read_link(link)?;
        Ok(fs::metadata((self.real)(&target.to_string_lossy()))
            .map(|m| m.is_dir())
            .unwrap_or(false))
    }

    fn link(&mut self, src: &str, dst: &Path, priority: i64) -> Result<()> {
        std::os::unix::fs::symlink(src, dst).with_context(|| format!("buildenv: linking {}", dst.display()))?;
        self.priorities.insert(dst.to_path_buf(), priority);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_derivations_variable_parses_like_nix_writes_it() {
        let packages = parse_packages("true 5 2 /nix/store/a-x /nix/store/a-x-man false 3 1 /nix/store/b").unwrap();
        let seen: Vec<_> = packages
            .iter()
            .map(|p| (p.path.as_str(), p.active, p.priority))
            .collect();
        assert_eq!(
            seen,
            [
                ("/nix/store/a-x", true, 5),
                ("/nix/store/a-x-man", true, 5),
                ("/nix/store/b", false, 3)
            ]
        );
        assert!(parse_packages("true 5 2 /nix/store/a").is_err());
    }

    fn tree(root: &Path, files: &[&str]) {
        for file in files {
            let path = root.join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, file).unwrap();
        }
    }

    #[test]
    fn shared_directories_merge_and_priorities_settle_conflicts() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        tree(&store.join("vim"), &["bin/vim", "share/man/vim.1"]);
        tree(&store.join("git"), &["bin/git", "share/git/x"]);
        tree(&store.join("git2"), &["bin/git"]);
        let real = |logical: &str| store.join(logical.trim_start_matches("/nix/store/"));
        let package = |name: &str, priority| Package {
            path: format!("/nix/store/{name}"),
            active: true,
            priority,
        };
        let out = dir.path().join("out");
        build_profile(
            &out,
            vec![package("vim", 5), package("git", 5), package("git2", 4)],
            &real,
        )
        .unwrap();
        assert!(
            fs::symlink_metadata(out.join("bin")).unwrap().is_dir(),
            "bin must merge into a real directory"
        );
        assert_eq!(
            fs::read_link(out.join("bin/vim")).unwrap(),
            Path::new("/nix/store/vim/bin/vim")
        );
        assert_eq!(
            fs::read_link(out.join("bin/git")).unwrap(),
            Path::new("/nix/store/git2/bin/git"),
            "priority 4 wins"
        );
        assert_eq!(
            fs::read_link(out.join("share/git")).unwrap(),
            Path::new("/nix/store/git/share/git")
        );

        let clash = dir.path().join("clash");
        let err = build_profile(&clash, vec![package("git", 5), package("git2", 5)], &real)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("collision between '/nix/store/git/bin/git' and '/nix/store/git2/bin/git'"),
            "{err}"
        );
    }
}
