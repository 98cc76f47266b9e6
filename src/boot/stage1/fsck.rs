//! Checking a filesystem before it is mounted, as `CHECKER -p DEVICE` (e2fsck's "preen": fix what is safe
//! to fix without asking), and what its exit code means (fsck(8)'s convention: bit 1 = errors corrected,
//! bit 2 = corrected but reboot, 4 and above = errors left or the check failed).
//!
//! Uses only std (`std::process`).

use std::process::Command;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FsckOutcome {
    Clean,
    Corrected,
    /// Corrected, but the system must reboot before using the filesystem (e.g. the mounted root was fixed).
    RebootNeeded,
}

pub(crate) fn outcome(exit_code: i32) -> Result<FsckOutcome, String> {
    match exit_code {
        0 => Ok(FsckOutcome::Clean),
        1 => Ok(FsckOutcome::Corrected),
        2 | 3 => Ok(FsckOutcome::RebootNeeded),
        code => Err(format!("it exited with {code}: {}", meaning(code))),
    }
}

fn meaning(code: i32) -> &'static str {
    if code & 8 != 0 {
        "operational error"
    } else if code & 4 != 0 {
        "errors left uncorrected; run the checker by hand from the rescue shell"
    } else {
        "unexpected exit code"
    }
}

pub(crate) fn check(checker: &str, device: &str) -> Result<FsckOutcome, String> {
    let status = Command::new(checker)
        .arg("-p")
        .arg(device)
        .status()
        .map_err(|e| format!("checking {device} with `{checker} -p {device}` failed to start: {e}"))?;
    match status.code() {
        Some(code) => outcome(code).map_err(|why| format!("checking {device} with `{checker} -p {device}`: {why}")),
        None => Err(format!(
            "checking {device} with `{checker} -p {device}`: killed by a signal ({status})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(outcome(0), Ok(FsckOutcome::Clean));
        assert_eq!(outcome(1), Ok(FsckOutcome::Corrected));
        assert_eq!(outcome(2), Ok(FsckOutcome::RebootNeeded));
        assert_eq!(outcome(3), Ok(FsckOutcome::RebootNeeded));
        assert!(outcome(4).unwrap_err().contains("uncorrected"));
        assert!(outcome(8).unwrap_err().contains("operational"));
        assert!(outcome(12).unwrap_err().contains("exited with 12"));
    }

    #[test]
    fn a_missing_checker_is_an_error() {
        let error = check("/nonexistent/e2fsck", "/dev/vda").unwrap_err();
        assert!(error.contains("failed to start"), "{error}");
    }
}
