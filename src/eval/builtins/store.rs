//! Adding to the store: `path`, `filterSource`, `toFile`, `storePath`, `placeholder`.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use crate::eval::error::{ErrorKind, EvalError, Pos, Result, eval_error};
use crate::eval::eval::Evaluator;
use crate::eval::io::store_path_of;
use crate::eval::value::{Thunk, Value};

use super::hashing::parse_hash;
use super::{STRICT_STR, force_attrs, force_fn, force_path, force_str, str_value};

pub(super) fn prim_placeholder(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let out = force_str(ev, &a[0], pos)?;
    let digest = crate::store::hash::sha256(format!("nix-output:{}", out.s).as_bytes());
    Ok(Value::str(format!("/{}", crate::store::hash::nix32_encode(&digest))))
}

pub(super) fn prim_store_path(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let (path, _) = force_path(ev, &a[0], pos)?;
    let Some(sp) = store_path_of(&path) else {
        return eval_error(format!("path '{path}' is not in the Nix store"), pos);
    };
    Ok(str_value(path, BTreeSet::from([sp])))
}

pub(super) fn prim_to_file(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let name = force_str(ev, &a[0], pos)?;
    let v = ev.force(&a[1])?;
    let contents = ev.coerce_to_string(&v, pos, STRICT_STR)?;
    let mut refs = Vec::new();
    for c in &contents.ctx {
        if c.starts_with('=') || c.starts_with('!') {
            return eval_error(
                format!(
                    "files created by 'builtins.toFile' may not reference derivations, but '{}' references '{}'",
                    name.s,
                    c.trim_start_matches('=')
                ),
                pos,
            );
        }
        refs.push(c.clone());
    }
    let path = ev
        .io
        .add_text(&name.s, &contents.s, &refs)
        .map_err(|e| EvalError::new(ErrorKind::Eval, format!("in 'toFile': {e:#}"), pos))?;
    Ok(str_value(path.clone(), BTreeSet::from([path])))
}

/// Walks `root`, asking `filter` (path, type) about every entry; gives the relative paths kept.
fn filtered_paths(ev: &mut Evaluator, root: &str, filter: &Value, pos: Pos) -> Result<HashSet<PathBuf>> {
    let mut keep = HashSet::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = Path::new(root).join(&rel);
        let entries = ev.io.read_dir(&dir).map_err(|e| {
            EvalError::new(
                ErrorKind::Eval,
                format!("reading directory '{}': {e}", dir.display()),
                pos,
            )
        })?;
        for (name, kind) in entries {
            let child = rel.join(&name);
            let full = format!("{root}/{}", child.display());
            let partial = ev.call(filter.clone(), Thunk::Val(Value::str(full)), pos)?;
            let r = ev.call(partial, Thunk::Val(Value::str(kind.name())), pos)?;
            if ev.expect_bool(&r, pos, "")? {
                if kind == crate::eval::io::FileKind::Directory {
                    stack.push(child.clone());
                }
                keep.insert(child);
            }
        }
    }
    Ok(keep)
}

fn add_to_store(
    ev: &mut Evaluator,
    path: &str,
    name: &str,
    filter: Option<&Value>,
    recursive: bool,
    pos: Pos,
) -> Result<String> {
    let only = match filter {
        Some(f) if ev.io.is_dir(Path::new(path)) => Some(filtered_paths(ev, path, f, pos)?),
        _ => None,
    };
    ev.io
        .add_path(Path::new(path), name, only.as_ref(), recursive)
        .map_err(|e| EvalError::new(ErrorKind::Eval, format!("adding '{path}' to the store: {e:#}"), pos))
}

pub(super) fn prim_filter_source(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let filter = force_fn(ev, &a[0], pos)?;
    let (path, _) = force_path(ev, &a[1], pos)?;
    let name = path.rsplit('/').next().unwrap_or("source").to_string();
    let sp = add_to_store(ev, &path, &name, Some(&filter), true, pos)?;
    Ok(str_value(sp.clone(), BTreeSet::from([sp])))
}

pub(super) fn prim_path(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let args = force_attrs(ev, &a[0], pos)?;
    let path_t = args
        .get_str("path")
        .cloned()
        .ok_or_else(|| EvalError::new(ErrorKind::Eval, "attribute 'path' missing in call to 'path'", pos))?;
    let (path, _) = force_path(ev, &path_t, pos)?;
    let name = match args.get_str("name") {
        Some(t) => {
            let t = t.clone();
            force_str(ev, &t, pos)?.s.clone()
        }
        None => path.rsplit('/').next().unwrap_or("source").to_string(),
    };
    let filter = match args.get_str("filter") {
        Some(t) => {
            let t = t.clone();
            Some(force_fn(ev, &t, pos)?)
        }
        None => None,
    };
    let recursive = match args.get_str("recursive") {
        Some(t) => {
            let t = t.clone();
            let v = ev.force(&t)?;
            ev.expect_bool(&v, pos, "")?
        }
        None => true,
    };
    let sp = add_to_store(ev, &path, &name, filter.as_ref(), recursive, pos)?;
    if let Some(t) = args.get_str("sha256") {
        let t = t.clone();
        let expected = force_str(ev, &t, pos)?;
        let (_, want) = parse_hash(&expected.s, Some("sha256")).map_err(|m| EvalError::new(ErrorKind::Eval, m, pos))?;
        let real = crate::store::path::fixed_output_path(
            &name,
            if recursive {
                crate::store::path::FileIngestion::Recursive
            } else {
                crate::store::path::FileIngestion::Flat
            },
            "sha256",
            &want,
        )
        .map_err(|e| EvalError::new(ErrorKind::Eval, e.to_string(), pos))?;
        if real.to_string() != sp {
            return eval_error(
                format!(
                    "hash mismatch in file downloaded from '{path}': expected {}, got {sp}",
                    expected.s
                ),
                pos,
            );
        }
    }
    Ok(str_value(sp.clone(), BTreeSet::from([sp])))
}
