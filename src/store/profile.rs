//! Profiles and their generations, as Nix keeps them: a profile `P` is a symlink to `P-N-link`, which points
//! at a store path. The later `system`, `env` and `channel` commands are built on this.
//!
//! Every change of a link is atomic (a new link under a temporary name, renamed over the old one), so a
//! crash leaves either the old or the new generation current, never none.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};

use super::path::StorePath;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    pub number: u64,
    /// The `P-N-link` symlink.
    pub link: PathBuf,
    pub target: StorePath,
    /// When the generation was made (the link's own mtime, as Nix reads it).
    pub created: SystemTime,
}

/// One profile, e.g. `ROOT/nix/var/nix/profiles/system`.
#[derive(Debug, Clone)]
pub struct Profile {
    path: PathBuf,
}

impl Profile {
    pub fn new(path: impl Into<PathBuf>) -> Profile {
        Profile { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn name(&self) -> Result<String> {
        let name = self.path.file_name().and_then(|n| n.to_str());
        Ok(name
            .with_context(|| format!("profile {} has no usable name", self.path.display()))?
            .to_string())
    }

    fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    fn link_name(&self, number: u64) -> Result<String> {
        Ok(format!("{}-{number}-link", self.name()?))
    }

    /// All generations, oldest first.
    pub fn generations(&self) -> Result<Vec<Generation>> {
        let name = self.name()?;
        let mut generations = Vec::new();
        let entries = match fs::read_dir(self.dir()) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(generations),
            Err(e) => return Err(e).with_context(|| format!("listing {}", self.dir().display())),
        };
        for entry in entries {
            let entry = entry?;
            let file_name = entry.file_name();
            let Some(number) = file_name
                .to_str()
                .and_then(|n| n.strip_prefix(&format!("{name}-")))
                .and_then(|n| n.strip_suffix("-link"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let link = entry.path();
            let target = fs::read_link(&link).with_context(|| format!("reading {}", link.display()))?;
            let target = StorePath::parse(&target.to_string_lossy())
                .with_context(|| format!("generation link {} does not point into the store", link.display()))?;
            let created = fs::symlink_metadata(&link)?.modified()?;
            generations.push(Generation {
                number,
                link,
                target,
                created,
            });
        }
        generations.sort_by_key(|g| g.number);
        Ok(generations)
    }

    /// The current generation's number, if the profile exists.
    pub fn current(&self) -> Result<Option<u64>> {
        let target = match fs::read_link(&self.path) {
            Ok(target) => target,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", self.path.display())),
        };
        let name = self.name()?;
        let number = target
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix(&format!("{name}-")))
            .and_then(|n| n.strip_suffix("-link"))
            .and_then(|n| n.parse().ok());
        match number {
            Some(number) => Ok(Some(number)),
            None => bail!(
                "{} points at {}, which is not one of its generations",
                self.path.display(),
                target.display()
            ),
        }
    }

    /// Makes `target` a generation of the profile, without switching to it. Reuses the current generation when
    /// it already points there, as Nix does.
    pub fn add_generation(&self, target: &StorePath) -> Result<u64> {
        let generations = self.generations()?;
        if let Some(current) = self.current()?
            && let Some(g) = generations.iter().find(|g| g.number == current)
            && &g.target == target
        {
            return Ok(current);
        }
        let number = generations.last().map_or(1, |g| g.number + 1);
        fs::create_dir_all(self.dir()).with_context(|| format!("creating {}", self.dir().display()))?;
        replace_symlink(&target.to_string(), &self.dir().join(self.link_name(number)?))?;
        Ok(number)
    }

    /// Points the profile at generation `number`.
    pub fn switch(&self, number: u64) -> Result<()> {
        if !self.generations()?.iter().any(|g| g.number == number) {
            bail!("profile {} has no generation {number}", self.path.display());
        }
        replace_symlink(&self.link_name(number)?, &self.path)
    }

    /// Switches to the newest generation older than the current one; returns its number.
    pub fn rollback(&self) -> Result<u64> {
        let current = self
            .current()?
            .with_context(|| format!("profile {} does not exist", self.path.display()))?;
        let previous = self.generations()?.into_iter().rev().find(|g| g.number < current);
        let previous = previous.with_context(|| {
            format!(
                "profile {} has no generation older than the current one ({current})",
                self.path.display()
            )
        })?;
        self.switch(previous.number)?;
        Ok(previous.number)
    }

    /// Deletes the given generations; the current one is refused.
    pub fn delete_generations(&self, numbers: &[u64]) -> Result<()> {
        let current = self.current()?;
        for &number in numbers {
            if Some(number) == current {
                bail!(
                    "generation {number} of {} is the current one and cannot be deleted",
                    self.path.display()
                );
            }
            let link = self.dir().join(self.link_name(number)?);
            fs::remove_file(&link).with_context(|| format!("deleting generation {number} ({})", link.display()))?;
        }
        Ok(())
    }

    /// The generations `-d` deletes: all but the current one.
    pub fn old_generations(&self) -> Result<Vec<u64>> {
        let current = self.current()?;
        Ok(self
            .generations()?
            .iter()
            .map(|g| g.number)
            .filter(|n| Some(*n) != current)
            .collect())
    }

    /// `-d`: deletes every generation but the current one. Returns the deleted numbers.
    pub fn delete_old(&self) -> Result<Vec<u64>> {
        let doomed = self.old_generations()?;
        self.delete_generations(&doomed)?;
        Ok(doomed)
    }

    /// `--delete-older-than`: deletes generations made before `now - age`, except the newest of those (it was
    /// the live one at the cutoff) and the current one. Returns the deleted numbers.
    pub fn delete_older_than(&self, age: Duration, now: SystemTime) -> Result<Vec<u64>> {
        let doomed = self.generations_older_than(age, now)?;
        self.delete_generations(&doomed)?;
        Ok(doomed)
    }

    /// The generations `--delete-older-than` deletes.
    pub fn generations_older_than(&self, age: Duration, now: SystemTime) -> Result<Vec<u64>> {
        let cutoff = now.checked_sub(age).unwrap_or(SystemTime::UNIX_EPOCH);
        let current = self.current()?;
        let older: Vec<Generation> = self.generations()?.into_iter().filter(|g| g.created < cutoff).collect();
        let mut doomed: Vec<u64> = older
            .iter()
            .rev()
            .skip(1)
            .map(|g| g.number)
            .filter(|n| Some(*n) != current)
            .collect();
        doomed.sort_unstable();
        Ok(doomed)
    }
}

/// Parses `30d` (days) as Nix's `--delete-older-than` does.
pub fn parse_age(text: &str) -> Result<Duration> {
    let days = text.strip_suffix('d').and_then(|n| n.parse::<u64>().ok());
    let days = days.with_context(|| format!("{text:?} is not an age like '30d' (a number of days)"))?;
    Ok(Duration::from_secs(days * 24 * 60 * 60))
}

/// Makes `link` point at `target` atomically: a new symlink beside it, renamed over it.
pub fn replace_symlink(target: &str, link: &Path) -> Result<()> {
    let temporary = link.with_file_name(format!(
        ".{}.tmp-{}",
        link.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let _ = fs::remove_file(&temporary);
    std::os::unix::fs::symlink(target, &temporary)
        .with_context(|| format!("creating the link {}", temporary.display()))?;
    fs::rename(&temporary, link).with_context(|| format!("replacing {}", link.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::hash::sha256;
    use crate::store::path::text_path;

    fn store_path(name: &str) -> StorePath {
        text_path(name, &sha256(name.as_bytes()), []).unwrap()
    }

    fn set_created(link: &Path, when: SystemTime) {
        use nix::sys::stat::{UtimensatFlags, utimensat};
        let secs = when.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
        let time = nix::sys::time::TimeSpec::new(secs as nix::libc::time_t, 0);
        utimensat(
            nix::fcntl::AT_FDCWD,
            link,
            &time,
            &time,
            UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
    }

    #[test]
    fn generations_switch_roll_back_and_reuse_the_current_one() {
        let dir = tempfile::tempdir().unwrap();
        let profile = Profile::new(dir.path().join("system"));
        assert_eq!(profile.current().unwrap(), None);
        let (a, b) = (store_path("a"), store_path("b"));
        assert_eq!(profile.add_generation(&a).unwrap(), 1);
        profile.switch(1).unwrap();
        assert_eq!(
            profile.add_generation(&a).unwrap(),
            1,
            "same target reuses the current generation"
        );
        assert_eq!(profile.add_generation(&b).unwrap(), 2);
        profile.switch(2).unwrap();
        assert_eq!(
            fs::read_link(dir.path().join("system")).unwrap(),
            Path::new("system-2-link")
        );
        assert_eq!(
            fs::read_link(dir.path().join("system-2-link")).unwrap(),
            Path::new(&b.to_string())
        );
        assert_eq!(profile.rollback().unwrap(), 1);
        assert_eq!(profile.current().unwrap(), Some(1));
        let err = profile.rollback().unwrap_err().to_string();
        assert!(err.contains("no generation older than the current one (1)"), "{err}");
        let numbers: Vec<u64> = profile.generations().unwrap().iter().map(|g| g.number).collect();
        assert_eq!(numbers, [1, 2]);
        assert!(profile.switch(7).is_err());
    }

    #[test]
    fn deleting_keeps_the_current_generation() {
        let dir = tempfile::tempdir().unwrap();
        let profile = Profile::new(dir.path().join("p"));
        for name in ["a", "b", "c"] {
            profile.add_generation(&store_path(name)).unwrap();
        }
        profile.switch(2).unwrap();
        assert!(
            profile
                .delete_generations(&[2])
                .unwrap_err()
                .to_string()
                .contains("current")
        );
        assert_eq!(profile.delete_old().unwrap(), [1, 3]);
        let numbers: Vec<u64> = profile.generations().unwrap().iter().map(|g| g.number).collect();
        assert_eq!(numbers, [2]);
    }

    #[test]
    fn delete_older_than_keeps_the_generation_live_at_the_cutoff() {
        let dir = tempfile::tempdir().unwrap();
        let profile = Profile::new(dir.path().join("p"));
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(100 * 86400);
        // Generations 1..4 made 40, 35, 20 and 1 days ago; 4 is current.
        for (i, days_ago) in [40u64, 35, 20, 1].iter().enumerate() {
            let n = profile.add_generation(&store_path(&format!("g{i}"))).unwrap();
            set_created(
                &dir.path().join(format!("p-{n}-link")),
                now - Duration::from_secs(days_ago * 86400),
            );
        }
        profile.switch(4).unwrap();
        // Cutoff 30 days ago: 1 and 2 are older; 2 was live at the cutoff and stays.
        assert_eq!(profile.delete_older_than(parse_age("30d").unwrap(), now).unwrap(), [1]);
        let numbers: Vec<u64> = profile.generations().unwrap().iter().map(|g| g.number).collect();
        assert_eq!(numbers, [2, 3, 4]);
        assert!(parse_age("30").is_err() && parse_age("xd").is_err());
    }
}
