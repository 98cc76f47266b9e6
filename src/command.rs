//! The one way rixos runs external programs (gpgv, patchelf, mkfs, qemu): the command is logged at `-v`, and a
//! failure names the program, its arguments, its exit status and the end of what it printed on stderr.

use std::process::{Command, Output};

use anyhow::{Result, bail};

/// How much of a failing program's stderr goes into the error.
const STDERR_TAIL: usize = 2000;

/// Runs `command` to completion and gives its output; a non-zero exit is an error.
pub fn run(command: &mut Command) -> Result<Output> {
    let shown = show(command);
    if crate::verbosity::verbose() || std::env::var_os("RIXOS_VERBOSE").is_some() {
        eprintln!("running {shown}");
    }
    let output = match command.output() {
        Ok(o) => o,
        Err(e) => bail!("could not run {shown}: {e}"),
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail = &stderr[stderr.len().saturating_sub(STDERR_TAIL)..];
        bail!("{shown} failed ({}):\n{}", output.status, tail.trim_end());
    }
    Ok(output)
}

fn show(command: &Command) -> String {
    let mut s = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_names_the_program_and_its_stderr() {
        let err = run(Command::new("sh").args(["-c", "echo oops >&2; exit 3"])).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("sh -c"), "{text}");
        assert!(text.contains("oops"), "{text}");
        assert!(text.contains("exit status: 3"), "{text}");
        let err = run(&mut Command::new("/nonexistent/program")).unwrap_err();
        assert!(format!("{err:#}").contains("could not run /nonexistent/program"));
    }
}
