//! `derivationStrict`: a set of attributes to a `.drv` in the store, with its output paths computed exactly as
//! Nix computes them; and the fetchers, which are fixed-output derivations built by `builtin:fetchurl`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use super::builtins::{make_attrs, parse_hash};
use super::error::{ErrorKind, EvalError, Pos, Result, eval_error};
use super::eval::{Coerce, Evaluator};
use super::value::{Context, Thunk, Value};
use crate::store::derivation::{Derivation, DerivationError, Output};
use crate::store::hash::hex;

const DRV_STR: Coerce = Coerce { more: true, copy: true };

/// hashDerivationModulo of a derivation the evaluator wrote or can read, remembered per path.
fn drv_modulo(ev: &mut Evaluator, path: &str, pos: Pos) -> Result<[u8; 32]> {
    if let Some(h) = ev.drv_modulo.get(path) {
        return Ok(*h);
    }
    let drv = match ev.drvs.get(path) {
        Some(d) => d.clone(),
        None => {
            let bytes = ev
                .io
                .read_file(Path::new(path))
                .map_err(|e| EvalError::new(ErrorKind::Eval, format!("reading derivation '{path}': {e}"), pos))?;
            let text = String::from_utf8_lossy(&bytes).into_owned();
            Derivation::parse(&text, path).map_err(|e| EvalError::new(ErrorKind::Eval, e.to_string(), pos))?
        }
    };
    let mut inputs = HashMap::new();
    for input in drv.input_drvs.keys() {
        inputs.insert(input.clone(), drv_modulo(ev, input, pos)?);
    }
    let h = drv
        .hash_modulo(&mut |p| lookup(&inputs, p))
        .map_err(|e| EvalError::new(ErrorKind::Eval, e.to_string(), pos))?;
    ev.drv_modulo.insert(path.to_string(), h);
    ev.drvs.insert(path.to_string(), drv);
    Ok(h)
}

fn lookup(map: &HashMap<String, [u8; 32]>, path: &str) -> std::result::Result<[u8; 32], DerivationError> {
    map.get(path).copied().ok_or_else(|| DerivationError::Input {
        drv: String::new(),
        input: path.to_string(),
        message: "not known to this evaluation".to_string(),
    })
}

/// The derivations a `.drv` depends on, itself included, for `=` (all outputs) contexts.
fn drv_closure(ev: &mut Evaluator, path: &str, pos: Pos, out: &mut BTreeSet<String>) -> Result<()> {
    if !out.insert(path.to_string()) {
        return Ok(());
    }
    drv_modulo(ev, path, pos)?;
    let drv = ev.drvs.get(path).cloned().expect("read by drv_modulo");
    for input in drv.input_drvs.keys() {
        drv_closure(ev, input, pos, out)?;
    }
    for src in &drv.input_srcs {
        out.insert(src.clone());
    }
    Ok(())
}

pub fn prim_derivation_strict(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let attrs = ev.force(&a[0])?;
    let attrs = ev.expect_attrs(&attrs, pos)?;
    let name_t = attrs
        .get(ev.syms.name)
        .cloned()
        .ok_or_else(|| EvalError::new(ErrorKind::Eval, "required attribute 'name' missing", pos))?;
    let name_v = ev.force(&name_t)?;
    let name = ev.force_string_noctx(&name_v, pos)?;
    let drv_name_err = |m: String| EvalError::new(ErrorKind::Eval, m, pos);
    if let Err(e) = crate::store::path::check_name(&name) {
        return Err(drv_name_err(format!(
            "invalid derivation name: {e}. Please pass a different 'name'."
        )));
    }
    if name.ends_with(".drv") {
        return Err(drv_name_err(format!(
            "invalid derivation name '{name}': names ending in '.drv' are not allowed. Please pass a different 'name'."
        )));
    }
    let get_bool = |ev: &mut Evaluator, key: &str| -> Result<bool> {
        match attrs.get_str(key) {
            Some(t) => {
                let t = t.clone();
                let v = ev.force(&t)?;
                ev.expect_bool(&v, pos, "")
            }
            None => Ok(false),
        }
    };
    let ignore_nulls = get_bool(ev, "__ignoreNulls")?;
    let structured = get_bool(ev, "__structuredAttrs")?;
    if get_bool(ev, "__contentAddressed")? {
        return eval_error(
            format!("experimental Nix feature 'ca-derivations' is disabled (in derivation '{name}')"),
            pos,
        );
    }
    if get_bool(ev, "__impure")? {
        return eval_error(
            format!("experimental Nix feature 'impure-derivations' is disabled (in derivation '{name}')"),
            pos,
        );
    }

    let mut drv = Derivation::default();
    let mut ctx = Context::new();
    let mut json = String::from("{");
    let mut outputs: Vec<String> = vec!["out".to_string()];
    let (mut hash, mut hash_algo, mut hash_mode) = (None, None, String::from("flat"));
    for attr in attrs.sorted() {
        let key = attr.name.as_str();
        if key == "__ignoreNulls" || (structured && key == "__structuredAttrs") {
            continue;
        }
        let v = ev.force(&attr.value).map_err(|e| {
            ev.frame(
                e,
                attr.pos,
                format!("while evaluating the attribute '{key}' of derivation '{name}'"),
            )
        })?;
        if ignore_nulls && matches!(v, Value::Null) {
            continue;
        }
        let in_attr = |ev: &Evaluator, e: Box<EvalError>| {
            ev.frame(
                e,
                attr.pos,
                format!("while evaluating the attribute '{key}' of derivation '{name}'"),
            )
        };
        if key == "args" {
            let list = ev.expect_list(&v, pos).map_err(|e| in_attr(ev, e))?;
            for t in list.iter() {
                let x = ev.force(t)?;
                let s = ev.coerce_to_string(&x, pos, DRV_STR).map_err(|e| in_attr(ev, e))?;
                ctx.extend(s.ctx);
                drv.args.push(s.s);
            }
            continue;
        }
        let text = if structured {
            if json.len() > 1 {
                json.push(',');
            }
            super::json::json_string(&mut json, key);
            json.push(':');
            let mut inner = String::new();
            super::json::to_json(ev, &v, pos, &mut inner, &mut ctx).map_err(|e| in_attr(ev, e))?;
            json.push_str(&inner);
            match &v {
                Value::Str(s) => Some(s.s.clone()),
                _ => None,
            }
        } else {
            let s = ev.coerce_to_string(&v, pos, DRV_STR).map_err(|e| in_attr(ev, e))?;
            ctx.extend(s.ctx.iter().cloned());
            drv.env.insert(key.to_string(), s.s.clone());
            Some(s.s)
        };
        match key {
            "builder" => drv.builder = text.unwrap_or_default(),
            "system" => drv.system = text.unwrap_or_default(),
            "outputHash" => hash = text,
            "outputHashAlgo" => hash_algo = text,
            "outputHashMode" => hash_mode = text.unwrap_or_default(),
            "outputs" => {
                let names: Vec<String> = match (&v, structured) {
                    (Value::List(items), true) => {
                        let mut names = Vec::new();
                        for t in items.iter() {
                            let x = ev.force(t)?;
                            names.push(ev.force_string_noctx(&x, pos)?);
                        }
                        names
                    }
                    _ => text
                        .unwrap_or_default()
                        .split_whitespace()
                        .map(str::to_string)
                        .collect(),
                };
                let mut seen = BTreeSet::new();
                for n in &names {
                    if n == "drv" || n == "drvPath" || crate::store::path::check_name(n).is_err() {
                        return eval_error(format!("invalid derivation output name '{n}'"), pos);
                    }
                    if !seen.insert(n.clone()) {
                        return eval_error(
                            format!("duplicate derivation output '{n}', in derivation '{name}'"),
                            pos,
                        );
                    }
                }
                if names.is_empty() {
                    return eval_error(format!("derivation '{name}' does not have any outputs"), pos);
                }
                outputs = names;
            }
            _ => {}
        }
    }
    if structured {
        json.push('}');
        drv.env.insert("__json".to_string(), json);
    }
    if drv.builder.is_empty() && attrs.get_str("builder").is_none() {
        return eval_error(
            format!("required attribute 'builder' missing in derivation '{name}'"),
            pos,
        );
    }
    if drv.system.is_empty() && attrs.get_str("system").is_none() {
        return eval_error(
            format!("required attribute 'system' missing in derivation '{name}'"),
            pos,
        );
    }

    // The context says what the derivation depends on.
    for c in &ctx {
        if let Some(p) = c.strip_prefix('=') {
            let mut closure = BTreeSet::new();
            drv_closure(ev, p, pos, &mut closure)?;
            for q in closure {
                if q.ends_with(".drv") {
                    let outs: BTreeSet<String> = ev
                        .drvs
                        .get(&q)
                        .map(|d| d.outputs.keys().cloned().collect())
                        .unwrap_or_default();
                    drv.input_drvs.entry(q.clone()).or_default().extend(outs);
                }
                drv.input_srcs.insert(q);
            }
        } else if let Some(rest) = c.strip_prefix('!') {
            let (out, p) = rest.split_once('!').unwrap_or((rest, ""));
            drv.input_drvs.entry(p.to_string()).or_default().insert(out.to_string());
        } else {
            drv.input_srcs.insert(c.clone());
        }
    }

    drv.env.insert("name".to_string(), name.clone());
    if let Some(h) = hash {
        if outputs != ["out"] {
            return eval_error(
                format!("multiple outputs are not supported in fixed-output derivations, in derivation '{name}'"),
                pos,
            );
        }
        let algo = hash_algo.filter(|a| !a.is_empty());
        let (algo, bytes) = parse_hash(&h, algo.as_deref()).map_err(|m| EvalError::new(ErrorKind::Eval, m, pos))?;
        let prefix = match hash_mode.as_str() {
            "flat" => "",
            "recursive" | "nar" => "r:",
            other => {
                return eval_error(format!("invalid value '{other}' for 'outputHashMode' attribute"), pos);
            }
        };
        drv.outputs.insert(
            "out".to_string(),
            Output {
                path: String::new(),
                hash_algo: format!("{prefix}{algo}"),
                hash: hex(&bytes),
            },
        );
    } else {
        for o in &outputs {
            drv.outputs.insert(o.clone(), Output::default());
            drv.env.insert(o.clone(), String::new());
        }
    }
    if structured {
        // Structured derivations name their outputs in the environment too.
        for o in &outputs {
            drv.env.entry(o.clone()).or_default();
        }
    }
    let mut inputs = HashMap::new();
    for input in drv.input_drvs.keys().cloned().collect::<Vec<_>>() {
        inputs.insert(input.clone(), drv_modulo(ev, &input, pos)?);
    }
    drv.fill_output_paths(&mut |p| lookup(&inputs, p))
        .map_err(|e| EvalError::new(ErrorKind::Eval, e.to_string(), pos))?;
    let references: Vec<String> = drv.input_srcs.iter().chain(drv.input_drvs.keys()).cloned().collect();
    let drv_path = ev
        .io
        .add_text(&format!("{name}.drv"), &drv.to_aterm(), &references)
        .map_err(|e| EvalError::new(ErrorKind::Eval, format!("writing the derivation '{name}': {e:#}"), pos))?;
    let modulo = drv
        .hash_modulo(&mut |p| lookup(&inputs, p))
        .map_err(|e| EvalError::new(ErrorKind::Eval, e.to_string(), pos))?;
    ev.drv_modulo.insert(drv_path.clone(), modulo);

    let mut fields = vec![(
        "drvPath".to_string(),
        Value::str_ctx(drv_path.clone(), BTreeSet::from([format!("={drv_path}")])),
    )];
    for (o, out) in &drv.outputs {
        fields.push((
            o.clone(),
            Value::str_ctx(out.path.clone(), BTreeSet::from([format!("!{o}!{drv_path}")])),
        ));
    }
    ev.drvs.insert(drv_path, drv);
    Ok(make_attrs(
        fields.iter().map(|(k, v)| (k.as_str(), v.clone())).collect(),
    ))
}

/// Files Nix ships inside itself, reachable as `<nix/NAME>`: gives the path `import` finds them at.
pub fn corepkg(ev: &mut Evaluator, name: &str) -> Result<Option<String>> {
    ev.internal_files.entry(format!("nix/{name}")).or_insert(match name {
        "fetchurl.nix" => FETCHURL_NIX,
        _ => return Ok(None),
    });
    Ok(Some(format!("{INTERNAL}/nix/{name}")))
}

/// Where files built into rixos (Nix's corepkgs, rixos' own Nix libraries) appear as paths.
pub const INTERNAL: &str = "/«nix-internal»";

/// `<nix/fetchurl.nix>`: a fixed-output derivation that `builtin:fetchurl` realises.
const FETCHURL_NIX: &str = r#"
{ system ? "", url, hash ? "", sha256 ? "", sha1 ? "", sha512 ? "", md5 ? "", outputHash ? "",
  outputHashAlgo ? "", executable ? false, unpack ? false, name ? baseNameOf (toString url), impure ? false }:
derivation ({
  builder = "builtin:fetchurl";
  inherit name url executable unpack;
  system = "builtin";
  outputHashMode = if unpack || executable then "recursive" else "flat";
  preferLocalBuild = true;
  impureEnvVars = [ "http_proxy" "https_proxy" "ftp_proxy" "all_proxy" "no_proxy" ];
  urls = [ url ];
} // (if impure then { __impure = true; } else {
  outputHashAlgo =
    if hash != "" then ""
    else if outputHashAlgo != "" then outputHashAlgo
    else if sha512 != "" then "sha512" else if sha256 != "" then "sha256"
    else if sha1 != "" then "sha1" else "md5";
  outputHash =
    if hash != "" then hash
    else if outputHash != "" then outputHash
    else if sha512 != "" then sha512 else if sha256 != "" then sha256
    else if sha1 != "" then sha1 else md5;
}))
"#;

/// The url, name and hash of a fetcher call: a string (the url alone) or a set.
fn fetch_args(ev: &mut Evaluator, a: &Thunk, pos: Pos, what: &str) -> Result<(String, Option<String>, Option<String>)> {
    let v = ev.force(a)?;
    match &v {
        Value::Str(s) => Ok((s.s.clone(), None, None)),
        Value::Attrs(attrs) => {
            let mut get = |key: &str| -> Result<Option<String>> {
                match attrs.get_str(key) {
                    Some(t) => {
                        let t = t.clone();
                        let x = ev.force(&t)?;
                        Ok(Some(ev.force_string_noctx(&x, pos)?))
                    }
                    None => Ok(None),
                }
            };
            let url = get("url")?
                .ok_or_else(|| EvalError::new(ErrorKind::Eval, format!("'url' argument required for '{what}'"), pos))?;
            let name = get("name")?;
            let hash = match get("sha256")? {
                Some(h) => Some(h),
                None => get("hash")?,
            };
            Ok((url, name, hash))
        }
        other => eval_error(
            format!("expected a set or a string but found {}", other.describe()),
            pos,
        ),
    }
}

fn fetch(ev: &mut Evaluator, a: &[Thunk], pos: Pos, what: &str, unpack: bool) -> Result<Value> {
    let (url, name, hash) = fetch_args(ev, &a[0], pos, what)?;
    let Some(hash) = hash else {
        return eval_error(
            format!("in pure evaluation, '{what}' requires a 'sha256' (or 'hash') for '{url}'"),
            pos,
        );
    };
    let default_name = if unpack {
        "source".to_string()
    } else {
        url.rsplit('/').next().unwrap_or("download").to_string()
    };
    let name = name.unwrap_or(default_name);
    let mut fields: BTreeMap<&str, Value> = BTreeMap::new();
    fields.insert("url", Value::str(url));
    fields.insert("sha256", Value::str(hash));
    fields.insert("name", Value::str(name));
    fields.insert("unpack", Value::Bool(unpack));
    let args = make_attrs(fields.into_iter().collect());
    let path = corepkg(ev, "fetchurl.nix")?.expect("fetchurl.nix is built in");
    let fetchurl = ev.import_file(&path, pos)?;
    let drv = ev.call(fetchurl, Thunk::Val(args), pos)?;
    let drv = ev.expect_attrs(&drv, pos)?;
    let out = drv.get(ev.syms.out_path).cloned().expect("a derivation has an outPath");
    ev.force(&out)
}

pub fn prim_fetchurl(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    fetch(ev, a, pos, "fetchurl", false)
}

pub fn prim_fetch_tarball(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    fetch(ev, a, pos, "fetchTarball", true)
}
