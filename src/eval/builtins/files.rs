//! Reading files and the environment: `import`, `scopedImport`, `findFile`, `pathExists`, `readFile`,
//! `readDir`, `readFileType`, `getEnv`, `toPath`.

use std::path::{Path, PathBuf};

use crate::eval::compile::canon_path;
use crate::eval::error::{ErrorKind, EvalError, Pos, Result, eval_error};
use crate::eval::eval::{Coerce, Evaluator};
use crate::eval::io::store_path_of;
use crate::eval::value::{Attrs, Context, Env, Sym, Thunk, Value};

use super::{attr, force_attrs, force_list, force_path, force_str, str_value};

pub(super) fn prim_import(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let (path, _) = force_path(ev, &a[0], pos)?;
    ev.import_file(&path, pos)
}

pub(super) fn prim_scoped_import(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let scope = force_attrs(ev, &a[0], pos)?;
    let (path, _) = force_path(ev, &a[1], pos)?;
    let mut file = PathBuf::from(&path);
    if ev.io.is_dir(&file) {
        file.push("default.nix");
    }
    let text = ev
        .io
        .read_file(&file)
        .map_err(|e| EvalError::new(ErrorKind::Eval, format!("opening file '{}': {e}", file.display()), pos))?;
    let text = String::from_utf8_lossy(&text).into_owned();
    let names: Vec<Sym> = scope.entries().iter().map(|e| e.name).collect();
    let base = file.parent().unwrap_or(Path::new("/")).to_path_buf();
    let expr = ev.compile_source(&text, &file.display().to_string(), true, &base, Some(names))?;
    let env = Env::new(None, scope.entries().iter().map(|e| e.value.clone()).collect());
    ev.eval(expr, &env)
}

pub(super) fn prim_find_file(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let list = force_list(ev, &a[0], pos)?;
    let name = force_str(ev, &a[1], pos)?;
    for t in list.iter() {
        let entry = force_attrs(ev, t, pos)?;
        let prefix = match entry.get_str("prefix") {
            Some(p) => {
                let p = p.clone();
                force_str(ev, &p, pos)?.s.clone()
            }
            None => String::new(),
        };
        let path = match entry.get_str("path") {
            Some(p) => p.clone(),
            None => return eval_error("attribute 'path' missing", pos),
        };
        let path = ev.force(&path)?;
        let path = ev
            .coerce_to_string(
                &path,
                pos,
                Coerce {
                    more: false,
                    copy: false,
                },
            )?
            .s;
        let rest = if prefix.is_empty() {
            Some(name.s.as_str())
        } else if name.s == prefix {
            Some("")
        } else {
            name.s.strip_prefix(&format!("{prefix}/"))
        };
        let Some(rest) = rest else { continue };
        let candidate = if rest.is_empty() {
            path.clone()
        } else {
            format!("{path}/{rest}")
        };
        let candidate = if candidate.starts_with('/') {
            candidate
        } else {
            format!(
                "{}/{candidate}",
                std::env::current_dir()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default()
            )
        };
        if ev.io.exists(Path::new(&candidate)) {
            return Ok(Value::Path(canon_path(&candidate).into()));
        }
    }
    if let Some(rest) = name.s.strip_prefix("nix/")
        && let Some(path) = crate::eval::derivation::corepkg(ev, rest)?
    {
        return Ok(Value::Path(path.into()));
    }
    if ev.internal_files.contains_key(name.s.as_str()) {
        return Ok(Value::Path(
            format!("{}/{}", crate::eval::derivation::INTERNAL, name.s).into(),
        ));
    }
    eval_error(
        format!(
            "file '{}' was not found in the Nix search path (add it using $NIX_PATH or -I)",
            name.s
        ),
        pos,
    )
}

pub(super) fn prim_path_exists(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let v = ev.force(&a[0])?;
    let s = ev.coerce_to_string(
        &v,
        pos,
        Coerce {
            more: false,
            copy: false,
        },
    )?;
    if !s.s.starts_with('/') {
        return eval_error(format!("string '{}' doesn't represent an absolute path", s.s), pos);
    }
    // A trailing slash asks for a directory.
    let p = canon_path(&s.s);
    if let Some(kind) = internal_file_kind(ev, &p) {
        return Ok(Value::Bool(!s.s.ends_with('/') || kind == "directory"));
    }
    let exists = if s.s.ends_with('/') && s.s.len() > 1 {
        ev.io.is_dir(Path::new(&p))
    } else {
        ev.io.exists(Path::new(&p))
    };
    Ok(Value::Bool(exists))
}

pub(super) fn prim_read_file(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let (path, _) = force_path(ev, &a[0], pos)?;
    let data = ev
        .io
        .read_file(Path::new(&path))
        .map_err(|e| EvalError::new(ErrorKind::Eval, format!("opening file '{path}': {e}"), pos))?;
    let mut ctx = Context::new();
    if let Some(sp) = store_path_of(&path) {
        ctx.insert(sp);
    }
    Ok(str_value(String::from_utf8_lossy(&data).into_owned(), ctx))
}

/// The kind of a path under `/«nix-internal»` (rixos' built-in Nix files, which `import` finds there):
/// `regular` for a file, `directory` for a folder of them; None for anything else.
fn internal_file_kind(ev: &Evaluator, path: &str) -> Option<&'static str> {
    let name = path
        .strip_prefix(crate::eval::derivation::INTERNAL)?
        .strip_prefix('/')?;
    if ev.internal_files.contains_key(name) {
        return Some("regular");
    }
    let folder = format!("{}/", name.trim_end_matches('/'));
    ev.internal_files
        .keys()
        .any(|k| k.starts_with(&folder))
        .then_some("directory")
}

pub(super) fn prim_read_file_type(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let (path, _) = force_path(ev, &a[0], pos)?;
    if let Some(kind) = internal_file_kind(ev, &path) {
        return Ok(Value::str(kind));
    }
    let kind = ev
        .io
        .file_kind(Path::new(&path))
        .map_err(|e| EvalError::new(ErrorKind::Eval, format!("getting status of '{path}': {e}"), pos))?;
    Ok(Value::str(kind.name()))
}

pub(super) fn prim_read_dir(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let (path, _) = force_path(ev, &a[0], pos)?;
    let entries = ev
        .io
        .read_dir(Path::new(&path))
        .map_err(|e| EvalError::new(ErrorKind::Eval, format!("reading directory '{path}': {e}"), pos))?;
    Ok(Value::attrs(Attrs::from_unsorted(
        entries
            .into_iter()
            .map(|(n, k)| attr(&n, Value::str(k.name())))
            .collect(),
    )))
}

pub(super) fn prim_get_env(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let name = force_str(ev, &a[0], pos)?;
    if ev.settings.pure {
        return Ok(Value::str(""));
    }
    Ok(Value::str(std::env::var(&name.s).unwrap_or_default()))
}

pub(super) fn prim_to_path(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let (p, ctx) = force_path(ev, &a[0], pos)?;
    Ok(str_value(canon_path(&p), ctx))
}
