//! What happens when booting fails: the reason is printed, then (per the kernel command line) a reboot
//! after 10 s, the rescue shell straight away, or a menu on the console. Every path ends here or in stage 2:
//! PID 1 exiting would panic the kernel, so nothing in here returns.

use std::io::BufRead;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::cmdline;
use super::log;
use super::sys;

const SHELL: &str = "/bin/sh";

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FailurePolicy {
    /// `boot.panic_on_fail`: reboot instead of waiting for someone at the console.
    pub(crate) reboot: bool,
    /// `boot.shell_on_fail`: start the shell without asking first.
    pub(crate) shell_at_once: bool,
}

impl FailurePolicy {
    pub(crate) fn from_params(params: &cmdline::KernelParams) -> FailurePolicy {
        FailurePolicy { reboot: params.panic_on_fail, shell_at_once: params.shell_on_fail }
    }

    /// For failures before the command line was parsed (or a panic): read it now if possible.
    pub(crate) fn from_proc() -> FailurePolicy {
        read_proc_cmdline().map(|text| FailurePolicy::from_params(&cmdline::parse(&text))).unwrap_or_default()
    }
}

fn read_proc_cmdline() -> Option<String> {
    std::fs::read_to_string("/proc/cmdline").ok()
}

/// A panic (a bug) must not kill PID 1 either: report it and go to the menu.
pub(crate) fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        fail(&format!("internal error (please report): {info}"), FailurePolicy::from_proc());
    }));
}

pub(crate) fn fail(message: &str, policy: FailurePolicy) -> ! {
    log::info(message);
    if policy.reboot {
        log::info("boot.panic_on_fail is set: rebooting in 10 s");
        std::thread::sleep(Duration::from_secs(10));
        sys::reboot_now();
    }
    if policy.shell_at_once && Path::new(SHELL).exists() {
        run_shell();
    }
    menu()
}

fn menu() -> ! {
    let mut stdin = std::io::stdin().lock();
    loop {
        let have_shell = Path::new(SHELL).exists();
        if have_shell {
            log::plain("\ni) start a rescue shell  r) reboot\n> ");
        } else {
            log::plain(&format!("\n{SHELL} is not in the initrd, so there is no rescue shell.\nr) reboot\n> "));
        }
        let mut answer = String::new();
        match stdin.read_line(&mut answer) {
            Ok(0) | Err(_) => {
                // No console input (closed, or none attached): nothing to wait for but a power cycle.
                log::info("no input on the console; waiting (reboot the machine to retry)");
                loop {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            }
            Ok(_) => {}
        }
        match answer.trim() {
            "i" if have_shell => run_shell(),
            "r" => {
                log::info("rebooting");
                sys::reboot_now();
            }
            _ => {}
        }
    }
}

fn run_shell() {
    log::info(&format!("starting {SHELL}; exit it to get back to the menu"));
    let mut shell = Command::new(SHELL);
    shell.arg0("sh").env("PATH", "/bin:/sbin:/usr/bin:/usr/sbin");
    // SAFETY: the closure only makes syscalls, which is what is allowed between fork and exec.
    unsafe {
        shell.pre_exec(sys::become_session_leader_on_stdin);
    }
    match shell.status() {
        Ok(status) => log::info(&format!("the rescue shell exited ({status})")),
        Err(e) => log::info(&format!("starting {SHELL} failed: {e}")),
    }
}
