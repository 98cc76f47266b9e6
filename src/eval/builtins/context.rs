//! String contexts: `hasContext`, `getContext`, `appendContext` and the discarding of contexts.

use std::collections::{BTreeMap, BTreeSet};

use crate::eval::error::{Pos, Result, eval_error};
use crate::eval::eval::Evaluator;
use crate::eval::io::is_store_path;
use crate::eval::value::{Attrs, Thunk, Value};

use super::{attr, force_attrs, force_list, force_str, make_attrs, str_value};

pub(super) fn prim_has_context(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let s = force_str(ev, &a[0], pos)?;
    Ok(Value::Bool(!s.ctx.is_empty()))
}

pub(super) fn prim_discard_context(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let s = force_str(ev, &a[0], pos)?;
    Ok(Value::str(s.s.clone()))
}

pub(super) fn prim_discard_output_dependency(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let s = force_str(ev, &a[0], pos)?;
    let ctx = s
        .ctx
        .iter()
        .map(|c| c.strip_prefix('=').map_or_else(|| c.clone(), str::to_string))
        .collect();
    Ok(str_value(s.s.clone(), ctx))
}

pub(super) fn prim_add_drv_output_dependencies(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let s = force_str(ev, &a[0], pos)?;
    if s.ctx.len() != 1 {
        return eval_error(
            format!(
                "context of string '{}' must have exactly one element, but has {}",
                s.s,
                s.ctx.len()
            ),
            pos,
        );
    }
    let c = s.ctx.iter().next().expect("one element");
    let new = if c.starts_with('=') {
        c.clone()
    } else if c.starts_with('!') {
        let path = c.splitn(3, '!').nth(2).unwrap_or_default();
        return eval_error(
            format!(
                "`addDrvOutputDependencies` can only act on derivations, not on a derivation output such as '{}'",
                path
            ),
            pos,
        );
    } else {
        if !c.ends_with(".drv") {
            return eval_error(format!("path '{c}' is not a derivation"), pos);
        }
        format!("={c}")
    };
    Ok(str_value(s.s.clone(), BTreeSet::from([new])))
}

pub(super) fn prim_get_context(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let s = force_str(ev, &a[0], pos)?;
    #[derive(Default)]
    struct Info {
        path: bool,
        all: bool,
        outputs: BTreeSet<String>,
    }
    let mut map: BTreeMap<String, Info> = BTreeMap::new();
    for c in &s.ctx {
        if let Some(p) = c.strip_prefix('=') {
            map.entry(p.to_string()).or_default().all = true;
        } else if let Some(rest) = c.strip_prefix('!') {
            let (out, p) = rest.split_once('!').unwrap_or((rest, ""));
            map.entry(p.to_string()).or_default().outputs.insert(out.to_string());
        } else {
            map.entry(c.clone()).or_default().path = true;
        }
    }
    let entries = map
        .into_iter()
        .map(|(p, info)| {
            let mut fields = Vec::new();
            if info.path {
                fields.push(("path", Value::Bool(true)));
            }
            if info.all {
                fields.push(("allOutputs", Value::Bool(true)));
            }
            if !info.outputs.is_empty() {
                fields.push((
                    "outputs",
                    Value::list(info.outputs.into_iter().map(|o| Thunk::Val(Value::str(o))).collect()),
                ));
            }
            attr(&p, make_attrs(fields))
        })
        .collect();
    Ok(Value::attrs(Attrs::from_unsorted(entries)))
}

pub(super) fn prim_append_context(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let s = force_str(ev, &a[0], pos)?;
    let ctx_attrs = force_attrs(ev, &a[1], pos)?;
    let mut ctx = s.ctx.clone();
    for e in ctx_attrs.sorted() {
        let path = e.name.as_str();
        if !is_store_path(path) {
            return eval_error(format!("context key '{path}' is not a store path"), pos);
        }
        let info = force_attrs(ev, &e.value, pos)?;
        if let Some(t) = info.get_str("path") {
            let t = t.clone();
            if matches!(ev.force(&t)?, Value::Bool(true)) {
                ctx.insert(path.to_string());
            }
        }
        if let Some(t) = info.get_str("allOutputs") {
            let t = t.clone();
            if matches!(ev.force(&t)?, Value::Bool(true)) {
                if !path.ends_with(".drv") {
                    return eval_error(
                        format!("tried to add all-outputs context of {path}, which is not a derivation, to a string"),
                        pos,
                    );
                }
                ctx.insert(format!("={path}"));
            }
        }
        if let Some(t) = info.get_str("outputs") {
            let t = t.clone();
            let outs = force_list(ev, &t, pos)?;
            if !outs.is_empty() && !path.ends_with(".drv") {
                return eval_error(
                    format!("tried to add derivation output context of {path}, which is not a derivation, to a string"),
                    pos,
                );
            }
            for o in outs.iter() {
                let o = force_str(ev, o, pos)?;
                ctx.insert(format!("!{}!{path}", o.s));
            }
        }
    }
    Ok(str_value(s.s.clone(), ctx))
}
