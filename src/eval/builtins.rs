//! The built-in functions and constants (`builtins.*` and the globals Nix defines).
//!
//! Each primop takes its arguments unforced and forces what it needs, so lazy ones (`tryEval`,
//! `addErrorContext`) are ordinary primops. Functions over lists and sets return lazy elements where Nix does
//! (`map`, `genList`, `mapAttrs`), so `map f` over a million elements does not call `f` until asked.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::compile::{BinOp, Param, canon_path};
use super::error::{ErrorKind, EvalError, Pos, Result, eval_error};
use super::eval::{Coerce, Evaluator};
use super::io::{STORE_DIR, is_store_path, store_path_of};
use super::print::print_value;
use super::value::{Attr, Attrs, Context, Env, NixStr, PrimFn, PrimOp, PrimOpApp, Sym, Thunk, Value};

const MORE: Coerce = Coerce {
    more: true,
    copy: false,
};
const STRICT_STR: Coerce = Coerce {
    more: false,
    copy: true,
};

fn prim(name: &'static str, arity: usize, f: PrimFn) -> Value {
    Value::PrimOp(Rc::new(PrimOp { name, arity, f }))
}

fn attr(name: &str, value: Value) -> Attr {
    Attr {
        name: Sym::new(name),
        value: Thunk::Val(value),
        pos: Pos::NONE,
    }
}

/// An attribute set of already known values.
pub fn make_attrs(entries: Vec<(&str, Value)>) -> Value {
    Value::attrs(Attrs::from_unsorted(
        entries.into_iter().map(|(n, v)| attr(n, v)).collect(),
    ))
}

thread_local! {
    static SELECT_OP: Rc<PrimOp> = Rc::new(PrimOp { name: "select", arity: 2, f: prim_select });
}

/// A function that selects attribute `name` of its argument (`inherit (src) name`).
pub fn select_fn(name: Sym) -> Value {
    let op = SELECT_OP.with(Rc::clone);
    Value::PrimOpApp(Rc::new(PrimOpApp {
        op,
        args: vec![Thunk::Val(Value::str(name.as_str()))],
    }))
}

fn prim_select(ev: &mut Evaluator, args: &[Thunk], pos: Pos) -> Result<Value> {
    let name = ev.force(&args[0])?;
    let name = ev.force_string_noctx(&name, pos)?;
    let set = ev.force(&args[1])?;
    let set = ev.expect_attrs(&set, pos)?;
    match set.get_str(&name) {
        Some(t) => {
            let t = t.clone();
            ev.force(&t)
        }
        None => eval_error(format!("attribute '{name}' missing"), pos),
    }
}

/// Puts the globals and `builtins` into the evaluator.
pub fn install(ev: &mut Evaluator) {
    let fns: &[(&'static str, usize, PrimFn)] = &[
        ("abort", 1, prim_abort),
        ("add", 2, |ev, a, p| arith(ev, a, p, BinOp::Add)),
        ("sub", 2, |ev, a, p| arith(ev, a, p, BinOp::Sub)),
        ("mul", 2, |ev, a, p| arith(ev, a, p, BinOp::Mul)),
        ("div", 2, |ev, a, p| arith(ev, a, p, BinOp::Div)),
        ("addErrorContext", 2, prim_add_error_context),
        ("all", 2, |ev, a, p| any_all(ev, a, p, false)),
        ("any", 2, |ev, a, p| any_all(ev, a, p, true)),
        ("appendContext", 2, prim_append_context),
        ("attrNames", 1, prim_attr_names),
        ("attrValues", 1, prim_attr_values),
        ("baseNameOf", 1, prim_base_name_of),
        ("bitAnd", 2, |ev, a, p| bits(ev, a, p, |x, y| x & y)),
        ("bitOr", 2, |ev, a, p| bits(ev, a, p, |x, y| x | y)),
        ("bitXor", 2, |ev, a, p| bits(ev, a, p, |x, y| x ^ y)),
        ("break", 1, |ev, a, _| ev.force(&a[0])),
        ("catAttrs", 2, prim_cat_attrs),
        ("ceil", 1, |ev, a, p| round(ev, a, p, f64::ceil)),
        ("floor", 1, |ev, a, p| round(ev, a, p, f64::floor)),
        ("compareVersions", 2, prim_compare_versions),
        ("concatLists", 1, prim_concat_lists),
        ("concatMap", 2, prim_concat_map),
        ("concatStringsSep", 2, prim_concat_strings_sep),
        ("convertHash", 1, prim_convert_hash),
        ("deepSeq", 2, prim_deep_seq),
        ("derivationStrict", 1, super::derivation::prim_derivation_strict),
        ("dirOf", 1, prim_dir_of),
        ("elem", 2, prim_elem),
        ("elemAt", 2, prim_elem_at),
        ("filter", 2, prim_filter),
        ("filterSource", 2, prim_filter_source),
        ("findFile", 2, prim_find_file),
        ("flakeRefToString", 1, super::flakeref::prim_flake_ref_to_string),
        ("foldl'", 3, prim_foldl),
        ("fromJSON", 1, super::json::prim_from_json),
        ("fromTOML", 1, super::json::prim_from_toml),
        ("functionArgs", 1, prim_function_args),
        ("genList", 2, prim_gen_list),
        ("genericClosure", 1, prim_generic_closure),
        ("getAttr", 2, prim_get_attr),
        ("getContext", 1, prim_get_context),
        ("getEnv", 1, prim_get_env),
        ("groupBy", 2, prim_group_by),
        ("hasAttr", 2, prim_has_attr),
        ("hasContext", 1, prim_has_context),
        ("hashFile", 2, prim_hash_file),
        ("hashString", 2, prim_hash_string),
        ("head", 1, prim_head),
        ("import", 1, prim_import),
        ("intersectAttrs", 2, prim_intersect_attrs),
        ("isAttrs", 1, |ev, a, _| {
            is_type(ev, a, |v| matches!(v, Value::Attrs(_)))
        }),
        ("isBool", 1, |ev, a, _| is_type(ev, a, |v| matches!(v, Value::Bool(_)))),
        ("isFloat", 1, |ev, a, _| {
            is_type(ev, a, |v| matches!(v, Value::Float(_)))
        }),
        ("isFunction", 1, |ev, a, _| is_type(ev, a, Value::is_function)),
        ("isInt", 1, |ev, a, _| is_type(ev, a, |v| matches!(v, Value::Int(_)))),
        ("isList", 1, |ev, a, _| is_type(ev, a, |v| matches!(v, Value::List(_)))),
        ("isNull", 1, |ev, a, _| is_type(ev, a, |v| matches!(v, Value::Null))),
        ("isPath", 1, |ev, a, _| is_type(ev, a, |v| matches!(v, Value::Path(_)))),
        ("isString", 1, |ev, a, _| is_type(ev, a, |v| matches!(v, Value::Str(_)))),
        ("length", 1, prim_length),
        ("lessThan", 2, prim_less_than),
        ("listToAttrs", 1, prim_list_to_attrs),
        ("map", 2, prim_map),
        ("mapAttrs", 2, prim_map_attrs),
        ("match", 2, super::regex::prim_match),
        ("split", 2, super::regex::prim_split),
        ("parseDrvName", 1, prim_parse_drv_name),
        ("parseFlakeRef", 1, super::flakeref::prim_parse_flake_ref),
        ("partition", 2, prim_partition),
        ("path", 1, prim_path),
        ("pathExists", 1, prim_path_exists),
        ("placeholder", 1, prim_placeholder),
        ("readDir", 1, prim_read_dir),
        ("readFile", 1, prim_read_file),
        ("readFileType", 1, prim_read_file_type),
        ("removeAttrs", 2, prim_remove_attrs),
        ("replaceStrings", 3, prim_replace_strings),
        ("scopedImport", 2, prim_scoped_import),
        ("seq", 2, prim_seq),
        ("sort", 2, prim_sort),
        ("splitVersion", 1, prim_split_version),
        ("storePath", 1, prim_store_path),
        ("stringLength", 1, prim_string_length),
        ("substring", 3, prim_substring),
        ("tail", 1, prim_tail),
        ("throw", 1, prim_throw),
        ("toFile", 2, prim_to_file),
        ("toJSON", 1, super::json::prim_to_json),
        ("toPath", 1, prim_to_path),
        ("toString", 1, prim_to_string),
        ("toXML", 1, super::xml::prim_to_xml),
        ("trace", 2, prim_trace),
        ("traceVerbose", 2, |ev, a, _| ev.force(&a[1])),
        ("tryEval", 1, prim_try_eval),
        ("typeOf", 1, prim_type_of),
        ("unsafeDiscardOutputDependency", 1, prim_discard_output_dependency),
        ("addDrvOutputDependencies", 1, prim_add_drv_output_dependencies),
        ("unsafeDiscardStringContext", 1, prim_discard_context),
        ("unsafeGetAttrPos", 2, prim_unsafe_get_attr_pos),
        ("warn", 2, prim_warn),
        ("zipAttrsWith", 2, prim_zip_attrs_with),
        ("fetchurl", 1, super::derivation::prim_fetchurl),
        ("fetchTarball", 1, super::derivation::prim_fetch_tarball),
        ("fetchGit", 1, |_, _, p| {
            eval_error("fetchGit is not supported by rixos", p)
        }),
        ("fetchTree", 1, |_, _, p| {
            eval_error("fetchTree is not supported by rixos", p)
        }),
        ("fetchMercurial", 1, |_, _, p| {
            eval_error("fetchMercurial is not supported by rixos", p)
        }),
        ("outputOf", 2, |_, _, p| {
            eval_error("builtins.outputOf needs the dynamic-derivations feature", p)
        }),
    ];
    let mut entries: Vec<Attr> = fns.iter().map(|(n, a, f)| attr(n, prim(n, *a, *f))).collect();
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let nix_path = nix_path_value(&ev.settings.search_path, &ev.settings.fallback_search_path);
    entries.extend([
        attr("true", Value::Bool(true)),
        attr("false", Value::Bool(false)),
        attr("null", Value::Null),
        attr("currentSystem", Value::str(ev.settings.current_system.clone())),
        attr("currentTime", Value::Int(time)),
        attr("nixVersion", Value::str("2.36.0")),
        attr("langVersion", Value::Int(6)),
        attr("storeDir", Value::str(STORE_DIR)),
        attr("nixPath", nix_path),
    ]);
    // `builtins` contains itself; a thunk ties the knot.
    let builtins_cell = Rc::new(super::value::LazyCell {
        state: std::cell::RefCell::new(super::value::ThunkState::Blackhole),
    });
    entries.push(Attr {
        name: Sym::new("builtins"),
        value: Thunk::Lazy(builtins_cell.clone()),
        pos: Pos::NONE,
    });
    let builtins = Value::attrs(Attrs::from_unsorted(entries));
    *builtins_cell.state.borrow_mut() = super::value::ThunkState::Done(builtins.clone());

    let Value::Attrs(b) = &builtins else { unreachable!() };
    // The globals are the names the parser knows in every scope, less the two defined below.
    let global_names = super::parse::GLOBALS
        .iter()
        .filter(|n| !matches!(**n, "builtins" | "derivation"));
    for name in global_names {
        let v = b.get_str(name).and_then(Thunk::value_if_forced).expect("a builtin");
        ev.globals.insert(Sym::new(name), v);
    }
    ev.globals.insert(Sym::new("builtins"), builtins.clone());
    ev.globals.insert(
        Sym::new("__nixPath"),
        b.get_str("nixPath").and_then(Thunk::value_if_forced).expect("nixPath"),
    );
    // `derivation` is written in Nix, over derivationStrict, as in Nix itself.
    let derivation = ev
        .eval_source(
            DERIVATION_NIX,
            "«nix-internal»/derivation-internal.nix",
            false,
            Path::new("/"),
        )
        .expect("the built-in derivation function compiles");
    ev.globals.insert(Sym::new("derivation"), derivation.clone());
    if let Value::Attrs(b) = &builtins {
        // Adding `derivation` to builtins after the fact: the set is shared, so rebuild it with the entry.
        let mut entries = b.entries().to_vec();
        entries.push(attr("derivation", derivation));
        let rebuilt = Value::attrs(Attrs::from_unsorted(entries));
        *builtins_cell.state.borrow_mut() = super::value::ThunkState::Done(rebuilt.clone());
        ev.globals.insert(Sym::new("builtins"), rebuilt);
    }
}

/// `derivation`: the user-facing wrapper over `derivationStrict`, giving each output its own attribute set.
const DERIVATION_NIX: &str = r#"
drvAttrs@{ outputs ? [ "out" ], ... }:
let
  strict = derivationStrict drvAttrs;
  commonAttrs = drvAttrs // (builtins.listToAttrs outputsList) // {
    all = map (x: x.value) outputsList;
    inherit drvAttrs;
  };
  outputToAttrListElement = outputName: {
    name = outputName;
    value = commonAttrs // {
      outPath = builtins.getAttr outputName strict;
      drvPath = strict.drvPath;
      type = "derivation";
      inherit outputName;
    };
  };
  outputsList = map outputToAttrListElement outputs;
in
(builtins.head outputsList).value
"#;

/// The search path: `-I` entries, then `NIX_PATH`, as a list of `{ prefix, path }`.
fn nix_path_value(extra: &[String], fallback: &[String]) -> Value {
    let mut items = Vec::new();
    let env = std::env::var("NIX_PATH").unwrap_or_default();
    for entry in extra
        .iter()
        .map(String::as_str)
        .chain(env.split(':').filter(|s| !s.is_empty()))
        .chain(fallback.iter().map(String::as_str))
    {
        let (prefix, path) = match entry.split_once('=') {
            Some((p, path)) => (p, path),
            None => ("", entry),
        };
        items.push(Thunk::Val(make_attrs(vec![
            ("prefix", Value::str(prefix)),
            ("path", Value::str(path)),
        ])));
    }
    Value::list(items)
}

// ---- helpers

fn force_list(ev: &mut Evaluator, t: &Thunk, pos: Pos) -> Result<Rc<Vec<Thunk>>> {
    let v = ev.force(t)?;
    ev.expect_list(&v, pos)
}

fn force_attrs(ev: &mut Evaluator, t: &Thunk, pos: Pos) -> Result<Rc<Attrs>> {
    let v = ev.force(t)?;
    ev.expect_attrs(&v, pos)
}

fn force_int(ev: &mut Evaluator, t: &Thunk, pos: Pos) -> Result<i64> {
    let v = ev.force(t)?;
    ev.expect_int(&v, pos)
}

fn force_str(ev: &mut Evaluator, t: &Thunk, pos: Pos) -> Result<Rc<NixStr>> {
    let v = ev.force(t)?;
    ev.expect_string(&v, pos)
}

fn force_fn(ev: &mut Evaluator, t: &Thunk, pos: Pos) -> Result<Value> {
    let v = ev.force(t)?;
    ev.expect_function(&v, pos)?;
    Ok(v)
}

fn call_bool(ev: &mut Evaluator, f: &Value, arg: &Thunk, pos: Pos) -> Result<bool> {
    let r = ev.call(f.clone(), arg.clone(), pos)?;
    ev.expect_bool(&r, pos, "")
}

/// A path argument: a path, or a string holding an absolute path (store paths with context allowed).
pub fn force_path(ev: &mut Evaluator, t: &Thunk, pos: Pos) -> Result<(String, Context)> {
    let v = ev.force(t)?;
    let s = ev.coerce_to_string(
        &v,
        pos,
        Coerce {
            more: false,
            copy: false,
        },
    )?;
    if !s.s.starts_with('/') {
        return eval_error(format!("string '{}' doesn't represent an absolute path", s.s), pos);
    }
    Ok((s.s, s.ctx))
}

pub(crate) fn str_value(s: String, ctx: Context) -> Value {
    Value::str_ctx(s, ctx)
}

// ---- primops

fn prim_abort(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let v = ev.force(&a[0])?;
    let s = ev.coerce_to_string(&v, pos, MORE)?;
    Err(EvalError::new(
        ErrorKind::Abort,
        format!("evaluation aborted with the following error message: '{}'", s.s),
        pos,
    ))
}

fn prim_throw(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let v = ev.force(&a[0])?;
    let s = ev.coerce_to_string(&v, pos, MORE)?;
    Err(EvalError::new(ErrorKind::Throw, s.s, pos))
}

fn arith(ev: &mut Evaluator, a: &[Thunk], pos: Pos, op: BinOp) -> Result<Value> {
    let x = ev.force(&a[0])?;
    let y = ev.force(&a[1])?;
    for v in [&x, &y] {
        if !matches!(v, Value::Int(_) | Value::Float(_)) {
            return eval_error(
                format!("expected an integer but found {}: {}", v.describe(), ev.show_brief(v)),
                pos,
            );
        }
    }
    ev.arith(op, x, y, pos)
}

fn bits(ev: &mut Evaluator, a: &[Thunk], pos: Pos, f: fn(i64, i64) -> i64) -> Result<Value> {
    let x = force_int(ev, &a[0], pos)?;
    let y = force_int(ev, &a[1], pos)?;
    Ok(Value::Int(f(x, y)))
}

fn round(ev: &mut Evaluator, a: &[Thunk], pos: Pos, f: fn(f64) -> f64) -> Result<Value> {
    match ev.force(&a[0])? {
        Value::Int(i) => Ok(Value::Int(i)),
        Value::Float(x) => {
            let r = f(x);
            if !(-9.223372036854776e18..9.223372036854776e18).contains(&r) {
                return eval_error(
                    format!("float {} does not fit in an integer", super::print::format_float(x)),
                    pos,
                );
            }
            Ok(Value::Int(r as i64))
        }
        other => eval_error(
            format!(
                "expected a float but found {}: {}",
                other.describe(),
                ev.show_brief(&other)
            ),
            pos,
        ),
    }
}

fn prim_add_error_context(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    match ev.force(&a[1]) {
        Ok(v) => Ok(v),
        Err(mut e) => {
            if ev.settings.show_trace
                && let Ok(msg) = ev.force(&a[0])
                && let Ok(s) = ev.coerce_to_string(&msg, pos, MORE)
            {
                e.trace.push(super::error::Frame { pos, message: s.s });
            }
            Err(e)
        }
    }
}

fn any_all(ev: &mut Evaluator, a: &[Thunk], pos: Pos, any: bool) -> Result<Value> {
    let f = force_fn(ev, &a[0], pos)?;
    let list = force_list(ev, &a[1], pos)?;
    for t in list.iter() {
        if call_bool(ev, &f, t, pos)? == any {
            return Ok(Value::Bool(any));
        }
    }
    Ok(Value::Bool(!any))
}

fn prim_attr_names(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let attrs = force_attrs(ev, &a[0], pos)?;
    Ok(Value::list(
        attrs
            .sorted()
            .into_iter()
            .map(|x| Thunk::Val(Value::str(x.name.as_str())))
            .collect(),
    ))
}

fn prim_attr_values(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let attrs = force_attrs(ev, &a[0], pos)?;
    Ok(Value::list(
        attrs.sorted().into_iter().map(|x| x.value.clone()).collect(),
    ))
}

fn prim_base_name_of(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let v = ev.force(&a[0])?;
    let s = ev.coerce_to_string(
        &v,
        pos,
        Coerce {
            more: false,
            copy: false,
        },
    )?;
    let trimmed = s.s.strip_suffix('/').unwrap_or(&s.s);
    let base = trimmed.rsplit('/').next().unwrap_or("").to_string();
    Ok(str_value(base, s.ctx))
}

fn prim_dir_of(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let v = ev.force(&a[0])?;
    let is_path = matches!(v, Value::Path(_));
    let s = ev.coerce_to_string(
        &v,
        pos,
        Coerce {
            more: false,
            copy: false,
        },
    )?;
    let dir = match s.s.rfind('/') {
        None => ".".to_string(),
        Some(0) => "/".to_string(),
        Some(i) => s.s[..i].to_string(),
    };
    if is_path {
        Ok(Value::Path(dir.into()))
    } else {
        Ok(str_value(dir, s.ctx))
    }
}

fn prim_cat_attrs(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let name = force_str(ev, &a[0], pos)?;
    let name = Sym::new(&name.s);
    let list = force_list(ev, &a[1], pos)?;
    let mut out = Vec::new();
    for t in list.iter() {
        let attrs = force_attrs(ev, t, pos)?;
        if let Some(v) = attrs.get(name) {
            out.push(v.clone());
        }
    }
    Ok(Value::list(out))
}

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

fn prim_compare_versions(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let x = force_str(ev, &a[0], pos)?;
    let y = force_str(ev, &a[1], pos)?;
    Ok(Value::Int(compare_versions(&x.s, &y.s)))
}

fn prim_split_version(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
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

fn prim_parse_drv_name(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
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

fn prim_concat_lists(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let lists = force_list(ev, &a[0], pos)?;
    let mut out = Vec::new();
    for t in lists.iter() {
        out.extend(force_list(ev, t, pos)?.iter().cloned());
    }
    Ok(Value::list(out))
}

fn prim_concat_map(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let f = force_fn(ev, &a[0], pos)?;
    let list = force_list(ev, &a[1], pos)?;
    let mut out = Vec::new();
    for t in list.iter() {
        let r = ev.call(f.clone(), t.clone(), pos)?;
        out.extend(ev.expect_list(&r, pos)?.iter().cloned());
    }
    Ok(Value::list(out))
}

fn prim_concat_strings_sep(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let sep = force_str(ev, &a[0], pos)?;
    let list = force_list(ev, &a[1], pos)?;
    let mut out = String::new();
    let mut ctx = sep.ctx.clone();
    for (i, t) in list.iter().enumerate() {
        if i > 0 {
            out.push_str(&sep.s);
        }
        let v = ev.force(t)?;
        let s = ev.coerce_to_string(&v, pos, STRICT_STR)?;
        out.push_str(&s.s);
        ctx.extend(s.ctx);
    }
    Ok(str_value(out, ctx))
}

fn prim_deep_seq(ev: &mut Evaluator, a: &[Thunk], _pos: Pos) -> Result<Value> {
    let v = ev.force(&a[0])?;
    ev.force_deep(&v)?;
    ev.force(&a[1])
}

fn prim_seq(ev: &mut Evaluator, a: &[Thunk], _pos: Pos) -> Result<Value> {
    ev.force(&a[0])?;
    ev.force(&a[1])
}

fn prim_elem(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
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

fn prim_elem_at(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
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

fn prim_head(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let list = force_list(ev, &a[0], pos)?;
    match list.first() {
        Some(t) => {
            let t = t.clone();
            ev.force(&t)
        }
        None => eval_error("'builtins.head' called on an empty list", pos),
    }
}

fn prim_tail(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let list = force_list(ev, &a[0], pos)?;
    if list.is_empty() {
        return eval_error("'builtins.tail' called on an empty list", pos);
    }
    Ok(Value::list(list[1..].to_vec()))
}

fn prim_length(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    Ok(Value::Int(force_list(ev, &a[0], pos)?.len() as i64))
}

fn prim_filter(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
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

fn prim_map(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let f = force_fn(ev, &a[0], pos)?;
    let list = force_list(ev, &a[1], pos)?;
    Ok(Value::list(
        list.iter().map(|t| Thunk::apply(f.clone(), t.clone())).collect(),
    ))
}

fn prim_gen_list(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
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

fn prim_foldl(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
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

fn prim_function_args(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let f = ev.force(&a[0])?;
    match &f {
        Value::Lambda(c) => match &c.def.param {
            Param::Ident(_) => Ok(Value::attrs(Attrs::default())),
            Param::Pattern { formals, .. } => Ok(Value::attrs(Attrs::from_unsorted(
                formals
                    .iter()
                    .map(|f| Attr {
                        name: f.name,
                        value: Thunk::Val(Value::Bool(f.default.is_some())),
                        pos: f.pos,
                    })
                    .collect(),
            ))),
        },
        Value::PrimOp(_) | Value::PrimOpApp(_) => Ok(Value::attrs(Attrs::default())),
        other => eval_error(
            format!(
                "expected a function but found {}: {}",
                other.describe(),
                ev.show_brief(other)
            ),
            pos,
        ),
    }
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

fn prim_generic_closure(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
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

fn prim_get_attr(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let name = force_str(ev, &a[0], pos)?;
    let attrs = force_attrs(ev, &a[1], pos)?;
    match attrs.get_str(&name.s) {
        Some(t) => {
            let t = t.clone();
            ev.force(&t)
        }
        None => eval_error(format!("attribute '{}' missing", name.s), pos),
    }
}

fn prim_has_attr(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let name = force_str(ev, &a[0], pos)?;
    let attrs = force_attrs(ev, &a[1], pos)?;
    Ok(Value::Bool(attrs.get_str(&name.s).is_some()))
}

fn prim_get_env(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let name = force_str(ev, &a[0], pos)?;
    if ev.settings.pure {
        return Ok(Value::str(""));
    }
    Ok(Value::str(std::env::var(&name.s).unwrap_or_default()))
}

fn prim_group_by(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
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

fn prim_intersect_attrs(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let x = force_attrs(ev, &a[0], pos)?;
    let y = force_attrs(ev, &a[1], pos)?;
    let entries = y
        .entries()
        .iter()
        .filter(|e| x.get(e.name).is_some())
        .cloned()
        .collect();
    Ok(Value::attrs(Attrs::from_sorted(entries)))
}

fn is_type(ev: &mut Evaluator, a: &[Thunk], f: fn(&Value) -> bool) -> Result<Value> {
    let v = ev.force(&a[0])?;
    Ok(Value::Bool(f(&v)))
}

fn prim_less_than(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let x = ev.force(&a[0])?;
    let y = ev.force(&a[1])?;
    Ok(Value::Bool(ev.less_than(&x, &y, pos)?))
}

fn prim_list_to_attrs(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let list = force_list(ev, &a[0], pos)?;
    let mut entries = Vec::with_capacity(list.len());
    let (name_sym, value_sym) = (ev.syms.name, ev.syms.value);
    for t in list.iter() {
        let item = force_attrs(ev, t, pos)?;
        let name = match item.get(name_sym) {
            Some(n) => n.clone(),
            None => return eval_error("attribute 'name' missing", pos),
        };
        let name = force_str(ev, &name, pos)?;
        let value = match item.get_attr(value_sym) {
            Some(v) => v.clone(),
            None => return eval_error("attribute 'value' missing", pos),
        };
        entries.push(Attr {
            name: Sym::new(&name.s),
            value: value.value,
            pos: value.pos,
        });
    }
    Ok(Value::attrs(Attrs::from_unsorted(entries)))
}

fn prim_map_attrs(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let f = force_fn(ev, &a[0], pos)?;
    let attrs = force_attrs(ev, &a[1], pos)?;
    let entries = attrs
        .entries()
        .iter()
        .map(|e| Attr {
            name: e.name,
            value: Thunk::apply2(f.clone(), Thunk::Val(Value::str(e.name.as_str())), e.value.clone()),
            pos: e.pos,
        })
        .collect();
    Ok(Value::attrs(Attrs::from_sorted(entries)))
}

fn prim_zip_attrs_with(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let f = force_fn(ev, &a[0], pos)?;
    let list = force_list(ev, &a[1], pos)?;
    let mut groups: HashMap<Sym, Vec<Thunk>> = HashMap::new();
    for t in list.iter() {
        let attrs = force_attrs(ev, t, pos)?;
        for e in attrs.entries() {
            groups.entry(e.name).or_default().push(e.value.clone());
        }
    }
    let entries = groups
        .into_iter()
        .map(|(name, values)| Attr {
            name,
            value: Thunk::apply2(
                f.clone(),
                Thunk::Val(Value::str(name.as_str())),
                Thunk::Val(Value::list(values)),
            ),
            pos: Pos::NONE,
        })
        .collect();
    Ok(Value::attrs(Attrs::from_unsorted(entries)))
}

fn prim_partition(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
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

fn prim_remove_attrs(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let attrs = force_attrs(ev, &a[0], pos)?;
    let names = force_list(ev, &a[1], pos)?;
    let mut remove = HashSet::new();
    for t in names.iter() {
        remove.insert(Sym::new(&force_str(ev, t, pos)?.s));
    }
    let entries = attrs
        .entries()
        .iter()
        .filter(|e| !remove.contains(&e.name))
        .cloned()
        .collect();
    Ok(Value::attrs(Attrs::from_sorted(entries)))
}

fn prim_replace_strings(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let from = force_list(ev, &a[0], pos)?;
    let to = force_list(ev, &a[1], pos)?;
    if from.len() != to.len() {
        return eval_error(
            "'from' and 'to' arguments passed to builtins.replaceStrings have different lengths",
            pos,
        );
    }
    let s = force_str(ev, &a[2], pos)?;
    let mut froms = Vec::with_capacity(from.len());
    for t in from.iter() {
        froms.push(force_str(ev, t, pos)?);
    }
    // `to` strings are forced only when used, as in Nix.
    let mut tos: Vec<Option<Rc<NixStr>>> = vec![None; to.len()];
    let mut out = String::with_capacity(s.s.len());
    let mut ctx = s.ctx.clone();
    let bytes = s.s.as_bytes();
    let mut i = 0;
    while i <= bytes.len() {
        let mut matched = false;
        for (j, f) in froms.iter().enumerate() {
            if bytes[i..].starts_with(f.s.as_bytes()) {
                if tos[j].is_none() {
                    tos[j] = Some(force_str(ev, &to[j], pos)?);
                }
                let t = tos[j].as_ref().expect("forced");
                out.push_str(&t.s);
                ctx.extend(t.ctx.iter().cloned());
                matched = true;
                if f.s.is_empty() {
                    if let Some(c) = s.s[i..].chars().next() {
                        out.push(c);
                        i += c.len_utf8();
                    } else {
                        i += 1;
                    }
                } else {
                    i += f.s.len();
                }
                break;
            }
        }
        if !matched {
            match s.s[i..].chars().next() {
                Some(c) => {
                    out.push(c);
                    i += c.len_utf8();
                }
                None => break,
            }
        }
    }
    Ok(str_value(out, ctx))
}

fn prim_sort(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
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

fn prim_string_length(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let v = ev.force(&a[0])?;
    let s = ev.coerce_to_string(&v, pos, STRICT_STR)?;
    Ok(Value::Int(s.s.len() as i64))
}

fn prim_substring(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let start = force_int(ev, &a[0], pos)?;
    let len = force_int(ev, &a[1], pos)?;
    let v = ev.force(&a[2])?;
    let s = ev.coerce_to_string(&v, pos, STRICT_STR)?;
    if start < 0 {
        return eval_error("negative start position in 'substring'", pos);
    }
    let bytes = s.s.as_bytes();
    let start = (start as usize).min(bytes.len());
    let end = if len < 0 {
        bytes.len()
    } else {
        start.saturating_add(len as usize).min(bytes.len())
    };
    let sub = String::from_utf8_lossy(&bytes[start..end]).into_owned();
    Ok(str_value(sub, s.ctx))
}

fn prim_to_string(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let v = ev.force(&a[0])?;
    let s = ev.coerce_to_string(&v, pos, MORE)?;
    Ok(str_value(s.s, s.ctx))
}

fn prim_to_path(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let (p, ctx) = force_path(ev, &a[0], pos)?;
    Ok(str_value(canon_path(&p), ctx))
}

fn prim_trace(ev: &mut Evaluator, a: &[Thunk], _pos: Pos) -> Result<Value> {
    let v = ev.force(&a[0])?;
    match &v {
        Value::Str(s) => eprintln!("trace: {}", s.s),
        other => {
            ev.force_deep(other).ok();
            eprintln!("trace: {}", print_value(other));
        }
    }
    ev.force(&a[1])
}

fn prim_warn(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let msg = force_str(ev, &a[0], pos)?;
    eprintln!("evaluation warning: {}", msg.s);
    ev.force(&a[1])
}

fn prim_try_eval(ev: &mut Evaluator, a: &[Thunk], _pos: Pos) -> Result<Value> {
    match ev.force(&a[0]) {
        Ok(v) => Ok(make_attrs(vec![("success", Value::Bool(true)), ("value", v)])),
        Err(e) if matches!(e.kind, ErrorKind::Throw | ErrorKind::Assert) => Ok(make_attrs(vec![
            ("success", Value::Bool(false)),
            ("value", Value::Bool(false)),
        ])),
        Err(e) => Err(e),
    }
}

fn prim_type_of(ev: &mut Evaluator, a: &[Thunk], _pos: Pos) -> Result<Value> {
    let v = ev.force(&a[0])?;
    Ok(Value::str(v.type_of()))
}

fn prim_unsafe_get_attr_pos(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let name = force_str(ev, &a[0], pos)?;
    let attrs = force_attrs(ev, &a[1], pos)?;
    match attrs.get_attr(Sym::new(&name.s)) {
        Some(at) => Ok(ev.pos_attrs(at.pos)),
        None => Ok(Value::Null),
    }
}

// ---- string contexts

fn prim_has_context(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let s = force_str(ev, &a[0], pos)?;
    Ok(Value::Bool(!s.ctx.is_empty()))
}

fn prim_discard_context(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let s = force_str(ev, &a[0], pos)?;
    Ok(Value::str(s.s.clone()))
}

fn prim_discard_output_dependency(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let s = force_str(ev, &a[0], pos)?;
    let ctx = s
        .ctx
        .iter()
        .map(|c| c.strip_prefix('=').map_or_else(|| c.clone(), str::to_string))
        .collect();
    Ok(str_value(s.s.clone(), ctx))
}

fn prim_add_drv_output_dependencies(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let s = force_str(ev, &a[0], pos)?;
    if s.ctx.len() != 1 {
        return eval_error(
            format!(
                "context of string '{}' must have exactly one element, but has {}",
                s.s,
                s.ctx.len()
            ),
            pos,
        );
    }
    let c = s.ctx.iter().next().expect("one element");
    let new = if c.starts_with('=') {
        c.clone()
    } else if c.starts_with('!') {
        let path = c.splitn(3, '!').nth(2).unwrap_or_default();
        return eval_error(
            format!(
                "`addDrvOutputDependencies` can only act on derivations, not on a derivation output such as '{}'",
                path
            ),
            pos,
        );
    } else {
        if !c.ends_with(".drv") {
            return eval_error(format!("path '{c}' is not a derivation"), pos);
        }
        format!("={c}")
    };
    Ok(str_value(s.s.clone(), BTreeSet::from([new])))
}

fn prim_get_context(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let s = force_str(ev, &a[0], pos)?;
    #[derive(Default)]
    struct Info {
        path: bool,
        all: bool,
        outputs: BTreeSet<String>,
    }
    let mut map: BTreeMap<String, Info> = BTreeMap::new();
    for c in &s.ctx {
        if let Some(p) = c.strip_prefix('=') {
            map.entry(p.to_string()).or_default().all = true;
        } else if let Some(rest) = c.strip_prefix('!') {
            let (out, p) = rest.split_once('!').unwrap_or((rest, ""));
            map.entry(p.to_string()).or_default().outputs.insert(out.to_string());
        } else {
            map.entry(c.clone()).or_default().path = true;
        }
    }
    let entries = map
        .into_iter()
        .map(|(p, info)| {
            let mut fields = Vec::new();
            if info.path {
                fields.push(("path", Value::Bool(true)));
            }
            if info.all {
                fields.push(("allOutputs", Value::Bool(true)));
            }
            if !info.outputs.is_empty() {
                fields.push((
                    "outputs",
                    Value::list(info.outputs.into_iter().map(|o| Thunk::Val(Value::str(o))).collect()),
                ));
            }
            attr(&p, make_attrs(fields))
        })
        .collect();
    Ok(Value::attrs(Attrs::from_unsorted(entries)))
}

fn prim_append_context(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let s = force_str(ev, &a[0], pos)?;
    let ctx_attrs = force_attrs(ev, &a[1], pos)?;
    let mut ctx = s.ctx.clone();
    for e in ctx_attrs.sorted() {
        let path = e.name.as_str();
        if !is_store_path(path) {
            return eval_error(format!("context key '{path}' is not a store path"), pos);
        }
        let info = force_attrs(ev, &e.value, pos)?;
        if let Some(t) = info.get_str("path") {
            let t = t.clone();
            if matches!(ev.force(&t)?, Value::Bool(true)) {
                ctx.insert(path.to_string());
            }
        }
        if let Some(t) = info.get_str("allOutputs") {
            let t = t.clone();
            if matches!(ev.force(&t)?, Value::Bool(true)) {
                if !path.ends_with(".drv") {
                    return eval_error(
                        format!("tried to add all-outputs context of {path}, which is not a derivation, to a string"),
                        pos,
                    );
                }
                ctx.insert(format!("={path}"));
            }
        }
        if let Some(t) = info.get_str("outputs") {
            let t = t.clone();
            let outs = force_list(ev, &t, pos)?;
            if !outs.is_empty() && !path.ends_with(".drv") {
                return eval_error(
                    format!("tried to add derivation output context of {path}, which is not a derivation, to a string"),
                    pos,
                );
            }
            for o in outs.iter() {
                let o = force_str(ev, o, pos)?;
                ctx.insert(format!("!{}!{path}", o.s));
            }
        }
    }
    Ok(str_value(s.s.clone(), ctx))
}

// ---- hashing

pub fn hash_bytes(algo: &str, data: &[u8]) -> Option<Vec<u8>> {
    use sha2::Digest;
    Some(match algo {
        "md5" => md5::Md5::digest(data).to_vec(),
        "sha1" => sha1::Sha1::digest(data).to_vec(),
        "sha256" => sha2::Sha256::digest(data).to_vec(),
        "sha512" => sha2::Sha512::digest(data).to_vec(),
        _ => return None,
    })
}

fn prim_hash_string(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let algo = force_str(ev, &a[0], pos)?;
    let s = force_str(ev, &a[1], pos)?;
    match hash_bytes(&algo.s, s.s.as_bytes()) {
        Some(h) => Ok(Value::str(crate::store::hash::hex(&h))),
        None => eval_error(
            format!(
                "unknown hash algorithm '{}', expect 'blake3', 'md5', 'sha1', 'sha256', or 'sha512'",
                algo.s
            ),
            pos,
        ),
    }
}

fn prim_hash_file(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let algo = force_str(ev, &a[0], pos)?;
    let (path, _) = force_path(ev, &a[1], pos)?;
    let data = ev
        .io
        .read_file(Path::new(&path))
        .map_err(|e| EvalError::new(ErrorKind::Eval, format!("opening file '{path}': {e}"), pos))?;
    match hash_bytes(&algo.s, &data) {
        Some(h) => Ok(Value::str(crate::store::hash::hex(&h))),
        None => eval_error(format!("unknown hash algorithm '{}'", algo.s), pos),
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = B64.iter().position(|&x| x == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn hash_len(algo: &str) -> Option<usize> {
    Some(match algo {
        "md5" => 16,
        "sha1" => 20,
        "sha256" => 32,
        "sha512" => 64,
        _ => return None,
    })
}

/// Parses a hash in any of Nix's notations (hex, nix32, base64, SRI); `algo` may be empty only for SRI.
pub fn parse_hash(text: &str, algo: Option<&str>) -> std::result::Result<(String, Vec<u8>), String> {
    let (algo, body, sri) = match text.split_once('-') {
        Some((a, b)) if hash_len(a).is_some() => {
            if let Some(given) = algo
                && given != a
            {
                return Err(format!("hash '{text}' should have type '{given}'"));
            }
            (a.to_string(), b, true)
        }
        _ => match text.split_once(':') {
            Some((a, b)) if hash_len(a).is_some() => (a.to_string(), b, false),
            _ => match algo {
                Some(a) => (a.to_string(), text, false),
                None => {
                    return Err(format!(
                        "hash '{text}' does not include a type, nor is the type otherwise known from context"
                    ));
                }
            },
        },
    };
    let len = hash_len(&algo).ok_or_else(|| format!("unknown hash algorithm '{algo}'"))?;
    let bytes = if sri {
        base64_decode(body).filter(|b| b.len() == len)
    } else if body.len() == len * 2 {
        (0..len)
            .map(|i| u8::from_str_radix(&body[2 * i..2 * i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()
    } else if body.len() == crate::store::hash::nix32_len(len) {
        crate::store::hash::nix32_decode(body, len).ok()
    } else if body.len() == len.div_ceil(3) * 4 {
        base64_decode(body).filter(|b| b.len() == len)
    } else {
        None
    };
    bytes
        .map(|b| (algo.clone(), b))
        .ok_or_else(|| format!("invalid {} hash '{text}'", if sri { "SRI" } else { algo.as_str() }))
}

fn prim_convert_hash(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let args = force_attrs(ev, &a[0], pos)?;
    let get = |ev: &mut Evaluator, name: &str| -> Result<Option<String>> {
        match args.get_str(name) {
            Some(t) => {
                let t = t.clone();
                Ok(Some(force_str(ev, &t, pos)?.s.clone()))
            }
            None => Ok(None),
        }
    };
    let hash = get(ev, "hash")?.ok_or_else(|| EvalError::new(ErrorKind::Eval, "attribute 'hash' missing", pos))?;
    let algo = get(ev, "hashAlgo")?;
    let format = get(ev, "toHashFormat")?
        .ok_or_else(|| EvalError::new(ErrorKind::Eval, "attribute 'toHashFormat' missing", pos))?;
    let (algo, bytes) = parse_hash(&hash, algo.as_deref()).map_err(|m| EvalError::new(ErrorKind::Eval, m, pos))?;
    Ok(Value::str(
        format_hash(&algo, &bytes, &format).map_err(|m| EvalError::new(ErrorKind::Eval, m, pos))?,
    ))
}

pub fn format_hash(algo: &str, bytes: &[u8], format: &str) -> std::result::Result<String, String> {
    Ok(match format {
        "base16" => crate::store::hash::hex(bytes),
        "nix32" | "base32" => crate::store::hash::nix32_encode(bytes),
        "base64" => base64_encode(bytes),
        "sri" => format!("{algo}-{}", base64_encode(bytes)),
        other => {
            return Err(format!(
                "unknown hash format '{other}', expect 'base16', 'base32', 'base64', or 'sri'"
            ));
        }
    })
}

// ---- files and the store

fn prim_import(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let (path, _) = force_path(ev, &a[0], pos)?;
    ev.import_file(&path, pos)
}

fn prim_scoped_import(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let scope = force_attrs(ev, &a[0], pos)?;
    let (path, _) = force_path(ev, &a[1], pos)?;
    let mut file = PathBuf::from(&path);
    if ev.io.is_dir(&file) {
        file.push("default.nix");
    }
    let text = ev
        .io
        .read_file(&file)
        .map_err(|e| EvalError::new(ErrorKind::Eval, format!("opening file '{}': {e}", file.display()), pos))?;
    let text = String::from_utf8_lossy(&text).into_owned();
    let names: Vec<Sym> = scope.entries().iter().map(|e| e.name).collect();
    let base = file.parent().unwrap_or(Path::new("/")).to_path_buf();
    let expr = ev.compile_source(&text, &file.display().to_string(), true, &base, Some(names))?;
    let env = Env::new(None, scope.entries().iter().map(|e| e.value.clone()).collect());
    ev.eval(expr, &env)
}

fn prim_find_file(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let list = force_list(ev, &a[0], pos)?;
    let name = force_str(ev, &a[1], pos)?;
    for t in list.iter() {
        let entry = force_attrs(ev, t, pos)?;
        let prefix = match entry.get_str("prefix") {
            Some(p) => {
                let p = p.clone();
                force_str(ev, &p, pos)?.s.clone()
            }
            None => String::new(),
        };
        let path = match entry.get_str("path") {
            Some(p) => p.clone(),
            None => return eval_error("attribute 'path' missing", pos),
        };
        let path = ev.force(&path)?;
        let path = ev
            .coerce_to_string(
                &path,
                pos,
                Coerce {
                    more: false,
                    copy: false,
                },
            )?
            .s;
        let rest = if prefix.is_empty() {
            Some(name.s.as_str())
        } else if name.s == prefix {
            Some("")
        } else {
            name.s.strip_prefix(&format!("{prefix}/"))
        };
        let Some(rest) = rest else { continue };
        let candidate = if rest.is_empty() {
            path.clone()
        } else {
            format!("{path}/{rest}")
        };
        let candidate = if candidate.starts_with('/') {
            candidate
        } else {
            format!(
                "{}/{candidate}",
                std::env::current_dir()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default()
            )
        };
        if ev.io.exists(Path::new(&candidate)) {
            return Ok(Value::Path(canon_path(&candidate).into()));
        }
    }
    if let Some(rest) = name.s.strip_prefix("nix/")
        && let Some(path) = super::derivation::corepkg(ev, rest)?
    {
        return Ok(Value::Path(path.into()));
    }
    if ev.internal_files.contains_key(name.s.as_str()) {
        return Ok(Value::Path(
            format!("{}/{}", super::derivation::INTERNAL, name.s).into(),
        ));
    }
    eval_error(
        format!(
            "file '{}' was not found in the Nix search path (add it using $NIX_PATH or -I)",
            name.s
        ),
        pos,
    )
}

fn prim_path_exists(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let v = ev.force(&a[0])?;
    let s = ev.coerce_to_string(
        &v,
        pos,
        Coerce {
            more: false,
            copy: false,
        },
    )?;
    if !s.s.starts_with('/') {
        return eval_error(format!("string '{}' doesn't represent an absolute path", s.s), pos);
    }
    // A trailing slash asks for a directory.
    let p = canon_path(&s.s);
    if let Some(kind) = internal_file_kind(ev, &p) {
        return Ok(Value::Bool(!s.s.ends_with('/') || kind == "directory"));
    }
    let exists = if s.s.ends_with('/') && s.s.len() > 1 {
        ev.io.is_dir(Path::new(&p))
    } else {
        ev.io.exists(Path::new(&p))
    };
    Ok(Value::Bool(exists))
}

fn prim_read_file(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let (path, _) = force_path(ev, &a[0], pos)?;
    let data = ev
        .io
        .read_file(Path::new(&path))
        .map_err(|e| EvalError::new(ErrorKind::Eval, format!("opening file '{path}': {e}"), pos))?;
    let mut ctx = Context::new();
    if let Some(sp) = store_path_of(&path) {
        ctx.insert(sp);
    }
    Ok(str_value(String::from_utf8_lossy(&data).into_owned(), ctx))
}

/// The kind of a path under `/«nix-internal»` (rixos' built-in Nix files, which `import` finds there):
/// `regular` for a file, `directory` for a folder of them; None for anything else.
fn internal_file_kind(ev: &Evaluator, path: &str) -> Option<&'static str> {
    let name = path.strip_prefix(super::derivation::INTERNAL)?.strip_prefix('/')?;
    if ev.internal_files.contains_key(name) {
        return Some("regular");
    }
    let folder = format!("{}/", name.trim_end_matches('/'));
    ev.internal_files
        .keys()
        .any(|k| k.starts_with(&folder))
        .then_some("directory")
}

fn prim_read_file_type(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let (path, _) = force_path(ev, &a[0], pos)?;
    if let Some(kind) = internal_file_kind(ev, &path) {
        return Ok(Value::str(kind));
    }
    let kind = ev
        .io
        .file_kind(Path::new(&path))
        .map_err(|e| EvalError::new(ErrorKind::Eval, format!("getting status of '{path}': {e}"), pos))?;
    Ok(Value::str(kind.name()))
}

fn prim_read_dir(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let (path, _) = force_path(ev, &a[0], pos)?;
    let entries = ev
        .io
        .read_dir(Path::new(&path))
        .map_err(|e| EvalError::new(ErrorKind::Eval, format!("reading directory '{path}': {e}"), pos))?;
    Ok(Value::attrs(Attrs::from_unsorted(
        entries
            .into_iter()
            .map(|(n, k)| attr(&n, Value::str(k.name())))
            .collect(),
    )))
}

fn prim_placeholder(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let out = force_str(ev, &a[0], pos)?;
    let digest = crate::store::hash::sha256(format!("nix-output:{}", out.s).as_bytes());
    Ok(Value::str(format!("/{}", crate::store::hash::nix32_encode(&digest))))
}

fn prim_store_path(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let (path, _) = force_path(ev, &a[0], pos)?;
    let Some(sp) = store_path_of(&path) else {
        return eval_error(format!("path '{path}' is not in the Nix store"), pos);
    };
    Ok(str_value(path, BTreeSet::from([sp])))
}

fn prim_to_file(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let name = force_str(ev, &a[0], pos)?;
    let v = ev.force(&a[1])?;
    let contents = ev.coerce_to_string(&v, pos, STRICT_STR)?;
    let mut refs = Vec::new();
    for c in &contents.ctx {
        if c.starts_with('=') || c.starts_with('!') {
            return eval_error(
                format!(
                    "files created by 'builtins.toFile' may not reference derivations, but '{}' references '{}'",
                    name.s,
                    c.trim_start_matches('=')
                ),
                pos,
            );
        }
        refs.push(c.clone());
    }
    let path = ev
        .io
        .add_text(&name.s, &contents.s, &refs)
        .map_err(|e| EvalError::new(ErrorKind::Eval, format!("in 'toFile': {e:#}"), pos))?;
    Ok(str_value(path.clone(), BTreeSet::from([path])))
}

/// Walks `root`, asking `filter` (path, type) about every entry; gives the relative paths kept.
fn filtered_paths(ev: &mut Evaluator, root: &str, filter: &Value, pos: Pos) -> Result<HashSet<PathBuf>> {
    let mut keep = HashSet::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = Path::new(root).join(&rel);
        let entries = ev.io.read_dir(&dir).map_err(|e| {
            EvalError::new(
                ErrorKind::Eval,
                format!("reading directory '{}': {e}", dir.display()),
                pos,
            )
        })?;
        for (name, kind) in entries {
            let child = rel.join(&name);
            let full = format!("{root}/{}", child.display());
            let partial = ev.call(filter.clone(), Thunk::Val(Value::str(full)), pos)?;
            let r = ev.call(partial, Thunk::Val(Value::str(kind.name())), pos)?;
            if ev.expect_bool(&r, pos, "")? {
                if kind == super::io::FileKind::Directory {
                    stack.push(child.clone());
                }
                keep.insert(child);
            }
        }
    }
    Ok(keep)
}

fn add_to_store(
    ev: &mut Evaluator,
    path: &str,
    name: &str,
    filter: Option<&Value>,
    recursive: bool,
    pos: Pos,
) -> Result<String> {
    let only = match filter {
        Some(f) if ev.io.is_dir(Path::new(path)) => Some(filtered_paths(ev, path, f, pos)?),
        _ => None,
    };
    ev.io
        .add_path(Path::new(path), name, only.as_ref(), recursive)
        .map_err(|e| EvalError::new(ErrorKind::Eval, format!("adding '{path}' to the store: {e:#}"), pos))
}

fn prim_filter_source(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let filter = force_fn(ev, &a[0], pos)?;
    let (path, _) = force_path(ev, &a[1], pos)?;
    let name = path.rsplit('/').next().unwrap_or("source").to_string();
    let sp = add_to_store(ev, &path, &name, Some(&filter), true, pos)?;
    Ok(str_value(sp.clone(), BTreeSet::from([sp])))
}

fn prim_path(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let args = force_attrs(ev, &a[0], pos)?;
    let path_t = args
        .get_str("path")
        .cloned()
        .ok_or_else(|| EvalError::new(ErrorKind::Eval, "attribute 'path' missing in call to 'path'", pos))?;
    let (path, _) = force_path(ev, &path_t, pos)?;
    let name = match args.get_str("name") {
        Some(t) => {
            let t = t.clone();
            force_str(ev, &t, pos)?.s.clone()
        }
        None => path.rsplit('/').next().unwrap_or("source").to_string(),
    };
    let filter = match args.get_str("filter") {
        Some(t) => {
            let t = t.clone();
            Some(force_fn(ev, &t, pos)?)
        }
        None => None,
    };
    let recursive = match args.get_str("recursive") {
        Some(t) => {
            let t = t.clone();
            let v = ev.force(&t)?;
            ev.expect_bool(&v, pos, "")?
        }
        None => true,
    };
    let sp = add_to_store(ev, &path, &name, filter.as_ref(), recursive, pos)?;
    if let Some(t) = args.get_str("sha256") {
        let t = t.clone();
        let expected = force_str(ev, &t, pos)?;
        let (_, want) = parse_hash(&expected.s, Some("sha256")).map_err(|m| EvalError::new(ErrorKind::Eval, m, pos))?;
        let real = crate::store::path::fixed_output_path(
            &name,
            if recursive {
                crate::store::path::FileIngestion::Recursive
            } else {
                crate::store::path::FileIngestion::Flat
            },
            "sha256",
            &want,
        )
        .map_err(|e| EvalError::new(ErrorKind::Eval, e.to_string(), pos))?;
        if real.to_string() != sp {
            return eval_error(
                format!(
                    "hash mismatch in file downloaded from '{path}': expected {}, got {sp}",
                    expected.s
                ),
                pos,
            );
        }
    }
    Ok(str_value(sp.clone(), BTreeSet::from([sp])))
}

/// Adds a primop to `builtins` (also reachable as `__name`), for parts of rixos that extend the language
/// (the Debian package set's index).
pub fn add_builtin(ev: &mut Evaluator, name: &'static str, arity: usize, f: PrimFn) {
    add_builtin_value(ev, name, Thunk::Val(prim(name, arity, f)));
}

/// Adds a constant to `builtins` that `f` computes the first time it is used (its argument is null).
pub fn add_builtin_lazy(ev: &mut Evaluator, name: &'static str, f: PrimFn) {
    add_builtin_value(ev, name, Thunk::apply(prim(name, 1, f), Thunk::Val(Value::Null)));
}

fn add_builtin_value(ev: &mut Evaluator, name: &'static str, value: Thunk) {
    let builtins_sym = Sym::new("builtins");
    let Some(Value::Attrs(old)) = ev.globals.get(&builtins_sym).cloned() else {
        return;
    };
    let mut entries = vec![Attr {
        name: Sym::new(name),
        value,
        pos: Pos::NONE,
    }];
    entries.extend(old.entries().iter().filter(|a| a.name.as_str() != name).cloned());
    let new = Value::attrs(Attrs::from_unsorted(entries));
    // `builtins.builtins` is the set itself: point its knot at the new set.
    if let Some(Thunk::Lazy(cell)) = old.get(builtins_sym) {
        *cell.state.borrow_mut() = super::value::ThunkState::Done(new.clone());
    }
    ev.globals.insert(builtins_sym, new);
}
