//! The few Linux calls std does not wrap, declared against glibc by hand (no crates, not even libc), each
//! behind a safe function returning `io::Result`. x86_64 Linux only.

use std::ffi::{CString, c_char, c_int, c_long, c_ulong, c_void};
use std::io;
use std::os::fd::{AsRawFd, IntoRawFd};
use std::time::Duration;

use super::mountopts::MS_MOVE;

unsafe extern "C" {
    fn mount(
        source: *const c_char,
        target: *const c_char,
        fstype: *const c_char,
        flags: c_ulong,
        data: *const c_void,
    ) -> c_int;
    fn umount2(target: *const c_char, flags: c_int) -> c_int;
    fn syscall(number: c_long, ...) -> c_long;
    fn reboot(cmd: c_int) -> c_int;
    fn sync();
    fn ioctl(fd: c_int, request: c_ulong, ...) -> c_int;
    fn fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
    fn dup2(old: c_int, new: c_int) -> c_int;
    fn setsid() -> c_int;
    fn clock_gettime(clock: c_int, time: *mut Timespec) -> c_int;
    fn statfs(path: *const c_char, buf: *mut StatFs) -> c_int;
}

#[repr(C)]
struct Timespec {
    seconds: i64,
    nanoseconds: i64,
}

/// `struct statfs` on x86_64 is 120 bytes with the type first; the rest is room to spare.
#[repr(C)]
struct StatFs {
    fs_type: i64,
    rest: [i64; 31],
}

const SYS_FINIT_MODULE: c_long = 313;
const CLOCK_BOOTTIME: c_int = 7;
const F_GETFD: c_int = 1;
const TIOCSCTTY: c_ulong = 0x540E;
const RB_AUTOBOOT: c_int = 0x0123_4567;
const RB_POWER_OFF: c_int = 0x4321_FEDC;
const MNT_DETACH: c_int = 2;

fn c_string(text: &str) -> io::Result<CString> {
    CString::new(text).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("NUL byte in {text:?}")))
}

fn check(result: c_int) -> io::Result<()> {
    if result < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// mount(2). An empty `data` is passed as NULL, which some filesystems tell apart from "".
pub(crate) fn mount_fs(source: &str, target: &str, fstype: &str, flags: u64, data: &str) -> io::Result<()> {
    let source = c_string(source)?;
    let target = c_string(target)?;
    let fstype = c_string(fstype)?;
    let data = if data.is_empty() { None } else { Some(c_string(data)?) };
    let data_ptr = data.as_ref().map_or(std::ptr::null(), |d| d.as_ptr().cast::<c_void>());
    // SAFETY: every pointer is a NUL-terminated string that outlives the call, or NULL where allowed.
    check(unsafe { mount(source.as_ptr(), target.as_ptr(), fstype.as_ptr(), flags, data_ptr) })
}

/// Moves the mount at `from` (with everything under it) to `to`.
pub(crate) fn move_mount(from: &str, to: &str) -> io::Result<()> {
    let from = c_string(from)?;
    let to = c_string(to)?;
    // SAFETY: as in `mount_fs`; fstype and data may be NULL for MS_MOVE.
    check(unsafe { mount(from.as_ptr(), to.as_ptr(), std::ptr::null(), MS_MOVE, std::ptr::null()) })
}

pub(crate) fn unmount(target: &str) -> io::Result<()> {
    let target = c_string(target)?;
    // SAFETY: a valid C string.
    check(unsafe { umount2(target.as_ptr(), 0) })
}

/// Detaches the mount now and frees it once nothing uses it.
pub(crate) fn unmount_lazily(target: &str) -> io::Result<()> {
    let target = c_string(target)?;
    // SAFETY: a valid C string.
    check(unsafe { umount2(target.as_ptr(), MNT_DETACH) })
}

/// Loads a kernel module from an open `.ko` file with no parameters.
pub(crate) fn finit_module(module: &std::fs::File) -> io::Result<()> {
    let no_params = c"";
    // SAFETY: finit_module(fd, const char *params, int flags) with an open fd and a valid C string.
    let result = unsafe { syscall(SYS_FINIT_MODULE, module.as_raw_fd() as c_long, no_params.as_ptr(), 0 as c_long) };
    if result < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// `ioctl(fd, request, arg)` with an integer or pointer argument; returns the (non-negative) result.
pub(crate) fn ioctl_with(fd: c_int, request: c_ulong, arg: usize) -> io::Result<c_int> {
    // SAFETY: the caller passes an argument of the kind `request` expects (checked by the kernel for fds).
    let result = unsafe { ioctl(fd, request, arg) };
    if result < 0 { Err(io::Error::last_os_error()) } else { Ok(result) }
}

/// Syncs and restarts the machine; if the kernel refuses, waits forever (PID 1 must not exit).
pub(crate) fn reboot_now() -> ! {
    // SAFETY: no arguments; reboot only returns on failure.
    unsafe {
        sync();
        reboot(RB_AUTOBOOT);
    }
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Syncs and powers the machine off; if the kernel refuses, waits forever (PID 1 must not exit).
pub(crate) fn power_off_now() -> ! {
    // SAFETY: no arguments; reboot only returns on failure.
    unsafe {
        sync();
        reboot(RB_POWER_OFF);
    }
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Time since boot, suspend included, as the benchmark compares it with the kernel's own timestamps.
pub(crate) fn since_boot() -> Duration {
    let mut now = Timespec { seconds: 0, nanoseconds: 0 };
    // SAFETY: `now` is a valid timespec to write to.
    if unsafe { clock_gettime(CLOCK_BOOTTIME, &mut now) } < 0 {
        return Duration::ZERO;
    }
    Duration::new(now.seconds.max(0) as u64, now.nanoseconds.clamp(0, 999_999_999) as u32)
}

/// The filesystem type magic of the filesystem holding `path`.
pub(crate) fn filesystem_type(path: &str) -> io::Result<i64> {
    let path = c_string(path)?;
    let mut buf = StatFs { fs_type: 0, rest: [0; 31] };
    // SAFETY: `buf` is larger than the kernel's struct statfs.
    check(unsafe { statfs(path.as_ptr(), &mut buf) })?;
    Ok(buf.fs_type)
}

/// Makes sure fds 0-2 are open: without a `/dev/console` in the initrd the kernel starts PID 1 with none.
pub(crate) fn ensure_console() {
    // SAFETY: F_GETFD only inspects the descriptor.
    let closed: Vec<c_int> = (0..3).filter(|&fd| unsafe { fcntl(fd, F_GETFD) } < 0).collect();
    if closed.is_empty() {
        return;
    }
    let Ok(console) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/console") else { return };
    let console = console.into_raw_fd();
    for fd in closed {
        if fd != console {
            // SAFETY: both are descriptors; dup2 onto a closed one only opens it.
            unsafe { dup2(console, fd) };
        }
    }
    if console > 2 {
        // SAFETY: the descriptor is ours and now duplicated where it is needed.
        drop(unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(console) });
    }
}

/// For a child about to exec a shell: a session of its own with the console (its stdin) as the controlling
/// terminal, so job control and Ctrl-C work. Async-signal-safe (only syscalls), as `pre_exec` requires.
pub(crate) fn become_session_leader_on_stdin() -> io::Result<()> {
    // SAFETY: setsid and ioctl(TIOCSCTTY) on fd 0 take no pointers.
    unsafe {
        if setsid() < 0 {
            return Err(io::Error::last_os_error());
        }
        // Failing here only costs job control; not worth refusing the shell for.
        ioctl(0, TIOCSCTTY, 1 as c_int);
    }
    Ok(())
}
