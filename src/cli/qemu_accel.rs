//! `rixos qemu-accel`: which QEMU accelerator boots Linux on this host (KVM only if a real kernel reaches its
//! first program under it; see `qemu::accel`). Scripts ask it instead of checking `/dev/kvm` themselves.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::qemu::accel::{self, Source};

#[derive(Debug, Args)]
pub struct QemuAccelArgs {
    /// The kernel to probe KVM with (default: the VM tests' kernel from scripts/setup, the running system's,
    /// or the host's /boot/vmlinuz-*).
    #[arg(long, value_name = "FILE")]
    kernel: Option<PathBuf>,
    /// Print QEMU's arguments (`-accel kvm -cpu host` or `-accel tcg -cpu max`) instead of the name.
    #[arg(long)]
    qemu_args: bool,
}

pub fn run(args: &QemuAccelArgs) -> Result<()> {
    let decision = accel::decide(args.kernel.as_deref())?;
    if !crate::verbosity::quiet() && decision.source != Source::Override {
        eprintln!("rixos qemu-accel: {}: {}", decision.accel, decision.why);
    }
    if args.qemu_args {
        println!("{}", accel::shell_args(decision.accel));
    } else {
        println!("{}", decision.accel);
    }
    Ok(())
}
