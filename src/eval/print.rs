//! Values as text: what `nix-instantiate --eval` prints, and the short forms used inside error messages.

use std::collections::HashSet;
use std::fmt::Write;
use std::rc::Rc;

use super::compile::LambdaDef;
use super::error::line_column;
use super::value::{Thunk, Value};

/// Prints a value as `nix-instantiate --eval` does. Unevaluated parts print as `<CODE>`; a set or list met
/// a second time prints as `«repeated»`.
pub fn print_value(v: &Value) -> String {
    let mut out = String::new();
    let mut seen = HashSet::new();
    print(&mut out, v, &mut seen);
    out
}

fn print_thunk(out: &mut String, t: &Thunk, seen: &mut HashSet<usize>) {
    match t.value_if_forced() {
        Some(v) => print(out, &v, seen),
        None => out.push_str("<CODE>"),
    }
}

fn print(out: &mut String, v: &Value, seen: &mut HashSet<usize>) {
    stacker::maybe_grow(64 * 1024, 4 * 1024 * 1024, || match v {
        Value::Attrs(a) => {
            if a.is_empty() {
                out.push_str("{ }");
                return;
            }
            if !seen.insert(Rc::as_ptr(a) as usize) {
                out.push_str("«repeated»");
                return;
            }
            out.push_str("{ ");
            for attr in a.sorted() {
                out.push_str(&attr_name(attr.name.as_str()));
                out.push_str(" = ");
                print_thunk(out, &attr.value, seen);
                out.push_str("; ");
            }
            out.push('}');
        }
        Value::List(l) => {
            if l.is_empty() {
                out.push_str("[ ]");
                return;
            }
            if !seen.insert(Rc::as_ptr(l) as usize) {
                out.push_str("«repeated»");
                return;
            }
            out.push_str("[ ");
            for t in l.iter() {
                print_thunk(out, t, seen);
                out.push(' ');
            }
            out.push(']');
        }
        other => scalar(out, other),
    })
}

fn scalar(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.push_str(&format_float(*f)),
        Value::Str(s) => out.push_str(&quote(&s.s)),
        Value::Path(p) => out.push_str(p),
        Value::Lambda(_) => out.push_str("<LAMBDA>"),
        Value::PrimOp(_) => out.push_str("<PRIMOP>"),
        Value::PrimOpApp(_) => out.push_str("<PRIMOP-APP>"),
        Value::Attrs(_) | Value::List(_) => out.push_str("..."),
    }
}

/// An attribute name as Nix prints it: bare when it is an identifier, quoted otherwise.
pub fn attr_name(name: &str) -> String {
    let mut chars = name.chars();
    let ident = match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {
            chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '\'' || c == '-')
        }
        _ => false,
    };
    if ident
        && !matches!(
            name,
            "if" | "then" | "else" | "assert" | "with" | "let" | "in" | "rec" | "inherit"
        )
    {
        name.to_string()
    } else {
        quote(name)
    }
}

/// A Nix string literal for `s`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' if chars.peek() == Some(&'{') => out.push_str("\\$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A float as C++ streams print it by default (`%g`, six significant digits).
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        return if f.is_sign_negative() { "-nan" } else { "nan" }.to_string();
    }
    if f.is_infinite() {
        return if f < 0.0 { "-inf" } else { "inf" }.to_string();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let sci = format!("{f:.5e}");
    let (mantissa, exp) = sci.split_once('e').expect("an exponent");
    let exp: i32 = exp.parse().expect("a numeric exponent");
    if !(-4..6).contains(&exp) {
        let mantissa = trim_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (5 - exp).max(0) as usize;
        trim_zeros(&format!("{f:.decimals$}")).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// A short form of a value for error messages: nested sets and lists cut off, unevaluated parts elided.
pub fn brief(v: &Value) -> String {
    let mut out = String::new();
    brief_into(&mut out, v, 0);
    out
}

fn lambda_pos(def: &LambdaDef) -> String {
    match line_column(def.pos) {
        Some((src, line, col)) => format!("«lambda @ {}:{line}:{col}»", src.name),
        None => "«lambda»".to_string(),
    }
}

fn brief_into(out: &mut String, v: &Value, depth: usize) {
    match v {
        Value::Attrs(a) => {
            if a.is_empty() {
                out.push_str("{ }");
                return;
            }
            if depth >= 3 {
                out.push_str("{ ... }");
                return;
            }
            out.push_str("{ ");
            let sorted = a.sorted();
            for (i, attr) in sorted.iter().enumerate() {
                if i == 10 {
                    let _ = write!(out, "«{} attributes elided» ", sorted.len() - 10);
                    break;
                }
                out.push_str(&attr_name(attr.name.as_str()));
                out.push_str(" = ");
                match attr.value.value_if_forced() {
                    Some(x) => brief_into(out, &x, depth + 1),
                    None => out.push_str("«thunk»"),
                }
                out.push_str("; ");
            }
            out.push('}');
        }
        Value::List(l) => {
            if l.is_empty() {
                out.push_str("[ ]");
                return;
            }
            if depth >= 3 {
                out.push_str("[ ... ]");
                return;
            }
            out.push_str("[ ");
            for (i, t) in l.iter().enumerate() {
                if i == 10 {
                    let _ = write!(out, "«{} items elided» ", l.len() - 10);
                    break;
                }
                match t.value_if_forced() {
                    Some(x) => brief_into(out, &x, depth + 1),
                    None => out.push_str("«thunk»"),
                }
                out.push(' ');
            }
            out.push(']');
        }
        Value::Lambda(c) => out.push_str(&lambda_pos(c.def)),
        Value::PrimOp(p) => {
            let _ = write!(out, "«primop {}»", p.name);
        }
        Value::PrimOpApp(p) => {
            let _ = write!(out, "«partially applied primop {}»", p.op.name);
        }
        other => scalar(out, other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_cpp_streams() {
        for (f, s) in [
            (1.0, "1"),
            (1.5, "1.5"),
            (0.1 + 0.2, "0.3"),
            (123456.0, "123456"),
            (1234567.0, "1.23457e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (1.23456789, "1.23457"),
        ] {
            assert_eq!(format_float(f), s, "{f}");
        }
    }

    #[test]
    fn strings_and_names_are_quoted_like_nix() {
        assert_eq!(quote("a\"b\\c\n${x}$y"), r#""a\"b\\c\n\${x}$y""#);
        assert_eq!(attr_name("foo-bar'"), "foo-bar'");
        assert_eq!(attr_name("foo bar"), "\"foo bar\"");
        assert_eq!(attr_name("1a"), "\"1a\"");
    }
}
