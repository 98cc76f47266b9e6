//! The package set `<rixpkgs>`: a function returning an attribute set of every binary package of a channel
//! snapshot, built lazily from the snapshot's compact index.
//!
//! Each package is two derivations: the `.deb`, a fixed-output download (`builtin:fetchurl`, sha256 from the
//! signed index), and its unpacking (`builtin:unpack-deb`), which depends on the unpacked packages its
//! Depends/Pre-Depends resolve to. Debian's dependency graph has cycles (libc6 and libgcc-s1 depend on each
//! other), and derivations cannot, so each strongly connected component of the graph is one derivation
//! with an output per package. Packages that are not part of the shells' own closure also get the shells
//! (dash, bash) and perl as inputs, because Debian lets every package assume its essential packages; the
//! unpack step rewrites `#!/bin/sh` and friends to them.
//!
//! The evaluator sees this through one builtin, `rixosDebianIndex DIR`, installed by `install`.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::rc::Rc;

use anyhow::{Context, Result};

use crate::eval::builtins::{add_builtin, make_attrs};
use crate::eval::error::{ErrorKind, EvalError, Pos};
use crate::eval::eval::Evaluator;
use crate::eval::value::{Attr, Attrs, PrimOp, PrimOpApp, Sym, Thunk, Value};

use super::index::{Index, PackageId};

/// The package set's entry point, written into every channel snapshot.
const DEFAULT_NIX: &str = include_str!("rixpkgs.nix");

/// Packages whose programs run scripts of other packages (`#!/bin/sh`, `#!/usr/bin/perl`, ...).
const SCRIPT_TOOLS: &[&str] = &["dash", "bash", "perl-base"];

/// Writes what a snapshot needs beside its InRelease and Packages.gz: the compact index and `default.nix`.
pub fn write_snapshot_files(dir: &Path, packages: &[u8]) -> Result<()> {
    let text = std::str::from_utf8(packages).context("the Packages index is not UTF-8")?;
    let index = Index::parse("amd64", "Packages", text).context("parsing the Packages index")?;
    index
        .write_cache(&dir.join("index.bin"))
        .context("writing the compact index")?;
    std::fs::write(dir.join("default.nix"), DEFAULT_NIX)?;
    Ok(())
}

/// Adds `rixosDebianIndex` to the evaluator's builtins.
pub fn install(ev: &mut Evaluator) {
    add_builtin(ev, "rixosDebianIndex", 1, prim_index);
}

/// One loaded snapshot: its index and what was worked out about its dependency graph.
struct Loaded {
    index: Index,
    mirror: String,
    /// Resolved dependencies of each package looked at.
    deps: RefCell<HashMap<PackageId, Rc<Vec<PackageId>>>>,
    /// The group (strongly connected component) of each package looked at.
    groups: RefCell<HashMap<PackageId, Rc<Group>>>,
    /// Closures of the script tools and of libc6: packages inside them cannot take those as inputs.
    closures: RefCell<HashMap<&'static str, BTreeSet<PackageId>>>,
}

struct Group {
    members: Vec<PackageId>,
}

thread_local! {
    static LOADED: RefCell<Vec<Rc<Loaded>>> = const { RefCell::new(Vec::new()) };
    static INFO_OP: Rc<PrimOp> = Rc::new(PrimOp { name: "rixosDebianPackage", arity: 2, f: prim_package });
}

fn err(message: String, pos: Pos) -> Box<EvalError> {
    EvalError::new(ErrorKind::Eval, message, pos)
}

/// `rixosDebianIndex DIR`: `{ mirror; packages = { NAME = <info>; ... }; }` for the snapshot in DIR.
fn prim_index(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> crate::eval::error::Result<Value> {
    let (dir, _) = crate::eval::builtins::force_path(ev, &a[0], pos)?;
    let bytes = ev
        .io
        .read_file(&Path::new(&dir).join("index.bin"))
        .map_err(|e| err(format!("reading the package index in {dir}: {e}"), pos))?;
    // A snapshot made by another rixos version may hold another index format: then the index is made again
    // from the snapshot's (verified) Packages file.
    let index = match Index::from_cache_bytes(&bytes) {
        Ok(index) => index,
        Err(cache_error) => {
            let gz = ev.io.read_file(&Path::new(&dir).join("Packages.gz")).map_err(|e| {
                err(
                    format!("the package index in {dir} is unusable ({cache_error}) and: {e}"),
                    pos,
                )
            })?;
            let mut text = String::new();
            std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut text)
                .map_err(|e| err(format!("decompressing {dir}/Packages.gz: {e}"), pos))?;
            Index::parse("amd64", "Packages", &text)
                .map_err(|e| err(format!("the package index in {dir}: {e:#}"), pos))?
        }
    };
    let mirror = ev
        .io
        .read_file(&Path::new(&dir).join("mirror"))
        .map(|m| String::from_utf8_lossy(&m).trim().to_string())
        .map_err(|e| err(format!("reading the mirror of {dir}: {e}"), pos))?;
    let names: Vec<(String, PackageId)> = index.names().map(|(n, id)| (n.to_string(), id)).collect();
    let handle = LOADED.with(|l| {
        let mut l = l.borrow_mut();
        l.push(Rc::new(Loaded {
            index,
            mirror: mirror.clone(),
            deps: RefCell::new(HashMap::new()),
            groups: RefCell::new(HashMap::new()),
            closures: RefCell::new(HashMap::new()),
        }));
        l.len() - 1
    });
    let op = INFO_OP.with(Rc::clone);
    let info = Value::PrimOpApp(Rc::new(PrimOpApp {
        op,
        args: vec![Thunk::Val(Value::Int(handle as i64))],
    }));
    let packages = names
        .into_iter()
        .map(|(name, id)| Attr {
            name: Sym::new(&name),
            value: Thunk::apply(info.clone(), Thunk::Val(Value::Int(id.0 as i64))),
            pos: Pos::NONE,
        })
        .collect();
    Ok(make_attrs(vec![
        ("mirror", Value::str(mirror)),
        ("packages", Value::attrs(Attrs::from_unsorted(packages))),
    ]))
}

fn loaded(handle: i64) -> Rc<Loaded> {
    LOADED.with(|l| l.borrow()[handle as usize].clone())
}

impl Loaded {
    fn deps(&self, id: PackageId) -> Result<Rc<Vec<PackageId>>, String> {
        if let Some(d) = self.deps.borrow().get(&id) {
            return Ok(d.clone());
        }
        let mut chosen: Vec<PackageId> = self
            .index
            .resolve(id)
            .map_err(|e| format!("{e:#}"))?
            .into_iter()
            .map(|(_, dep)| dep)
            .filter(|&dep| dep != id)
            .collect();
        chosen.sort();
        chosen.dedup();
        let chosen = Rc::new(chosen);
        self.deps.borrow_mut().insert(id, chosen.clone());
        Ok(chosen)
    }

    /// The strongly connected component holding `id` (Tarjan's algorithm over what `id` reaches).
    fn group(&self, id: PackageId) -> Result<Rc<Group>, String> {
        if let Some(g) = self.groups.borrow().get(&id) {
            return Ok(g.clone());
        }
        let mut index_of: HashMap<PackageId, usize> = HashMap::new();
        let mut low: HashMap<PackageId, usize> = HashMap::new();
        let mut stack: Vec<PackageId> = Vec::new();
        let mut on_stack: BTreeSet<PackageId> = BTreeSet::new();
        let mut counter = 0;
        // An explicit stack of (node, next child) frames: dependency chains can be long.
        let mut work: Vec<(PackageId, usize)> = vec![(id, 0)];
        index_of.insert(id, 0);
        low.insert(id, 0);
        stack.push(id);
        on_stack.insert(id);
        counter += 1;
        while let Some(&mut (node, ref mut child)) = work.last_mut() {
            let deps = self.deps(node)?;
            if *child < deps.len() {
                let next = deps[*child];
                *child += 1;
                if self.groups.borrow().contains_key(&next) {
                    continue; // already in a finished component
                }
                if let Some(&i) = index_of.get(&next) {
                    if on_stack.contains(&next) {
                        let l = low[&node].min(i);
                        low.insert(node, l);
                    }
                    continue;
                }
                index_of.insert(next, counter);
                low.insert(next, counter);
                counter += 1;
                stack.push(next);
                on_stack.insert(next);
                work.push((next, 0));
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                let l = low[&parent].min(low[&node]);
                low.insert(parent, l);
            }
            if low[&node] == index_of[&node] {
                let mut members = Vec::new();
                loop {
                    let m = stack.pop().expect("the component's nodes are on the stack");
                    on_stack.remove(&m);
                    members.push(m);
                    if m == node {
                        break;
                    }
                }
                members.sort_by(|a, b| self.index.name(*a).cmp(self.index.name(*b)));
                let group = Rc::new(Group { members });
                let mut groups = self.groups.borrow_mut();
                for m in &group.members {
                    groups.insert(*m, group.clone());
                }
            }
        }
        Ok(self.groups.borrow()[&id].clone())
    }

    /// Everything `roots` depend on, themselves included (remembered under `key`).
    fn closure(&self, key: &'static str, roots: &[&str]) -> Result<BTreeSet<PackageId>, String> {
        if let Some(c) = self.closures.borrow().get(key) {
            return Ok(c.clone());
        }
        let roots: Vec<PackageId> = roots.iter().filter_map(|t| self.index.newest(t)).collect();
        let seen: BTreeSet<PackageId> = self
            .index
            .closure(&roots)
            .map_err(|e| format!("{e:#}"))?
            .into_iter()
            .collect();
        self.closures.borrow_mut().insert(key, seen.clone());
        Ok(seen)
    }
}

/// A store path name from a Debian name and version (`1:2.3~rc1` -> `2.3_rc1`, epochs dropped).
fn store_name(name: &str, version: &str) -> String {
    let version = version.split_once(':').map_or(version, |(_, v)| v);
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "+-._?=".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!("{}-{}", clean(name), clean(version))
}

/// The attributes of package `id`: `{ name; version; storeName; filename; sha256; output; group; ... }`.
fn prim_package(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> crate::eval::error::Result<Value> {
    let handle = match ev.force(&a[0])? {
        Value::Int(h) => h,
        _ => return Err(err("rixosDebianPackage: bad handle".into(), pos)),
    };
    let id = match ev.force(&a[1])? {
        Value::Int(i) => PackageId(i as u32),
        _ => return Err(err("rixosDebianPackage: bad package".into(), pos)),
    };
    let set = loaded(handle);
    let describe = |p: PackageId| {
        let pkg = set.index.package(p);
        make_attrs(vec![
            ("name", Value::str(pkg.name())),
            ("version", Value::str(pkg.version())),
            ("storeName", Value::str(store_name(pkg.name(), pkg.version()))),
            ("filename", Value::str(pkg.filename())),
            ("sha256", Value::str(pkg.sha256_hex())),
            (
                "debName",
                Value::str(format!("{}.deb", store_name(pkg.name(), pkg.version()))),
            ),
        ])
    };
    let group = set.group(id).map_err(|m| err(m, pos))?;
    let in_group: BTreeSet<PackageId> = group.members.iter().copied().collect();
    let mut external: BTreeSet<String> = BTreeSet::new();
    for m in &group.members {
        for d in set.deps(*m).map_err(|e| err(e, pos))?.iter() {
            if !in_group.contains(d) {
                external.insert(set.index.name(*d).to_string());
            }
        }
    }
    let tools = set.closure("tools", SCRIPT_TOOLS).map_err(|m| err(m, pos))?;
    let needs_tools = !group.members.iter().any(|m| tools.contains(m));
    let libc = set.closure("libc", &["libc6"]).map_err(|m| err(m, pos))?;
    let below_libc = group.members.iter().any(|m| libc.contains(m));
    let single = group.members.len() == 1;
    let first = set.index.package(group.members[0]);
    let group_name = if single {
        store_name(first.name(), first.version())
    } else {
        format!("{}-group", store_name(first.name(), first.version()))
    };
    let outputs: Vec<String> = if single {
        vec!["out".to_string()]
    } else {
        group.members.iter().map(|m| output_name(set.index.name(*m))).collect()
    };
    let pkg = set.index.package(id);
    let output = if single {
        "out".to_string()
    } else {
        output_name(pkg.name())
    };
    let strings = |v: Vec<String>| Value::list(v.into_iter().map(|s| Thunk::Val(Value::str(s))).collect());
    let mut fields = BTreeMap::new();
    fields.insert("name", Value::str(pkg.name()));
    fields.insert("version", Value::str(pkg.version()));
    fields.insert("description", Value::str(pkg.description()));
    fields.insert("output", Value::str(output));
    fields.insert("mirror", Value::str(set.mirror.clone()));
    fields.insert("deb", describe(id));
    fields.insert(
        "group",
        make_attrs(vec![
            ("name", Value::str(group_name)),
            ("outputs", strings(outputs)),
            (
                "members",
                Value::list(group.members.iter().map(|m| Thunk::Val(describe(*m))).collect()),
            ),
            ("depends", strings(external.into_iter().collect())),
            ("needsTools", Value::Bool(needs_tools)),
            // libc6 and what it depends on cannot take libc6 as an input; they find the loader in
            // themselves, if they need it at all.
            ("belowLibc", Value::Bool(below_libc)),
        ]),
    );
    Ok(make_attrs(fields.into_iter().collect()))
}

/// An output name for a package inside a group (`libstdc++6` -> `libstdc__6`; outputs must be plain names).
fn output_name(package: &str) -> String {
    package
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_names_drop_epochs_and_odd_characters() {
        assert_eq!(store_name("libc6", "2.36-9+deb12u4"), "libc6-2.36-9+deb12u4");
        assert_eq!(
            store_name("openssh-server", "1:9.2p1-2+deb12u3"),
            "openssh-server-9.2p1-2+deb12u3"
        );
        assert_eq!(store_name("x", "1.0~rc1"), "x-1.0_rc1");
        assert_eq!(output_name("libstdc++6"), "libstdc__6");
    }
}
