//! Installing onto a real disk from the live system, as nixos-install with a partitioner in front: the answer
//! file ([`answers`]), the disks and why some cannot be chosen ([`disks`]), this machine's drivers and file
//! systems ([`hardware`], also `rixos generate-config`), the layout and the configuration it writes ([`plan`]),
//! and carrying it out ([`run`]). The installed disk is the disk image's layout and boot code
//! (`image::disk`, `boot::loader`) written onto the device.

pub mod answers;
pub mod disks;
pub mod hardware;
pub mod plan;
pub mod run;
pub mod wizard;
