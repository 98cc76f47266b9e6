//! Attribute sets: `attrNames`, `getAttr`, `listToAttrs`, `mapAttrs`, `zipAttrsWith`, ...

use std::collections::{HashMap, HashSet};

use crate::eval::error::{Pos, Result, eval_error};
use crate::eval::eval::Evaluator;
use crate::eval::value::{Attr, Attrs, Sym, Thunk, Value};

use super::{force_attrs, force_fn, force_list, force_str};

pub(super) fn prim_attr_names(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let attrs = force_attrs(ev, &a[0], pos)?;
    Ok(Value::list(
        attrs
            .sorted()
            .into_iter()
            .map(|x| Thunk::Val(Value::str(x.name.as_str())))
            .collect(),
    ))
}

pub(super) fn prim_attr_values(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let attrs = force_attrs(ev, &a[0], pos)?;
    Ok(Value::list(
        attrs.sorted().into_iter().map(|x| x.value.clone()).collect(),
    ))
}

pub(super) fn prim_cat_attrs(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let name = force_str(ev, &a[0], pos)?;
    let name = Sym::new(&name.s);
    let list = force_list(ev, &a[1], pos)?;
    let mut out = Vec::new();
    for t in list.iter() {
        let attrs = force_attrs(ev, t, pos)?;
        if let Some(v) = attrs.get(name) {
            out.push(v.clone());
        }
    }
    Ok(Value::list(out))
}

pub(super) fn prim_get_attr(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let name = force_str(ev, &a[0], pos)?;
    let attrs = force_attrs(ev, &a[1], pos)?;
    match attrs.get_str(&name.s) {
        Some(t) => {
            let t = t.clone();
            ev.force(&t)
        }
        None => eval_error(format!("attribute '{}' missing", name.s), pos),
    }
}

pub(super) fn prim_has_attr(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let name = force_str(ev, &a[0], pos)?;
    let attrs = force_attrs(ev, &a[1], pos)?;
    Ok(Value::Bool(attrs.get_str(&name.s).is_some()))
}

pub(super) fn prim_intersect_attrs(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let x = force_attrs(ev, &a[0], pos)?;
    let y = force_attrs(ev, &a[1], pos)?;
    let entries = y
        .entries()
        .iter()
        .filter(|e| x.get(e.name).is_some())
        .cloned()
        .collect();
    Ok(Value::attrs(Attrs::from_sorted(entries)))
}

pub(super) fn prim_list_to_attrs(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let list = force_list(ev, &a[0], pos)?;
    let mut entries = Vec::with_capacity(list.len());
    let (name_sym, value_sym) = (ev.syms.name, ev.syms.value);
    for t in list.iter() {
        let item = force_attrs(ev, t, pos)?;
        let name = match item.get(name_sym) {
            Some(n) => n.clone(),
            None => return eval_error("attribute 'name' missing", pos),
        };
        let name = force_str(ev, &name, pos)?;
        let value = match item.get_attr(value_sym) {
            Some(v) => v.clone(),
            None => return eval_error("attribute 'value' missing", pos),
        };
        entries.push(Attr {
            name: Sym::new(&name.s),
            value: value.value,
            pos: value.pos,
        });
    }
    Ok(Value::attrs(Attrs::from_unsorted(entries)))
}

pub(super) fn prim_map_attrs(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let f = force_fn(ev, &a[0], pos)?;
    let attrs = force_attrs(ev, &a[1], pos)?;
    let entries = attrs
        .entries()
        .iter()
        .map(|e| Attr {
            name: e.name,
            value: Thunk::apply2(f.clone(), Thunk::Val(Value::str(e.name.as_str())), e.value.clone()),
            pos: e.pos,
        })
        .collect();
    Ok(Value::attrs(Attrs::from_sorted(entries)))
}

pub(super) fn prim_zip_attrs_with(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let f = force_fn(ev, &a[0], pos)?;
    let list = force_list(ev, &a[1], pos)?;
    let mut groups: HashMap<Sym, Vec<Thunk>> = HashMap::new();
    for t in list.iter() {
        let attrs = force_attrs(ev, t, pos)?;
        for e in attrs.entries() {
            groups.entry(e.name).or_default().push(e.value.clone());
        }
    }
    let entries = groups
        .into_iter()
        .map(|(name, values)| Attr {
            name,
            value: Thunk::apply2(
                f.clone(),
                Thunk::Val(Value::str(name.as_str())),
                Thunk::Val(Value::list(values)),
            ),
            pos: Pos::NONE,
        })
        .collect();
    Ok(Value::attrs(Attrs::from_unsorted(entries)))
}

pub(super) fn prim_remove_attrs(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let attrs = force_attrs(ev, &a[0], pos)?;
    let names = force_list(ev, &a[1], pos)?;
    let mut remove = HashSet::new();
    for t in names.iter() {
        remove.insert(Sym::new(&force_str(ev, t, pos)?.s));
    }
    let entries = attrs
        .entries()
        .iter()
        .filter(|e| !remove.contains(&e.name))
        .cloned()
        .collect();
    Ok(Value::attrs(Attrs::from_sorted(entries)))
}

pub(super) fn prim_unsafe_get_attr_pos(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let name = force_str(ev, &a[0], pos)?;
    let attrs = force_attrs(ev, &a[1], pos)?;
    match attrs.get_attr(Sym::new(&name.s)) {
        Some(at) => Ok(ev.pos_attrs(at.pos)),
        None => Ok(Value::Null),
    }
}
