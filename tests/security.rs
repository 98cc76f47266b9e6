//! What `security.sudo.*`, `security.wrappers` and `nix.gc` put into a built system: /etc/sudoers with the
//! configuration's rules (checked by visudo while building), sudo's plugins named by store path, the
//! activation that installs setuid and capability wrappers under /run/wrappers (first on PATH), and a gc unit
//! that runs the system's own rixos against the machine's store. Needs the network to the Debian mirror.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::rixos;

/// Builds `configuration` (a file in `dir`) into `root`'s store with `rixos system build -o result`.
fn system_build(root: &Path, dir: &Path, configuration: &str, text: &str) -> Output {
    std::fs::write(dir.join(configuration), text).unwrap();
    rixos(root, dir, &["system", "build", "-c", configuration, "-o", "result"])
}

/// `path` (under `root`'s store or outside it) with every link followed, each store link into `root`.
fn follow(root: &Path, path: &Path) -> PathBuf {
    common::resolve(root, path)
}

#[test]
fn sudo_wrappers_and_the_gc_unit_are_in_the_built_system() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let out = rixos(&root, dir.path(), &["channel", "--update"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/configs/seed/configuration.nix");
    let configuration = format!(
        r#"{{ pkgs, ... }}: {{
  imports = [ {} ];
  security.sudo.wheelNeedsPassword = false;
  security.sudo.extraRules = [
    {{ users = [ "backup" 1001 ]; groups = [ "operators" 2000 ];
       commands = [ {{ command = "/run/current-system/sw/bin/systemctl restart nginx"; options = [ "NOPASSWD" "SETENV" ]; }}
                    "/run/current-system/sw/bin/id" ]; }}
    {{ users = [ "myuser" ]; host = "mymachine"; runAs = "root"; commands = [ "ALL" ]; }}
  ];
  security.sudo.extraConfig = "Defaults lecture = never\n";
  security.wrappers.dumpcap-like = {{ source = "${{pkgs.iputils-ping}}/bin/ping"; owner = "nobody"; group = "wheel"; setgid = true; permissions = "u+rx,g+rx"; capabilities = "cap_net_raw,cap_net_admin+eip"; }};
  nix.gc.persistent = false;
  nix.gc.randomizedDelaySec = "45min";
}}
"#,
        seed.display()
    );
    let out = system_build(&root, dir.path(), "configuration.nix", &configuration);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let top = dir.path().join("result");
    let etc = |name: &str| {
        name.split('/')
            .fold(follow(&root, &top.join("etc")), |d, part| follow(&root, &d.join(part)))
    };
    let read = |name: &str| std::fs::read_to_string(etc(name)).unwrap_or_else(|e| panic!("etc/{name}: {e}"));

    // Root's and wheel's rules first, then the configuration's in its order (the last match wins in sudoers).
    let sudoers = read("sudoers");
    let rules: Vec<&str> = sudoers.lines().filter(|l| !l.starts_with("# ")).collect();
    assert_eq!(
        rules,
        [
            "root ALL=(ALL:ALL) SETENV: ALL",
            "%wheel ALL=(ALL:ALL) NOPASSWD: SETENV: ALL",
            "backup ALL=(ALL:ALL) NOPASSWD: SETENV: /run/current-system/sw/bin/systemctl restart nginx, /run/current-system/sw/bin/id",
            "#1001 ALL=(ALL:ALL) NOPASSWD: SETENV: /run/current-system/sw/bin/systemctl restart nginx, /run/current-system/sw/bin/id",
            "%operators ALL=(ALL:ALL) NOPASSWD: SETENV: /run/current-system/sw/bin/systemctl restart nginx, /run/current-system/sw/bin/id",
            "%#2000 ALL=(ALL:ALL) NOPASSWD: SETENV: /run/current-system/sw/bin/systemctl restart nginx, /run/current-system/sw/bin/id",
            "myuser mymachine=(root) ALL",
            "Defaults lecture = never",
        ],
        "{sudoers}"
    );
    // Debian's sudo looks for its plugins under /usr/libexec/sudo, which this system does not have.
    let sudo_conf = read("sudo.conf");
    let plugin_dir = sudo_conf
        .lines()
        .find_map(|l| l.strip_prefix("Path plugin_dir "))
        .unwrap_or_else(|| panic!("{sudo_conf}"));
    assert!(
        follow(&root, &root.join(&plugin_dir[1..]).join("sudoers.so")).is_file(),
        "{sudo_conf}"
    );
    assert!(read("pam.d/sudo").contains("/security/pam_unix.so"));

    // The activation copies each wrapper with its owner, mode and capabilities into a fresh directory, then
    // swaps /run/wrappers/bin in one rename.
    let activate = std::fs::read_to_string(follow(&root, &top.join("activate"))).unwrap();
    let wrapper = |name: &str| {
        activate
            .lines()
            .find(|l| l.starts_with("install ") && l.ends_with(&format!("\"$dir\"/'{name}'")))
            .unwrap_or_else(|| panic!("no wrapper {name} in the activation:\n{activate}"))
            .to_string()
    };
    for setuid in [
        "sudo", "sudoedit", "su", "passwd", "chsh", "newgrp", "sg", "mount", "umount",
    ] {
        let line = wrapper(setuid);
        assert!(
            line.starts_with("install -o 'root' -g 'root' -m 'u+rx,g+x,o+x,u+s' /nix/store/"),
            "{line}"
        );
    }
    assert!(wrapper("sudo").contains("-sudo-1.9") && wrapper("sudo").ends_with("/bin/sudo \"$dir\"/'sudo'"));
    assert!(wrapper("su").contains("-util-linux-") && wrapper("passwd").contains("-passwd-"));
    assert_eq!(
        wrapper("ping").split(" /nix/store/").next(),
        Some("install -o 'root' -g 'root' -m 'u+rx,g+x,o+x'")
    );
    assert!(
        activate.contains("/sbin/setcap 'cap_net_raw+p' \"$dir\"/'ping'"),
        "{activate}"
    );
    let custom = wrapper("dumpcap-like");
    assert!(
        custom.starts_with("install -o 'nobody' -g 'wheel' -m 'u+rx,g+rx,g+s' "),
        "{custom}"
    );
    assert!(activate.contains("/sbin/setcap 'cap_net_raw,cap_net_admin+eip' \"$dir\"/'dumpcap-like'"));
    assert!(
        activate.contains("-t tmpfs -o nodev,mode=0755,size=50% wrappers /run/wrappers"),
        "{activate}"
    );
    let swap = activate
        .find("mv -T /run/wrappers/bin.tmp /run/wrappers/bin")
        .expect("the swap");
    assert!(
        activate.find(&custom).unwrap() < swap,
        "every wrapper is in place before the swap"
    );
    // The wrappers come first on every PATH the system sets.
    assert!(read("profile").contains("PATH=/run/wrappers/bin:/run/current-system/sw/bin"));
    assert!(read("login.defs").contains("ENV_SUPATH PATH=/run/wrappers/bin:"));
    assert!(read("systemd/system.conf").contains("PATH=/run/wrappers/bin:"));

    // The gc runs the system's own rixos (which is in the system profile) against the machine's store.
    let gc = read("systemd/system/rixos-gc.service");
    let start = gc
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    let script = std::fs::read_to_string(root.join(&start[1..])).unwrap();
    let command = script.lines().last().unwrap();
    let program = command
        .strip_prefix("exec ")
        .and_then(|c| c.strip_suffix(" --store / gc --delete-older-than 30d"))
        .unwrap_or_else(|| panic!("{script}"));
    assert!(follow(&root, &root.join(&program[1..])).is_file(), "{program}");
    assert_eq!(
        std::fs::read_link(follow(&root, &follow(&root, &top.join("sw")).join("bin")).join("rixos")).unwrap(),
        Path::new(program),
        "the gc's rixos is the system's"
    );
    let timer = read("systemd/system/rixos-gc.timer");
    assert!(
        timer.contains("OnCalendar=weekly") && timer.contains("Persistent=no"),
        "{timer}"
    );
    assert!(timer.contains("RandomizedDelaySec=45min"), "{timer}");

    // A sudoers that visudo rejects fails the build, naming the option and showing the text.
    let broken = configuration.replace("Defaults lecture = never", "Defaults lecture = = never");
    let out = system_build(&root, dir.path(), "broken.nix", &broken);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a broken sudoers built");
    assert!(
        stderr.contains("security.sudo: the generated sudoers is not valid"),
        "{stderr}"
    );
    assert!(stderr.contains("Defaults lecture = = never"), "{stderr}");
}
