//! GRUB's menu, `grub/grub.cfg` on the ESP. Both of GRUB's images find it there: the BIOS core.img by its
//! prefix `(,gpt2)/grub`, the EFI image by `/grub` on the partition the firmware loaded it from, so `$root` is
//! the ESP and the kernels' paths are the ESP's.

use super::menu::MenuEntry;
use super::spec::LoaderSpec;

/// The whole `grub.cfg`: settings, the configuration's extra lines, the generations (the first, newest, is the
/// default), then the configuration's extra entries.
/// `default` is the number of the generation booted when nobody chooses (the newest but after a rollback).
pub fn grub_cfg(entries: &[MenuEntry], default: u32, loader: &LoaderSpec) -> String {
    let mut cfg = String::from("# Written by rixos for every generation of the system; rewritten on each change.\n");
    if entries.first().is_none_or(|e| e.number == default) {
        cfg.push_str("set default=0\n");
    } else {
        cfg.push_str(&format!("set default=rixos-generation-{default}\n"));
    }
    // As NixOS: no timeout waits until an entry is chosen.
    let timeout = loader.timeout.map_or("-1".to_string(), |t| t.to_string());
    cfg.push_str(&format!("set timeout={timeout}\n"));
    push_block(&mut cfg, &loader.grub.extra_config);
    for entry in entries {
        let options: Vec<String> = entry.options.iter().map(|o| quote(o)).collect();
        cfg.push_str(&format!(
            "\nmenuentry {} --id rixos-generation-{} {{\n  linux {} {}\n  initrd {}\n}}\n",
            quote(&entry.title()),
            entry.number,
            quote(&entry.kernel),
            options.join(" "),
            quote(&entry.initrd),
        ));
    }
    push_block(&mut cfg, &loader.grub.extra_entries);
    cfg
}

/// Appends lines of the configuration's own, on a line of their own.
fn push_block(cfg: &mut String, text: &str) {
    if !text.trim().is_empty() {
        cfg.push('\n');
        cfg.push_str(text);
        if !text.ends_with('\n') {
            cfg.push('\n');
        }
    }
}

/// A word GRUB's script parser reads back as it is: plain when it holds nothing special, else single-quoted.
fn quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_for_grub() {
        for (word, quoted) in [
            ("quiet", "quiet"),
            ("console=ttyS0,115200", "console=ttyS0,115200"),
            (
                "rixos - Generation 1 (1980-01-01)",
                "'rixos - Generation 1 (1980-01-01)'",
            ),
            ("a$b", "'a$b'"),
            ("it's", r"'it'\''s'"),
            ("", "''"),
        ] {
            assert_eq!(quote(word), quoted);
        }
    }
}
