//! The module system: NixOS-style modules evaluated into a configuration. The module system itself, the option
//! types and `lib` are written in Nix (`lib.nix`, `types.nix`, `modules.nix`, built into the binary and
//! reachable as `<rixos/lib.nix>`); this module installs them into an evaluator, with the builtins they
//! need from Rust (`rixosNearest`, the closest option name for "did you mean"; `rixosOptionRead`, which
//! notes each option whose value is forced, so a test can find declared options nothing reads).

use std::cell::RefCell;
use std::collections::BTreeSet;

use crate::eval::builtins::{add_builtin, add_builtin_lazy, str_value};
use crate::eval::error::{Pos, Result};
use crate::eval::eval::{Evaluator, levenshtein};
use crate::eval::value::{Thunk, Value};

const FILES: &[(&str, &str)] = &[
    ("rixos/lib.nix", include_str!("lib.nix")),
    ("rixos/types.nix", include_str!("types.nix")),
    ("rixos/modules.nix", include_str!("modules.nix")),
    ("rixos/nixos/eval-config.nix", include_str!("nixos/eval-config.nix")),
    ("rixos/nixos/module-list.nix", include_str!("nixos/module-list.nix")),
    ("rixos/nixos/misc.nix", include_str!("nixos/misc.nix")),
    ("rixos/nixos/boot.nix", include_str!("nixos/boot.nix")),
    ("rixos/nixos/grub.nix", include_str!("nixos/grub.nix")),
    ("rixos/nixos/systemd-boot.nix", include_str!("nixos/systemd-boot.nix")),
    ("rixos/nixos/filesystems.nix", include_str!("nixos/filesystems.nix")),
    ("rixos/nixos/networking.nix", include_str!("nixos/networking.nix")),
    ("rixos/nixos/firewall.nix", include_str!("nixos/firewall.nix")),
    ("rixos/nixos/resolved.nix", include_str!("nixos/resolved.nix")),
    ("rixos/nixos/locale.nix", include_str!("nixos/locale.nix")),
    ("rixos/nixos/console.nix", include_str!("nixos/console.nix")),
    ("rixos/nixos/zones.nix", include_str!("nixos/zones.nix")),
    ("rixos/nixos/users.nix", include_str!("nixos/users.nix")),
    ("rixos/nixos/wrappers.nix", include_str!("nixos/wrappers.nix")),
    ("rixos/nixos/sudo.nix", include_str!("nixos/sudo.nix")),
    ("rixos/nixos/environment.nix", include_str!("nixos/environment.nix")),
    ("rixos/nixos/systemd.nix", include_str!("nixos/systemd.nix")),
    ("rixos/nixos/openssh.nix", include_str!("nixos/openssh.nix")),
    ("rixos/nixos/nginx.nix", include_str!("nixos/nginx.nix")),
    ("rixos/nixos/nix-gc.nix", include_str!("nixos/nix-gc.nix")),
    ("rixos/nixos/toplevel.nix", include_str!("nixos/toplevel.nix")),
    ("rixos/nixos/build-support.nix", include_str!("nixos/build-support.nix")),
    ("rixos/nixos/kernel.nix", include_str!("nixos/kernel.nix")),
    ("rixos/nixos/initrd.nix", include_str!("nixos/initrd.nix")),
    ("rixos/nixos/stage-2.nix", include_str!("nixos/stage-2.nix")),
    ("rixos/nixos/login.nix", include_str!("nixos/login.nix")),
    ("rixos/nixos/qemu-vm.nix", include_str!("nixos/qemu-vm.nix")),
    ("rixos/nixos/iso-image.nix", include_str!("nixos/iso-image.nix")),
    ("rixos/nixos/disk-image.nix", include_str!("nixos/disk-image.nix")),
    (
        "rixos/nixos/grow-partition.nix",
        include_str!("nixos/grow-partition.nix"),
    ),
    ("rixos/images/raw.nix", include_str!("../../images/raw.nix")),
    (
        "rixos/images/iso-minimal.nix",
        include_str!("../../images/iso-minimal.nix"),
    ),
    ("rixos/nixos/options-doc.nix", include_str!("nixos/options-doc.nix")),
];

/// Makes `<rixos/lib.nix>`, `builtins.rixosNearest`, `builtins.rixosOptionRead`, `builtins.rixosOptionsRead`,
/// `builtins.rixosStage1` and `builtins.rixosSelf` available.
pub fn install(ev: &mut Evaluator) {
    for (name, source) in FILES {
        ev.internal_files.insert((*name).to_string(), source);
    }
    add_builtin(ev, "rixosNearest", 2, prim_nearest);
    add_builtin(ev, "rixosOptionRead", 2, prim_option_read);
    add_builtin(ev, "rixosOptionsRead", 1, prim_options_read);
    add_builtin(ev, "rixosRecordOptionReads", 1, prim_record_option_reads);
    add_builtin_lazy(ev, "rixosStage1", prim_stage1);
    add_builtin_lazy(ev, "rixosSelf", prim_self);
    add_builtin_lazy(ev, "rixosInstalled", prim_installed);
}

thread_local! {
    // The locations of the options whose values were forced, once `rixosRecordOptionReads true` asked for
    // them (tests/options_read.rs; other evaluations pay nothing but the check). An evaluation runs on one
    // thread, and the set only grows: it is a record for tests, never an input to a result.
    static RECORDING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static OPTIONS_READ: RefCell<BTreeSet<Vec<String>>> = const { RefCell::new(BTreeSet::new()) };
}

/// `rixosRecordOptionReads enable`: from now on in this evaluation, `rixosOptionRead` notes what is read.
fn prim_record_option_reads(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let enable = ev.force(&a[0])?;
    let enable = ev.expect_bool(&enable, pos, "rixosRecordOptionReads")?;
    RECORDING.with(|r| r.set(enable));
    Ok(Value::Bool(enable))
}

/// `rixosOptionRead loc value`: `value`, after noting (when recording) that the option at `loc` (a list of
/// names) was read. The module system wraps every option's merged value in it, so only forcing the value
/// counts.
fn prim_option_read(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    if !RECORDING.with(|r| r.get()) {
        return ev.force(&a[1]);
    }
    let loc = ev.force(&a[0])?;
    let loc = ev.expect_list(&loc, pos)?;
    let mut names = Vec::with_capacity(loc.len());
    for t in loc.iter() {
        let name = ev.force(t)?;
        names.push(ev.force_string_noctx(&name, pos)?);
    }
    OPTIONS_READ.with(|read| read.borrow_mut().insert(names));
    ev.force(&a[1])
}

/// `rixosOptionsRead null`: the locations `rixosOptionRead` has noted so far in this evaluation, sorted.
fn prim_options_read(_: &mut Evaluator, _: &[Thunk], _: Pos) -> Result<Value> {
    let read = OPTIONS_READ.with(|read| read.borrow().clone());
    Ok(Value::list(
        read.into_iter()
            .map(|loc| {
                Thunk::Val(Value::list(
                    loc.into_iter().map(|n| Thunk::Val(Value::str(n))).collect(),
                ))
            })
            .collect(),
    ))
}

/// `builtins.rixosInstalled`: the store path of the rixos package this executable runs from
/// (`/nix/store/...-rixos/bin/rixos` in a store the evaluation sees), or null. A system rebuilding itself uses
/// the package it has instead of making it again from `rixosSelf`, which would need patchelf and the
/// unpatched executable, neither of which an installed system carries.
fn prim_installed(ev: &mut Evaluator, _: &[Thunk], _pos: Pos) -> Result<Value> {
    let package = std::env::current_exe().ok().and_then(|exe| {
        let text = exe.to_str()?.to_string();
        let rest = text.strip_prefix(crate::store::path::STORE_DIR)?.strip_prefix('/')?;
        let (name, inner) = rest.split_once('/')?;
        (inner == "bin/rixos" && name.ends_with("-rixos")).then(|| format!("{}/{name}", crate::store::path::STORE_DIR))
    });
    match package.filter(|p| crate::eval::io::is_store_path(p) && ev.io.exists(std::path::Path::new(p))) {
        Some(path) => Ok(str_value(path.clone(), std::collections::BTreeSet::from([path]))),
        None => Ok(Value::Null),
    }
}

/// `builtins.rixosSelf`: this rixos executable, added to the store (for the systems that carry rixos).
fn prim_self(ev: &mut Evaluator, _: &[Thunk], pos: Pos) -> Result<Value> {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return crate::eval::error::eval_error(format!("finding the rixos executable: {e}"), pos),
    };
    // Hashing the 75 MB executable costs most of an evaluation; its store path is remembered by the file's
    // identity, so only a new rixos is hashed again (and only a store without it gets a copy).
    let identity = std::fs::metadata(&exe).ok().map(|m| {
        use std::os::unix::fs::MetadataExt;
        format!("{} {} {} {}.{}", m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec())
    });
    let cache = crate::host_cache::dir().join("self-store-path");
    let remembered = identity.as_ref().and_then(|identity| {
        let text = std::fs::read_to_string(&cache).ok()?;
        let (key, path) = text.trim_end().split_once('\t')?;
        (key == identity && crate::eval::io::is_store_path(path)).then(|| path.to_string())
    });
    if let Some(path) = remembered.filter(|p| !ev.io.writes() || ev.io.exists(std::path::Path::new(p))) {
        return Ok(str_value(path.clone(), std::collections::BTreeSet::from([path])));
    }
    match ev.io.add_path(&exe, "rixos-executable", None, true) {
        Ok(path) => {
            if let Some(identity) = identity {
                // Best effort: without the cache the next evaluation hashes again.
                let partial = cache.with_extension(format!("tmp-{}", std::process::id()));
                let _ = std::fs::create_dir_all(crate::host_cache::dir())
                    .and_then(|()| std::fs::write(&partial, format!("{identity}\t{path}\n")))
                    .and_then(|()| std::fs::rename(&partial, &cache));
            }
            Ok(str_value(path.clone(), std::collections::BTreeSet::from([path])))
        }
        Err(e) => crate::eval::error::eval_error(format!("adding {} to the store: {e:#}", exe.display()), pos),
    }
}

/// `builtins.rixosStage1`: the store path of this rixos' stage-1 init (built into the binary), added to the
/// store when the evaluation writes to one. The same rixos gives the same path.
fn prim_stage1(ev: &mut Evaluator, _: &[Thunk], pos: Pos) -> Result<Value> {
    let staged = (|| -> std::io::Result<(tempfile::TempDir, std::path::PathBuf)> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("init");
        std::fs::write(&file, crate::boot::STAGE1_INIT)?;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o555))?;
        Ok((dir, file))
    })();
    let (_dir, file) = match staged {
        Ok(staged) => staged,
        Err(e) => return crate::eval::error::eval_error(format!("staging the stage-1 init: {e}"), pos),
    };
    match ev.io.add_path(&file, "rixos-stage1-init", None, true) {
        Ok(path) => Ok(str_value(path.clone(), std::collections::BTreeSet::from([path]))),
        Err(e) => crate::eval::error::eval_error(format!("adding the stage-1 init to the store: {e:#}"), pos),
    }
}

/// `rixosNearest name candidates`: the candidate closest to `name` (edit distance at most a third of its
/// length, at least 2), or null.
fn prim_nearest(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let name = ev.force(&a[0])?;
    let name = ev.force_string_noctx(&name, pos)?;
    let list = ev.force(&a[1])?;
    let list = ev.expect_list(&list, pos)?;
    let limit = (name.len() / 3).max(2);
    let mut best: Option<(usize, String)> = None;
    for t in list.iter() {
        let c = ev.force(t)?;
        let c = ev.force_string_noctx(&c, pos)?;
        let d = levenshtein(&name, &c);
        if d <= limit && best.as_ref().is_none_or(|(bd, bc)| d < *bd || (d == *bd && c < *bc)) {
            best = Some((d, c));
        }
    }
    Ok(best.map_or(Value::Null, |(_, c)| Value::str(c)))
}
