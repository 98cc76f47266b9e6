//! Lists: `map`, `filter`, `foldl'`, `sort` (a stable merge sort), `genericClosure`, `groupBy`, ...

use std::collections::{BTreeMap, HashSet};

use crate::eval::error::{ErrorKind, EvalError, Pos, Result, eval_error};
use crate::eval::eval::Evaluator;
use crate::eval::value::{Attrs, Sym, Thunk, Value};

use super::{attr, call_bool, force_attrs, force_fn, force_int, force_list, make_attrs};

pub(super) fn any_all(ev: &mut Evaluator, a: &[Thunk], pos: Pos, any: bool) -> Result<Value> {
    let f = force_fn(ev, &a[0], pos)?;
    let list = force_list(ev, &a[1], pos)?;
    for t in list.iter() {
        if call_bool(ev, &f, t, pos)? == any {
            return Ok(Value::Bool(any));
        }
    }
    Ok(Value::Bool(!any))
}

pub(super) fn prim_concat_lists(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let lists = force_list(ev, &a[0], pos)?;
    let mut out = Vec::new();
    for t in lists.iter() {
        out.extend(force_list(ev, t, pos)?.iter().cloned());
    }
    Ok(Value::list(out))
}

pub(super) fn prim_concat_map(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let f = force_fn(ev, &a[0], pos)?;
    let list = force_list(ev, &a[1], pos)?;
    let mut out = Vec::new();
    for t in list.iter() {
        let r = ev.call(f.clone(), t.clone(), pos)?;
        out.extend(ev.expect_list(&r, pos)?.iter().cloned());
    }
    Ok(Value::list(out))
}

pub(super) fn prim_elem(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let x = ev.force(&a[0])?;
    let list = force_list(ev, &a[1], pos)?;
    for t in list.iter() {
        let y = ev.force(t)?;
        if ev.equal(&x, &y, pos)? {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

pub(super) fn prim_elem_at(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let list = force_list(ev, &a[0], pos)?;
    let i = force_int(ev, &a[1], pos)?;
    match usize::try_from(i).ok().and_then(|i| list.get(i)) {
        Some(t) => {
            let t = t.clone();
            ev.force(&t)
        }
        None => eval_error(format!("list index {i} is out of bounds"), pos),
    }
}

pub(super) fn prim_head(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let list = force_list(ev, &a[0], pos)?;
    match list.first() {
        Some(t) => {
            let t = t.clone();
            ev.force(&t)
        }
        None => eval_error("'builtins.head' called on an empty list", pos),
    }
}

pub(super) fn prim_tail(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let list = force_list(ev, &a[0], pos)?;
    if list.is_empty() {
        return eval_error("'builtins.tail' called on an empty list", pos);
    }
    Ok(Value::list(list[1..].to_vec()))
}

pub(super) fn prim_length(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    Ok(Value::Int(force_list(ev, &a[0], pos)?.len() as i64))
}

pub(super) fn prim_filter(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let f = force_fn(ev, &a[0], pos)?;
    let list = force_list(ev, &a[1], pos)?;
    let mut out = Vec::new();
    for t in list.iter() {
        if call_bool(ev, &f, t, pos)? {
            out.push(t.clone());
        }
    }
    if out.len() == list.len() {
        return Ok(Value::List(list));
    }
    Ok(Value::list(out))
}

pub(super) fn prim_map(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let f = force_fn(ev, &a[0], pos)?;
    let list = force_list(ev, &a[1], pos)?;
    Ok(Value::list(
        list.iter().map(|t| Thunk::apply(f.clone(), t.clone())).collect(),
    ))
}

pub(super) fn prim_gen_list(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let f = force_fn(ev, &a[0], pos)?;
    let n = force_int(ev, &a[1], pos)?;
    if n < 0 {
        return eval_error(format!("cannot create list of size {n}"), pos);
    }
    Ok(Value::list(
        (0..n)
            .map(|i| Thunk::apply(f.clone(), Thunk::Val(Value::Int(i))))
            .collect(),
    ))
}

pub(super) fn prim_foldl(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let f = force_fn(ev, &a[0], pos)?;
    let list = force_list(ev, &a[2], pos)?;
    // The initial accumulator is forced only if nothing replaces it.
    let mut acc = a[1].clone();
    for t in list.iter() {
        let partial = ev.call(f.clone(), acc, pos)?;
        acc = Thunk::Val(ev.call(partial, t.clone(), pos)?);
    }
    ev.force(&acc)
}

/// A key of genericClosure, hashable when it is a plain scalar.
#[derive(Hash, PartialEq, Eq)]
enum ClosureKey {
    Int(i64),
    Float(u64),
    Str(String),
    Path(String),
    Bool(bool),
    Null,
}

pub(super) fn prim_generic_closure(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let args = force_attrs(ev, &a[0], pos)?;
    let start = args
        .get_str("startSet")
        .cloned()
        .ok_or_else(|| EvalError::new(ErrorKind::Eval, "attribute 'startSet' missing", pos))?;
    let op = args
        .get_str("operator")
        .cloned()
        .ok_or_else(|| EvalError::new(ErrorKind::Eval, "attribute 'operator' missing", pos))?;
    let op = force_fn(ev, &op, pos)?;
    let mut work: std::collections::VecDeque<Thunk> = force_list(ev, &start, pos)?.iter().cloned().collect();
    let mut seen_hash: HashSet<ClosureKey> = HashSet::new();
    let mut seen_other: Vec<Value> = Vec::new();
    let mut out = Vec::new();
    let key_sym = Sym::new("key");
    while let Some(t) = work.pop_front() {
        let item = force_attrs(ev, &t, pos)?;
        let key = match item.get(key_sym) {
            Some(k) => k.clone(),
            None => return eval_error("attribute 'key' required", pos),
        };
        let key = ev.force(&key)?;
        let hashed = match &key {
            Value::Int(i) => Some(ClosureKey::Int(*i)),
            Value::Float(f) => Some(ClosureKey::Float(f.to_bits())),
            Value::Str(s) => Some(ClosureKey::Str(s.s.clone())),
            Value::Path(p) => Some(ClosureKey::Path(p.to_string())),
            Value::Bool(b) => Some(ClosureKey::Bool(*b)),
            Value::Null => Some(ClosureKey::Null),
            _ => None,
        };
        let fresh = match hashed {
            Some(k) => seen_hash.insert(k),
            None => {
                let mut found = false;
                for other in &seen_other {
                    if ev.less_than(&key, other, pos).is_err() {
                        return eval_error("cannot compare keys in genericClosure", pos);
                    }
                    if ev.equal(&key, other, pos)? {
                        found = true;
                        break;
                    }
                }
                if !found {
                    seen_other.push(key.clone());
                }
                !found
            }
        };
        if !fresh {
            continue;
        }
        let next = ev.call(op.clone(), t.clone(), pos)?;
        work.extend(ev.expect_list(&next, pos)?.iter().cloned());
        out.push(t);
    }
    Ok(Value::list(out))
}

pub(super) fn prim_group_by(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let f = force_fn(ev, &a[0], pos)?;
    let list = force_list(ev, &a[1], pos)?;
    let mut groups: BTreeMap<String, Vec<Thunk>> = BTreeMap::new();
    for t in list.iter() {
        let k = ev.call(f.clone(), t.clone(), pos)?;
        let k = ev.force_string_noctx(&k, pos)?;
        groups.entry(k).or_default().push(t.clone());
    }
    Ok(Value::attrs(Attrs::from_unsorted(
        groups.into_iter().map(|(k, v)| attr(&k, Value::list(v))).collect(),
    )))
}

pub(super) fn prim_partition(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let f = force_fn(ev, &a[0], pos)?;
    let list = force_list(ev, &a[1], pos)?;
    let (mut right, mut wrong) = (Vec::new(), Vec::new());
    for t in list.iter() {
        if call_bool(ev, &f, t, pos)? {
            right.push(t.clone());
        } else {
            wrong.push(t.clone());
        }
    }
    Ok(make_attrs(vec![
        ("right", Value::list(right)),
        ("wrong", Value::list(wrong)),
    ]))
}

pub(super) fn prim_sort(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let f = force_fn(ev, &a[0], pos)?;
    let list = force_list(ev, &a[1], pos)?;
    let mut items: Vec<Thunk> = list.iter().cloned().collect();
    // A stable merge sort that stops at the comparator's first error (std's sort may panic on an inconsistent
    // order, and cannot fail).
    let mut less = |ev: &mut Evaluator, x: &Thunk, y: &Thunk| -> Result<bool> {
        let partial = ev.call(f.clone(), x.clone(), pos)?;
        let r = ev.call(partial, y.clone(), pos)?;
        ev.expect_bool(&r, pos, "")
    };
    merge_sort(ev, &mut items, &mut less)?;
    Ok(Value::list(items))
}

type Less<'a> = dyn FnMut(&mut Evaluator, &Thunk, &Thunk) -> Result<bool> + 'a;

fn merge_sort(ev: &mut Evaluator, items: &mut Vec<Thunk>, less: &mut Less) -> Result<()> {
    if items.len() <= 1 {
        return Ok(());
    }
    // Insertion sort for short runs, then bottom-up merges.
    const RUN: usize = 16;
    let n = items.len();
    for start in (0..n).step_by(RUN) {
        let end = (start + RUN).min(n);
        for i in start + 1..end {
            let mut j = i;
            while j > start && less(ev, &items[j], &items[j - 1])? {
                items.swap(j, j - 1);
                j -= 1;
            }
        }
    }
    let mut width = RUN;
    let mut buf: Vec<Thunk> = Vec::with_capacity(n);
    while width < n {
        buf.clear();
        for start in (0..n).step_by(2 * width) {
            let mid = (start + width).min(n);
            let end = (start + 2 * width).min(n);
            let (mut i, mut j) = (start, mid);
            while i < mid && j < end {
                if less(ev, &items[j], &items[i])? {
                    buf.push(items[j].clone());
                    j += 1;
                } else {
                    buf.push(items[i].clone());
                    i += 1;
                }
            }
            buf.extend_from_slice(&items[i..mid]);
            buf.extend_from_slice(&items[j..end]);
        }
        std::mem::swap(items, &mut buf);
        width *= 2;
    }
    Ok(())
}
