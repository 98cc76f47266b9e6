//! One evaluation as `nix-instantiate` runs it: the expression (file, `-E` or standard input), auto-calling
//! with `--arg`/`--argstr`, `-A` paths, and the outputs (`--eval` printouts, JSON, XML, or the derivations).
//! Evaluation runs on its own thread with a large stack; deeper recursion continues on heap segments.

use std::path::{Path, PathBuf};

use super::error::{EvalError, Pos, Result, eval_error};
use super::eval::{Evaluator, Settings};
use super::io::EvalIo;
use super::value::{Attrs, Sym, Thunk, Value};

/// Where the expression comes from.
#[derive(Clone, Debug)]
pub enum Input {
    File(PathBuf),
    Expr(String),
    Stdin(String),
}

#[derive(Clone, Debug)]
pub enum AutoArg {
    /// `--arg name expr`
    Expr(String, String),
    /// `--argstr name value`
    Str(String, String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// `--eval`: the value as Nix prints it.
    Value,
    Json,
    Xml,
    /// No `--eval`: the .drv paths of the derivations the value holds.
    Derivations,
}

#[derive(Clone, Debug)]
pub struct Request {
    pub input: Input,
    pub attr_paths: Vec<String>,
    pub args: Vec<AutoArg>,
    pub strict: bool,
    pub output: Output,
    pub location: bool,
    pub settings: Settings,
    /// Called on the new evaluator before evaluation (parts of rixos that add builtins).
    pub extend: Option<fn(&mut Evaluator)>,
}

/// Stack of the evaluation thread; the evaluator grows onto heap segments past it.
const EVAL_STACK: usize = 256 * 1024 * 1024;

/// Runs `f` on a thread with a large stack (values are not `Send`, so everything lives inside it).
pub fn on_eval_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .name("eval".into())
        .stack_size(EVAL_STACK)
        .spawn(f)
        .expect("spawning the evaluation thread")
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// Evaluates a request; gives what to print (one string per line group) or the rendered error.
pub fn run(request: Request, io: Box<dyn EvalIo>) -> std::result::Result<String, String> {
    let show_trace = request.settings.show_trace;
    let mut ev = Evaluator::new(request.settings.clone(), io);
    if let Some(extend) = request.extend {
        extend(&mut ev);
    }
    let result = evaluate(&mut ev, &request).map_err(|e| e.render(show_trace));
    // The process ends after this: freeing every value one by one would only cost time.
    std::mem::forget(ev);
    result
}

fn evaluate(ev: &mut Evaluator, req: &Request) -> Result<String> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let root = match &req.input {
        Input::File(path) => {
            let abs = if path.is_absolute() {
                path.clone()
            } else {
                cwd.join(path)
            };
            let abs = PathBuf::from(super::compile::canon_path(&abs.display().to_string()));
            ev.import_file(&abs.display().to_string(), Pos::NONE)?
        }
        Input::Expr(text) => ev.eval_source(text, "«string»", false, &cwd)?,
        Input::Stdin(text) => ev.eval_source(text, "«stdin»", false, &cwd)?,
    };
    let args = auto_args(ev, &req.args, &cwd)?;
    let mut values = Vec::new();
    let paths: Vec<&str> = if req.attr_paths.is_empty() {
        vec![""]
    } else {
        req.attr_paths.iter().map(String::as_str).collect()
    };
    for path in paths {
        let v = auto_call(ev, root.clone(), &args)?;
        let v = select_path(ev, v, path)?;
        let v = auto_call(ev, v, &args)?;
        values.push(v);
    }
    let mut out = String::new();
    // Values are not freed: the process ends after printing them (see `run`).
    let values = std::mem::ManuallyDrop::new(values);
    for v in values.iter() {
        match req.output {
            Output::Value => {
                if req.strict {
                    ev.force_deep(v)?;
                }
                out.push_str(&super::print::print_value(v));
                out.push('\n');
            }
            Output::Json => {
                let mut s = String::new();
                let mut ctx = Default::default();
                super::json::to_json(ev, v, Pos::NONE, &mut s, &mut ctx)?;
                // nix-instantiate ends JSON output without a newline.
                out.push_str(&s);
            }
            Output::Xml => {
                if req.strict {
                    ev.force_deep(v)?;
                }
                let mut ctx = Default::default();
                out.push_str(&super::xml::to_xml(ev, v, req.location, &mut ctx, Pos::NONE)?);
            }
            Output::Derivations => {
                let mut drvs = Vec::new();
                collect_derivations(ev, v, &mut drvs, true)?;
                for d in drvs {
                    out.push_str(&d);
                    out.push('\n');
                }
            }
        }
    }
    Ok(out)
}

fn auto_args(ev: &mut Evaluator, args: &[AutoArg], cwd: &Path) -> Result<Attrs> {
    let mut entries = Vec::new();
    for a in args {
        let (name, value) = match a {
            AutoArg::Str(n, v) => (n, Thunk::Val(Value::str(v.clone()))),
            AutoArg::Expr(n, e) => (n, Thunk::Val(ev.eval_source(e, "«string»", false, cwd)?)),
        };
        entries.push(super::value::Attr {
            name: Sym::new(name),
            value,
            pos: Pos::NONE,
        });
    }
    Ok(Attrs::from_unsorted(entries))
}

/// Nix's autoCallFunction: a function taking a set of formals is called with the `--arg`s it names (all of
/// them if it has `...`); other values pass through.
pub fn auto_call(ev: &mut Evaluator, v: Value, args: &Attrs) -> Result<Value> {
    let v = match &v {
        Value::Attrs(a) if a.get(ev.syms.functor).is_some() => {
            let f = a.get(ev.syms.functor).cloned().expect("checked");
            let f = ev.force(&f)?;
            let inner = ev.call(f, Thunk::Val(v.clone()), Pos::NONE)?;
            return auto_call(ev, inner, args);
        }
        _ => v,
    };
    let Value::Lambda(closure) = &v else {
        return Ok(v);
    };
    let super::compile::Param::Pattern { formals, ellipsis, .. } = &closure.def.param else {
        return Ok(v);
    };
    let mut entries = Vec::new();
    for f in formals {
        match args.get_attr(f.name) {
            Some(a) => entries.push(a.clone()),
            None if f.default.is_some() => {}
            None => {
                return eval_error(
                    format!(
                        "cannot evaluate a function that has an argument without a value ('{}')\n\
                         Nix attempted to evaluate a function as a top level expression; in\n\
                         this case it must have its arguments supplied either by default\n\
                         values, or passed explicitly with '--arg' or '--argstr'.",
                        f.name
                    ),
                    closure.def.pos,
                );
            }
        }
    }
    if *ellipsis {
        entries = args.entries().to_vec();
    }
    let arg = Value::attrs(Attrs::from_unsorted(entries));
    ev.call(v, Thunk::Val(arg), Pos::NONE)
}

/// Follows an attribute path like `a.b.0.c` (numbers index lists), as `-A` does.
pub fn select_path(ev: &mut Evaluator, mut v: Value, path: &str) -> Result<Value> {
    if path.is_empty() {
        return Ok(v);
    }
    for part in split_attr_path(path) {
        v = match &v {
            Value::Attrs(a) => match a.get_str(&part) {
                Some(t) => {
                    let t = t.clone();
                    ev.force(&t)?
                }
                None => {
                    return eval_error(
                        format!("attribute '{part}' in selection path '{path}' not found"),
                        Pos::NONE,
                    );
                }
            },
            Value::List(l) => match part.parse::<usize>().ok().and_then(|i| l.get(i)) {
                Some(t) => {
                    let t = t.clone();
                    ev.force(&t)?
                }
                None => {
                    return eval_error(
                        format!("list index '{part}' in selection path '{path}' is out of range"),
                        Pos::NONE,
                    );
                }
            },
            other => {
                return eval_error(
                    format!(
                        "the expression selected by the selection path '{path}' should be a set but is {}",
                        other.describe()
                    ),
                    Pos::NONE,
                );
            }
        };
    }
    Ok(v)
}

/// Splits `a."b.c".d` into its parts.
fn split_attr_path(path: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in path.chars() {
        match c {
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    parts
}

/// The .drv paths of the derivations in a value: itself, or the members of a list or set (one level of sets
/// deeper only where `recurseForDerivations` says so), as nix-instantiate finds them.
pub fn collect_derivations(ev: &mut Evaluator, v: &Value, out: &mut Vec<String>, top: bool) -> Result<()> {
    match v {
        Value::Attrs(a) => {
            if ev.is_derivation(a)? {
                let Some(t) = a.get(ev.syms.drv_path).cloned() else {
                    return eval_error("derivation has no 'drvPath' attribute", Pos::NONE);
                };
                let p = ev.force(&t)?;
                out.push(ev.force_string_noctx(&p, Pos::NONE)?);
                return Ok(());
            }
            let recurse = match a.get_str("recurseForDerivations") {
                Some(t) => {
                    let t = t.clone();
                    matches!(ev.force(&t)?, Value::Bool(true))
                }
                None => false,
            };
            if top || recurse {
                for attr in a.sorted() {
                    let x = ev.force(&attr.value)?;
                    collect_derivations(ev, &x, out, false)?;
                }
            }
            Ok(())
        }
        Value::List(l) if top => {
            for t in l.iter() {
                let x = ev.force(t)?;
                collect_derivations(ev, &x, out, false)?;
            }
            Ok(())
        }
        _ if top => Err(EvalError::new(
            super::error::ErrorKind::Eval,
            "expression does not evaluate to a derivation (or a set or list of those)",
            Pos::NONE,
        )),
        _ => Ok(()),
    }
}
