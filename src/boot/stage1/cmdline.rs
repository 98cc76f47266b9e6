//! The kernel command line (`/proc/cmdline`): split the way the kernel splits it, and the parameters stage 1
//! reads from it.
//!
//! Pure: takes the text, reads nothing itself. Unknown parameters are ignored (they are the kernel's, or
//! stage 2's); a known parameter with a bad value is kept out and reported as a warning, never fatal.

/// What stage 1 takes from the kernel command line. For parameters given twice, the last wins, as in the kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KernelParams {
    /// `init=`: stage 2 inside the new root, instead of the config's.
    pub(crate) init: Option<String>,
    /// `root=`, `rootfstype=`, `rootflags=`: override the config's root line.
    pub(crate) root: Option<String>,
    pub(crate) root_fstype: Option<String>,
    pub(crate) root_flags: Option<String>,
    /// `rixos.timeout=N`: seconds to wait for devices.
    pub(crate) timeout_secs: Option<u64>,
    /// `boot.shell_on_fail` / `rixos.shell_on_fail`: on failure, start the rescue shell without asking.
    pub(crate) shell_on_fail: bool,
    /// `boot.panic_on_fail`: on failure, reboot instead of offering a shell.
    pub(crate) panic_on_fail: bool,
    /// `copytoram`: live mode copies the store into RAM so the medium can be removed.
    pub(crate) copytoram: bool,
    /// `rixos.debug`: say more about each step.
    pub(crate) debug: bool,
    /// Known parameters whose values could not be used.
    pub(crate) warnings: Vec<String>,
}

pub(crate) fn parse(cmdline: &str) -> KernelParams {
    let mut params = KernelParams::default();
    for (name, value) in split(cmdline) {
        let value_or_warn = |params: &mut KernelParams| -> Option<String> {
            match &value {
                Some(v) if !v.is_empty() => Some(v.clone()),
                _ => {
                    params
                        .warnings
                        .push(format!("`{name}` needs a value (`{name}=...`); ignored"));
                    None
                }
            }
        };
        match name.as_str() {
            "init" => params.init = value_or_warn(&mut params).or(params.init.take()),
            "root" => params.root = value_or_warn(&mut params).or(params.root.take()),
            "rootfstype" => params.root_fstype = value_or_warn(&mut params).or(params.root_fstype.take()),
            "rootflags" => params.root_flags = value_or_warn(&mut params).or(params.root_flags.take()),
            "rixos.timeout" => match value.as_deref().map(str::parse::<u64>) {
                Some(Ok(seconds)) => params.timeout_secs = Some(seconds),
                _ => params.warnings.push(format!(
                    "`rixos.timeout` wants whole seconds, got `{}`; ignored",
                    value.as_deref().unwrap_or("")
                )),
            },
            "boot.shell_on_fail" | "rixos.shell_on_fail" => params.shell_on_fail = true,
            "boot.panic_on_fail" => params.panic_on_fail = true,
            "copytoram" => params.copytoram = true,
            "rixos.debug" => params.debug = true,
            _ => {}
        }
    }
    params
}

/// Splits the command line into `(name, value)` pairs exactly as the kernel's `next_arg` does: whitespace
/// separates arguments except inside double quotes; a quote opening the argument or the value is dropped
/// with the quote that ends the argument (`a="b c"` is `a` = `b c`), other quotes stay.
pub(crate) fn split(cmdline: &str) -> Vec<(String, Option<String>)> {
    let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    let bytes = cmdline.as_bytes();
    let mut args = Vec::new();
    let mut at = 0;
    loop {
        while at < bytes.len() && is_space(bytes[at]) {
            at += 1;
        }
        if at >= bytes.len() {
            break;
        }
        let quoted = bytes[at] == b'"';
        let start = if quoted { at + 1 } else { at };
        let mut in_quote = quoted;
        let mut equals = None;
        let mut end = start;
        while end < bytes.len() && (in_quote || !is_space(bytes[end])) {
            if equals.is_none() && bytes[end] == b'=' {
                equals = Some(end);
            }
            if bytes[end] == b'"' {
                in_quote = !in_quote;
            }
            end += 1;
        }
        let ends_with_quote = end > start && bytes[end - 1] == b'"';
        // Every split point is an ASCII byte, so these slices are on char boundaries.
        let arg = match equals {
            Some(eq) => {
                let name = &cmdline[start..eq];
                let mut value_start = eq + 1;
                let mut value_end = end;
                let value_quoted = bytes.get(value_start) == Some(&b'"');
                if value_quoted {
                    value_start += 1;
                }
                if (value_quoted || quoted) && ends_with_quote && value_end > value_start {
                    value_end -= 1;
                }
                (
                    name.to_string(),
                    Some(cmdline[value_start..value_end.max(value_start)].to_string()),
                )
            }
            None => {
                let name_end = if quoted && ends_with_quote { end - 1 } else { end };
                (cmdline[start..name_end].to_string(), None)
            }
        };
        args.push(arg);
        at = end;
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(cmdline: &str) -> Vec<(String, Option<String>)> {
        split(cmdline)
    }

    fn p(name: &str, value: Option<&str>) -> (String, Option<String>) {
        (name.to_string(), value.map(str::to_string))
    }

    #[test]
    fn splits_like_the_kernel() {
        assert_eq!(
            pairs("  console=ttyS0 panic=-1\tquiet\n"),
            vec![p("console", Some("ttyS0")), p("panic", Some("-1")), p("quiet", None)]
        );
        assert_eq!(
            pairs(r#"root="LABEL=my disk" ro"#),
            vec![p("root", Some("LABEL=my disk")), p("ro", None)]
        );
        assert_eq!(pairs(r#""a b=c d" e"#), vec![p("a b", Some("c d")), p("e", None)]);
        assert_eq!(pairs(r#"x=a"b c"d"#), vec![p("x", Some(r#"a"b c"d"#))]);
        assert_eq!(pairs(r#""flag""#), vec![p("flag", None)]);
        assert_eq!(pairs("k= k2=\"\""), vec![p("k", Some("")), p("k2", Some(""))]);
        assert_eq!(pairs("a=b=c"), vec![p("a", Some("b=c"))]);
        assert_eq!(pairs(""), vec![]);
    }

    #[test]
    fn unterminated_quote_runs_to_the_end() {
        assert_eq!(pairs(r#"a="b c"#), vec![p("a", Some("b c"))]);
    }

    #[test]
    fn reads_stage1_parameters() {
        let params = parse(
            "BOOT_IMAGE=/vmlinuz init=/nix/store/a-system/init root=UUID=0a0b rootfstype=ext4 rootflags=ro,noatime \
             rixos.timeout=7 boot.shell_on_fail copytoram rixos.debug",
        );
        assert_eq!(params.init.as_deref(), Some("/nix/store/a-system/init"));
        assert_eq!(params.root.as_deref(), Some("UUID=0a0b"));
        assert_eq!(params.root_fstype.as_deref(), Some("ext4"));
        assert_eq!(params.root_flags.as_deref(), Some("ro,noatime"));
        assert_eq!(params.timeout_secs, Some(7));
        assert!(params.shell_on_fail && params.copytoram && params.debug);
        assert!(!params.panic_on_fail);
        assert!(params.warnings.is_empty());
        assert!(parse("rixos.shell_on_fail boot.panic_on_fail").shell_on_fail);
        assert!(parse("boot.panic_on_fail").panic_on_fail);
    }

    #[test]
    fn last_wins_and_bad_values_warn() {
        let params = parse("init=/a init=/b rixos.timeout=soon root= init");
        assert_eq!(params.init.as_deref(), Some("/b"));
        assert_eq!(params.timeout_secs, None);
        assert_eq!(params.root, None);
        assert_eq!(params.warnings.len(), 3, "{:?}", params.warnings);
    }
}
