//! `toJSON`, `fromJSON` and `fromTOML`.

use std::fmt::Write;

use super::error::{ErrorKind, EvalError, Pos, Result, eval_error};
use super::eval::{Coerce, Evaluator};
use super::value::{Attr, Attrs, Context, Sym, Thunk, Value};

/// A JSON string literal, escaped as Nix (nlohmann::json) escapes it: control characters as `\n`-style or
/// `\u00XX` escapes, everything else (non-ASCII included) as is.
pub fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A float as nlohmann::json writes it: the shortest form that reads back, with `.0` on whole numbers.
pub fn json_float(f: f64) -> String {
    if !f.is_finite() {
        return "null".to_string();
    }
    let s = format!("{f:?}");
    match s.split_once('e') {
        Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
        _ => s,
    }
}

/// Appends the JSON of `v` to `out`, collecting string contexts; nesting counts towards the call depth limit.
pub fn to_json(ev: &mut Evaluator, v: &Value, pos: Pos, out: &mut String, ctx: &mut Context) -> Result<()> {
    if ev.depth >= ev.settings.max_call_depth {
        return eval_error("stack overflow; max-call-depth exceeded", pos);
    }
    ev.depth += 1;
    let r = to_json_inner(ev, v, pos, out, ctx);
    ev.depth -= 1;
    r
}

fn to_json_inner(ev: &mut Evaluator, v: &Value, pos: Pos, out: &mut String, ctx: &mut Context) -> Result<()> {
    stacker::maybe_grow(64 * 1024, 4 * 1024 * 1024, || match v {
        Value::Null => {
            out.push_str("null");
            Ok(())
        }
        Value::Bool(b) => {
            out.push_str(if *b { "true" } else { "false" });
            Ok(())
        }
        Value::Int(i) => {
            let _ = write!(out, "{i}");
            Ok(())
        }
        Value::Float(f) => {
            out.push_str(&json_float(*f));
            Ok(())
        }
        Value::Str(s) => {
            ctx.extend(s.ctx.iter().cloned());
            json_string(out, &s.s);
            Ok(())
        }
        // A path is copied to the store and written as its store path.
        Value::Path(_) => coerced_string(ev, v, pos, out, ctx),
        Value::List(items) => {
            out.push('[');
            for (i, t) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let x = ev.force(t)?;
                to_json(ev, &x, pos, out, ctx)?;
            }
            out.push(']');
            Ok(())
        }
        Value::Attrs(a) => {
            if a.get(ev.syms.to_string).is_some() {
                return coerced_string(ev, v, pos, out, ctx);
            }
            if let Some(p) = a.get(ev.syms.out_path) {
                let p = p.clone();
                let x = ev.force(&p)?;
                return to_json(ev, &x, pos, out, ctx);
            }
            out.push('{');
            for (i, attr) in a.sorted().into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(out, attr.name.as_str());
                out.push(':');
                let x = ev
                    .force(&attr.value)
                    .map_err(|e| ev.frame(e, attr.pos, format!("while evaluating attribute '{}'", attr.name)))?;
                to_json(ev, &x, pos, out, ctx)?;
            }
            out.push('}');
            Ok(())
        }
        other => eval_error(format!("cannot convert {} to JSON", other.describe()), pos),
    })
}

/// `v` as a string (interpolation's coercion: paths copied to the store, `__toString` called), as JSON.
fn coerced_string(ev: &mut Evaluator, v: &Value, pos: Pos, out: &mut String, ctx: &mut Context) -> Result<()> {
    let s = ev.coerce_to_string(
        v,
        pos,
        Coerce {
            more: false,
            copy: true,
        },
    )?;
    ctx.extend(s.ctx);
    json_string(out, &s.s);
    Ok(())
}

pub fn prim_to_json(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let v = ev.force(&a[0])?;
    let mut out = String::new();
    let mut ctx = Context::new();
    to_json(ev, &v, pos, &mut out, &mut ctx)?;
    Ok(Value::str_ctx(out, ctx))
}

/// Nix strings cannot hold NUL bytes.
pub fn no_nul(s: &str) -> std::result::Result<(), String> {
    if s.contains('\0') {
        return Err(format!(
            "input string '{}' cannot be represented as Nix string because it contains null bytes",
            s.replace('\0', "\u{2400}")
        ));
    }
    Ok(())
}

fn from_serde(v: serde_json::Value) -> std::result::Result<Value, String> {
    Ok(match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(u)) => return Err(format!("unsigned json number {u} outside of Nix integer range")),
            _ => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => {
            no_nul(&s)?;
            Value::str(s)
        }
        serde_json::Value::Array(items) => Value::list(
            items
                .into_iter()
                .map(|x| from_serde(x).map(Thunk::Val))
                .collect::<std::result::Result<_, _>>()?,
        ),
        serde_json::Value::Object(map) => {
            let mut entries = Vec::with_capacity(map.len());
            for (k, x) in map {
                no_nul(&k)?;
                entries.push(Attr {
                    name: Sym::new(&k),
                    value: Thunk::Val(from_serde(x)?),
                    pos: Pos::NONE,
                });
            }
            Value::attrs(Attrs::from_unsorted(entries))
        }
    })
}

pub fn prim_from_json(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let s = ev.force(&a[0])?;
    let s = ev.expect_string(&s, pos)?;
    match serde_json::from_str::<serde_json::Value>(&s.s) {
        Ok(v) => from_serde(v).map_err(|m| EvalError::new(ErrorKind::Eval, m, pos)),
        Err(e) => Err(EvalError::new(ErrorKind::Eval, format!("while parsing JSON: {e}"), pos)),
    }
}

fn toml_error(m: String, pos: Pos) -> Box<EvalError> {
    EvalError::new(ErrorKind::Eval, format!("while parsing TOML: error: {m}"), pos)
}

/// A TOML date-time as Nix shows it: `T` between date and time, fractions of seconds in whole milli-, micro-
/// or nanoseconds.
fn timestamp_text(s: &str) -> String {
    let s = s.replacen(' ', "T", 1).replacen('t', "T", 1);
    let Some(dot) = s.find('.') else { return s };
    let digits_end = s[dot + 1..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(s.len(), |i| dot + 1 + i);
    let mut frac = s[dot + 1..digits_end].to_string();
    frac.truncate(9);
    while !frac.len().is_multiple_of(3) {
        frac.push('0');
    }
    format!("{}.{frac}{}", &s[..dot], &s[digits_end..])
}

fn from_toml(v: toml::Value, timestamps: bool, pos: Pos) -> Result<Value> {
    Ok(match v {
        toml::Value::String(s) => {
            no_nul(&s).map_err(|m| toml_error(m, pos))?;
            Value::str(s)
        }
        toml::Value::Integer(i) => Value::Int(i),
        toml::Value::Float(f) => Value::Float(f),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => {
            if !timestamps {
                return eval_error(
                    "while parsing TOML: Dates and times are not supported (enable the experimental feature 'parse-toml-timestamps')",
                    pos,
                );
            }
            super::builtins::make_attrs(vec![
                ("_type", Value::str("timestamp")),
                ("value", Value::str(timestamp_text(&d.to_string()))),
            ])
        }
        toml::Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for x in items {
                out.push(Thunk::Val(from_toml(x, timestamps, pos)?));
            }
            Value::list(out)
        }
        toml::Value::Table(t) => {
            let mut out = Vec::with_capacity(t.len());
            for (k, x) in t {
                no_nul(&k).map_err(|m| toml_error(m, pos))?;
                out.push(Attr {
                    name: Sym::new(&k),
                    value: Thunk::Val(from_toml(x, timestamps, pos)?),
                    pos: Pos::NONE,
                });
            }
            Value::attrs(Attrs::from_unsorted(out))
        }
    })
}

pub fn prim_from_toml(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let s = ev.force(&a[0])?;
    let s = ev.expect_string(&s, pos)?;
    match s.s.parse::<toml::Table>() {
        Ok(t) => from_toml(toml::Value::Table(t), ev.settings.toml_timestamps, pos),
        Err(e) => eval_error(format!("while parsing TOML: {}", e.message()), pos),
    }
}
