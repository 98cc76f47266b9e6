//! Raw bindings to the part of libisoburn's xorriso API (`libisoburn/xorriso.h`, libisoburn 1.5) that runs
//! xorriso commands in-process: create an object, start the libraries, interpret an argument list, commit,
//! collect the messages, destroy. Every function is `unsafe` and exactly as declared in the C header; the safe
//! wrapper lives in `rixos::image::iso`.
//!
//! libisoburn keeps global library state (libisofs, libburn), so at most one `XorrisO` may be alive at a time
//! in a process; callers must serialise.

#![allow(non_camel_case_types)]

use std::os::raw::{c_char, c_int};

/// The opaque xorriso object (`struct XorrisO`).
#[repr(C)]
pub struct XorrisO {
    _private: [u8; 0],
}

/// One item of a message list (`struct Xorriso_lsT`).
#[repr(C)]
pub struct Xorriso_lsT {
    _private: [u8; 0],
}

/// `Xorriso__preset_signal_behavior`: 2 = the system's default reaction to every signal (no libburn handler).
pub const SIGNAL_BEHAVIOR_SYSTEM_DEFAULT: c_int = 2;
/// `Xorriso_destroy` flag bit 0: also shut the libraries down (the last object of the process).
pub const DESTROY_SHUTDOWN_LIBRARIES: c_int = 1;
/// `Xorriso_push_outlists` flags: bit 0 redirects the result channel, bit 1 the info channel.
pub const OUTLISTS_RESULT_AND_INFO: c_int = 3;
/// `Xorriso_option_end` flag bit 0: discard pending changes instead of committing them.
pub const END_DISCARD_CHANGES: c_int = 1;
/// `Xorriso_interpreter` return value that asks to end the program run (e.g. `-end` was interpreted).
pub const INTERPRETER_END_PROGRAM: c_int = 3;

unsafe extern "C" {
    pub fn Xorriso__version(major: *mut c_int, minor: *mut c_int, micro: *mut c_int);
    pub fn Xorriso__preset_signal_behavior(behavior: c_int, flag: c_int) -> c_int;
    pub fn Xorriso_new(xorriso: *mut *mut XorrisO, progname: *mut c_char, flag: c_int) -> c_int;
    pub fn Xorriso_startup_libraries(xorriso: *mut XorrisO, flag: c_int) -> c_int;
    pub fn Xorriso_interpreter(
        xorriso: *mut XorrisO,
        argc: c_int,
        argv: *mut *mut c_char,
        idx: *mut c_int,
        flag: c_int,
    ) -> c_int;
    pub fn Xorriso_option_end(xorriso: *mut XorrisO, flag: c_int) -> c_int;
    pub fn Xorriso_make_return_value(xorriso: *mut XorrisO, flag: c_int) -> c_int;
    pub fn Xorriso_destroy(xorriso: *mut *mut XorrisO, flag: c_int) -> c_int;

    pub fn Xorriso_push_outlists(xorriso: *mut XorrisO, stack_handle: *mut c_int, flag: c_int) -> c_int;
    pub fn Xorriso_pull_outlists(
        xorriso: *mut XorrisO,
        stack_handle: c_int,
        result_list: *mut *mut Xorriso_lsT,
        info_list: *mut *mut Xorriso_lsT,
        flag: c_int,
    ) -> c_int;
    pub fn Xorriso_lst_get_text(entry: *mut Xorriso_lsT, flag: c_int) -> *mut c_char;
    pub fn Xorriso_lst_get_next(entry: *mut Xorriso_lsT, flag: c_int) -> *mut Xorriso_lsT;
    pub fn Xorriso_lst_destroy_all(lstring: *mut *mut Xorriso_lsT, flag: c_int) -> c_int;
}

#[cfg(test)]
mod tests {
    #[test]
    fn links_and_reports_a_1_5_version() {
        let (mut major, mut minor, mut micro) = (0, 0, 0);
        // SAFETY: Xorriso__version only writes the three integers.
        unsafe { super::Xorriso__version(&mut major, &mut minor, &mut micro) };
        assert!(major == 1 && minor >= 4, "libisoburn {major}.{minor}.{micro}");
    }
}
