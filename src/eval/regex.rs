//! `builtins.match` and `builtins.split`: POSIX extended regular expressions, run by the `regex` crate after
//! translating the few places where the two syntaxes differ (backslashes and brackets inside bracket
//! expressions, which POSIX takes literally). `.` matches newlines, as in POSIX without REG_NEWLINE.
//! Compiled expressions are cached per evaluation thread.

use std::cell::RefCell;
use std::collections::HashMap;

use regex::Regex;

use super::error::{Pos, Result, eval_error};
use super::eval::Evaluator;
use super::value::{Thunk, Value};

thread_local! {
    static CACHE: RefCell<HashMap<String, Regex>> = RefCell::new(HashMap::new());
}

/// The `regex` crate's spelling of a POSIX extended regular expression.
pub fn translate(posix: &str) -> String {
    let chars: Vec<char> = posix.chars().collect();
    let mut out = String::with_capacity(posix.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() {
            out.push(c);
            out.push(chars[i + 1]);
            i += 2;
            continue;
        }
        if c != '[' {
            if c == '{' && !is_interval(&chars[i..]) {
                out.push_str("\\{");
            } else if c == '}' && !closes_interval(&chars[..i]) {
                out.push_str("\\}");
            } else {
                out.push(c);
            }
            i += 1;
            continue;
        }
        // A bracket expression: copied with its specials made literal for the regex crate.
        out.push('[');
        i += 1;
        if i < chars.len() && chars[i] == '^' {
            out.push('^');
            i += 1;
        }
        // A `]` first is a literal member.
        if i < chars.len() && chars[i] == ']' {
            out.push_str("\\]");
            i += 1;
        }
        while i < chars.len() && chars[i] != ']' {
            let c = chars[i];
            if c == '[' && i + 1 < chars.len() && matches!(chars[i + 1], ':' | '.' | '=') {
                let kind = chars[i + 1];
                // [:class:] passes through; [.x.] and [=x=] become the character itself.
                let close: String = [kind, ']'].iter().collect();
                let rest: String = chars[i + 2..].iter().collect();
                if let Some(end) = rest.find(&close) {
                    let inner = &rest[..end];
                    if kind == ':' {
                        out.push_str(&format!("[:{inner}:]"));
                    } else {
                        for ch in inner.chars() {
                            push_class_char(&mut out, ch);
                        }
                    }
                    i += 2 + inner.chars().count() + 2;
                    continue;
                }
            }
            push_class_char(&mut out, c);
            i += 1;
        }
        out.push(']');
        i += 1;
    }
    out
}

fn push_class_char(out: &mut String, c: char) {
    match c {
        '\\' | '[' | '&' | '~' => {
            out.push('\\');
            out.push(c);
        }
        c => out.push(c),
    }
}

fn is_interval(rest: &[char]) -> bool {
    let s: String = rest.iter().take(32).collect();
    let Some(end) = s.find('}') else { return false };
    let inner = &s[1..end];
    !inner.is_empty()
        && inner.chars().all(|c| c.is_ascii_digit() || c == ',')
        && inner.chars().next().is_some_and(|c| c.is_ascii_digit())
        && inner.matches(',').count() <= 1
}

fn closes_interval(before: &[char]) -> bool {
    match before.iter().rposition(|&c| c == '{') {
        Some(start) => is_interval(&before[start..].iter().copied().chain(['}']).collect::<Vec<_>>()),
        None => false,
    }
}

fn compile(ev: &Evaluator, posix: &str, pos: Pos) -> Result<Regex> {
    let _ = ev;
    if let Some(r) = CACHE.with(|c| c.borrow().get(posix).cloned()) {
        return Ok(r);
    }
    let pattern = format!("(?s){}", translate(posix));
    match Regex::new(&pattern) {
        Ok(r) => {
            CACHE.with(|c| c.borrow_mut().insert(posix.to_string(), r.clone()));
            Ok(r)
        }
        Err(e) => eval_error(format!("invalid regular expression '{posix}': {e}"), pos),
    }
}

fn groups(caps: &regex::Captures) -> Value {
    Value::list(
        (1..caps.len())
            .map(|i| {
                Thunk::Val(match caps.get(i) {
                    Some(m) => Value::str(m.as_str()),
                    None => Value::Null,
                })
            })
            .collect(),
    )
}

pub fn prim_match(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let re = ev.force(&a[0])?;
    let re = ev.force_string_noctx(&re, pos)?;
    let s = ev.force(&a[1])?;
    let s = ev.expect_string(&s, pos)?;
    let whole = compile(ev, &format!("^(?:{re})$"), pos)?;
    // The regex crate prefers the first alternative; POSIX wants the longest match. Anchoring both ends
    // makes the two agree on whether a string matches.
    match whole.captures(&s.s) {
        Some(caps) => {
            let Value::List(all) = groups(&caps) else {
                unreachable!()
            };
            // The outer non-capturing group adds none; captures are the user's.
            Ok(Value::List(all))
        }
        None => Ok(Value::Null),
    }
}

pub fn prim_split(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let re = ev.force(&a[0])?;
    let re = ev.force_string_noctx(&re, pos)?;
    let s = ev.force(&a[1])?;
    let s = ev.expect_string(&s, pos)?;
    let regex = compile(ev, &re, pos)?;
    let mut out = Vec::new();
    let mut last = 0;
    // As C++'s regex iterator walks: after a match the next search starts at its end, where an empty match
    // is allowed; only after an empty match does the search move on by a character.
    let text = s.s.as_str();
    let mut at = 0;
    while at <= text.len() {
        let Some(caps) = regex.captures_at(text, at) else { break };
        let m = caps.get(0).expect("group 0");
        out.push(Thunk::Val(Value::str(&text[last..m.start()])));
        out.push(Thunk::Val(groups(&caps)));
        last = m.end();
        at = if m.is_empty() {
            match text[m.end()..].chars().next() {
                Some(c) => m.end() + c.len_utf8(),
                None => break,
            }
        } else {
            m.end()
        };
    }
    out.push(Thunk::Val(Value::str(&text[last..])));
    Ok(Value::list(out))
}

#[cfg(test)]
mod tests {
    use super::translate;

    #[test]
    fn bracket_expressions_are_literal_inside() {
        for (posix, rust) in [
            (r"[\]", r"[\\]"),
            (r"[]a]", r"[\]a]"),
            (r"[^]a]", r"[^\]a]"),
            (r"[[:alpha:]_]", r"[[:alpha:]_]"),
            (r"a{2,3}", r"a{2,3}"),
            (r"a{", r"a\{"),
            (r"[a&&b]", r"[a\&\&b]"),
            (r"\.[0-9]+", r"\.[0-9]+"),
        ] {
            assert_eq!(translate(posix), rust, "{posix}");
        }
    }
}
