//! `rixos generate-config --root DIR`: the hardware file is written (and rewritten), a configuration to start
//! from only when there is none, and both parse as Nix.

mod common;

use std::fs;

#[test]
fn generate_config_writes_the_hardware_file_and_keeps_the_users_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mnt");
    fs::create_dir_all(&root).unwrap();
    let store = dir.path().join("store");
    let root_arg = root.to_str().unwrap();
    let out = common::rixos(&store, dir.path(), &["generate-config", "--root", root_arg]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let etc = root.join("etc/rixos");
    let hardware = fs::read_to_string(etc.join("hardware-configuration.nix")).unwrap();
    let configuration = fs::read_to_string(etc.join("configuration.nix")).unwrap();
    assert!(
        hardware.contains("boot.initrd.availableKernelModules = ["),
        "{hardware}"
    );
    assert!(
        configuration.contains("imports = [ ./hardware-configuration.nix ];"),
        "{configuration}"
    );
    for file in ["hardware-configuration.nix", "configuration.nix"] {
        let path = etc.join(file);
        let parsed = common::rixos(&store, dir.path(), &["instantiate", "--parse", path.to_str().unwrap()]);
        assert!(
            parsed.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&parsed.stderr)
        );
    }
    // The user's configuration is never overwritten; the hardware file always is, and equals what
    // --show-hardware-config prints.
    fs::write(etc.join("configuration.nix"), "{ }\n").unwrap();
    fs::write(etc.join("hardware-configuration.nix"), "stale\n").unwrap();
    let again = common::rixos(&store, dir.path(), &["generate-config", "--root", root_arg]);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert!(String::from_utf8_lossy(&again.stdout).contains("exists, left alone"));
    assert_eq!(fs::read_to_string(etc.join("configuration.nix")).unwrap(), "{ }\n");
    let shown = common::rixos(
        &store,
        dir.path(),
        &["generate-config", "--root", root_arg, "--show-hardware-config"],
    );
    assert_eq!(
        String::from_utf8_lossy(&shown.stdout),
        fs::read_to_string(etc.join("hardware-configuration.nix")).unwrap()
    );
    assert_eq!(fs::read_dir(&etc).unwrap().count(), 2, "no temporary file is left");
}
