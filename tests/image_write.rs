//! `rixos image write` as a user runs it, into a file (`--to-file`): what it says on stderr when that is not a
//! terminal (a log: plain progress lines, no redrawn bar), and that `-q` silences it.

use std::process::{Command, Output};

fn image_write(args: &[&str], dir: &std::path::Path, corrupt_at: Option<u64>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rixos"));
    command.args(args).current_dir(dir);
    command.env_remove("RIXOS_WRITE_CORRUPT_AT");
    if let Some(offset) = corrupt_at {
        command.env("RIXOS_WRITE_CORRUPT_AT", offset.to_string());
    }
    command.output().unwrap()
}

/// A 9 MiB image: three blocks of the writer's 4 MiB, so progress has steps in between.
fn image(dir: &std::path::Path) {
    let data: Vec<u8> = (0..9u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(dir.join("image.img"), data).unwrap();
}

#[test]
fn writing_into_a_file_logs_plain_progress_lines_with_times() {
    let dir = tempfile::tempdir().unwrap();
    image(dir.path());
    let out = image_write(
        &["image", "write", "image.img", "out.img", "--to-file", "--yes"],
        dir.path(),
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains('\r') && !stderr.contains('\x1b'),
        "a bar was drawn into a log:\n{stderr:?}"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    for (step, expected) in [
        ("writing", "writing out.img: started (9.0 MiB)"),
        ("writing", "writing out.img: 4.0 MiB of 9.0 MiB (44%), "),
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
    let dir = tempfile::tempdir().unwrap();
    image(dir.path());
    let out = image_write(
        &["-q", "image", "write", "image.img", "out.img", "--to-file", "--yes"],
        dir.path(),
        None,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn a_failed_verification_says_where_the_progress_stopped() {
    let dir = tempfile::tempdir().unwrap();
    image(dir.path());
    let out = image_write(
        &["image", "write", "image.img", "out.img", "--to-file", "--yes"],
        dir.path(),
        Some(5 << 20),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("verifying out.img: stopped after ") && stderr.contains(" at 4.0 MiB of 9.0 MiB (44%)"),
        "{stderr}"
    );
    assert!(stderr.contains("differs from the image at byte 5242880"), "{stderr}");
}
