//! The built-in functions and constants (`builtins.*` and the globals Nix defines).
//!
//! Each primop takes its arguments unforced and forces what it needs, so lazy ones (`tryEval`,
//! `addErrorContext`) are ordinary primops. Functions over lists and sets return lazy elements where Nix does
//! (`map`, `genList`, `mapAttrs`), so `map f` over a million elements does not call `f` until asked.

mod attrs;
mod context;
mod control;
mod files;
mod hashing;
mod lists;
mod numbers;
mod store;
mod strings;
mod versions;

pub use hashing::{base64_decode, base64_encode, format_hash, hash_bytes, parse_hash};
pub use versions::compare_versions;

use std::path::Path;
use std::rc::Rc;

use attrs::{
    prim_attr_names, prim_attr_values, prim_cat_attrs, prim_get_attr, prim_has_attr, prim_intersect_attrs,
    prim_list_to_attrs, prim_map_attrs, prim_remove_attrs, prim_unsafe_get_attr_pos, prim_zip_attrs_with,
};
use context::{
    prim_add_drv_output_dependencies, prim_append_context, prim_discard_context, prim_discard_output_dependency,
    prim_get_context, prim_has_context,
};
use control::{
    is_type, prim_abort, prim_add_error_context, prim_deep_seq, prim_function_args, prim_seq, prim_throw, prim_trace,
    prim_try_eval, prim_type_of, prim_warn,
};
use files::{
    prim_find_file, prim_get_env, prim_import, prim_path_exists, prim_read_dir, prim_read_file, prim_read_file_type,
    prim_scoped_import, prim_to_path,
};
use hashing::{prim_convert_hash, prim_hash_file, prim_hash_string};
use lists::{
    any_all, prim_concat_lists, prim_concat_map, prim_elem, prim_elem_at, prim_filter, prim_foldl, prim_gen_list,
    prim_generic_closure, prim_group_by, prim_head, prim_length, prim_map, prim_partition, prim_sort, prim_tail,
};
use numbers::{arith, bits, prim_less_than, round};
use store::{prim_filter_source, prim_path, prim_placeholder, prim_store_path, prim_to_file};
use strings::{
    prim_base_name_of, prim_concat_strings_sep, prim_dir_of, prim_replace_strings, prim_string_length, prim_substring,
    prim_to_string,
};
use versions::{prim_compare_versions, prim_parse_drv_name, prim_split_version};

use super::compile::BinOp;
use super::error::{Pos, Result, eval_error};
use super::eval::{Coerce, Evaluator};
use super::io::STORE_DIR;
use super::value::{Attr, Attrs, Context, NixStr, PrimFn, PrimOp, PrimOpApp, Sym, Thunk, Value};

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
