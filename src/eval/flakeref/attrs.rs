//! The attributes of a fetcher input (strings, unsigned integers, Booleans) and the fetcher layer's
//! errors.

use std::collections::BTreeMap;

/// One attribute of a fetcher input: Nix allows strings, unsigned integers and Booleans.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum AttrVal {
    Str(String),
    Int(u64),
    Bool(bool),
}

/// The attributes of an input, sorted by name as Nix's `std::map` is.
pub(super) type FAttrs = BTreeMap<String, AttrVal>;

/// Errors of the fetcher layer. Nix distinguishes a URL that does not parse (`BadURL`, which makes
/// the parser try the next form of flake reference) from every other failure.
#[derive(Debug)]
pub(super) enum FErr {
    BadUrl(String),
    Other(String),
}

impl FErr {
    pub(super) fn message(self) -> String {
        match self {
            FErr::BadUrl(m) | FErr::Other(m) => m,
        }
    }
}

pub(super) type FResult<T> = std::result::Result<T, FErr>;

pub(super) fn bad_url<T>(message: impl Into<String>) -> FResult<T> {
    Err(FErr::BadUrl(message.into()))
}

pub(super) fn failure<T>(message: impl Into<String>) -> FResult<T> {
    Err(FErr::Other(message.into()))
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The attributes as compact JSON, for error messages.
pub(super) fn attrs_to_json(attrs: &FAttrs) -> String {
    let items: Vec<String> = attrs
        .iter()
        .map(|(k, v)| {
            let v = match v {
                AttrVal::Str(s) => json_string(s),
                AttrVal::Int(n) => n.to_string(),
                AttrVal::Bool(b) => b.to_string(),
            };
            format!("{}:{v}", json_string(k))
        })
        .collect();
    format!("{{{}}}", items.join(","))
}

pub(super) fn maybe_str(attrs: &FAttrs, name: &str) -> FResult<Option<String>> {
    match attrs.get(name) {
        None => Ok(None),
        Some(AttrVal::Str(s)) => Ok(Some(s.clone())),
        Some(_) => failure(format!(
            "input attribute '{name}' is not a string {}",
            attrs_to_json(attrs)
        )),
    }
}

pub(super) fn get_str(attrs: &FAttrs, name: &str) -> FResult<String> {
    maybe_str(attrs, name)?.ok_or_else(|| FErr::Other(format!("input attribute '{name}' is missing")))
}

pub(super) fn maybe_int(attrs: &FAttrs, name: &str) -> FResult<Option<u64>> {
    match attrs.get(name) {
        None => Ok(None),
        Some(AttrVal::Int(n)) => Ok(Some(*n)),
        Some(_) => failure(format!("input attribute '{name}' is not an integer")),
    }
}

pub(super) fn maybe_bool(attrs: &FAttrs, name: &str) -> FResult<Option<bool>> {
    match attrs.get(name) {
        None => Ok(None),
        Some(AttrVal::Bool(b)) => Ok(Some(*b)),
        Some(_) => failure(format!("input attribute '{name}' is not a Boolean")),
    }
}

/// Attributes as URL query parameters: integers in decimal, Booleans as `1`/`0`.
pub(super) fn attrs_to_query(attrs: &FAttrs) -> BTreeMap<String, String> {
    attrs
        .iter()
        .map(|(k, v)| {
            let v = match v {
                AttrVal::Str(s) => s.clone(),
                AttrVal::Int(n) => n.to_string(),
                AttrVal::Bool(b) => if *b { "1" } else { "0" }.to_string(),
            };
            (k.clone(), v)
        })
        .collect()
}
