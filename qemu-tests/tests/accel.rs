//! The accelerator decision (`rixos qemu-accel`, `rixos::qemu::accel`) against the two kinds of host it must
//! tell apart: one where Linux boots (the probe's marker shows) and one whose KVM lets QEMU start but never
//! runs the guest, as a nested, paravirtualised KVM does. The second is made on any host by a QEMU wrapper
//! that starts the machine with its vCPUs stopped (`-S`), under TCG, so the test runs with or without KVM.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use qemu_harness::assets::TestKernel;
use rixos::qemu::accel::{self, Accel, ProbeOutcome};

fn kernel() -> PathBuf {
    TestKernel::find().expect("the Debian test kernel").vmlinuz
}

/// A `qemu-system-x86_64` whose "KVM" starts and then runs nothing: like the broken hosts the probe exists for.
fn hanging_kvm_qemu(dir: &Path) -> PathBuf {
    let path = dir.join("qemu-with-a-kvm-that-never-runs");
    std::fs::write(
        &path,
        "#!/bin/bash\n\
         a=(\"$@\")\n\
         for i in \"${!a[@]}\"; do\n\
           case ${a[$i]} in kvm) a[$i]=tcg ;; host) a[$i]=max ;; esac\n\
         done\n\
         exec qemu-system-x86_64 -S \"${a[@]}\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn the_probe_initrd_reaches_userspace_under_tcg() {
    let outcome = accel::probe(
        OsStr::new("qemu-system-x86_64"),
        Accel::Tcg,
        &kernel(),
        Duration::from_secs(180),
    )
    .expect("starting QEMU");
    assert!(matches!(outcome, ProbeOutcome::Reached { .. }), "{outcome}");
}

#[test]
fn a_kvm_that_starts_but_never_boots_linux_falls_back_to_tcg_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let qemu = hanging_kvm_qemu(dir.path());
    // /dev/null stands in for a /dev/kvm that opens fine, as the broken ones do.
    let started = std::time::Instant::now();
    let (chosen, why) = accel::probe_kvm(qemu.as_os_str(), Path::new("/dev/null"), Some(&kernel()));
    assert_eq!(chosen, Accel::Tcg, "{why}");
    assert!(
        why.contains("did not reach userspace within 15 s") && why.contains("the kernel printed nothing"),
        "{why}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "the probe gives up after its timeout"
    );
}

#[test]
fn rixos_qemu_accel_decides_once_and_answers_from_its_cache() {
    let dir = tempfile::tempdir().unwrap();
    let qemu = hanging_kvm_qemu(dir.path());
    let cache = dir.path().join("cache/qemu-accel");
    let run = |extra: &[&str]| {
        let out = Command::new(qemu_harness::rixos::binary())
            .arg("qemu-accel")
            .args(extra)
            .env_remove("RIXOS_QEMU_ACCEL")
            .env("RIXOS_QEMU", &qemu)
            .env("RIXOS_QEMU_ACCEL_CACHE", &cache)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        )
    };
    // Whatever this host's /dev/kvm is, a KVM that never runs the guest must not be chosen.
    let (first, why) = run(&[]);
    assert_eq!(first, "tcg", "{why}");
    let (args, why_again) = run(&["--qemu-args"]);
    assert_eq!(args, "-accel tcg -cpu max");
    assert!(
        why_again.contains("cached in"),
        "the second answer comes from the cache: {why_again}"
    );
    // The override wins without probing.
    let out = Command::new(qemu_harness::rixos::binary())
        .args(["qemu-accel"])
        .env("RIXOS_QEMU_ACCEL", "kvm")
        .env("RIXOS_QEMU_ACCEL_CACHE", &cache)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "kvm");
}
