//! Evaluation errors and source positions, shown the way Nix shows them: the message, the place
//! (file:line:column) with an excerpt of the code, and with `--show-trace` the chain of frames that led there.

use std::cell::RefCell;
use std::fmt::Write;

/// A place in a source file: a file number from the source table and a byte offset. `Pos::NONE` is nowhere.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Pos {
    pub file: u32,
    pub offset: u32,
}

impl Pos {
    pub const NONE: Pos = Pos { file: 0, offset: 0 };

    pub fn is_none(self) -> bool {
        self.file == 0
    }
}

/// A source the evaluator has read: its name as shown to users (a path, `«string»`, `«stdin»`) and text.
pub struct Source {
    pub name: String,
    pub text: String,
    /// Whether `name` is a real file path (shown plainly) rather than a pseudo-origin.
    pub is_file: bool,
}

thread_local! {
    static SOURCES: RefCell<Vec<&'static Source>> = const { RefCell::new(Vec::new()) };
}

/// Records a source and returns its file number (never 0).
pub fn add_source(name: String, text: String, is_file: bool) -> u32 {
    let leaked: &'static Source = Box::leak(Box::new(Source { name, text, is_file }));
    SOURCES.with(|s| {
        let mut s = s.borrow_mut();
        s.push(leaked);
        s.len() as u32
    })
}

pub fn source(file: u32) -> Option<&'static Source> {
    if file == 0 {
        return None;
    }
    SOURCES.with(|s| s.borrow().get(file as usize - 1).copied())
}

/// Whether a position is in rixos' built-in Nix libraries (the module system, the core modules), which a
/// user does not write and rarely needs to see.
pub fn is_rixos_internal(pos: Pos) -> bool {
    source(pos.file).is_some_and(|src| src.name.starts_with("«nix-internal»/rixos/"))
}

/// Line and column (both from 1) of a position.
pub fn line_column(pos: Pos) -> Option<(&'static Source, usize, usize)> {
    let src = source(pos.file)?;
    let upto = &src.text.as_bytes()[..(pos.offset as usize).min(src.text.len())];
    let line = upto.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = upto.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&upto[line_start..]).chars().count() + 1;
    Some((src, line, column))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// `throw`: catchable by `tryEval`.
    Throw,
    /// A failed `assert`: catchable by `tryEval`.
    Assert,
    /// `abort`: never caught.
    Abort,
    InfiniteRecursion,
    /// Every other evaluation error (type errors, missing attributes, ...).
    Eval,
}

#[derive(Debug, Clone)]
pub struct Frame {
    pub pos: Pos,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct EvalError {
    pub kind: ErrorKind,
    pub message: String,
    pub pos: Pos,
    /// Innermost first.
    pub trace: Vec<Frame>,
}

pub type Result<T> = std::result::Result<T, Box<EvalError>>;

impl EvalError {
    pub fn new(kind: ErrorKind, message: impl Into<String>, pos: Pos) -> Box<EvalError> {
        Box::new(EvalError {
            kind,
            message: message.into(),
            pos,
            trace: Vec::new(),
        })
    }

    /// Renders the error as Nix does; frames only with `show_trace`.
    pub fn render(&self, show_trace: bool) -> String {
        let mut out = String::from("error:");
        if show_trace {
            for frame in self.trace.iter().rev() {
                let _ = write!(out, "\n       … {}", frame.message);
                excerpt(&mut out, frame.pos, "         ");
                out.push('\n');
            }
            if !self.trace.is_empty() {
                out.push_str("\n       error:");
            }
        }
        // A hint ("Did you mean ...?") follows the position.
        let (message, hint) = match self.message.find("\nDid you mean") {
            Some(i) => (&self.message[..i], Some(&self.message[i + 1..])),
            None => (self.message.as_str(), None),
        };
        let mut lines = message.lines();
        if let Some(first) = lines.next() {
            let _ = write!(out, " {first}");
        }
        for line in lines {
            let _ = write!(out, "\n       {line}");
        }
        // An error raised inside a builtin is placed by the builtin's frame, as in Nix.
        let placed_by_frame = show_trace && self.trace.first().is_some_and(|f| f.pos == self.pos);
        // A `throw` inside rixos' built-in Nix libraries says everything itself; where it was thrown is noise.
        let internal_throw = self.kind == ErrorKind::Throw && is_rixos_internal(self.pos);
        if !placed_by_frame && !internal_throw {
            excerpt(&mut out, self.pos, "       ");
        }
        if let Some(hint) = hint {
            let _ = write!(out, "\n       {hint}");
        }
        out
    }
}

/// Appends `at FILE:LINE:COL:` and the lines around it with a caret, as Nix prints a position.
fn excerpt(out: &mut String, pos: Pos, indent: &str) {
    let Some((src, line, column)) = line_column(pos) else {
        return;
    };
    let _ = write!(out, "\n{indent}at {}:{line}:{column}:", src.name);
    // Nix's layout: the line number right-aligned in five columns after the message indentation, the caret
    // under the column.
    let lines: Vec<&str> = src.text.split('\n').collect();
    let code = |out: &mut String, n: usize| {
        let text = format!("        {n:>5}| {}", lines[n - 1]);
        let _ = write!(out, "\n{}", text.trim_end());
    };
    if line > 1 {
        code(out, line - 1);
    }
    if line <= lines.len() {
        code(out, line);
        let _ = write!(out, "\n{:13}|{}^", "", " ".repeat(column));
    }
    if line < lines.len() {
        code(out, line + 1);
    }
}

/// An I/O failure on a file, worded as Nix words it: `WHAT 'PATH': No such file or directory` (the reason as
/// `strerror` gives it, without Rust's "(os error N)").
pub fn io_error(what: &str, path: &std::path::Path, e: &std::io::Error, pos: Pos) -> Box<EvalError> {
    let reason = e.to_string();
    let reason = match reason.rfind(" (os error ") {
        Some(i) if reason.ends_with(')') => &reason[..i],
        _ => &reason,
    };
    EvalError::new(ErrorKind::Eval, format!("{what} '{}': {reason}", path.display()), pos)
}

/// Shorthands for the common error kinds.
pub fn eval_error<T>(message: impl Into<String>, pos: Pos) -> Result<T> {
    Err(EvalError::new(ErrorKind::Eval, message, pos))
}
