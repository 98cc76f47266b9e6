//! `builtins.toXML` and `--xml` output: Nix's XML rendering of values.

use std::collections::HashSet;
use std::fmt::Write;

use super::compile::Param;
use super::error::{Pos, Result};
use super::eval::Evaluator;
use super::value::{Context, Thunk, Value};

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            '\t' => out.push_str("&#x9;"),
            c => out.push(c),
        }
    }
    out
}

struct Writer<'a> {
    out: &'a mut String,
    ctx: &'a mut Context,
    location: bool,
    drvs_seen: HashSet<String>,
}

impl Writer<'_> {
    fn line(&mut self, depth: usize, text: &str) {
        for _ in 0..depth {
            self.out.push_str("  ");
        }
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn value(&mut self, ev: &mut Evaluator, v: &Value, depth: usize, pos: Pos) -> Result<()> {
        stacker::maybe_grow(64 * 1024, 4 * 1024 * 1024, || self.value_inner(ev, v, depth, pos))
    }

    fn value_inner(&mut self, ev: &mut Evaluator, v: &Value, depth: usize, pos: Pos) -> Result<()> {
        match v {
            Value::Null => self.line(depth, "<null />"),
            Value::Bool(b) => self.line(depth, &format!("<bool value=\"{b}\" />")),
            Value::Int(i) => self.line(depth, &format!("<int value=\"{i}\" />")),
            Value::Float(f) => self.line(
                depth,
                &format!("<float value=\"{}\" />", super::print::format_float(*f)),
            ),
            Value::Str(s) => {
                self.ctx.extend(s.ctx.iter().cloned());
                self.line(depth, &format!("<string value=\"{}\" />", escape(&s.s)));
            }
            Value::Path(p) => self.line(depth, &format!("<path value=\"{}\" />", escape(p))),
            Value::List(items) => {
                if items.is_empty() {
                    self.line(depth, "<list />");
                    return Ok(());
                }
                self.line(depth, "<list>");
                for t in items.iter() {
                    let x = ev.force(t)?;
                    self.value(ev, &x, depth + 1, pos)?;
                }
                self.line(depth, "</list>");
            }
            Value::Attrs(a) => {
                if ev.is_derivation(a)? {
                    let mut head = String::from("<derivation");
                    let mut drv_path = None;
                    for (key, sym) in [("drvPath", ev.syms.drv_path), ("outPath", ev.syms.out_path)] {
                        if let Some(t) = a.get(sym) {
                            let t = t.clone();
                            if let Value::Str(s) = ev.force(&t)? {
                                self.ctx.extend(s.ctx.iter().cloned());
                                let _ = write!(head, " {key}=\"{}\"", escape(&s.s));
                                if key == "drvPath" {
                                    drv_path = Some(s.s.clone());
                                }
                            }
                        }
                    }
                    head.push('>');
                    self.line(depth, &head);
                    let repeated = drv_path.as_ref().is_some_and(|p| !self.drvs_seen.insert(p.clone()));
                    if repeated {
                        self.line(depth + 1, "<repeated />");
                    } else {
                        self.attrs(ev, a, depth + 1, pos)?;
                    }
                    self.line(depth, "</derivation>");
                    return Ok(());
                }
                if a.is_empty() {
                    self.line(depth, "<attrs />");
                    return Ok(());
                }
                self.line(depth, "<attrs>");
                self.attrs(ev, a, depth + 1, pos)?;
                self.line(depth, "</attrs>");
            }
            Value::Lambda(c) => {
                let mut head = String::from("<function");
                if self.location
                    && let Some((src, line, col)) = super::error::line_column(c.def.pos)
                {
                    let _ = write!(head, " column=\"{col}\" line=\"{line}\" path=\"{}\"", escape(&src.name));
                }
                head.push('>');
                self.line(depth, &head);
                match &c.def.param {
                    Param::Ident(name) => {
                        self.line(depth + 1, &format!("<varpat name=\"{}\" />", escape(name.as_str())))
                    }
                    Param::Pattern {
                        formals,
                        ellipsis,
                        bind,
                    } => {
                        let mut head = String::from("<attrspat");
                        if *ellipsis {
                            head.push_str(" ellipsis=\"1\"");
                        }
                        if let Some(b) = bind {
                            let _ = write!(head, " name=\"{}\"", escape(b.as_str()));
                        }
                        head.push('>');
                        self.line(depth + 1, &head);
                        let mut names: Vec<&str> = formals.iter().map(|f| f.name.as_str()).collect();
                        names.sort();
                        for n in names {
                            self.line(depth + 2, &format!("<attr name=\"{}\" />", escape(n)));
                        }
                        self.line(depth + 1, "</attrspat>");
                    }
                }
                self.line(depth, "</function>");
            }
            Value::PrimOp(_) | Value::PrimOpApp(_) => self.line(depth, "<unevaluated />"),
        }
        Ok(())
    }

    fn attrs(&mut self, ev: &mut Evaluator, a: &super::value::Attrs, depth: usize, pos: Pos) -> Result<()> {
        for attr in a.sorted() {
            let mut head = format!("<attr name=\"{}\"", escape(attr.name.as_str()));
            if self.location
                && let Some((src, line, col)) = super::error::line_column(attr.pos)
            {
                let _ = write!(head, " column=\"{col}\" line=\"{line}\" path=\"{}\"", escape(&src.name));
            }
            head.push('>');
            self.line(depth, &head);
            let x = ev.force(&attr.value)?;
            self.value(ev, &x, depth + 1, pos)?;
            self.line(depth, "</attr>");
        }
        Ok(())
    }
}

/// The XML document for a value; `location` adds source positions (off with `--no-location`).
pub fn to_xml(ev: &mut Evaluator, v: &Value, location: bool, ctx: &mut Context, pos: Pos) -> Result<String> {
    let mut out = String::from("<?xml version='1.0' encoding='utf-8'?>\n<expr>\n");
    let mut w = Writer {
        out: &mut out,
        ctx,
        location,
        drvs_seen: HashSet::new(),
    };
    w.value(ev, v, 1, pos)?;
    out.push_str("</expr>\n");
    Ok(out)
}

pub fn prim_to_xml(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let v = ev.force(&a[0])?;
    let mut ctx = Context::new();
    let xml = to_xml(ev, &v, false, &mut ctx, pos)?;
    Ok(Value::str_ctx(xml, ctx))
}
