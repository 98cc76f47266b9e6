//! The accelerator for the harness's machines: rixos' own decision (`rixos::qemu::accel`), which boots the
//! VM tests' kernel under KVM once per boot of the host and takes KVM only if Linux reaches its first program;
//! otherwise TCG. `RIXOS_QEMU_ACCEL=kvm|tcg` overrides.

use std::sync::OnceLock;

pub use rixos::qemu::accel::Accel;

use crate::assets::TestKernel;

/// The accelerator for new machines, decided once per test process (and cached by rixos per host boot).
pub fn detect() -> anyhow::Result<Accel> {
    static DECIDED: OnceLock<Result<Accel, String>> = OnceLock::new();
    DECIDED
        .get_or_init(|| {
            let kernel = TestKernel::find().ok().map(|k| k.vmlinuz);
            let decision = rixos::qemu::accel::decide(kernel.as_deref()).map_err(|e| format!("{e:#}"))?;
            eprintln!("qemu accelerator: {}: {}", decision.accel, decision.why);
            Ok(decision.accel)
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

/// True when the harness's machines run under KVM.
pub fn kvm_usable() -> bool {
    matches!(detect(), Ok(Accel::Kvm))
}
