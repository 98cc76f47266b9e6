//! How much rixos says besides its results and errors, set once from `-q`/`-v` by the command line: `-q` prints
//! only errors; `-v` also shows what runs (external commands, builders' output as it comes). A process-wide
//! setting, so the store, package and image layers honour it without every call passing it down.

use std::sync::atomic::{AtomicU8, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// Errors only.
    Quiet = 0,
    /// Progress ("building ...", "deleting ...") too.
    Normal = 1,
    /// Also the commands run and builders' output.
    Verbose = 2,
}

static LEVEL: AtomicU8 = AtomicU8::new(Verbosity::Normal as u8);

impl Verbosity {
    /// From the command line's flags: `-q` wins over `-v`.
    pub fn from_flags(quiet: bool, verbose: u8) -> Verbosity {
        match (quiet, verbose) {
            (true, _) => Verbosity::Quiet,
            (false, 0) => Verbosity::Normal,
            (false, _) => Verbosity::Verbose,
        }
    }
}

pub fn set(level: Verbosity) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

pub fn get() -> Verbosity {
    match LEVEL.load(Ordering::Relaxed) {
        0 => Verbosity::Quiet,
        1 => Verbosity::Normal,
        _ => Verbosity::Verbose,
    }
}

/// True under `-q`: print nothing but errors (and the results asked for).
pub fn quiet() -> bool {
    get() == Verbosity::Quiet
}

/// True under `-v`.
pub fn verbose() -> bool {
    get() >= Verbosity::Verbose
}
