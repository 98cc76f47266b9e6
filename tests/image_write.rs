//! `rixos image write` as a user runs it, into a file (`--to-file`): what it says on stderr when that is not a
//! terminal (a log: plain progress lines, no redrawn bar), and that `-q` silences it.

use std::process::{Command, Output};

/// `rixos [-q] image write image.img out.img --to-file --yes` in a new directory holding a 9 MiB image (three
/// of the writer's 4 MiB blocks, so progress has steps in between), with the corruption test hook when given.
fn write_into_a_file(quiet: bool, corrupt_at: Option<u64>) -> (tempfile::TempDir, Output) {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..9u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(dir.path().join("image.img"), data).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_rixos"));
    if quiet {
        command.arg("-q");
    }
    command
        .args(["image", "write", "image.img", "out.img", "--to-file", "--yes"])
        .current_dir(dir.path())
        .env_remove("RIXOS_WRITE_CORRUPT_AT");
    if let Some(offset) = corrupt_at {
        command.env("RIXOS_WRITE_CORRUPT_AT", offset.to_string());
    }
    let out = command.output().unwrap();
    (dir, out)
}

#[test]
fn writing_into_a_file_logs_plain_progress_lines_with_times() {
    let (dir, out) = write_into_a_file(false, None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains('\r') && !stderr.contains('\x1b'),
        "a bar was drawn into a log:\n{stderr:?}"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    for (step, expected) in [
        ("writing", "writing out.img: started (9.0 MiB)"),
        // The rate follows only once there is time enough to measure one.
        ("writing", "writing out.img: 4.0 MiB of 9.0 MiB (44%)"),
        ("writing", "writing out.img: done in "),
        ("verifying", "verifying out.img: started (9.0 MiB)"),
        ("verifying", "verifying out.img: done in "),
        ("the result", "wrote 9.0 MiB to out.img and read it back: sha256 "),
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(expected)),
            "{step}: no line starting {expected:?} in:\n{stderr}"
        );
    }
    assert_eq!(
        std::fs::read(dir.path().join("out.img")).unwrap(),
        std::fs::read(dir.path().join("image.img")).unwrap()
    );
}

#[test]
fn quiet_writing_prints_nothing() {
    let (_dir, out) = write_into_a_file(true, None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn a_failed_verification_says_where_the_progress_stopped() {
    let (_dir, out) = write_into_a_file(false, Some(5 << 20));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("verifying out.img: stopped after ") && stderr.contains(" at 4.0 MiB of 9.0 MiB (44%)"),
        "{stderr}"
    );
    assert!(stderr.contains("differs from the image at byte 5242880"), "{stderr}");
}
