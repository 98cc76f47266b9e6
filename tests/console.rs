//! What console.* and the keyboard's services.xserver options put into a built system (the seed, with
//! additions): vconsole-setup.service early in sysinit, loading a keymap file found in Debian's console-data
//! (or made by ckbcomp with console.useXkbConfig) and a font, and the X keyboard files; typos in a keymap or
//! font name fail the build naming the option. Needs the network to the Debian mirror.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

struct Store {
    root: PathBuf,
    dir: PathBuf,
}

impl Store {
    fn rixos(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_rixos"))
            .arg("--store")
            .arg(&self.root)
            .args(args)
            .current_dir(&self.dir)
            .output()
            .unwrap()
    }

    /// Builds the seed with `extra` (module lines) added, as `name.nix` linked to `name`.
    fn build(&self, name: &str, extra: &str) -> Output {
        let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/configs/seed/configuration.nix");
        let file = format!("{name}.nix");
        std::fs::write(
            self.dir.join(&file),
            format!("{{ ... }}: {{\n  imports = [ {} ];\n{extra}}}\n", seed.display()),
        )
        .unwrap();
        self.rixos(&["system", "build", "-c", &file, "-o", name])
    }

    /// `path` (a logical store path, or a file of the test's directory) with every link followed, each
    /// store link into this store.
    fn real(&self, path: &Path) -> PathBuf {
        common::resolve(&self.root, path)
    }

    /// The built system's file etc/`name`, links followed at every step.
    fn etc(&self, system: &str, name: &str) -> PathBuf {
        name.split('/')
            .fold(self.real(&self.dir.join(system).join("etc")), |d, part| {
                self.real(&d.join(part))
            })
    }

    fn read_etc(&self, system: &str, name: &str) -> String {
        std::fs::read_to_string(self.etc(system, name)).unwrap_or_else(|e| panic!("{system}: etc/{name}: {e}"))
    }

    /// vconsole-setup's unit and its start script.
    fn unit_and_script(&self, system: &str) -> (String, String) {
        let unit = self.read_etc(system, "systemd/system/vconsole-setup.service");
        let start = unit
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .unwrap_or_else(|| panic!("no ExecStart in\n{unit}"));
        let script = std::fs::read_to_string(self.real(Path::new(start))).unwrap();
        (unit, script)
    }

    /// The store file (links followed) the script passes to `program` as its last argument.
    fn argument_of(&self, script: &str, program: &str) -> PathBuf {
        let line = script
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(&format!("{program} ")))
            .unwrap_or_else(|| panic!("no {program} in\n{script}"));
        let file = line.split_whitespace().find(|w| w.starts_with("/nix/store/")).unwrap();
        self.real(Path::new(file))
    }
}

#[test]
fn the_console_gets_its_keymap_and_font_early_in_boot() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store {
        root: tmp.path().join("store"),
        dir: tmp.path().to_path_buf(),
    };
    let out = store.rixos(&["channel", "--update"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // The seed as it is: console.keyMap's default, `us` of console-data, as NixOS; its xserver layout and
    // variant describe the keyboard for X only (useXkbConfig is off).
    let out = store.build("seed", "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (unit, script) = store.unit_and_script("seed");
    for line in [
        "DefaultDependencies=no",
        "Before=sysinit.target",
        "Before=getty-pre.target",
        "ConditionPathExists=/dev/tty0",
        "Type=oneshot",
        "RemainAfterExit=yes",
        "WantedBy=sysinit.target",
    ] {
        assert!(unit.lines().any(|l| l == line), "no {line} in\n{unit}");
    }
    assert!(
        store
            .etc("seed", "systemd/system/sysinit.target.wants/vconsole-setup.service")
            .exists()
    );
    let keymap = store.argument_of(&script, "loadkeys -q -C /dev/tty1 -u");
    assert!(keymap.ends_with("i386/qwerty/us.kmap"), "{keymap:?}");
    assert!(
        std::fs::read_to_string(&keymap)
            .unwrap()
            .contains("include \"qwerty-layout\"")
    );
    assert!(!script.contains("setfont"), "no console.font, no setfont:\n{script}");
    assert_eq!(store.read_etc("seed", "vconsole.conf"), "KEYMAP=us\n");
    let keyboard = store.read_etc("seed", "default/keyboard");
    assert!(
        keyboard.contains("XKBLAYOUT=\"us\"\nXKBVARIANT=\"altgr-intl\"\n"),
        "{keyboard}"
    );
    let x11 = store.read_etc("seed", "X11/xorg.conf.d/00-keyboard.conf");
    assert!(x11.contains("Option \"XkbVariant\" \"altgr-intl\""), "{x11}");
    let sw = store.real(&store.real(&store.dir.join("seed")).join("sw"));
    let loadkeys = store.real(&sw.join("bin/loadkeys"));
    assert!(loadkeys.is_file(), "kbd is in the system's profile");

    // useXkbConfig: ckbcomp's keymap of us/altgr-intl (AltGr+q is ä); a font by name, gunzipped PSF.
    let out = store.build(
        "xkb",
        "  console.useXkbConfig = true;\n  console.font = \"Lat15-Terminus16\";\n",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (_, script) = store.unit_and_script("xkb");
    let keymap = std::fs::read_to_string(store.argument_of(&script, "loadkeys")).unwrap();
    let q = keymap
        .lines()
        .find(|l| l.starts_with("keycode 16 "))
        .unwrap_or_else(|| panic!("no keycode 16 in\n{keymap}"));
    assert!(q.starts_with("keycode 16 = +U+0071 +U+0051 +U+00e4 "), "{q}");
    let font = std::fs::read(store.argument_of(&script, "setfont -C $tty")).unwrap();
    assert_eq!(&font[..2], &[0x36, 0x04], "a PSF1 font");
    assert!(
        store
            .read_etc("xkb", "vconsole.conf")
            .contains("FONT=Lat15-Terminus16\n")
    );

    // Another name, found wherever console-data keeps it.
    let out = store.build("de", "  console.keyMap = \"de-latin1\";\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (_, script) = store.unit_and_script("de");
    assert!(
        store
            .argument_of(&script, "loadkeys")
            .ends_with("i386/qwertz/de-latin1.kmap"),
        "{script}"
    );

    // Typos fail the build, naming the option, the file and names that exist.
    for (name, extra, wanted) in [
        (
            "badmap",
            "  console.keyMap = \"latin\";\n",
            ["console.keyMap = \"latin\" (in ", "badmap.nix)", "de-latin1"],
        ),
        (
            "badfont",
            "  console.font = \"Terminus\";\n",
            ["console.font = \"Terminus\" (in ", "badfont.nix)", "CyrAsia-Terminus16"],
        ),
    ] {
        let out = store.build(name, extra);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name} built");
        for w in wanted {
            assert!(stderr.contains(w), "{name}: no {w:?} in\n{stderr}");
        }
    }
}
