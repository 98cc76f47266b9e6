//! `rixos system build` on ../shared/configs: the seed configuration builds a toplevel whose etc and sw hold
//! what the configuration asks for (the configurations in errors/ are tests/system_errors.rs'). Needs the
//! network to the Debian mirror.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

fn configs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/configs")
}

struct Store {
    root: PathBuf,
}

impl Store {
    fn rixos(&self, dir: &Path, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_rixos"))
            .arg("--store")
            .arg(&self.root)
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap()
    }

    /// The physical file behind a logical store path (following the links inside the toplevel).
    fn real(&self, path: &Path) -> PathBuf {
        common::resolve(&self.root, path)
    }
}

#[test]
fn the_seed_builds() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store {
        root: dir.path().join("store"),
    };
    let out = store.rixos(dir.path(), &["channel", "--update"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let seed = configs().join("seed/configuration.nix");
    // dry-build lists what the build will make and download, and makes nothing.
    let out = store.rixos(dir.path(), &["system", "dry-build", "-c", seed.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (listed, said) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        said.contains("derivations would be built") && said.contains("paths would be downloaded"),
        "{said}"
    );
    assert!(
        listed
            .lines()
            .any(|l| l.trim().ends_with("-rixos-system-mymachine.drv")),
        "{listed}"
    );
    assert!(listed.lines().any(|l| l.trim().ends_with(".deb")), "{listed}");
    let downloaded = listed
        .lines()
        .find(|l| l.trim().ends_with(".deb"))
        .unwrap()
        .trim()
        .to_string();
    assert!(
        !store.root.join(downloaded.trim_start_matches('/')).exists(),
        "dry-build downloaded {downloaded}"
    );
    // switch and its kin act on the machine they run on, never on a --store elsewhere.
    let out = store.rixos(dir.path(), &["system", "switch", "-c", seed.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("change the machine they run on"));

    let out = store.rixos(
        dir.path(),
        &["system", "build", "-c", seed.to_str().unwrap(), "-o", "result"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = store.rixos(dir.path(), &["system", "dry-build", "-c", seed.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing to build or download"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = store.rixos(
        dir.path(),
        &["system", "build", "-c", seed.to_str().unwrap(), "-o", "result"],
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.trim().ends_with("-rixos-system-mymachine"), "{printed}");
    let top = dir.path().join("result");
    // Links are followed at every step: etc/systemd/system is itself a link to the unit directory.
    let etc = |name: &str| {
        name.split('/')
            .fold(store.real(&top.join("etc")), |dir, part| store.real(&dir.join(part)))
    };
    let read = |name: &str| std::fs::read_to_string(etc(name)).unwrap_or_else(|e| panic!("etc/{name}: {e}"));

    assert_eq!(read("hostname"), "mymachine\n");
    let localtime = std::fs::read_link(store.real(&top.join("etc")).join("localtime")).unwrap();
    assert!(
        localtime
            .to_string_lossy()
            .ends_with("/share/zoneinfo/Europe/Amsterdam"),
        "{localtime:?}"
    );
    assert!(etc("localtime").exists(), "the zone file is in the store");
    let passwd = read("passwd");
    assert!(passwd.lines().any(|l| l.starts_with("myuser:x:1000:")), "{passwd}");
    let group = read("group");
    for g in ["wheel", "networkmanager"] {
        let line = group
            .lines()
            .find(|l| l.starts_with(&format!("{g}:")))
            .unwrap_or_else(|| panic!("{group}"));
        let members = line.rsplit(':').next().unwrap();
        assert!(members.split(',').any(|m| m == "myuser"), "{line}");
    }
    let sshd = read("systemd/system/sshd.service");
    assert!(sshd.contains("WantedBy=multi-user.target"), "{sshd}");
    let start = sshd
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("sshd has ExecStart");
    let script = std::fs::read_to_string(store.root.join(start.trim_start_matches('/'))).unwrap();
    assert!(script.contains("/sbin/sshd -D -f /etc/ssh/sshd_config"), "{script}");
    assert!(read("ssh/sshd_config").contains("Port 22"));
    // The firewall, on by default: in sysinit, before the network, loading its ruleset with the package
    // set's nft and reloading it when it changes; sshd's port opened (openssh.openFirewall), nginx's not.
    let firewall = read("systemd/system/firewall.service");
    for line in [
        "Before=network-pre.target",
        "Wants=network-pre.target",
        "WantedBy=sysinit.target",
        "Type=oneshot",
        "RemainAfterExit=yes",
        "X-ReloadIfChanged=true",
    ] {
        assert!(firewall.lines().any(|l| l == line), "no {line} in\n{firewall}");
    }
    assert!(etc("systemd/system/sysinit.target.wants/firewall.service").exists());
    let setting = |key: &str| {
        firewall
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in\n{firewall}"))
            .to_string()
    };
    let start = setting("ExecStart=");
    assert_eq!(setting("ExecReload="), start);
    let (nft, ruleset) = start.split_once(" -f ").unwrap();
    assert!(
        nft.ends_with("/sbin/nft") && store.root.join(nft.trim_start_matches('/')).is_file(),
        "{start}"
    );
    let ruleset = std::fs::read_to_string(store.root.join(ruleset.trim_start_matches('/'))).unwrap();
    assert!(
        ruleset.lines().any(|l| l.trim() == "tcp dport { 22 } accept"),
        "{ruleset}"
    );
    assert!(setting("ExecStop=").starts_with(&format!("{nft} -f ")), "{firewall}");
    // Names resolve through systemd-resolved (on by default): its unit in sysinit, its configuration, and
    // /etc/resolv.conf linked to its stub.
    let resolved = read("systemd/system/systemd-resolved.service");
    let start = resolved
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart=!!"))
        .unwrap_or_else(|| panic!("{resolved}"));
    assert!(
        start.ends_with("/lib/systemd/systemd-resolved") && store.root.join(start.trim_start_matches('/')).is_file(),
        "{resolved}"
    );
    assert!(etc("systemd/system/sysinit.target.wants/systemd-resolved.service").exists());
    assert!(read("systemd/resolved.conf").starts_with("[Resolve]\n"));
    assert_eq!(
        std::fs::read_link(store.real(&top.join("etc")).join("resolv.conf")).unwrap(),
        Path::new("/run/systemd/resolve/stub-resolv.conf")
    );
    assert!(read("passwd").lines().any(|l| l.starts_with("systemd-resolve:")));
    let nginx = read("nginx/nginx.conf");
    assert!(
        nginx.contains("server_name a.example;") && nginx.contains("server_name b.example;"),
        "{nginx}"
    );
    assert!(
        nginx.contains("root /var/www/a;") && nginx.contains("root /var/www/b;"),
        "{nginx}"
    );
    let timer = read("systemd/system/rixos-gc.timer");
    assert!(timer.contains("OnCalendar=weekly"), "{timer}");
    let gc = read("systemd/system/rixos-gc.service");
    let start = gc
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("the gc service has ExecStart");
    let script = std::fs::read_to_string(store.root.join(start.trim_start_matches('/'))).unwrap();
    assert!(
        script.contains("/bin/rixos --store / gc --delete-older-than 30d"),
        "{script}"
    );
    // The toplevel carries the real kernel (not Debian's metapackage) and its parameters.
    let kernel = std::fs::read_link(top.join("kernel")).unwrap();
    assert!(kernel.to_string_lossy().contains("/boot/vmlinuz-"), "{kernel:?}");
    assert!(store.real(&top.join("kernel")).is_file(), "{kernel:?}");
    assert!(store.real(&top.join("kernel-params")).is_file());
    assert!(
        store.real(&top.join("initrd")).is_file(),
        "the toplevel carries its initrd"
    );
    let init = std::fs::read_to_string(store.real(&top.join("init"))).unwrap();
    assert!(init.contains("/lib/systemd/systemd"), "{init}");
    let sw = store.real(&top.join("sw"));
    for program in ["vim", "git", "curl", "getent"] {
        assert!(store.real(&sw.join("bin").join(program)).exists(), "sw/bin/{program}");
    }
}
