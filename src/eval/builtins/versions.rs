//! Versions as Nix compares them: `compareVersions`, `splitVersion`, `parseDrvName`.

use crate::eval::error::{Pos, Result};
use crate::eval::eval::Evaluator;
use crate::eval::value::{Thunk, Value};

use super::{force_str, make_attrs};

/// The next component of a version string and the rest (Nix's nextComponent).
fn next_component(s: &str) -> (&str, &str) {
    let s = s.trim_start_matches(['.', '-']);
    if s.is_empty() {
        return ("", "");
    }
    let digits = s.as_bytes()[0].is_ascii_digit();
    let end = s
        .find(|c: char| c == '.' || c == '-' || c.is_ascii_digit() != digits)
        .unwrap_or(s.len());
    (&s[..end], &s[end..])
}

fn component_lt(a: &str, b: &str) -> bool {
    let na = a.parse::<u64>().ok().filter(|_| a.bytes().all(|c| c.is_ascii_digit()));
    let nb = b.parse::<u64>().ok().filter(|_| b.bytes().all(|c| c.is_ascii_digit()));
    match (na, nb) {
        (Some(x), Some(y)) => x < y,
        _ if a.is_empty() && nb.is_some() => true,
        _ if a == "pre" && b != "pre" => true,
        _ if b == "pre" => false,
        (_, Some(_)) => true,
        (Some(_), _) => false,
        _ => a < b,
    }
}

pub fn compare_versions(a: &str, b: &str) -> i64 {
    let (mut x, mut y) = (a, b);
    loop {
        let (ca, ra) = next_component(x);
        let (cb, rb) = next_component(y);
        if ca.is_empty() && cb.is_empty() && ra.is_empty() && rb.is_empty() {
            return 0;
        }
        if component_lt(ca, cb) {
            return -1;
        }
        if component_lt(cb, ca) {
            return 1;
        }
        x = ra;
        y = rb;
    }
}

pub(super) fn prim_compare_versions(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let x = force_str(ev, &a[0], pos)?;
    let y = force_str(ev, &a[1], pos)?;
    Ok(Value::Int(compare_versions(&x.s, &y.s)))
}

pub(super) fn prim_split_version(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let s = force_str(ev, &a[0], pos)?;
    let mut rest = s.s.as_str();
    let mut out = Vec::new();
    loop {
        let (c, r) = next_component(rest);
        if c.is_empty() {
            break;
        }
        out.push(Thunk::Val(Value::str(c)));
        rest = r;
    }
    Ok(Value::list(out))
}

pub(super) fn prim_parse_drv_name(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let s = force_str(ev, &a[0], pos)?;
    let bytes = s.s.as_bytes();
    let split =
        (0..bytes.len()).find(|&i| bytes[i] == b'-' && bytes.get(i + 1).is_some_and(|c| !c.is_ascii_alphabetic()));
    let (name, version) = match split {
        Some(i) => (&s.s[..i], &s.s[i + 1..]),
        None => (s.s.as_str(), ""),
    };
    Ok(make_attrs(vec![
        ("name", Value::str(name)),
        ("version", Value::str(version)),
    ]))
}
