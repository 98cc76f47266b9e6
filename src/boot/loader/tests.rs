//! install_files on a fake store: each case's generations and loader settings against the ESP it must give,
//! `testdata/<case>.esp` (every file with its content; the fake store's files hold a line naming themselves).
//! `RIXOS_UPDATE_GOLDEN=1 cargo test -p rixos --lib boot::loader` rewrites the expected files.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::files::tests::tree;
use super::*;
use crate::store::resolve::resolve_under;

const KERNEL_1: &str = "/nix/store/kern1-linux-image-6.1.0-18-amd64/boot/vmlinuz-6.1.0-18-amd64";
const KERNEL_2: &str = "/nix/store/kern2-linux-image-6.1.0-21-amd64/boot/vmlinuz-6.1.0-21-amd64";
/// 2026-12-26 00:00 UTC, then a day per generation.
const DAY_ONE: u64 = 1_798_243_200;

/// A store with generations 1 to 4 (1 and 2 share a kernel; 3 and 4 another; each its own initrd) and the
/// loaders' images. Each toplevel's boot.json is a link, as in a linkfarm, to its file.
struct FakeStore {
    root: tempfile::TempDir,
}

impl FakeStore {
    fn new(loader: &Value) -> FakeStore {
        let store = FakeStore {
            root: tempfile::tempdir().unwrap(),
        };
        for file in [
            KERNEL_1,
            KERNEL_2,
            "/nix/store/grubb-grub-bios-core/boot.img",
            "/nix/store/grubb-grub-bios-core/core.img",
            "/nix/store/grube-grub-efi/grubx64.efi",
            "/nix/store/sdboo-systemd-boot-efi-252.22-1/lib/systemd/boot/efi/systemd-bootx64.efi",
        ] {
            store.write(file, &format!("contents of {file}\n"));
        }
        for number in 1..=4 {
            store.generation(number, loader, &["console=ttyS0,115200", "quiet"]);
        }
        store
    }

    fn write(&self, logical: &str, text: &str) {
        let path = self.real(logical);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn real(&self, logical: &str) -> PathBuf {
        crate::store::resolve::real_under(self.root.path(), logical)
    }

    fn generation(&self, number: u32, loader: &Value, params: &[&str]) {
        let kernel = if number <= 2 { KERNEL_1 } else { KERNEL_2 };
        let initrd = format!("/nix/store/init{number}-initrd/initrd");
        self.write(&initrd, &format!("contents of {initrd}\n"));
        let json = format!("/nix/store/json{number}-boot.json");
        self.write(&json, &spec::tests::boot_json(kernel, &initrd, params, loader.clone()));
        let toplevel = self.real(&toplevel(number));
        fs::create_dir_all(&toplevel).unwrap();
        std::os::unix::fs::symlink(&json, toplevel.join("boot.json")).unwrap();
    }

    fn install(&self, numbers: &[u32], esp: &Path) -> Result<Installed> {
        let generations: Vec<Generation> = numbers
            .iter()
            .map(|&number| Generation {
                number,
                toplevel: toplevel(number),
                created: DAY_ONE + 86_400 * u64::from(number),
            })
            .collect();
        install_files(&generations, esp, &|p| resolve_under(self.root.path(), p))
    }
}

fn toplevel(number: u32) -> String {
    format!("/nix/store/topl{number}-rixos-system-host")
}

/// The loader part of a boot.json as grub.nix writes it, with `changes` applied.
fn grub(changes: Value) -> Value {
    let mut loader = json!({
        "kind": "grub", "timeout": 5, "configurationLimit": 100,
        "grub": {
            "devices": ["/dev/vda"], "configurationLimit": 100,
            "bios": { "bootImage": "/nix/store/grubb-grub-bios-core/boot.img", "coreImage": "/nix/store/grubb-grub-bios-core/core.img" },
            "efi": "/nix/store/grube-grub-efi/grubx64.efi", "efiInstallAsRemovable": true,
            "extraConfig": "serial --unit=0 --speed=115200\nterminal_input console serial\nterminal_output console serial\n",
            "extraEntries": ""
        },
        "systemd-boot": { "efi": null, "editor": true, "configurationLimit": null },
        "efi": { "canTouchEfiVariables": false, "efiSysMountPoint": "/boot" }
    });
    merge(&mut loader, changes);
    loader
}

fn systemd_boot(changes: Value) -> Value {
    let mut loader = grub(json!({
        "kind": "systemd-boot", "configurationLimit": null,
        "grub": { "bios": null, "efi": null, "efiInstallAsRemovable": false, "extraConfig": "" },
        "systemd-boot": { "efi": "/nix/store/sdboo-systemd-boot-efi-252.22-1/lib/systemd/boot/efi/systemd-bootx64.efi" }
    }));
    merge(&mut loader, changes);
    loader
}

fn merge(into: &mut Value, changes: Value) {
    match (into, changes) {
        (Value::Object(into), Value::Object(changes)) => {
            for (key, value) in changes {
                match into.get_mut(&key) {
                    Some(old) if old.is_object() && value.is_object() => merge(old, value),
                    _ => {
                        into.insert(key, value);
                    }
                }
            }
        }
        (into, changes) => *into = changes,
    }
}

/// The ESP as a golden file shows it: what install_files returned, then each file and its content.
fn describe(installed: &Installed, esp: &Path, store: &FakeStore) -> String {
    let shown = |p: &Path| {
        p.strip_prefix(store.root.path())
            .map_or(p.display().to_string(), |p| format!("/{}", p.display()))
    };
    let mut out = String::new();
    if let Some((boot, core)) = &installed.bios {
        out.push_str(&format!("# bios: {} {}\n", shown(boot), shown(core)));
    }
    if let Some(entry) = &installed.efi_boot_entry {
        out.push_str(&format!("# efi boot entry: {} {}\n", entry.label, entry.loader));
    }
    for reason in &installed.left_out {
        out.push_str(&format!(
            "# left out: {}\n",
            reason.replace(&store.root.path().display().to_string(), "STORE")
        ));
    }
    for (path, content) in tree(esp) {
        out.push_str(&format!("== {path}\n{content}"));
    }
    out
}

fn check_golden(case: &str, actual: &str) {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/boot/loader/testdata")
        .join(format!("{case}.esp"));
    if std::env::var_os("RIXOS_UPDATE_GOLDEN").is_some() {
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(&file, actual).unwrap();
    }
    let expected = fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert_eq!(
        actual,
        expected,
        "{case}: the ESP differs from {} (RIXOS_UPDATE_GOLDEN=1 rewrites it)",
        file.display()
    );
}

#[test]
fn golden_esps() {
    // (case, loader of every generation, generations installed in turn onto the same ESP; the last is shown)
    let cases: Vec<(&str, Value, Vec<Vec<u32>>)> = vec![
        ("grub-bios-efi-serial", grub(json!({})), vec![vec![1, 3, 2]]),
        (
            "grub-one-generation",
            grub(
                json!({ "timeout": null, "grub": { "extraConfig": "", "extraEntries": "menuentry 'Firmware setup' {\n  fwsetup\n}\n" } }),
            ),
            vec![vec![1]],
        ),
        (
            "grub-limit-two",
            grub(json!({ "configurationLimit": 2 })),
            vec![vec![1, 2, 3]],
        ),
        (
            "grub-bios-only",
            grub(json!({ "grub": { "efi": null, "efiInstallAsRemovable": false } })),
            vec![vec![1, 2]],
        ),
        (
            "grub-efi-nvram",
            grub(
                json!({ "grub": { "bios": null, "efiInstallAsRemovable": false }, "efi": { "canTouchEfiVariables": true } }),
            ),
            vec![vec![4]],
        ),
        // A later install: generations 1 and 2 deleted (gc), their kernel and initrds go.
        ("grub-after-gc", grub(json!({})), vec![vec![1, 2, 3], vec![3, 4]]),
        (
            "systemd-boot",
            systemd_boot(json!({ "timeout": null, "systemd-boot": { "editor": false } })),
            vec![vec![1, 2, 3]],
        ),
        (
            "systemd-boot-limit",
            systemd_boot(json!({ "configurationLimit": 1, "efi": { "canTouchEfiVariables": true } })),
            vec![vec![2, 3, 4]],
        ),
        ("none", grub(json!({ "kind": "none" })), vec![vec![1]]),
    ];
    for (case, loader, installs) in cases {
        let store = FakeStore::new(&loader);
        let esp = tempfile::tempdir().unwrap();
        let mut installed = Installed::default();
        for numbers in installs {
            installed = store
                .install(&numbers, esp.path())
                .unwrap_or_else(|e| panic!("{case}: {e:#}"));
        }
        check_golden(case, &describe(&installed, esp.path(), &store));
    }
}

#[test]
fn switching_loaders_removes_the_old_ones_files() {
    let esp = tempfile::tempdir().unwrap();
    let store = FakeStore::new(&grub(json!({})));
    store.install(&[1, 2], esp.path()).unwrap();
    // Generation 5 switches to systemd-boot; the menu lists 1, 2 and 5 the systemd-boot way.
    store.generation(5, &systemd_boot(json!({})), &[]);
    store.install(&[1, 2, 5], esp.path()).unwrap();
    let names: Vec<String> = tree(esp.path()).into_iter().map(|(p, _)| p).collect();
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("grub/") || n.starts_with("kernels/") || n.ends_with("grubx64.efi")),
        "{names:?}"
    );
    assert!(
        names.contains(&"loader/entries/rixos-generation-1.conf".to_string()),
        "{names:?}"
    );
    let conf = fs::read_to_string(esp.path().join("loader/loader.conf")).unwrap();
    assert!(conf.contains("default rixos-generation-5.conf\n"), "{conf}");
}

#[test]
fn an_older_generation_without_boot_json_is_left_out_the_newest_is_required() {
    let esp = tempfile::tempdir().unwrap();
    let store = FakeStore::new(&grub(json!({})));
    fs::remove_file(store.real(&toplevel(1)).join("boot.json")).unwrap();
    let installed = store.install(&[1, 2], esp.path()).unwrap();
    assert_eq!(installed.left_out.len(), 1, "{:?}", installed.left_out);
    assert!(installed.left_out[0].starts_with("generation 1 (/nix/store/topl1-rixos-system-host): /nix/store/topl1-rixos-system-host/boot.json does not exist"), "{:?}", installed.left_out);
    let cfg = fs::read_to_string(esp.path().join("grub/grub.cfg")).unwrap();
    assert!(cfg.contains("Generation 2") && !cfg.contains("Generation 1"), "{cfg}");

    let error = format!("{:#}", store.install(&[1], esp.path()).unwrap_err());
    assert!(
        error.starts_with("generation 1 (/nix/store/topl1-rixos-system-host): "),
        "{error}"
    );
    // The ESP is as the last good install left it.
    assert!(
        fs::read_to_string(esp.path().join("grub/grub.cfg"))
            .unwrap()
            .contains("Generation 2")
    );
}

#[test]
fn refusals_say_what_is_wrong() {
    let store = FakeStore::new(&grub(json!({})));
    let esp = tempfile::tempdir().unwrap();
    let error = format!("{:#}", store.install(&[], esp.path()).unwrap_err());
    assert!(error.starts_with("no generation to boot"), "{error}");
    let generations = [1, 1].map(|number| Generation {
        number,
        toplevel: toplevel(number),
        created: 0,
    });
    let error = format!(
        "{:#}",
        install_files(&generations, esp.path(), &|p| resolve_under(store.root.path(), p)).unwrap_err()
    );
    assert!(error.starts_with("generation 1 is listed twice"), "{error}");
    assert_eq!(
        esp_name("/etc/kernel").unwrap_err().to_string(),
        "/etc/kernel is not in /nix/store: boot.json names only store files"
    );
    assert_eq!(esp_name("/nix/store/abc-initrd/initrd").unwrap(), "abc-initrd-initrd");
    assert_eq!(esp_name("/nix/store/abc-vmlinuz").unwrap(), "abc-vmlinuz");
}

/// GRUB's own parser accepts every menu the cases make (grub-script-check, from grub-common, which
/// scripts/setup installs).
#[test]
fn grub_script_check_accepts_the_menus() {
    let check = Path::new("/usr/bin/grub-script-check");
    assert!(
        check.exists(),
        "{} is missing: run scripts/setup (grub-common)",
        check.display()
    );
    let store = FakeStore::new(&grub(
        json!({ "grub": { "extraEntries": "menuentry 'Firmware setup' {\n  fwsetup\n}\n" } }),
    ));
    store.generation(5, &grub(json!({})), &["a$b", "it's", "x=\"two words\""]);
    let esp = tempfile::tempdir().unwrap();
    store.install(&[1, 2, 3, 5], esp.path()).unwrap();
    let cfg = esp.path().join("grub/grub.cfg");
    let out = std::process::Command::new(check).arg(&cfg).output().unwrap();
    assert!(
        out.status.success(),
        "grub-script-check {}:\n{}{}",
        cfg.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // And it does reject a broken one, so the check can fail.
    fs::write(&cfg, "menuentry 'unclosed' {\n  linux /k\n").unwrap();
    assert!(
        !std::process::Command::new(check)
            .arg(&cfg)
            .output()
            .unwrap()
            .status
            .success()
    );
}
