//! One switch at a time: an exclusive lock on `/run/rixos/switch.lock`, taken without waiting, so a second
//! switch fails at once and names the first instead of interleaving with it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use nix::fcntl::{Flock, FlockArg};

/// Held for as long as the switch runs; released when dropped (or when the process dies).
pub struct SwitchLock {
    _lock: Flock<File>,
}

impl SwitchLock {
    /// Takes the lock in `run_dir` (`/run/rixos`).
    pub fn take(run_dir: &Path) -> Result<SwitchLock> {
        std::fs::create_dir_all(run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
        let path = run_dir.join("switch.lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((mut file, _)) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                bail!(
                    "another switch of this system is running{}: wait for it to finish, then try again",
                    if holder.is_empty() {
                        String::new()
                    } else {
                        format!(" (process {holder}, {})", path.display())
                    }
                );
            }
        };
        lock.set_len(0)?;
        lock.rewind()?;
        write!(lock, "{}", std::process::id())?;
        Ok(SwitchLock { _lock: lock })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_switch_is_refused_and_names_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let first = SwitchLock::take(dir.path()).unwrap();
        let error = SwitchLock::take(dir.path()).err().unwrap().to_string();
        assert!(
            error.contains("another switch") && error.contains(&std::process::id().to_string()),
            "{error}"
        );
        drop(first);
        SwitchLock::take(dir.path()).unwrap();
    }
}
