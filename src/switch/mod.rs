//! Generations on a running machine: `switch-to-configuration` (`activate.rs`) moves the machine to a toplevel,
//! deciding what systemd must stop, start, restart and reload from the old and new unit files alone
//! (`plan.rs` over `unit.rs`, a pure function with fixture pairs) and acting through systemctl
//! (`systemctl.rs`); the bootloader lists every generation of the system profile (`bootloader.rs`) and, when
//! `canTouchEfiVariables`, has a firmware boot entry (`firmware.rs`); one switch runs at a time (`lock.rs`).
//!
//! Sits above the modules (it reads what they put in a toplevel: `etc/systemd/system`, `activate`,
//! `boot.json`) and knows nothing of the Nix language: the command line builds the toplevel and hands its
//! store path here. Everything is replaced by rename (profile link, /etc/static, the ESP's files), so a
//! machine that loses power at any moment boots a generation whose /etc is its own.

pub mod activate;
pub mod bootloader;
pub mod firmware;
pub mod fstab;
pub mod lock;
pub mod plan;
pub mod systemctl;
pub mod unit;

pub use activate::{Action, switch_to_configuration, system_profile};
