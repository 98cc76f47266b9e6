//! Flake references: `builtins.parseFlakeRef` and `builtins.flakeRefToString`.
//!
//! A flake reference is a URL (`github:NixOS/nixpkgs/23.05?dir=lib`), a flake ID with an optional
//! branch and revision (`nixpkgs/nixos-23.05`), or an absolute path. Parsing turns it into the
//! attributes of a fetcher input (`type`, `owner`, `repo`, `url`, ...) plus the flake's `dir`;
//! printing goes the other way. Both follow Nix's fetchers: the input schemes are tried in the
//! order of their names, each takes the URLs it knows, and a URL that no scheme parses cleanly falls
//! back to being a path. Nothing is fetched, so this needs neither the network nor the store.

mod attrs;
mod flake_ref;
mod git_names;
mod hash;
mod schemes;
mod url;

use attrs::{AttrVal, FAttrs};
use flake_ref::{flake_ref_to_string, parse_flake_ref};

use super::error::{Pos, Result, eval_error};
use super::eval::Evaluator;
use super::value::{Thunk, Value};

/// A context element as a store path, for messages.
fn context_path(element: &str) -> &str {
    if let Some(rest) = element.strip_prefix('=') {
        return rest;
    }
    if let Some(rest) = element.strip_prefix('!')
        && let Some((_, path)) = rest.split_once('!')
    {
        return path;
    }
    element
}

/// `builtins.parseFlakeRef "github:NixOS/nixpkgs/23.05?dir=lib"`: the reference's attributes.
pub fn prim_parse_flake_ref(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let v = ev.force(&a[0])?;
    let s = ev.expect_string(&v, pos)?;
    if let Some(element) = s.ctx.iter().next() {
        return eval_error(
            format!(
                "the string '{}' is not allowed to refer to a store path (such as '{}')",
                s.s,
                context_path(element)
            ),
            pos,
        );
    }
    let attrs = match parse_flake_ref(&s.s) {
        Ok(attrs) => attrs,
        Err(e) => return eval_error(e.message(), pos),
    };
    let entries = attrs
        .iter()
        .map(|(k, v)| {
            let v = match v {
                AttrVal::Str(s) => Value::str(s.as_str()),
                AttrVal::Int(n) => Value::Int(*n as i64),
                AttrVal::Bool(b) => Value::Bool(*b),
            };
            (k.as_str(), v)
        })
        .collect();
    Ok(super::builtins::make_attrs(entries))
}

/// `builtins.flakeRefToString { type = "github"; owner = "NixOS"; repo = "nixpkgs"; }`: the URL form.
pub fn prim_flake_ref_to_string(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let v = ev.force(&a[0])?;
    let set = ev.expect_attrs(&v, pos)?;
    let mut attrs = FAttrs::new();
    for entry in set.entries() {
        let name = entry.name.as_str();
        let value = match ev.force(&entry.value)? {
            Value::Int(n) if n < 0 => {
                return eval_error(format!("negative value given for flake ref attr {name}: {n}"), pos);
            }
            Value::Int(n) => AttrVal::Int(n as u64),
            Value::Bool(b) => AttrVal::Bool(b),
            Value::Str(s) => AttrVal::Str(s.s.clone()),
            other => {
                return eval_error(
                    format!(
                        "flake reference attribute sets may only contain integers, Booleans, and strings, \
                         but attribute '{name}' is {}",
                        other.describe()
                    ),
                    pos,
                );
            }
        };
        attrs.entry(name.to_string()).or_insert(value);
    }
    match flake_ref_to_string(&attrs) {
        Ok(s) => Ok(Value::str(s)),
        Err(e) => eval_error(e.message(), pos),
    }
}
