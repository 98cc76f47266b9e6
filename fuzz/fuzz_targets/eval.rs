//! Fuzz target: parse and evaluate arbitrary Nix source, force the result deeply and print it.
//!
//! Evaluation errors are expected and ignored; only panics, crashes (stack overflow, aborts) and timeouts
//! are findings. Run it with `scripts/fuzz-eval`.

#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use rixos::eval::eval::{Evaluator, Settings};
use rixos::eval::io::StoreIo;

/// Inputs longer than this are skipped: longer programs rarely reach new code, and cost time.
const MAX_LEN: usize = 4096;
/// Longest run of digits allowed. Big literals (`builtins.genList (x: x) 1000000000`) make huge but
/// legitimate work that would only show up as timeouts.
const MAX_DIGITS: usize = 4;

thread_local! {
    /// One evaluator, reused: `Evaluator::new` leaks its `builtins` set (it refers to itself through an `Rc`
    /// cycle), some 30 KB per evaluator, which would exhaust memory within minutes at fuzzing rates. Each
    /// input starts from cleared caches, so it sees what a fresh evaluator would.
    static EVALUATOR: RefCell<Option<Evaluator>> = const { RefCell::new(None) };
}

fn too_many_digits(text: &str) -> bool {
    let mut run = 0;
    for b in text.bytes() {
        if b.is_ascii_digit() {
            run += 1;
            if run > MAX_DIGITS {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_LEN {
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if too_many_digits(text) {
        return;
    }
    EVALUATOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        let ev = cell.get_or_insert_with(|| {
            let settings = Settings {
                max_call_depth: 2000,
                pure: true,
                ..Settings::default()
            };
            // Read-only: store paths are computed, nothing is written.
            Evaluator::new(settings, Box::new(StoreIo::read_only(None)))
        });
        // Start each input from the state a fresh evaluator has.
        ev.depth = 0;
        ev.imports.clear();
        ev.copied.clear();
        ev.drvs.clear();
        ev.drv_modulo.clear();
        if let Ok(v) = ev.eval_source(text, "«fuzz»", false, std::path::Path::new("/nonexistent-fuzz-dir")) {
            let _ = ev.force_deep(&v);
            let _ = rixos::eval::print::print_value(&v);
        }
    });
});
