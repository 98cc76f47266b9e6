//! Strings: `substring`, `replaceStrings`, `concatStringsSep`, `toString`, `baseNameOf`, `dirOf`, ...

use std::rc::Rc;

use crate::eval::error::{Pos, Result, eval_error};
use crate::eval::eval::{Coerce, Evaluator};
use crate::eval::value::{NixStr, Thunk, Value};

use super::{MORE, STRICT_STR, force_int, force_list, force_str, str_value};

pub(super) fn prim_base_name_of(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let v = ev.force(&a[0])?;
    let s = ev.coerce_to_string(
        &v,
        pos,
        Coerce {
            more: false,
            copy: false,
        },
    )?;
    let trimmed = s.s.strip_suffix('/').unwrap_or(&s.s);
    let base = trimmed.rsplit('/').next().unwrap_or("").to_string();
    Ok(str_value(base, s.ctx))
}

pub(super) fn prim_dir_of(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let v = ev.force(&a[0])?;
    let is_path = matches!(v, Value::Path(_));
    let s = ev.coerce_to_string(
        &v,
        pos,
        Coerce {
            more: false,
            copy: false,
        },
    )?;
    let dir = match s.s.rfind('/') {
        None => ".".to_string(),
        Some(0) => "/".to_string(),
        Some(i) => s.s[..i].to_string(),
    };
    if is_path {
        Ok(Value::Path(dir.into()))
    } else {
        Ok(str_value(dir, s.ctx))
    }
}

pub(super) fn prim_concat_strings_sep(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let sep = force_str(ev, &a[0], pos)?;
    let list = force_list(ev, &a[1], pos)?;
    let mut out = String::new();
    let mut ctx = sep.ctx.clone();
    for (i, t) in list.iter().enumerate() {
        if i > 0 {
            out.push_str(&sep.s);
        }
        let v = ev.force(t)?;
        let s = ev.coerce_to_string(&v, pos, STRICT_STR)?;
        out.push_str(&s.s);
        ctx.extend(s.ctx);
    }
    Ok(str_value(out, ctx))
}

pub(super) fn prim_replace_strings(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let from = force_list(ev, &a[0], pos)?;
    let to = force_list(ev, &a[1], pos)?;
    if from.len() != to.len() {
        return eval_error(
            "'from' and 'to' arguments passed to builtins.replaceStrings have different lengths",
            pos,
        );
    }
    let s = force_str(ev, &a[2], pos)?;
    let mut froms = Vec::with_capacity(from.len());
    for t in from.iter() {
        froms.push(force_str(ev, t, pos)?);
    }
    // `to` strings are forced only when used, as in Nix.
    let mut tos: Vec<Option<Rc<NixStr>>> = vec![None; to.len()];
    let mut out = String::with_capacity(s.s.len());
    let mut ctx = s.ctx.clone();
    let bytes = s.s.as_bytes();
    let mut i = 0;
    while i <= bytes.len() {
        let mut matched = false;
        for (j, f) in froms.iter().enumerate() {
            if bytes[i..].starts_with(f.s.as_bytes()) {
                if tos[j].is_none() {
                    tos[j] = Some(force_str(ev, &to[j], pos)?);
                }
                let t = tos[j].as_ref().expect("forced");
                out.push_str(&t.s);
                ctx.extend(t.ctx.iter().cloned());
                matched = true;
                if f.s.is_empty() {
                    if let Some(c) = s.s[i..].chars().next() {
                        out.push(c);
                        i += c.len_utf8();
                    } else {
                        i += 1;
                    }
                } else {
                    i += f.s.len();
                }
                break;
            }
        }
        if !matched {
            match s.s[i..].chars().next() {
                Some(c) => {
                    out.push(c);
                    i += c.len_utf8();
                }
                None => break,
            }
        }
    }
    Ok(str_value(out, ctx))
}

pub(super) fn prim_string_length(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let v = ev.force(&a[0])?;
    let s = ev.coerce_to_string(&v, pos, STRICT_STR)?;
    Ok(Value::Int(s.s.len() as i64))
}

pub(super) fn prim_substring(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let start = force_int(ev, &a[0], pos)?;
    let len = force_int(ev, &a[1], pos)?;
    let v = ev.force(&a[2])?;
    let s = ev.coerce_to_string(&v, pos, STRICT_STR)?;
    if start < 0 {
        return eval_error("negative start position in 'substring'", pos);
    }
    let bytes = s.s.as_bytes();
    let start = (start as usize).min(bytes.len());
    let end = if len < 0 {
        bytes.len()
    } else {
        start.saturating_add(len as usize).min(bytes.len())
    };
    let sub = String::from_utf8_lossy(&bytes[start..end]).into_owned();
    Ok(str_value(sub, s.ctx))
}

pub(super) fn prim_to_string(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let v = ev.force(&a[0])?;
    let s = ev.coerce_to_string(&v, pos, MORE)?;
    Ok(str_value(s.s, s.ctx))
}
