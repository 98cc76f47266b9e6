//! systemd-boot's configuration on the ESP, as NixOS's systemd-boot-builder writes it: `loader/loader.conf`
//! (timeout, the default entry, editor) and one `loader/entries/rixos-generation-N.conf` per generation, whose
//! `version` ("Generation N ...") sorts newer generations first.

use super::menu::MenuEntry;
use super::spec::LoaderSpec;

/// An entry's file name under `loader/entries/`; `loader.conf`'s `default` names it.
pub fn entry_file_name(number: u32) -> String {
    format!("rixos-generation-{number}.conf")
}

pub fn loader_conf(default: u32, loader: &LoaderSpec) -> String {
    // As NixOS: no timeout shows the menu until an entry is chosen.
    let timeout = loader.timeout.map_or("menu-force".to_string(), |t| t.to_string());
    format!(
        "timeout {timeout}\ndefault {}\neditor {}\nconsole-mode keep\n",
        entry_file_name(default),
        if loader.systemd_boot.editor { "yes" } else { "no" },
    )
}

pub fn entry_conf(entry: &MenuEntry) -> String {
    format!(
        "title {}\nsort-key rixos\nversion Generation {} {}, built on {}\nlinux {}\ninitrd {}\noptions {}\n",
        entry.title(),
        entry.number,
        entry.label,
        entry.date,
        entry.kernel,
        entry.initrd,
        entry.options.join(" "),
    )
}
