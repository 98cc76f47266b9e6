//! The module system: NixOS-style modules evaluated into a configuration. The module system itself, the option
//! types and `lib` are written in Nix (`lib.nix`, `types.nix`, `modules.nix`, built into the binary and
//! reachable as `<rixos/lib.nix>`); this module installs them into an evaluator, with the one builtin they
//! need from Rust (`rixosNearest`, the closest option name for "did you mean").

use crate::eval::builtins::add_builtin;
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
    ("rixos/nixos/filesystems.nix", include_str!("nixos/filesystems.nix")),
    ("rixos/nixos/networking.nix", include_str!("nixos/networking.nix")),
    ("rixos/nixos/locale.nix", include_str!("nixos/locale.nix")),
    ("rixos/nixos/zones.nix", include_str!("nixos/zones.nix")),
    ("rixos/nixos/users.nix", include_str!("nixos/users.nix")),
    ("rixos/nixos/environment.nix", include_str!("nixos/environment.nix")),
    ("rixos/nixos/systemd.nix", include_str!("nixos/systemd.nix")),
    ("rixos/nixos/openssh.nix", include_str!("nixos/openssh.nix")),
    ("rixos/nixos/nginx.nix", include_str!("nixos/nginx.nix")),
    ("rixos/nixos/nix-gc.nix", include_str!("nixos/nix-gc.nix")),
    ("rixos/nixos/toplevel.nix", include_str!("nixos/toplevel.nix")),
    ("rixos/nixos/options-doc.nix", include_str!("nixos/options-doc.nix")),
];

/// Makes `<rixos/lib.nix>` and `builtins.rixosNearest` available.
pub fn install(ev: &mut Evaluator) {
    for (name, source) in FILES {
        ev.internal_files.insert((*name).to_string(), source);
    }
    add_builtin(ev, "rixosNearest", 2, prim_nearest);
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
