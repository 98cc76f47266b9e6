//! From rnix's syntax tree to the expression tree the evaluator walks.
//!
//! Every variable is resolved here: a lexical variable becomes (depth, slot) in the environment chain, a name
//! only a `with` can supply becomes a search of the enclosing `with` frames (innermost first), and a global
//! (`true`, `map`, `builtins`) becomes its constant. Nested attribute paths (`a.b = 1; a.c = 2;`) are merged
//! into nested sets, string and path literals are unescaped and relative paths made absolute. The tree is
//! leaked: compiled files stay alive for the whole evaluation, so thunks hold plain `&'static` references.

use std::collections::HashMap;
use std::path::Path;

use rnix::ast::{self, AstToken, HasEntry, InterpolPart};
use rowan::ast::AstNode;

use super::error::{ErrorKind, EvalError, Pos, Result};
use super::value::{Sym, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
    Impl,
    Concat,
    Update,
    PipeRight,
    PipeLeft,
}

pub enum StrPart {
    Lit(String),
    Expr(Expr),
}

pub enum AttrKey {
    Static(Sym),
    Dynamic(Expr),
}

pub enum AttrValue {
    /// An expression in the set's scope (the new environment of a `rec` set or `let`, else the current one).
    Expr(Expr),
    /// `inherit x`: an expression in the enclosing scope, even inside `rec` or `let`.
    Outer(Expr),
    /// `inherit (src) x`: attribute `x` of inherit source number `src`.
    InheritFrom(usize, Sym),
}

pub struct AttrsDef {
    /// For `rec` sets, static attribute i is slot i of the set's environment.
    pub rec: bool,
    pub statics: Vec<(Sym, AttrValue, Pos)>,
    pub dynamics: Vec<(Expr, AttrValue, Pos)>,
    /// The sources of `inherit (src) ...`, evaluated in the enclosing scope.
    pub inherit_from: Vec<Expr>,
}

pub struct Formal {
    pub name: Sym,
    pub default: Option<Expr>,
    pub pos: Pos,
}

pub enum Param {
    /// `x: body`: the argument is slot 0.
    Ident(Sym),
    /// `{ a, b ? 1, ... } @ args: body`: formals are slots 0..n, the `@` name slot n.
    Pattern {
        formals: Vec<Formal>,
        ellipsis: bool,
        bind: Option<Sym>,
    },
}

pub struct LambdaDef {
    pub name: Option<Sym>,
    pub param: Param,
    pub body: Expr,
    pub pos: Pos,
}

pub enum Expr {
    Const(Value),
    Var {
        depth: u32,
        index: u32,
        /// Where the name is written: infinite recursion is reported where a variable forces a black hole.
        pos: Pos,
    },
    /// A name only a `with` can supply: the depths of the enclosing `with` frames, innermost first.
    WithVar {
        name: Sym,
        withs: Box<[u32]>,
        pos: Pos,
    },
    Str(Vec<StrPart>, Pos),
    /// An interpolated path literal: the parts are concatenated, then made a path.
    PathInterp(Vec<StrPart>, Pos),
    Attrs(Box<AttrsDef>, Pos),
    List(Vec<Expr>),
    Select {
        expr: Box<Expr>,
        path: Vec<AttrKey>,
        default: Option<Box<Expr>>,
        pos: Pos,
    },
    HasAttr {
        expr: Box<Expr>,
        path: Vec<AttrKey>,
    },
    Apply {
        func: Box<Expr>,
        args: Vec<Expr>,
        pos: Pos,
    },
    Lambda(Box<LambdaDef>),
    Let {
        bindings: Box<AttrsDef>,
        body: Box<Expr>,
    },
    With {
        attrs: Box<Expr>,
        body: Box<Expr>,
        pos: Pos,
    },
    If {
        cond: Box<Expr>,
        then: Box<Expr>,
        else_: Box<Expr>,
        pos: Pos,
    },
    Assert {
        cond: Box<Expr>,
        body: Box<Expr>,
        text: String,
        pos: Pos,
    },
    Not(Box<Expr>, Pos),
    Neg(Box<Expr>, Pos),
    Bin {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
        pos: Pos,
    },
    CurPos(Pos),
}

/// A compile-time scope: one runtime environment frame.
enum Scope {
    Names(HashMap<Sym, u32>),
    With,
}

/// What a compilation needs to know of its surroundings.
pub struct CompileContext<'a> {
    pub file: u32,
    /// The directory relative path literals are resolved against.
    pub base_dir: &'a Path,
    pub globals: &'a HashMap<Sym, Value>,
    /// Names supplied by `scopedImport`: an outermost frame, searched before the globals.
    pub scoped: Option<Vec<Sym>>,
    pub home: Option<String>,
}

struct Compiler<'a> {
    ctx: &'a CompileContext<'a>,
    scopes: Vec<Scope>,
}

/// Compiles the root of a parsed file; the result lives forever.
pub fn compile(root: &ast::Root, ctx: &CompileContext) -> Result<&'static Expr> {
    let mut c = Compiler {
        ctx,
        scopes: Vec::new(),
    };
    if let Some(names) = &ctx.scoped {
        let map = names.iter().enumerate().map(|(i, s)| (*s, i as u32)).collect();
        c.scopes.push(Scope::Names(map));
    }
    let expr = match root.expr() {
        Some(e) => c.expr(&e)?,
        None => return Err(c.error("syntax error, unexpected end of file", 0)),
    };
    Ok(Box::leak(Box::new(expr)))
}

fn key_text(attr: &ast::Attr) -> Option<String> {
    match attr {
        ast::Attr::Ident(i) => Some(i.syntax().text().to_string()),
        ast::Attr::Str(s) => static_str(s),
        ast::Attr::Dynamic(d) => match d.expr()? {
            ast::Expr::Str(s) => static_str(&s),
            _ => None,
        },
    }
}

fn static_str(s: &ast::Str) -> Option<String> {
    let mut out = String::new();
    for part in s.normalized_parts() {
        match part {
            InterpolPart::Literal(l) => out.push_str(&l),
            InterpolPart::Interpolation(_) => return None,
        }
    }
    Some(out)
}

/// Where an attribute's value comes from, before compiling.
enum Source {
    Value(ast::Expr),
    Inherit(ast::Attr),
    InheritFrom(usize),
}

struct Entry {
    path: Vec<ast::Attr>,
    source: Source,
    pos: Pos,
}

impl<'a> Compiler<'a> {
    fn pos(&self, node: &rnix::SyntaxNode) -> Pos {
        Pos {
            file: self.ctx.file,
            offset: u32::from(node.text_range().start()),
        }
    }

    fn error(&self, message: &str, offset: u32) -> Box<EvalError> {
        EvalError::new(
            ErrorKind::Eval,
            message,
            Pos {
                file: self.ctx.file,
                offset,
            },
        )
    }

    fn resolve(&self, name: Sym, pos: Pos) -> Result<Expr> {
        let mut withs = Vec::new();
        for (depth, scope) in self.scopes.iter().rev().enumerate() {
            match scope {
                Scope::Names(names) => {
                    if let Some(&index) = names.get(&name) {
                        return Ok(Expr::Var {
                            depth: depth as u32,
                            index,
                            pos,
                        });
                    }
                }
                Scope::With => withs.push(depth as u32),
            }
        }
        let global = self.ctx.globals.get(&name).cloned().or_else(|| {
            let builtin = name.as_str().strip_prefix("__")?;
            let builtins = self.ctx.globals.get(&Sym::new("builtins"))?;
            match builtins {
                Value::Attrs(a) => a.get(Sym::new(builtin))?.value_if_forced(),
                _ => None,
            }
        });
        if withs.is_empty() {
            return match global {
                Some(v) => Ok(Expr::Const(v)),
                None => Err(EvalError::new(
                    ErrorKind::Eval,
                    format!("undefined variable '{name}'"),
                    pos,
                )),
            };
        }
        if let Some(v) = global {
            // Globals are static: a `with` never shadows them.
            return Ok(Expr::Const(v));
        }
        Ok(Expr::WithVar {
            name,
            withs: withs.into_boxed_slice(),
            pos,
        })
    }

    fn boxed(&mut self, e: Option<ast::Expr>, node: &rnix::SyntaxNode) -> Result<Box<Expr>> {
        match e {
            Some(e) => Ok(Box::new(self.expr(&e)?)),
            None => Err(self.error("syntax error, missing expression", u32::from(node.text_range().end()))),
        }
    }

    fn expr(&mut self, e: &ast::Expr) -> Result<Expr> {
        let node = e.syntax();
        let pos = self.pos(node);
        Ok(match e {
            ast::Expr::Paren(p) => *self.boxed(p.expr(), node)?,
            ast::Expr::Root(r) => *self.boxed(r.expr(), node)?,
            ast::Expr::Literal(lit) => match lit.kind() {
                ast::LiteralKind::Integer(i) => match i.value() {
                    Ok(v) => Expr::Const(Value::Int(v)),
                    Err(_) => {
                        return Err(EvalError::new(
                            ErrorKind::Eval,
                            format!("invalid integer '{}'", i.syntax().text()),
                            pos,
                        ));
                    }
                },
                ast::LiteralKind::Float(f) => {
                    let text = f.syntax().text();
                    // Out of a double's normal range (overflow, or underflow to a subnormal) is an error, as in Nix.
                    match text.parse::<f64>() {
                        Ok(v) if v.is_finite() && (v == 0.0 || v.abs() >= f64::MIN_POSITIVE) => {
                            Expr::Const(Value::Float(v))
                        }
                        _ => {
                            return Err(EvalError::new(ErrorKind::Eval, format!("invalid float '{text}'"), pos));
                        }
                    }
                }
                ast::LiteralKind::Uri(u) => Expr::Const(Value::str(u.syntax().text())),
            },
            ast::Expr::Ident(ident) => {
                let name = ident.syntax().text().to_string();
                self.resolve(Sym::new(&name), pos)?
            }
            ast::Expr::Str(s) => self.string(s, pos)?,
            ast::Expr::PathAbs(_) | ast::Expr::PathRel(_) | ast::Expr::PathHome(_) => {
                let path = ast::Path::cast(node.clone()).expect("a path node");
                self.path(&path, pos)?
            }
            ast::Expr::PathSearch(p) => {
                let text = p.content().map(|c| c.text().to_string()).unwrap_or_default();
                let inner = text.trim_start_matches('<').trim_end_matches('>').to_string();
                let find = self.resolve(Sym::new("__findFile"), pos)?;
                let nix_path = self.resolve(Sym::new("__nixPath"), pos)?;
                Expr::Apply {
                    func: Box::new(find),
                    args: vec![nix_path, Expr::Const(Value::str(inner))],
                    pos,
                }
            }
            ast::Expr::List(l) => {
                let mut items = Vec::new();
                for item in l.items() {
                    items.push(self.expr(&item)?);
                }
                Expr::List(items)
            }
            ast::Expr::AttrSet(set) => {
                let rec = set.rec_token().is_some();
                let def = self.attrs(set, rec, false)?;
                Expr::Attrs(Box::new(def), pos)
            }
            ast::Expr::LetIn(l) => {
                let bindings = self.attrs(l, true, true)?;
                let names = scope_of(&bindings);
                self.scopes.push(Scope::Names(names));
                let body = self.boxed(l.body(), node);
                self.scopes.pop();
                Expr::Let {
                    bindings: Box::new(bindings),
                    body: body?,
                }
            }
            ast::Expr::LegacyLet(l) => {
                // `let { a = 1; body = a; }` is `rec { a = 1; body = a; }.body`.
                let def = self.attrs(l, true, false)?;
                Expr::Select {
                    expr: Box::new(Expr::Attrs(Box::new(def), pos)),
                    path: vec![AttrKey::Static(Sym::new("body"))],
                    default: None,
                    pos,
                }
            }
            ast::Expr::Lambda(l) => Expr::Lambda(Box::new(self.lambda(l, None)?)),
            ast::Expr::Apply(a) => {
                // f a b c: one application with three arguments.
                let mut args = vec![a.argument()];
                let mut func = a.lambda();
                while let Some(ast::Expr::Apply(inner)) = &func {
                    args.push(inner.argument());
                    func = inner.lambda();
                }
                let func = self.boxed(func, node)?;
                let mut compiled = Vec::with_capacity(args.len());
                for arg in args.into_iter().rev() {
                    compiled.push(*self.boxed(arg, node)?);
                }
                Expr::Apply {
                    func,
                    args: compiled,
                    pos,
                }
            }
            ast::Expr::Select(s) => {
                let expr = self.boxed(s.expr(), node)?;
                let path = self.attrpath(s.attrpath())?;
                let default = match s.default_expr() {
                    Some(d) => Some(Box::new(self.expr(&d)?)),
                    None => None,
                };
                let pos = s.attrpath().map(|p| self.pos(p.syntax())).unwrap_or(pos);
                Expr::Select {
                    expr,
                    path,
                    default,
                    pos,
                }
            }
            ast::Expr::HasAttr(h) => Expr::HasAttr {
                expr: self.boxed(h.expr(), node)?,
                path: self.attrpath(h.attrpath())?,
            },
            ast::Expr::With(w) => {
                let attrs = self.boxed(w.namespace(), node)?;
                self.scopes.push(Scope::With);
                let body = self.boxed(w.body(), node);
                self.scopes.pop();
                Expr::With {
                    attrs,
                    body: body?,
                    pos,
                }
            }
            ast::Expr::IfElse(i) => Expr::If {
                cond: self.boxed(i.condition(), node)?,
                then: self.boxed(i.body(), node)?,
                else_: self.boxed(i.else_body(), node)?,
                pos,
            },
            ast::Expr::Assert(a) => {
                let text = a.condition().map(|c| c.syntax().text().to_string()).unwrap_or_default();
                Expr::Assert {
                    cond: self.boxed(a.condition(), node)?,
                    body: self.boxed(a.body(), node)?,
                    text,
                    pos,
                }
            }
            ast::Expr::UnaryOp(u) => {
                let inner = self.boxed(u.expr(), node)?;
                match u.operator() {
                    Some(ast::UnaryOpKind::Invert) => Expr::Not(inner, pos),
                    _ => Expr::Neg(inner, pos),
                }
            }
            ast::Expr::BinOp(b) => {
                let lhs = self.boxed(b.lhs(), node)?;
                let rhs = self.boxed(b.rhs(), node)?;
                use ast::BinOpKind as K;
                let op = match b.operator() {
                    Some(K::Concat) => BinOp::Concat,
                    Some(K::Update) => BinOp::Update,
                    Some(K::Add) => BinOp::Add,
                    Some(K::Sub) => BinOp::Sub,
                    Some(K::Mul) => BinOp::Mul,
                    Some(K::Div) => BinOp::Div,
                    Some(K::And) => BinOp::And,
                    Some(K::Or) => BinOp::Or,
                    Some(K::Implication) => BinOp::Impl,
                    Some(K::Equal) => BinOp::Eq,
                    Some(K::NotEqual) => BinOp::Ne,
                    Some(K::Less) => BinOp::Lt,
                    Some(K::LessOrEq) => BinOp::Le,
                    Some(K::More) => BinOp::Gt,
                    Some(K::MoreOrEq) => BinOp::Ge,
                    Some(K::PipeRight) => BinOp::PipeRight,
                    Some(K::PipeLeft) => BinOp::PipeLeft,
                    None => return Err(self.error("syntax error, unknown operator", pos.offset)),
                };
                // The position of an operator error is the operator's, as in Nix.
                let op_pos = node
                    .children_with_tokens()
                    .filter_map(|c| c.into_token())
                    .find(|t| ast::BinOpKind::from_kind(t.kind()).is_some())
                    .map(|t| Pos {
                        file: self.ctx.file,
                        offset: u32::from(t.text_range().start()),
                    })
                    .unwrap_or(pos);
                Expr::Bin {
                    op,
                    lhs,
                    rhs,
                    pos: op_pos,
                }
            }
            ast::Expr::CurPos(_) => Expr::CurPos(pos),
            ast::Expr::Error(_) => return Err(self.error("syntax error", pos.offset)),
        })
    }

    fn string(&mut self, s: &ast::Str, pos: Pos) -> Result<Expr> {
        let mut parts = Vec::new();
        for part in s.normalized_parts() {
            match part {
                InterpolPart::Literal(l) => {
                    if l.contains('\0') {
                        return Err(EvalError::new(
                            ErrorKind::Eval,
                            "a string literal cannot contain a NUL byte: Nix strings cannot hold them",
                            pos,
                        ));
                    }
                    parts.push(StrPart::Lit(l))
                }
                InterpolPart::Interpolation(i) => {
                    let e = self.boxed(i.expr(), i.syntax())?;
                    parts.push(StrPart::Expr(*e));
                }
            }
        }
        Ok(match parts.as_slice() {
            [] => Expr::Const(Value::str("")),
            [StrPart::Lit(l)] => Expr::Const(Value::str(l.clone())),
            _ => Expr::Str(parts, pos),
        })
    }

    fn path(&mut self, path: &ast::Path, pos: Pos) -> Result<Expr> {
        let mut parts = Vec::new();
        let mut first = true;
        for part in path.parts() {
            match part {
                InterpolPart::Literal(l) => {
                    let mut text = l.text().to_string();
                    if first {
                        text = if l.is_home() {
                            let home = self.ctx.home.clone().ok_or_else(|| {
                                EvalError::new(
                                    ErrorKind::Eval,
                                    "the home directory is not known ($HOME is not set)",
                                    pos,
                                )
                            })?;
                            format!("{home}{}", &text[1..])
                        } else if l.is_relative() {
                            format!("{}/{}", self.ctx.base_dir.display(), text)
                        } else {
                            text
                        };
                    }
                    parts.push(StrPart::Lit(text));
                }
                InterpolPart::Interpolation(i) => {
                    let e = self.boxed(i.expr(), i.syntax())?;
                    parts.push(StrPart::Expr(*e));
                }
            }
            first = false;
        }
        Ok(match parts.as_slice() {
            [StrPart::Lit(l)] => Expr::Const(Value::Path(canon_path(l).into())),
            _ => Expr::PathInterp(parts, pos),
        })
    }

    fn attrpath(&mut self, path: Option<ast::Attrpath>) -> Result<Vec<AttrKey>> {
        let mut keys = Vec::new();
        for attr in path.into_iter().flat_map(|p| p.attrs()) {
            keys.push(self.attr_key(&attr)?);
        }
        Ok(keys)
    }

    fn attr_key(&mut self, attr: &ast::Attr) -> Result<AttrKey> {
        if let Some(text) = key_text(attr) {
            return Ok(AttrKey::Static(Sym::new(&text)));
        }
        Ok(match attr {
            ast::Attr::Dynamic(d) => AttrKey::Dynamic(*self.boxed(d.expr(), d.syntax())?),
            ast::Attr::Str(s) => AttrKey::Dynamic(self.string(s, self.pos(s.syntax()))?),
            ast::Attr::Ident(_) => unreachable!("identifiers are static keys"),
        })
    }

    fn lambda(&mut self, l: &ast::Lambda, name: Option<Sym>) -> Result<LambdaDef> {
        let pos = self.pos(l.syntax());
        let param = match l.param() {
            Some(ast::Param::IdentParam(p)) => {
                let ident = p.ident().map(|i| i.syntax().text().to_string()).unwrap_or_default();
                Param::Ident(Sym::new(&ident))
            }
            Some(ast::Param::Pattern(p)) => {
                let names: Vec<(Sym, Option<ast::Expr>, Pos)> = p
                    .pat_entries()
                    .map(|e| {
                        let n = e.ident().map(|i| i.syntax().text().to_string()).unwrap_or_default();
                        (Sym::new(&n), e.default(), self.pos(e.syntax()))
                    })
                    .collect();
                let bind = p
                    .pat_bind()
                    .and_then(|b| b.ident())
                    .map(|i| Sym::new(i.syntax().text().to_string().as_str()));
                let mut scope: HashMap<Sym, u32> =
                    names.iter().enumerate().map(|(i, (n, _, _))| (*n, i as u32)).collect();
                if let Some(b) = bind {
                    scope.insert(b, names.len() as u32);
                }
                self.scopes.push(Scope::Names(scope));
                let mut formals = Vec::new();
                for (n, default, fpos) in names {
                    let default = match default {
                        Some(d) => match self.expr(&d) {
                            Ok(e) => Some(e),
                            Err(e) => {
                                self.scopes.pop();
                                return Err(e);
                            }
                        },
                        None => None,
                    };
                    formals.push(Formal {
                        name: n,
                        default,
                        pos: fpos,
                    });
                }
                self.scopes.pop();
                Param::Pattern {
                    formals,
                    ellipsis: p.ellipsis_token().is_some(),
                    bind,
                }
            }
            None => return Err(self.error("syntax error, missing function argument", pos.offset)),
        };
        let scope = match &param {
            Param::Ident(s) => HashMap::from([(*s, 0)]),
            Param::Pattern { formals, bind, .. } => {
                let mut m: HashMap<Sym, u32> = formals.iter().enumerate().map(|(i, f)| (f.name, i as u32)).collect();
                if let Some(b) = bind {
                    m.insert(*b, formals.len() as u32);
                }
                m
            }
        };
        self.scopes.push(Scope::Names(scope));
        let body = self.boxed(l.body(), l.syntax());
        self.scopes.pop();
        Ok(LambdaDef {
            name,
            param,
            body: *body?,
            pos,
        })
    }

    /// The bindings of a set or `let`. With `rec` (also for `let`), values, dynamic names and inherit sources
    /// are compiled in a new scope holding the static names; plain `inherit x` always reads the enclosing scope.
    fn attrs(&mut self, node: &impl HasEntry, rec: bool, is_let: bool) -> Result<AttrsDef> {
        let mut entries = Vec::new();
        let mut sources = Vec::new();
        self.collect(node, &mut entries, &mut sources, is_let)?;
        let group = self.group(entries, rec, sources)?;
        self.compile_group(group)
    }

    /// The entries of a binding group, with the `inherit (src)` sources numbered in `sources`.
    fn collect(
        &mut self,
        node: &impl HasEntry,
        entries: &mut Vec<Entry>,
        sources: &mut Vec<ast::Expr>,
        is_let: bool,
    ) -> Result<()> {
        for entry in node.entries() {
            match entry {
                ast::Entry::Inherit(inh) => {
                    let src = match inh.from() {
                        Some(from) => match from.expr() {
                            Some(e) => {
                                sources.push(e);
                                Some(sources.len() - 1)
                            }
                            None => return Err(self.error("syntax error, missing inherit source", 0)),
                        },
                        None => None,
                    };
                    for attr in inh.attrs() {
                        let pos = self.pos(attr.syntax());
                        if key_text(&attr).is_none() {
                            return Err(self.error("dynamic attributes not allowed in inherit", pos.offset));
                        }
                        let source = match src {
                            Some(i) => Source::InheritFrom(i),
                            None => Source::Inherit(attr.clone()),
                        };
                        entries.push(Entry {
                            path: vec![attr],
                            source,
                            pos,
                        });
                    }
                }
                ast::Entry::AttrpathValue(b) => {
                    let path: Vec<ast::Attr> = b.attrpath().into_iter().flat_map(|p| p.attrs()).collect();
                    let pos = self.pos(b.syntax());
                    let Some(value) = b.value() else {
                        return Err(self.error("syntax error, missing value", pos.offset));
                    };
                    if path.is_empty() {
                        return Err(self.error("syntax error, missing attribute name", pos.offset));
                    }
                    if is_let && key_text(&path[0]).is_none() {
                        return Err(self.error("dynamic attributes not allowed in let", pos.offset));
                    }
                    entries.push(Entry {
                        path,
                        source: Source::Value(value),
                        pos,
                    });
                }
            }
        }
        Ok(())
    }

    /// Groups entries by their first key into a tree of uncompiled values.
    fn group(&mut self, entries: Vec<Entry>, rec: bool, sources: Vec<ast::Expr>) -> Result<Group> {
        let mut group = Group {
            rec,
            pos: entries.first().map_or(Pos::NONE, |e| e.pos),
            statics: Vec::new(),
            dynamics: Vec::new(),
            sources,
        };
        let mut order: Vec<Sym> = Vec::new();
        let mut by_key: HashMap<Sym, Vec<Entry>> = HashMap::new();
        for entry in entries {
            match key_text(&entry.path[0]) {
                Some(k) => {
                    let k = Sym::new(&k);
                    if !by_key.contains_key(&k) {
                        order.push(k);
                    }
                    by_key.entry(k).or_default().push(entry);
                }
                None => {
                    let pos = entry.pos;
                    let key = entry.path[0].clone();
                    let value = if entry.path.len() == 1 {
                        GroupValue::Leaf(entry.source)
                    } else {
                        let rest = Entry {
                            path: entry.path[1..].to_vec(),
                            source: entry.source,
                            pos,
                        };
                        GroupValue::Nested(Box::new(self.group(vec![rest], false, Vec::new())?))
                    };
                    group.dynamics.push((key, value, pos));
                }
            }
        }
        for k in order {
            let defs = by_key.remove(&k).expect("grouped key");
            let pos = defs[0].pos;
            if defs.len() == 1 && defs[0].path.len() == 1 {
                let e = defs.into_iter().next().expect("one entry");
                group.statics.push((k, GroupValue::Leaf(e.source), pos));
                continue;
            }
            // Several definitions under one name: they must all be sets, merged into one.
            let mut nested = Vec::new();
            let mut nested_rec = false;
            let mut nested_sources = Vec::new();
            for e in defs {
                if e.path.len() > 1 {
                    nested.push(Entry {
                        path: e.path[1..].to_vec(),
                        source: e.source,
                        pos: e.pos,
                    });
                    continue;
                }
                match e.source {
                    Source::Value(ast::Expr::AttrSet(set)) => {
                        nested_rec |= set.rec_token().is_some();
                        let mut inner = Vec::new();
                        self.collect(&set, &mut inner, &mut nested_sources, false)?;
                        nested.extend(inner);
                    }
                    _ => {
                        return Err(EvalError::new(
                            ErrorKind::Eval,
                            format!("attribute '{k}' already defined"),
                            e.pos,
                        ));
                    }
                }
            }
            let inner = self.group(nested, nested_rec, nested_sources)?;
            group.statics.push((k, GroupValue::Nested(Box::new(inner)), pos));
        }
        Ok(group)
    }

    /// Compiles a grouped binding tree; a `rec` group pushes its own scope for its values.
    fn compile_group(&mut self, group: Group) -> Result<AttrsDef> {
        if group.rec {
            let names = group
                .statics
                .iter()
                .enumerate()
                .map(|(i, (name, _, _))| (*name, i as u32))
                .collect();
            self.scopes.push(Scope::Names(names));
        }
        self.compile_group_inner(group)
    }

    fn compile_group_inner(&mut self, group: Group) -> Result<AttrsDef> {
        let rec = group.rec;
        let run = |c: &mut Self| -> Result<AttrsDef> {
            let mut def = AttrsDef {
                rec,
                statics: Vec::new(),
                dynamics: Vec::new(),
                inherit_from: Vec::new(),
            };
            for src in &group.sources {
                def.inherit_from.push(c.expr(src)?);
            }
            for (name, value, pos) in group.statics {
                let v = c.compile_group_value(value, rec, Some(name))?;
                def.statics.push((name, v, pos));
            }
            for (key, value, pos) in group.dynamics {
                let key = match c.attr_key(&key)? {
                    AttrKey::Dynamic(e) => e,
                    AttrKey::Static(s) => Expr::Const(Value::str(s.as_str())),
                };
                let v = c.compile_group_value(value, rec, None)?;
                def.dynamics.push((key, v, pos));
            }
            Ok(def)
        };
        let result = run(self);
        if rec {
            self.scopes.pop();
        }
        result
    }

    fn compile_group_value(&mut self, value: GroupValue, in_rec: bool, name: Option<Sym>) -> Result<AttrValue> {
        Ok(match value {
            GroupValue::Nested(inner) => {
                let pos = inner.pos;
                AttrValue::Expr(Expr::Attrs(Box::new(self.compile_group(*inner)?), pos))
            }
            GroupValue::Leaf(Source::Value(ast::Expr::Lambda(l))) => {
                AttrValue::Expr(Expr::Lambda(Box::new(self.lambda(&l, name)?)))
            }
            GroupValue::Leaf(Source::Value(e)) => AttrValue::Expr(self.expr(&e)?),
            GroupValue::Leaf(Source::InheritFrom(i)) => AttrValue::InheritFrom(i, name.expect("inherit has a name")),
            GroupValue::Leaf(Source::Inherit(attr)) => {
                let name = Sym::new(&key_text(&attr).expect("static inherit"));
                let pos = self.pos(attr.syntax());
                if in_rec {
                    let own = self.scopes.pop();
                    let r = self.resolve(name, pos);
                    self.scopes.extend(own);
                    AttrValue::Outer(r?)
                } else {
                    AttrValue::Expr(self.resolve(name, pos)?)
                }
            }
        })
    }
}

struct Group {
    rec: bool,
    pos: Pos,
    statics: Vec<(Sym, GroupValue, Pos)>,
    dynamics: Vec<(ast::Attr, GroupValue, Pos)>,
    sources: Vec<ast::Expr>,
}

enum GroupValue {
    Leaf(Source),
    Nested(Box<Group>),
}

fn scope_of(def: &AttrsDef) -> HashMap<Sym, u32> {
    def.statics
        .iter()
        .enumerate()
        .map(|(i, (name, _, _))| (*name, i as u32))
        .collect()
}

/// Nix's canonPath: an absolute path without `.`, `..` or repeated slashes (symlinks are not resolved).
pub fn canon_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return "/".to_string();
    }
    let mut out = String::with_capacity(path.len());
    for p in parts {
        out.push('/');
        out.push_str(p);
    }
    out
}
