//! The evaluator: walks compiled expressions lazily, forcing thunks on demand.
//!
//! Deep recursion in the evaluated program becomes deep recursion here; `stacker` moves evaluation onto
//! fresh heap-allocated stack segments before the native stack runs out, and a call-depth limit turns runaway
//! recursion into a clear error instead of exhausting memory. Nothing here touches disks directly: files,
//! the store and the environment are reached through `EvalIo` (see `io.rs`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::compile::{AttrKey, AttrValue, AttrsDef, BinOp, CompileContext, Expr, Param, StrPart, canon_path};
use super::error::{ErrorKind, EvalError, Frame, Pos, Result, eval_error, io_error, is_rixos_internal};
use super::io::EvalIo;
use super::value::{
    Attr, Attrs, Closure, Context, Env, LazyCell, NixStr, PrimOpApp, Slots, Sym, Thunk, ThunkState, Value,
};

/// Settings that change what evaluation may do.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `--show-trace`: keep the chain of frames in errors.
    pub show_trace: bool,
    /// Deepest nesting of function calls before "stack overflow" is reported.
    pub max_call_depth: usize,
    /// Pure evaluation: no `getEnv`, `currentTime`, or unlocked fetches.
    pub pure: bool,
    /// Extra `-I` search path entries, before `NIX_PATH`.
    pub search_path: Vec<String>,
    /// Entries searched after `NIX_PATH` (the channels' defaults).
    pub fallback_search_path: Vec<String>,
    pub current_system: String,
    /// `--extra-experimental-features parse-toml-timestamps`.
    pub toml_timestamps: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            show_trace: false,
            max_call_depth: 10_000,
            pure: false,
            search_path: Vec::new(),
            fallback_search_path: Vec::new(),
            current_system: "x86_64-linux".to_string(),
            toml_timestamps: false,
        }
    }
}

/// Coercion rules for `coerce_to_string`.
#[derive(Clone, Copy)]
pub struct Coerce {
    /// Also coerce null, Booleans, numbers and lists (`toString`, derivation attributes).
    pub more: bool,
    /// Copy paths into the store (interpolation) rather than using them as they are.
    pub copy: bool,
}

pub struct Evaluator {
    pub settings: Settings,
    pub io: Box<dyn EvalIo>,
    pub globals: HashMap<Sym, Value>,
    pub depth: usize,
    /// Values of imported files, by path.
    pub imports: HashMap<PathBuf, Value>,
    /// Paths copied to the store, by source path.
    pub copied: HashMap<String, String>,
    pub syms: Syms,
    /// Derivations written or read during this evaluation, and their hashDerivationModulo.
    pub drvs: HashMap<String, crate::store::derivation::Derivation>,
    pub drv_modulo: HashMap<String, [u8; 32]>,
    /// Nix files built into rixos, by name (`nix/fetchurl.nix`, `rixos/lib.nix`): `<name>` finds them, and
    /// they import each other by relative paths under `/«nix-internal»`.
    pub internal_files: HashMap<String, &'static str>,
}

/// Symbols the evaluator looks up often.
pub struct Syms {
    pub out_path: Sym,
    pub type_: Sym,
    pub to_string: Sym,
    pub functor: Sym,
    pub name: Sym,
    pub value: Sym,
    pub file: Sym,
    pub line: Sym,
    pub column: Sym,
    pub drv_path: Sym,
    pub output_name: Sym,
    pub outputs: Sym,
}

impl Syms {
    fn new() -> Syms {
        Syms {
            out_path: Sym::new("outPath"),
            type_: Sym::new("type"),
            to_string: Sym::new("__toString"),
            functor: Sym::new("__functor"),
            name: Sym::new("name"),
            value: Sym::new("value"),
            file: Sym::new("file"),
            line: Sym::new("line"),
            column: Sym::new("column"),
            drv_path: Sym::new("drvPath"),
            output_name: Sym::new("outputName"),
            outputs: Sym::new("outputs"),
        }
    }
}

/// Stack left before evaluation moves to a new segment, and the size of each new segment.
const RED_ZONE: usize = 256 * 1024;
const SEGMENT: usize = 16 * 1024 * 1024;

impl Evaluator {
    pub fn new(settings: Settings, io: Box<dyn EvalIo>) -> Evaluator {
        let mut ev = Evaluator {
            settings,
            io,
            globals: HashMap::new(),
            depth: 0,
            imports: HashMap::new(),
            copied: HashMap::new(),
            syms: Syms::new(),
            drvs: HashMap::new(),
            drv_modulo: HashMap::new(),
            internal_files: HashMap::new(),
        };
        super::builtins::install(&mut ev);
        ev
    }

    /// Parses and compiles source text. `base_dir` resolves relative paths; `name` is shown in errors.
    pub fn compile_source(
        &mut self,
        text: &str,
        name: &str,
        is_file: bool,
        base_dir: &Path,
        scoped: Option<Vec<Sym>>,
    ) -> Result<&'static Expr> {
        let scope_names: Vec<&str> = scoped.iter().flatten().map(|s| s.as_str()).collect();
        // Positions are offsets into the text as the parser sees it (lines ending in LF only).
        let text = normalize_newlines(text);
        let root = super::parse::parse_in_scope(&text, name, &scope_names).map_err(|e| {
            let offset = offset_of(&text, e.line, e.column);
            let file = super::error::add_source(name.to_string(), text.clone(), is_file);
            EvalError::new(ErrorKind::Eval, e.message, Pos { file, offset })
        })?;
        let file = super::error::add_source(name.to_string(), text, is_file);
        let home = std::env::var("HOME").ok();
        let ctx = CompileContext {
            file,
            base_dir,
            globals: &self.globals,
            scoped,
            home,
        };
        super::compile::compile(&root, &ctx)
    }

    /// Evaluates source text to a value (not forced deeply).
    pub fn eval_source(&mut self, text: &str, name: &str, is_file: bool, base_dir: &Path) -> Result<Value> {
        let expr = self.compile_source(text, name, is_file, base_dir, None)?;
        let env = Env::new(None, Slots::new());
        self.eval(expr, &env)
    }

    /// `import path`: evaluates a file once and remembers its value.
    pub fn import_file(&mut self, path: &str, pos: Pos) -> Result<Value> {
        if let Some(name) = path
            .strip_prefix(super::derivation::INTERNAL)
            .and_then(|p| p.strip_prefix('/'))
        {
            if let Some(v) = self.imports.get(Path::new(path)) {
                return Ok(v.clone());
            }
            let Some(source) = self.internal_files.get(name).copied() else {
                return eval_error(format!("opening file '{path}': rixos has no such built-in file"), pos);
            };
            let base = Path::new(path).parent().unwrap_or(Path::new("/")).to_path_buf();
            let v = self.eval_source(source, &format!("«nix-internal»/{name}"), false, &base)?;
            self.imports.insert(PathBuf::from(path), v.clone());
            return Ok(v);
        }
        let mut file = PathBuf::from(path);
        if self.io.is_dir(&file) {
            file.push("default.nix");
        }
        if let Some(v) = self.imports.get(&file) {
            return Ok(v.clone());
        }
        // Relative paths in a file reached through a symlink are relative to where the file really is.
        let file = match std::fs::symlink_metadata(&file) {
            Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(&file).unwrap_or(file),
            _ => file,
        };
        // As Nix: a path that is not there fails its status, one that cannot be read fails opening.
        let text = self.io.read_file(&file).map_err(|e| {
            let what = if e.kind() == std::io::ErrorKind::NotFound && file == Path::new(path) {
                "getting status of"
            } else {
                "opening file"
            };
            io_error(what, &file, &e, pos)
        })?;
        let text = String::from_utf8_lossy(&text).into_owned();
        let base = file.parent().unwrap_or(Path::new("/")).to_path_buf();
        let v = self.eval_source(&text, &file.display().to_string(), true, &base)?;
        self.imports.insert(file, v.clone());
        Ok(v)
    }

    // ---- thunks and forcing

    /// A thunk for `e` in `env`, evaluated at once when that is free (constants, functions, known variables).
    /// `filling` is set while the environment `env` itself is being filled (rec sets, let), when its own slots
    /// are not yet valid.
    #[inline]
    pub fn thunk(&self, e: &'static Expr, env: &Rc<Env>, filling: bool) -> Thunk {
        match e {
            Expr::Const(v) => Thunk::Val(v.clone()),
            Expr::Lambda(def) => Thunk::Val(Value::Lambda(Rc::new(Closure { def, env: env.clone() }))),
            Expr::Var { depth, index, .. } if !(filling && *depth == 0) => {
                let t = env.up(*depth).get(*index);
                match t.value_if_forced() {
                    Some(v) => Thunk::Val(v),
                    None => t,
                }
            }
            // Integer arithmetic on values already known cannot diverge or have effects: done now, it saves a
            // thunk. Anything that could fail (overflow, division by zero) stays lazy, as the language wants.
            Expr::Bin { op, lhs, rhs, .. } => match (peek_int(lhs, env, filling), peek_int(rhs, env, filling)) {
                (Some(a), Some(b)) => match int_op(*op, a, b) {
                    Some(v) => Thunk::Val(v),
                    None => Thunk::pending(e, env.clone()),
                },
                _ => Thunk::pending(e, env.clone()),
            },
            _ => Thunk::pending(e, env.clone()),
        }
    }

    #[inline]
    pub fn force(&mut self, t: &Thunk) -> Result<Value> {
        match t {
            Thunk::Val(v) => Ok(v.clone()),
            Thunk::Lazy(cell) => {
                if let Ok(state) = cell.state.try_borrow()
                    && let ThunkState::Done(v) = &*state
                {
                    return Ok(v.clone());
                }
                self.force_cell(cell)
            }
        }
    }

    /// `force`, placing an infinite recursion met at once (a black hole) at `pos`, as Nix places it at the
    /// expression that forced the black hole. One met inside rixos' own Nix libraries (a module option
    /// defined in terms of itself) is placed at the innermost user code that led there instead.
    #[inline]
    pub fn force_at(&mut self, t: &Thunk, pos: Pos) -> Result<Value> {
        self.force(t).map_err(|e| place_recursion(e, pos))
    }

    fn force_cell(&mut self, cell: &Rc<LazyCell>) -> Result<Value> {
        let state = std::mem::replace(&mut *cell.state.borrow_mut(), ThunkState::Blackhole);
        let result = match &state {
            ThunkState::Done(v) => {
                let v = v.clone();
                *cell.state.borrow_mut() = state;
                return Ok(v);
            }
            ThunkState::Blackhole => {
                return Err(EvalError::new(
                    ErrorKind::InfiniteRecursion,
                    "infinite recursion encountered",
                    Pos::NONE,
                ));
            }
            ThunkState::Pending(e, env) => stacker::maybe_grow(RED_ZONE, SEGMENT, || self.eval(e, env)),
            ThunkState::Apply(f, arg) => self.call(f.clone(), arg.clone(), Pos::NONE),
            ThunkState::Apply2(app) => self
                .call(app.0.clone(), app.1.clone(), Pos::NONE)
                .and_then(|g| self.call(g, app.2.clone(), Pos::NONE)),
        };
        match result {
            Ok(v) => {
                *cell.state.borrow_mut() = ThunkState::Done(v.clone());
                Ok(v)
            }
            Err(e) => {
                // Forcing again re-raises the error (tryEval relies on this), so the thunk is put back.
                *cell.state.borrow_mut() = state;
                Err(e)
            }
        }
    }

    // ---- evaluation

    /// Evaluates `e` in `env`. The frequent forms are handled here, in a small function; the rest in
    /// `eval_rare`, whose large stack frame the frequent path does not pay for.
    pub fn eval(&mut self, e: &'static Expr, env: &Rc<Env>) -> Result<Value> {
        match e {
            Expr::Const(v) => Ok(v.clone()),
            Expr::Var { depth, index, pos } => {
                let env = env.up(*depth);
                // Known values are read in place, without touching the thunk's reference count.
                let t = {
                    let slots = env.slots.borrow();
                    let t = &slots[*index as usize];
                    if let Some(v) = t.value_if_forced() {
                        return Ok(v);
                    }
                    t.clone()
                };
                self.force_at(&t, *pos)
            }
            Expr::Apply { func, args, pos } => {
                let mut f = self.eval(func, env)?;
                for arg in args {
                    let t = self.thunk(arg, env, false);
                    f = self.call(f, t, *pos)?;
                }
                Ok(f)
            }
            Expr::Lambda(def) => Ok(Value::Lambda(Rc::new(Closure { def, env: env.clone() }))),
            Expr::If { cond, then, else_, pos } => {
                let c = self.eval(cond, env)?;
                match c {
                    Value::Bool(true) => self.eval(then, env),
                    Value::Bool(false) => self.eval(else_, env),
                    other => eval_error(
                        format!(
                            "expected a Boolean but found {}: {}",
                            other.describe(),
                            self.show_brief(&other)
                        ),
                        *pos,
                    ),
                }
            }
            Expr::Bin { op, lhs, rhs, pos } => self.binary(*op, lhs, rhs, env, *pos),
            _ => self.eval_rare(e, env),
        }
    }

    #[inline(never)]
    fn eval_rare(&mut self, e: &'static Expr, env: &Rc<Env>) -> Result<Value> {
        match e {
            Expr::Const(_)
            | Expr::Var { .. }
            | Expr::Apply { .. }
            | Expr::Lambda(_)
            | Expr::If { .. }
            | Expr::Bin { .. } => unreachable!("handled by eval"),
            Expr::WithVar { name, withs, pos } => {
                for &depth in withs.iter() {
                    let t = env.up(depth).get(0);
                    let scope = self.force(&t)?;
                    let Value::Attrs(attrs) = scope else {
                        return eval_error(
                            format!(
                                "expected a set but found {}: {}",
                                scope.describe(),
                                self.show_brief(&scope)
                            ),
                            *pos,
                        );
                    };
                    if let Some(t) = attrs.get(*name) {
                        let t = t.clone();
                        return self.force_at(&t, *pos);
                    }
                }
                eval_error(format!("undefined variable '{name}'"), *pos)
            }
            Expr::Str(parts, pos) => {
                let c = self.interpolate(parts, env, *pos, true)?;
                Ok(Value::str_ctx(c.s, c.ctx))
            }
            Expr::PathInterp(parts, pos) => {
                // Paths are concatenated as they are (not copied), and may not name store paths.
                let c = self.interpolate(parts, env, *pos, false)?;
                if !c.ctx.is_empty() {
                    return eval_error(
                        "a string that refers to a store path cannot be appended to a path",
                        *pos,
                    );
                }
                Ok(Value::Path(canon_path(&c.s).into()))
            }
            Expr::Attrs(def, pos) => self.attrs(def, env, *pos),
            Expr::List(items) => {
                let v: Vec<Thunk> = items.iter().map(|i| self.thunk(i, env, false)).collect();
                Ok(Value::list(v))
            }
            Expr::Select {
                expr,
                path,
                default,
                pos,
            } => {
                let mut v = self.eval(expr, env)?;
                for key in path {
                    let name = self.attr_name(key, env, *pos)?;
                    // As Nix, a black hole met here is placed at the attribute's definition.
                    let found = match &v {
                        Value::Attrs(a) => a.get_attr(name).map(|a| (a.value.clone(), a.pos)),
                        other if default.is_none() => {
                            return eval_error(
                                format!(
                                    "expected a set but found {}: {}",
                                    other.describe(),
                                    self.show_brief(other)
                                ),
                                *pos,
                            )
                            .map_err(|e| self.frame(e, *pos, format!("while selecting attribute '{name}'")));
                        }
                        _ => None,
                    };
                    match found {
                        Some((t, at)) => {
                            v = self.force(&t).map_err(|e| {
                                let user_first = is_rixos_internal(at) && !is_rixos_internal(*pos);
                                place_recursion(e, if at.is_none() || user_first { *pos } else { at })
                            })?
                        }
                        None => {
                            return match default {
                                Some(d) => self.eval(d, env),
                                None => {
                                    let mut msg = format!("attribute '{name}' missing");
                                    if let Value::Attrs(a) = &v
                                        && let Some(s) = suggest(name.as_str(), a)
                                    {
                                        msg.push_str(&format!("\nDid you mean {s}?"));
                                    }
                                    eval_error(msg, *pos)
                                }
                            };
                        }
                    }
                }
                Ok(v)
            }
            Expr::HasAttr { expr, path } => {
                let mut v = self.eval(expr, env)?;
                for (i, key) in path.iter().enumerate() {
                    let name = self.attr_name(key, env, Pos::NONE)?;
                    let Value::Attrs(a) = &v else {
                        return Ok(Value::Bool(false));
                    };
                    match a.get(name).cloned() {
                        // The last attribute's value is not needed, so not forced.
                        Some(_) if i + 1 == path.len() => return Ok(Value::Bool(true)),
                        Some(t) => v = self.force(&t)?,
                        None => return Ok(Value::Bool(false)),
                    }
                }
                Ok(Value::Bool(true))
            }
            Expr::Let { bindings, body } => {
                let new = self.fill_env(bindings, env)?;
                self.eval(body, &new)
            }
            Expr::With { attrs, body, .. } => {
                let t = self.thunk(attrs, env, false);
                let new = Env::new(Some(env.clone()), smallvec::smallvec![t]);
                self.eval(body, &new)
            }
            Expr::Assert { cond, body, text, pos } => {
                let c = self.eval(cond, env).map_err(|e| {
                    self.frame(
                        e,
                        *pos,
                        format!("while evaluating the condition of the assertion '({text})'"),
                    )
                })?;
                match c {
                    Value::Bool(true) => self.eval(body, env),
                    Value::Bool(false) => Err(EvalError::new(
                        ErrorKind::Assert,
                        format!("assertion '({text})' failed"),
                        *pos,
                    )),
                    other => eval_error(
                        format!(
                            "expected a Boolean but found {}: {}",
                            other.describe(),
                            self.show_brief(&other)
                        ),
                        *pos,
                    ),
                }
            }
            Expr::Not(inner, pos) => match self.eval(inner, env)? {
                Value::Bool(b) => Ok(Value::Bool(!b)),
                other => eval_error(
                    format!(
                        "expected a Boolean but found {}: {}",
                        other.describe(),
                        self.show_brief(&other)
                    ),
                    *pos,
                ),
            },
            Expr::Neg(inner, pos) => {
                let v = self.eval(inner, env)?;
                self.arith(BinOp::Sub, Value::Int(0), v, *pos)
            }
            Expr::CurPos(pos) => Ok(self.pos_attrs(*pos)),
        }
    }

    /// The parts of an interpolated string or path, concatenated with their contexts; `copy` copies
    /// interpolated paths into the store (strings) or keeps them as they are (paths).
    fn interpolate(&mut self, parts: &'static [StrPart], env: &Rc<Env>, pos: Pos, copy: bool) -> Result<NixStr> {
        let mut out = NixStr::default();
        for part in parts {
            match part {
                StrPart::Lit(l) => out.s.push_str(l),
                StrPart::Expr(e) => {
                    let v = self.eval(e, env)?;
                    let c = self.coerce_to_string(&v, pos, Coerce { more: false, copy })?;
                    out.s.push_str(&c.s);
                    out.ctx.extend(c.ctx);
                }
            }
        }
        Ok(out)
    }

    /// `{ file, line, column }` for a position, or null when there is none.
    pub fn pos_attrs(&self, pos: Pos) -> Value {
        match super::error::line_column(pos) {
            Some((src, line, column)) => {
                let entries = vec![
                    Attr {
                        name: self.syms.file,
                        value: Value::str(src.name.clone()).into(),
                        pos: Pos::NONE,
                    },
                    Attr {
                        name: self.syms.line,
                        value: Value::Int(line as i64).into(),
                        pos: Pos::NONE,
                    },
                    Attr {
                        name: self.syms.column,
                        value: Value::Int(column as i64).into(),
                        pos: Pos::NONE,
                    },
                ];
                Value::attrs(Attrs::from_unsorted(entries))
            }
            None => Value::Null,
        }
    }

    fn attr_name(&mut self, key: &'static AttrKey, env: &Rc<Env>, pos: Pos) -> Result<Sym> {
        match key {
            AttrKey::Static(s) => Ok(*s),
            AttrKey::Dynamic(e) => {
                let v = self.eval(e, env)?;
                let s = self.force_string_noctx(&v, pos)?;
                Ok(Sym::new(&s))
            }
        }
    }

    /// A new environment for a `let` or rec set, its slots filled with the static bindings.
    fn fill_env(&mut self, def: &'static AttrsDef, env: &Rc<Env>) -> Result<Rc<Env>> {
        let new = Env::new(Some(env.clone()), Slots::new());
        let sources: Vec<Thunk> = def.inherit_from.iter().map(|e| self.thunk(e, &new, true)).collect();
        let mut slots = Slots::with_capacity(def.statics.len());
        for (_, value, _) in &def.statics {
            // `a = b;` with `b` filled already shares b's thunk, as Nix does: no thunk made, and a black hole
            // is then placed where Nix places it.
            let t = match value {
                AttrValue::Expr(Expr::Var { depth: 0, index, .. }) if (*index as usize) < slots.len() => {
                    slots[*index as usize].clone()
                }
                _ => self.attr_value(value, &new, env, &sources, true),
            };
            slots.push(t);
        }
        *new.slots.borrow_mut() = slots;
        Ok(new)
    }

    fn attr_value(
        &mut self,
        value: &'static AttrValue,
        scope: &Rc<Env>,
        outer: &Rc<Env>,
        sources: &[Thunk],
        filling: bool,
    ) -> Thunk {
        match value {
            AttrValue::Expr(e) => self.thunk(e, scope, filling),
            AttrValue::Outer(e) => self.thunk(e, outer, false),
            AttrValue::InheritFrom(i, name) => {
                let src = sources[*i].clone();
                Thunk::apply(super::builtins::select_fn(*name), src)
            }
        }
    }

    fn attrs(&mut self, def: &'static AttrsDef, env: &Rc<Env>, _pos: Pos) -> Result<Value> {
        let (scope, slots_env) = if def.rec {
            let new = self.fill_env(def, env)?;
            (new.clone(), Some(new))
        } else {
            (env.clone(), None)
        };
        let mut entries = Vec::with_capacity(def.statics.len() + def.dynamics.len());
        match &slots_env {
            Some(new) => {
                let slots = new.slots.borrow();
                for (i, (name, _, pos)) in def.statics.iter().enumerate() {
                    entries.push(Attr {
                        name: *name,
                        value: slots[i].clone(),
                        pos: *pos,
                    });
                }
            }
            None => {
                let sources: Vec<Thunk> = def.inherit_from.iter().map(|e| self.thunk(e, env, false)).collect();
                for (name, value, pos) in &def.statics {
                    let t = self.attr_value(value, env, env, &sources, false);
                    entries.push(Attr {
                        name: *name,
                        value: t,
                        pos: *pos,
                    });
                }
            }
        }
        let mut attrs = Attrs::from_unsorted(entries);
        if let Some(new) = &slots_env {
            self.apply_overrides(def, new, &mut attrs)?;
        }
        if !def.dynamics.is_empty() {
            let sources: Vec<Thunk> = def.inherit_from.iter().map(|e| self.thunk(e, &scope, false)).collect();
            for (key, value, pos) in &def.dynamics {
                let k = self.eval(key, &scope)?;
                if matches!(k, Value::Null) {
                    continue;
                }
                let name = Sym::new(&self.force_string_noctx(&k, *pos)?);
                if attrs.get(name).is_some() {
                    return eval_error(format!("dynamic attribute '{name}' already defined"), *pos);
                }
                let t = self.attr_value(value, &scope, env, &sources, false);
                attrs.insert(Attr {
                    name,
                    value: t,
                    pos: *pos,
                });
            }
        }
        Ok(Value::attrs(attrs))
    }

    /// `rec { __overrides = { ... }; }`: the overrides replace (or add) attributes, in the set and in its scope.
    fn apply_overrides(&mut self, def: &'static AttrsDef, env: &Rc<Env>, attrs: &mut Attrs) -> Result<()> {
        let overrides = Sym::new("__overrides");
        let Some(index) = def.statics.iter().position(|(n, _, _)| *n == overrides) else {
            return Ok(());
        };
        let t = env.get(index as u32);
        let v = self.force(&t).map_err(|e| {
            self.frame(
                e,
                def.statics[index].2,
                "while evaluating the `__overrides` attribute".into(),
            )
        })?;
        let over = self.expect_attrs(&v, def.statics[index].2).map_err(|e| {
            self.frame(
                e,
                def.statics[index].2,
                "while evaluating the `__overrides` attribute".into(),
            )
        })?;
        for o in over.entries() {
            if let Some(slot) = def.statics.iter().position(|(n, _, _)| *n == o.name) {
                env.slots.borrow_mut()[slot] = o.value.clone();
            }
            attrs.insert(o.clone());
        }
        Ok(())
    }

    // ---- calls

    pub fn call(&mut self, f: Value, arg: Thunk, pos: Pos) -> Result<Value> {
        match f {
            Value::Lambda(closure) => self.call_lambda(&closure, arg, pos),
            Value::PrimOp(op) => {
                if op.arity == 1 {
                    (op.f)(self, &[arg], pos).map_err(|e| self.builtin_frame(e, op.name, pos))
                } else {
                    Ok(Value::PrimOpApp(Rc::new(PrimOpApp { op, args: vec![arg] })))
                }
            }
            Value::PrimOpApp(app) => {
                let mut args = app.args.clone();
                args.push(arg);
                if args.len() == app.op.arity {
                    (app.op.f)(self, &args, pos).map_err(|e| self.builtin_frame(e, app.op.name, pos))
                } else {
                    Ok(Value::PrimOpApp(Rc::new(PrimOpApp {
                        op: app.op.clone(),
                        args,
                    })))
                }
            }
            Value::Attrs(ref a) if a.get(self.syms.functor).is_some() => {
                let functor = a.get(self.syms.functor).cloned().expect("checked");
                let functor = self.force(&functor)?;
                let partial = self.call(functor, Thunk::Val(f.clone()), pos)?;
                self.call(partial, arg, pos)
            }
            other => eval_error(
                format!(
                    "attempt to call something which is not a function but {}: {}",
                    other.describe(),
                    self.show_brief(&other)
                ),
                pos,
            ),
        }
    }

    /// Calls `f` with several arguments.
    pub fn call_n(&mut self, f: &Value, args: &[Thunk], pos: Pos) -> Result<Value> {
        let mut f = f.clone();
        for a in args {
            f = self.call(f, a.clone(), pos)?;
        }
        Ok(f)
    }

    fn call_lambda(&mut self, closure: &Rc<Closure>, arg: Thunk, pos: Pos) -> Result<Value> {
        let def = closure.def;
        if self.depth >= self.settings.max_call_depth {
            return eval_error("stack overflow; max-call-depth exceeded", pos);
        }
        let env = match &def.param {
            Param::Ident(_) => Env::new(Some(closure.env.clone()), smallvec::smallvec![arg]),
            Param::Pattern {
                formals,
                ellipsis,
                bind,
            } => {
                let v = self.force(&arg)?;
                let Value::Attrs(attrs) = &v else {
                    return eval_error(
                        format!("expected a set but found {}: {}", v.describe(), self.show_brief(&v)),
                        pos,
                    )
                    .map_err(|e| self.frame(e, def.pos, self.lambda_frame(def)));
                };
                let new = Env::new(Some(closure.env.clone()), Slots::new());
                let mut slots = Slots::with_capacity(formals.len() + 1);
                let mut used = 0;
                for formal in formals {
                    match attrs.get(formal.name) {
                        Some(t) => {
                            used += 1;
                            slots.push(t.clone());
                        }
                        None => match &formal.default {
                            Some(d) => slots.push(self.thunk(d, &new, true)),
                            None => {
                                let name = self.lambda_name(def);
                                return Err(self.frame(
                                    EvalError::new(
                                        ErrorKind::Eval,
                                        format!("function '{name}' called without required argument '{}'", formal.name),
                                        def.pos,
                                    ),
                                    pos,
                                    "from call site".to_string(),
                                ));
                            }
                        },
                    }
                }
                if !ellipsis && used < attrs.len() {
                    let unexpected = attrs
                        .sorted()
                        .into_iter()
                        .find(|a| !formals.iter().any(|f| f.name == a.name))
                        .map(|a| a.name);
                    if let Some(u) = unexpected {
                        let name = self.lambda_name(def);
                        let mut names: Vec<&str> = formals.iter().map(|f| f.name.as_str()).collect();
                        names.sort();
                        names.retain(|n| levenshtein(n, u.as_str()) <= 2);
                        let hint = match names.as_slice() {
                            [] => String::new(),
                            [one] => format!("\nDid you mean {one}?"),
                            [rest @ .., last] => format!("\nDid you mean one of {} or {last}?", rest.join(", ")),
                        };
                        return Err(self.frame(
                            EvalError::new(
                                ErrorKind::Eval,
                                format!("function '{name}' called with unexpected argument '{u}'{hint}"),
                                def.pos,
                            ),
                            pos,
                            "from call site".to_string(),
                        ));
                    }
                }
                if bind.is_some() {
                    slots.push(Thunk::Val(v.clone()));
                }
                *new.slots.borrow_mut() = slots;
                new
            }
        };
        self.depth += 1;
        // Calls are where evaluation recurses deeply; the stack grows here when it runs low.
        let result = stacker::maybe_grow(RED_ZONE, SEGMENT, || self.eval(&def.body, &env));
        self.depth -= 1;
        result.map_err(|e| {
            if self.settings.show_trace {
                let e = self.frame(e, def.pos, self.lambda_frame(def));
                self.frame(e, pos, "from call site".to_string())
            } else {
                e
            }
        })
    }

    fn lambda_name(&self, def: &LambdaDefRef) -> String {
        def.name.map_or("anonymous lambda".to_string(), |n| n.to_string())
    }

    fn lambda_frame(&self, def: &LambdaDefRef) -> String {
        match def.name {
            Some(n) => format!("while calling '{n}'"),
            None => "while calling anonymous lambda".to_string(),
        }
    }

    /// The frame of a failed builtin call (only with --show-trace).
    #[cold]
    fn builtin_frame(&self, e: Box<EvalError>, name: &str, pos: Pos) -> Box<EvalError> {
        if !self.settings.show_trace || name == "select" {
            return e;
        }
        self.frame(e, pos, format!("while calling the '{name}' builtin"))
    }

    /// Adds a trace frame to an error (only kept with --show-trace), and gives it a position if it has none.
    pub fn frame(&self, mut e: Box<EvalError>, pos: Pos, message: String) -> Box<EvalError> {
        if e.pos.is_none() {
            e.pos = pos;
        }
        if self.settings.show_trace && !pos.is_none() {
            e.trace.push(Frame { pos, message });
        }
        e
    }

    // ---- operators

    fn binary(&mut self, op: BinOp, lhs: &'static Expr, rhs: &'static Expr, env: &Rc<Env>, pos: Pos) -> Result<Value> {
        match op {
            BinOp::And | BinOp::Or | BinOp::Impl => {
                let l = self.eval(lhs, env)?;
                let lb = self.expect_bool(&l, pos, "in the left operand of the")?;
                let short = match op {
                    BinOp::And => !lb,
                    BinOp::Or => lb,
                    _ => !lb,
                };
                if short {
                    return Ok(Value::Bool(op != BinOp::And));
                }
                let r = self.eval(rhs, env)?;
                Ok(Value::Bool(self.expect_bool(&r, pos, "in the right operand of the")?))
            }
            BinOp::PipeRight => {
                let arg = self.thunk(lhs, env, false);
                let f = self.eval(rhs, env)?;
                self.call(f, arg, pos)
            }
            BinOp::PipeLeft => {
                let arg = self.thunk(rhs, env, false);
                let f = self.eval(lhs, env)?;
                self.call(f, arg, pos)
            }
            _ => {
                let l = self.eval(lhs, env)?;
                let r = self.eval(rhs, env)?;
                // Integer arithmetic and comparison without overflow need no further dispatch.
                if let (Value::Int(a), Value::Int(b)) = (&l, &r) {
                    let (a, b) = (*a, *b);
                    match op {
                        BinOp::Add => {
                            if let Some(v) = a.checked_add(b) {
                                return Ok(Value::Int(v));
                            }
                        }
                        BinOp::Sub => {
                            if let Some(v) = a.checked_sub(b) {
                                return Ok(Value::Int(v));
                            }
                        }
                        BinOp::Mul => {
                            if let Some(v) = a.checked_mul(b) {
                                return Ok(Value::Int(v));
                            }
                        }
                        BinOp::Div if b != 0 => {
                            if let Some(v) = a.checked_div(b) {
                                return Ok(Value::Int(v));
                            }
                        }
                        BinOp::Lt => return Ok(Value::Bool(a < b)),
                        BinOp::Le => return Ok(Value::Bool(a <= b)),
                        BinOp::Gt => return Ok(Value::Bool(a > b)),
                        BinOp::Ge => return Ok(Value::Bool(a >= b)),
                        BinOp::Eq => return Ok(Value::Bool(a == b)),
                        BinOp::Ne => return Ok(Value::Bool(a != b)),
                        _ => {}
                    }
                }
                self.binary_values(op, l, r, pos)
            }
        }
    }

    pub fn binary_values(&mut self, op: BinOp, l: Value, r: Value, pos: Pos) -> Result<Value> {
        match op {
            BinOp::Eq => Ok(Value::Bool(self.equal(&l, &r, pos)?)),
            BinOp::Ne => Ok(Value::Bool(!self.equal(&l, &r, pos)?)),
            BinOp::Lt => Ok(Value::Bool(self.less_than(&l, &r, pos)?)),
            BinOp::Gt => Ok(Value::Bool(self.less_than(&r, &l, pos)?)),
            BinOp::Le => Ok(Value::Bool(!self.less_than(&r, &l, pos)?)),
            BinOp::Ge => Ok(Value::Bool(!self.less_than(&l, &r, pos)?)),
            BinOp::Concat => {
                let a = self.expect_list(&l, pos)?;
                let b = self.expect_list(&r, pos)?;
                if a.is_empty() {
                    return Ok(r);
                }
                if b.is_empty() {
                    return Ok(l);
                }
                let mut v = Vec::with_capacity(a.len() + b.len());
                v.extend_from_slice(&a);
                v.extend_from_slice(&b);
                Ok(Value::list(v))
            }
            BinOp::Update => {
                let a = self.expect_attrs(&l, pos)?;
                let b = self.expect_attrs(&r, pos)?;
                if b.is_empty() {
                    return Ok(l);
                }
                if a.is_empty() {
                    return Ok(r);
                }
                Ok(Value::attrs(Attrs::update(&a, &b)))
            }
            BinOp::Add => match (&l, &r) {
                (Value::Str(a), _) => {
                    let b = self.coerce_to_string(
                        &r,
                        pos,
                        Coerce {
                            more: false,
                            copy: true,
                        },
                    )?;
                    let mut s = String::with_capacity(a.s.len() + b.s.len());
                    s.push_str(&a.s);
                    s.push_str(&b.s);
                    let mut ctx = a.ctx.clone();
                    ctx.extend(b.ctx);
                    Ok(Value::str_ctx(s, ctx))
                }
                (Value::Path(a), _) if !matches!(r, Value::Int(_) | Value::Float(_)) => {
                    let b = self.coerce_to_string(
                        &r,
                        pos,
                        Coerce {
                            more: false,
                            copy: false,
                        },
                    )?;
                    if !b.ctx.is_empty() {
                        return eval_error("a string that refers to a store path cannot be appended to a path", pos);
                    }
                    Ok(Value::Path(canon_path(&format!("{a}{}", b.s)).into()))
                }
                _ => self.arith(op, l, r, pos),
            },
            _ => self.arith(op, l, r, pos),
        }
    }

    pub fn arith(&mut self, op: BinOp, l: Value, r: Value, pos: Pos) -> Result<Value> {
        match (&l, &r) {
            (Value::Int(a), Value::Int(b)) => {
                let (a, b) = (*a, *b);
                let v = match op {
                    BinOp::Add => a.checked_add(b),
                    BinOp::Sub => a.checked_sub(b),
                    BinOp::Mul => a.checked_mul(b),
                    _ => {
                        if b == 0 {
                            return eval_error("division by zero", pos);
                        }
                        a.checked_div(b)
                    }
                };
                match v {
                    Some(v) => Ok(Value::Int(v)),
                    None => {
                        let sym = match op {
                            BinOp::Add => "+",
                            BinOp::Sub => "-",
                            BinOp::Mul => "*",
                            _ => "/",
                        };
                        let verb = match op {
                            BinOp::Add => "adding",
                            BinOp::Sub => "subtracting",
                            BinOp::Mul => "multiplying",
                            _ => "dividing",
                        };
                        eval_error(format!("integer overflow in {verb} {a} {sym} {b}"), pos)
                    }
                }
            }
            (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
                let a = as_float(&l);
                let b = as_float(&r);
                Ok(Value::Float(match op {
                    BinOp::Add => a + b,
                    BinOp::Sub => a - b,
                    BinOp::Mul => a * b,
                    _ => {
                        if b == 0.0 {
                            return eval_error("division by zero", pos);
                        }
                        a / b
                    }
                }))
            }
            (Value::Int(_) | Value::Float(_), other) | (other, _) => {
                let what = if matches!(op, BinOp::Add) {
                    "cannot add"
                } else {
                    "expected an integer but found"
                };
                if matches!(op, BinOp::Add) {
                    eval_error(format!("{what} {} to {}", r.describe(), l.describe()), pos)
                } else {
                    eval_error(format!("{what} {}: {}", other.describe(), self.show_brief(other)), pos)
                }
            }
        }
    }

    pub fn equal(&mut self, a: &Value, b: &Value, _pos: Pos) -> Result<bool> {
        Ok(match (a, b) {
            (Value::Int(x), Value::Int(y)) => x == y,
            (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => as_float(a) == as_float(b),
            (Value::Str(x), Value::Str(y)) => x.s == y.s,
            (Value::Path(x), Value::Path(y)) => x == y,
            (Value::Null, Value::Null) => true,
            (Value::Bool(x), Value::Bool(y)) => x == y,
            (Value::List(x), Value::List(y)) => {
                if x.len() != y.len() {
                    return Ok(false);
                }
                for (p, q) in x.iter().zip(y.iter()) {
                    // Both are forced first (an error is an error even in one shared value); then one value
                    // shared by both sides is equal to itself, functions included.
                    let pv = self.force(p)?;
                    let qv = self.force(q)?;
                    if p.ptr_eq(q) {
                        continue;
                    }
                    let (p, q) = (pv, qv);
                    if !self.equal(&p, &q, _pos)? {
                        return Ok(false);
                    }
                }
                true
            }
            (Value::Attrs(x), Value::Attrs(y)) => {
                // Two derivations are equal if their outputs are.
                if self.is_derivation(x)?
                    && self.is_derivation(y)?
                    && let (Some(p), Some(q)) = (x.get(self.syms.out_path), y.get(self.syms.out_path))
                {
                    let (p, q) = (p.clone(), q.clone());
                    let p = self.force(&p)?;
                    let q = self.force(&q)?;
                    return self.equal(&p, &q, _pos);
                }
                if x.len() != y.len() {
                    return Ok(false);
                }
                for (p, q) in x.entries().iter().zip(y.entries().iter()) {
                    if p.name != q.name {
                        return Ok(false);
                    }
                    let pv = self.force(&p.value)?;
                    let qv = self.force(&q.value)?;
                    if p.value.ptr_eq(&q.value) {
                        continue;
                    }
                    if !self.equal(&pv, &qv, _pos)? {
                        return Ok(false);
                    }
                }
                true
            }
            _ => false,
        })
    }

    pub fn is_derivation(&mut self, a: &Attrs) -> Result<bool> {
        match a.get(self.syms.type_) {
            Some(t) => {
                let t = t.clone();
                let v = self.force(&t)?;
                Ok(matches!(&v, Value::Str(s) if s.s == "derivation"))
            }
            None => Ok(false),
        }
    }

    pub fn less_than(&mut self, a: &Value, b: &Value, pos: Pos) -> Result<bool> {
        match (a, b) {
            (Value::Int(x), Value::Int(y)) => Ok(x < y),
            (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => Ok(as_float(a) < as_float(b)),
            (Value::Str(x), Value::Str(y)) => Ok(x.s < y.s),
            (Value::Path(x), Value::Path(y)) => Ok(x < y),
            (Value::List(x), Value::List(y)) => {
                for (p, q) in x.iter().zip(y.iter()) {
                    let p = self.force(p)?;
                    let q = self.force(q)?;
                    if !self.equal(&p, &q, pos)? {
                        return self.less_than(&p, &q, pos);
                    }
                }
                Ok(x.len() < y.len())
            }
            _ => eval_error(format!("cannot compare {} with {}", a.describe(), b.describe()), pos),
        }
    }

    // ---- coercions and checks

    pub fn expect_bool(&self, v: &Value, pos: Pos, _ctx: &str) -> Result<bool> {
        match v {
            Value::Bool(b) => Ok(*b),
            other => eval_error(
                format!(
                    "expected a Boolean but found {}: {}",
                    other.describe(),
                    self.show_brief(other)
                ),
                pos,
            ),
        }
    }

    pub fn expect_list(&self, v: &Value, pos: Pos) -> Result<Rc<Vec<Thunk>>> {
        match v {
            Value::List(l) => Ok(l.clone()),
            other => eval_error(
                format!(
                    "expected a list but found {}: {}",
                    other.describe(),
                    self.show_brief(other)
                ),
                pos,
            ),
        }
    }

    pub fn expect_attrs(&self, v: &Value, pos: Pos) -> Result<Rc<Attrs>> {
        match v {
            Value::Attrs(a) => Ok(a.clone()),
            other => eval_error(
                format!(
                    "expected a set but found {}: {}",
                    other.describe(),
                    self.show_brief(other)
                ),
                pos,
            ),
        }
    }

    pub fn expect_int(&self, v: &Value, pos: Pos) -> Result<i64> {
        match v {
            Value::Int(i) => Ok(*i),
            other => eval_error(
                format!(
                    "expected an integer but found {}: {}",
                    other.describe(),
                    self.show_brief(other)
                ),
                pos,
            ),
        }
    }

    pub fn expect_function(&self, v: &Value, pos: Pos) -> Result<()> {
        if v.is_function() || matches!(v, Value::Attrs(a) if a.get(self.syms.functor).is_some()) {
            Ok(())
        } else {
            eval_error(
                format!("expected a function but found {}: {}", v.describe(), self.show_brief(v)),
                pos,
            )
        }
    }

    /// A string value (with its context); anything else is an error.
    pub fn expect_string(&self, v: &Value, pos: Pos) -> Result<Rc<NixStr>> {
        match v {
            Value::Str(s) => Ok(s.clone()),
            other => eval_error(
                format!(
                    "expected a string but found {}: {}",
                    other.describe(),
                    self.show_brief(other)
                ),
                pos,
            ),
        }
    }

    /// A string without context, for names and keys.
    pub fn force_string_noctx(&self, v: &Value, pos: Pos) -> Result<String> {
        Ok(self.expect_string(v, pos)?.s.clone())
    }

    pub fn coerce_to_string(&mut self, v: &Value, pos: Pos, mode: Coerce) -> Result<NixStr> {
        match v {
            Value::Str(s) => Ok((**s).clone()),
            Value::Path(p) => {
                if mode.copy {
                    let store = self.copy_path_to_store(p, pos)?;
                    let mut ctx = Context::new();
                    ctx.insert(store.clone());
                    Ok(NixStr { s: store, ctx })
                } else {
                    Ok(NixStr::plain(p.to_string()))
                }
            }
            Value::Attrs(a) => {
                if let Some(f) = a.get(self.syms.to_string) {
                    let f = f.clone();
                    let f = self.force(&f)?;
                    let r = self.call(f, Thunk::Val(v.clone()), pos)?;
                    return self.coerce_to_string(&r, pos, mode);
                }
                if let Some(p) = a.get(self.syms.out_path) {
                    let p = p.clone();
                    let p = self.force(&p)?;
                    return self.coerce_to_string(&p, pos, mode);
                }
                eval_error(format!("cannot coerce a set to a string: {}", self.show_brief(v)), pos)
            }
            Value::Null if mode.more => Ok(NixStr::plain("")),
            Value::Bool(b) if mode.more => Ok(NixStr::plain(if *b { "1" } else { "" })),
            Value::Int(i) if mode.more => Ok(NixStr::plain(i.to_string())),
            Value::Float(f) if mode.more => Ok(NixStr::plain(format!("{f:.6}"))),
            Value::List(items) if mode.more => {
                let mut out = NixStr::default();
                for (i, t) in items.iter().enumerate() {
                    let item = self.force(t)?;
                    let s = self.coerce_to_string(&item, pos, mode)?;
                    out.s.push_str(&s.s);
                    out.ctx.extend(s.ctx);
                    let empty_list = matches!(&item, Value::List(l) if l.is_empty());
                    if i + 1 < items.len() && !empty_list {
                        out.s.push(' ');
                    }
                }
                Ok(out)
            }
            other => eval_error(
                format!(
                    "cannot coerce {} to a string: {}",
                    other.describe(),
                    self.show_brief(other)
                ),
                pos,
            ),
        }
    }

    /// Copies a path into the store once per evaluation and gives its store path.
    pub fn copy_path_to_store(&mut self, path: &str, pos: Pos) -> Result<String> {
        if let Some(p) = self.copied.get(path) {
            return Ok(p.clone());
        }
        if super::io::is_store_path(path) {
            return Ok(path.to_string());
        }
        let name = path.rsplit('/').next().unwrap_or("source").to_string();
        let store = self
            .io
            .add_path(Path::new(path), &name, None, true)
            .map_err(|e| EvalError::new(ErrorKind::Eval, format!("copying '{path}' to the store: {e}"), pos))?;
        self.copied.insert(path.to_string(), store.clone());
        Ok(store)
    }

    /// Forces a value and everything inside it (`--strict`, `deepSeq`).
    pub fn force_deep(&mut self, v: &Value) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        self.force_deep_inner(v, &mut seen)
    }

    fn force_deep_inner(&mut self, v: &Value, seen: &mut std::collections::HashSet<usize>) -> Result<()> {
        stacker::maybe_grow(RED_ZONE, SEGMENT, || match v {
            Value::Attrs(a) => {
                if !seen.insert(Rc::as_ptr(a) as usize) {
                    return Ok(());
                }
                for attr in a.entries() {
                    let x = self.force(&attr.value).map_err(|e| {
                        self.frame(e, attr.pos, format!("while evaluating the attribute '{}'", attr.name))
                    })?;
                    self.force_deep_inner(&x, seen)?;
                }
                Ok(())
            }
            Value::List(l) => {
                if !seen.insert(Rc::as_ptr(l) as usize) {
                    return Ok(());
                }
                for t in l.iter() {
                    let x = self.force(t)?;
                    self.force_deep_inner(&x, seen)?;
                }
                Ok(())
            }
            _ => Ok(()),
        })
    }

    /// A short printout of a value for error messages.
    pub fn show_brief(&self, v: &Value) -> String {
        super::print::brief(v)
    }
}

type LambdaDefRef = super::compile::LambdaDef;

/// Places an infinite recursion not placed yet at `pos` (see `Evaluator::force_at`).
#[cold]
fn place_recursion(mut e: Box<EvalError>, pos: Pos) -> Box<EvalError> {
    if e.kind == ErrorKind::InfiniteRecursion
        && (e.pos.is_none() || is_rixos_internal(e.pos) && !pos.is_none() && !is_rixos_internal(pos))
    {
        e.pos = pos;
    }
    e
}

/// An integer operand known without evaluating anything: a constant or an already forced variable.
#[inline]
fn peek_int(e: &Expr, env: &Rc<Env>, filling: bool) -> Option<i64> {
    match e {
        Expr::Const(Value::Int(i)) => Some(*i),
        Expr::Var { depth, index, .. } if !(filling && *depth == 0) => {
            let env = env.up(*depth);
            let slots = env.slots.borrow();
            match slots[*index as usize].value_if_forced() {
                Some(Value::Int(i)) => Some(i),
                _ => None,
            }
        }
        _ => None,
    }
}

/// An integer operation that cannot fail, or None.
#[inline]
fn int_op(op: BinOp, a: i64, b: i64) -> Option<Value> {
    Some(match op {
        BinOp::Add => Value::Int(a.checked_add(b)?),
        BinOp::Sub => Value::Int(a.checked_sub(b)?),
        BinOp::Mul => Value::Int(a.checked_mul(b)?),
        BinOp::Lt => Value::Bool(a < b),
        BinOp::Le => Value::Bool(a <= b),
        BinOp::Gt => Value::Bool(a > b),
        BinOp::Ge => Value::Bool(a >= b),
        BinOp::Eq => Value::Bool(a == b),
        BinOp::Ne => Value::Bool(a != b),
        _ => return None,
    })
}

fn as_float(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        _ => 0.0,
    }
}

fn normalize_newlines(text: &str) -> String {
    if text.contains('\r') {
        text.replace("\r\n", "\n").replace('\r', "\n")
    } else {
        text.to_string()
    }
}

fn offset_of(text: &str, line: usize, column: usize) -> u32 {
    let mut offset = 0;
    for (i, l) in text.split('\n').enumerate() {
        if i + 1 == line {
            let col: usize = l.chars().take(column.saturating_sub(1)).map(char::len_utf8).sum();
            return (offset + col) as u32;
        }
        offset += l.len() + 1;
    }
    text.len() as u32
}

/// "one of 'a', 'b'" for the names of `attrs` closest to `name`, if any are close.
fn suggest(name: &str, attrs: &Attrs) -> Option<String> {
    let mut close: Vec<(usize, &str)> = attrs
        .entries()
        .iter()
        .map(|a| a.name.as_str())
        .map(|n| (levenshtein(name, n), n))
        .filter(|(d, _)| *d <= 2)
        .collect();
    close.sort();
    close.truncate(3);
    match close.as_slice() {
        [] => None,
        [(_, one)] => Some(format!("'{one}'")),
        many => Some(format!(
            "one of {}",
            many.iter()
                .map(|(_, n)| format!("'{n}'"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

pub fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(row[j + 1])
            };
            prev = cur;
        }
    }
    row[b.len()]
}
