//! `builtin:unit-tree`: the directory systemd reads units from (`/etc/systemd/system`) or udev its rules from
//! (`/etc/udev/rules.d`), with every program path pointed into the store.
//!
//! Debian's unit files and rules name programs where Debian installs them (`/lib/systemd/systemd-journald`,
//! `/sbin/agetty`, `ata_id` in `/lib/udev`); a rixos system has no such directories. Each absolute program path
//! under `/bin`, `/sbin`, `/usr/bin`, `/usr/sbin`, `/lib/systemd`, `/lib/udev` (and their `/usr/lib` forms) is
//! looked up in the `search` packages, in order, and replaced by the first store file found; a path found in
//! none is left alone (`ExecStartPre=-/bin/plymouth ...` is allowed to fail). In udev rules, bare program
//! names of `PROGRAM`, `IMPORT{program}` and `RUN` are looked up in `lib/udev` the same way.
//!
//! The derivation's environment:
//! - `units`: `NAME<TAB>SOURCE` lines; SOURCE is a store file, copied with its paths rewritten, or a link to a
//!   sibling (an alias such as `ctrl-alt-del.target -> reboot.target`), kept as a link;
//! - `links`: `PATH<TAB>TARGET` lines for `.wants`/`.requires` entries, aliases and masks (`/dev/null`);
//! - `search`: the packages programs are looked up in; `kind`: `units` (default) or `udev-rules`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::store::derivation::Derivation;

/// Builds the unit (or rules) directory of `drv` at `target`; `real` maps a logical store path to the file.
pub fn build(drv: &Derivation, target: &Path, real: &dyn Fn(&str) -> PathBuf) -> Result<()> {
    let env = |key: &str| drv.env.get(key).map_or("", String::as_str);
    let udev = match env("kind") {
        "" | "units" => false,
        "udev-rules" => true,
        other => bail!("builtin:unit-tree: unknown kind {other:?} (units or udev-rules)"),
    };
    let search: Vec<&str> = env("search").split_whitespace().collect();
    let exists = |logical: &str| fs::symlink_metadata(real(logical)).is_ok();
    let resolver = Resolver {
        search: &search,
        exists: &exists,
    };
    fs::create_dir_all(target)?;
    for line in env("units").lines().filter(|l| !l.is_empty()) {
        let (name, source) = split_line(line)?;
        let dest = target.join(checked_relative(name)?);
        let physical = real(source);
        if let Ok(to) = fs::read_link(&physical) {
            let to = to.to_string_lossy().into_owned();
            if !to.contains('/') {
                std::os::unix::fs::symlink(&to, &dest)?;
                continue;
            }
        }
        let text = fs::read_to_string(&physical).with_context(|| format!("reading the unit {name} ({source})"))?;
        let text = if udev {
            resolver.rewrite_rules(&text)
        } else {
            resolver.rewrite(&text)
        };
        fs::write(&dest, text).with_context(|| format!("writing {}", dest.display()))?;
    }
    for line in env("links").lines().filter(|l| !l.is_empty()) {
        let (path, to) = split_line(line)?;
        let link = target.join(checked_relative(path)?);
        if let Some(parent) = link.parent() {
            fs::create_dir_all(parent)?;
        }
        std::os::unix::fs::symlink(to, &link).with_context(|| format!("linking {path} to {to}"))?;
    }
    Ok(())
}

fn split_line(line: &str) -> Result<(&str, &str)> {
    line.split_once('\t')
        .with_context(|| format!("builtin:unit-tree: line {line:?} is not NAME<TAB>VALUE"))
}

fn checked_relative(path: &str) -> Result<&Path> {
    let p = Path::new(path);
    if p.is_absolute() || p.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
        bail!("builtin:unit-tree: {path:?} must be a relative path without '..'");
    }
    Ok(p)
}

/// Looks program paths up in packages.
struct Resolver<'a> {
    search: &'a [&'a str],
    exists: &'a dyn Fn(&str) -> bool,
}

/// Directories whose programs are looked up, with where they are in a package (Debian's /usr merged in).
const PROGRAM_DIRS: &[(&str, &[&str])] = &[
    ("/usr/bin/", &["bin/", "sbin/"]),
    ("/usr/sbin/", &["sbin/", "bin/"]),
    ("/bin/", &["bin/", "sbin/"]),
    ("/sbin/", &["sbin/", "bin/"]),
    ("/usr/lib/systemd/", &["lib/systemd/"]),
    ("/lib/systemd/", &["lib/systemd/"]),
    ("/usr/lib/udev/", &["lib/udev/"]),
    ("/lib/udev/", &["lib/udev/"]),
];

fn path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '+' | '@' | '/')
}

impl Resolver<'_> {
    /// The store file for a program path such as `/sbin/agetty`, if a package has it.
    fn lookup(&self, path: &str) -> Option<String> {
        let (prefix, dirs) = PROGRAM_DIRS.iter().find(|(prefix, _)| path.starts_with(prefix))?;
        let rest = &path[prefix.len()..];
        // `/lib/systemd/system/...` and such are directories of data, not programs.
        if rest.is_empty() || rest.contains('/') {
            return None;
        }
        self.search.iter().find_map(|pkg| {
            dirs.iter()
                .map(|dir| format!("{pkg}/{dir}{rest}"))
                .find(|candidate| (self.exists)(candidate))
        })
    }

    /// Replaces every absolute program path that starts a word, and the bare command names of `Exec*=` lines
    /// (systemd would look those up in its compiled-in `/usr/bin:/bin:...`).
    fn rewrite(&self, text: &str) -> String {
        let text = self.rewrite_absolute(text);
        let mut out = String::with_capacity(text.len() + 256);
        for line in text.split_inclusive('\n') {
            let Some((key, value)) = line.split_once('=') else {
                out.push_str(line);
                continue;
            };
            // `-`, `@`, `:`, `+`, `!` prefixes change how systemd runs the command, not which command it is.
            let command_at = value
                .find(|c: char| !matches!(c, '-' | '@' | ':' | '+' | '!'))
                .unwrap_or(value.len());
            let (flags, command) = value.split_at(command_at);
            let name_end = command.find(|c: char| c.is_whitespace()).unwrap_or(command.len());
            let name = &command[..name_end];
            let found = (key.trim().starts_with("Exec") && !name.is_empty() && !name.contains('/'))
                .then(|| self.lookup(&format!("/bin/{name}")))
                .flatten();
            match found {
                Some(found) => {
                    out.push_str(key);
                    out.push('=');
                    out.push_str(flags);
                    out.push_str(&found);
                    out.push_str(&command[name_end..]);
                }
                None => out.push_str(line),
            }
        }
        out
    }

    fn rewrite_absolute(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 256);
        let mut rest = text;
        let mut previous: Option<char> = None;
        while let Some(c) = rest.chars().next() {
            // `-/bin/x`, `=/bin/x`, `@/bin/x` start a path; `a/bin/x` (inside a URL, say) does not.
            let starts_word = previous.is_none_or(|p| !(p.is_ascii_alphanumeric() || matches!(p, '_' | '.' | '/')));
            if c == '/' && starts_word {
                let end = rest.find(|ch: char| !path_char(ch)).unwrap_or(rest.len());
                let token = &rest[..end];
                match self.lookup(token) {
                    Some(found) => out.push_str(&found),
                    None => out.push_str(token),
                }
                previous = token.chars().last();
                rest = &rest[end..];
                continue;
            }
            out.push(c);
            previous = Some(c);
            rest = &rest[c.len_utf8()..];
        }
        out
    }

    /// Rules: absolute paths as in units, then bare program names run by udev.
    fn rewrite_rules(&self, text: &str) -> String {
        let text = self.rewrite(text);
        let mut out = String::with_capacity(text.len() + 256);
        let mut rest = text.as_str();
        const KEYS: &[&str] = &[
            "PROGRAM==\"",
            "PROGRAM=\"",
            "IMPORT{program}==\"",
            "IMPORT{program}=\"",
            "RUN+=\"",
            "RUN=\"",
        ];
        while let Some((at, key)) = KEYS.iter().filter_map(|k| rest.find(k).map(|i| (i, *k))).min() {
            let value_start = at + key.len();
            out.push_str(&rest[..value_start]);
            rest = &rest[value_start..];
            let end = rest
                .find(|ch: char| ch.is_whitespace() || ch == '"')
                .unwrap_or(rest.len());
            let program = &rest[..end];
            if !program.is_empty()
                && !program.contains('/')
                && !program.contains('$')
                && let Some(found) = self.lookup(&format!("/lib/udev/{program}"))
            {
                out.push_str(&found);
                rest = &rest[end..];
                continue;
            }
        }
        out.push_str(rest);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYSTEMD: &str = "/nix/store/aaaa-systemd";
    const UTIL: &str = "/nix/store/bbbb-util-linux";
    const UDEV: &str = "/nix/store/cccc-udev";

    fn with_resolver<T>(f: impl FnOnce(&Resolver) -> T) -> T {
        let files = [
            format!("{SYSTEMD}/lib/systemd/systemd-journald"),
            format!("{SYSTEMD}/bin/systemctl"),
            format!("{UTIL}/sbin/agetty"),
            format!("{UDEV}/bin/udevadm"),
            format!("{UDEV}/lib/udev/ata_id"),
        ];
        let exists = |p: &str| files.iter().any(|f| f == p);
        let search = [SYSTEMD, UTIL, UDEV];
        f(&Resolver {
            search: &search,
            exists: &exists,
        })
    }

    #[test]
    fn program_paths_in_units_point_into_the_store() {
        let unit = "[Service]\nExecStart=/lib/systemd/systemd-journald\nExecStartPre=-/bin/plymouth quit\n\
                    ExecStart=-/sbin/agetty -o '-p -- \\\\u' --noclear - $TERM\nExecReload=/bin/systemctl reload\n\
                    ConditionPathExists=/lib/systemd/system/foo.service\nDocumentation=man:x(8) https://a/bin/systemctl\n";
        let out = with_resolver(|r| r.rewrite(unit));
        assert!(
            out.contains(&format!("ExecStart={SYSTEMD}/lib/systemd/systemd-journald\n")),
            "{out}"
        );
        assert!(
            out.contains("ExecStartPre=-/bin/plymouth quit"),
            "unknown programs are left: {out}"
        );
        assert!(out.contains(&format!("ExecStart=-{UTIL}/sbin/agetty -o")), "{out}");
        assert!(
            out.contains(&format!("ExecReload={SYSTEMD}/bin/systemctl reload")),
            "{out}"
        );
        assert!(
            out.contains("=/lib/systemd/system/foo.service"),
            "data paths are left: {out}"
        );
        assert!(
            out.contains("https://a/bin/systemctl"),
            "paths inside words are left: {out}"
        );
        let bare =
            with_resolver(|r| r.rewrite("ExecStart=-systemctl start x\nExecReload=nothere\nDescription=systemctl\n"));
        assert_eq!(
            bare,
            format!("ExecStart=-{SYSTEMD}/bin/systemctl start x\nExecReload=nothere\nDescription=systemctl\n")
        );
    }

    #[test]
    fn udev_rules_get_their_helpers_from_the_store() {
        let rules = "KERNEL==\"sd*\", IMPORT{program}=\"ata_id --export $devnode\"\nRUN+=\"/bin/udevadm trigger\"\n\
                     PROGRAM=\"missing_id\", RUN{builtin}+=\"kmod load $env{MODALIAS}\"\n";
        let out = with_resolver(|r| r.rewrite_rules(rules));
        assert!(
            out.contains(&format!(
                "IMPORT{{program}}=\"{UDEV}/lib/udev/ata_id --export $devnode\""
            )),
            "{out}"
        );
        assert!(out.contains(&format!("RUN+=\"{UDEV}/bin/udevadm trigger\"")), "{out}");
        assert!(out.contains("PROGRAM=\"missing_id\""), "{out}");
        assert!(out.contains("RUN{builtin}+=\"kmod load $env{MODALIAS}\""), "{out}");
    }
}
