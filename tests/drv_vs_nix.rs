//! `.drv` files written by `nix-instantiate` (Nix 2.8) parse and print back byte for byte, their store paths are
//! recomputed from their contents, and their output paths from hashDerivationModulo.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use rixos::store::derivation::{Derivation, DerivationError};

fn modulo_of(store: &Path, drv_path: &str, cache: &mut HashMap<String, [u8; 32]>) -> Result<[u8; 32], DerivationError> {
    if let Some(hash) = cache.get(drv_path) {
        return Ok(*hash);
    }
    let file = store.join(drv_path.trim_start_matches('/'));
    let text = std::fs::read_to_string(&file).unwrap();
    let drv = Derivation::parse(&text, &file.display().to_string())?;
    let hash = drv.hash_modulo(&mut |input| modulo_of(store, input, cache))?;
    cache.insert(drv_path.to_string(), hash);
    Ok(hash)
}

#[test]
fn derivations_from_nix_instantiate_round_trip_and_get_the_same_paths() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let expr = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/derivations.nix");
    let output = Command::new("nix-instantiate")
        .arg("--store")
        .arg(&root)
        .arg(&expr)
        .output()
        .expect("nix-instantiate (Nix 2.8 from nix-bin: run scripts/setup)");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let top_level = String::from_utf8(output.stdout).unwrap();
    assert_eq!(top_level.lines().count(), 7, "{top_level}");

    let store = root.join("nix/store");
    let mut cache = HashMap::new();
    let mut checked = 0;
    for entry in std::fs::read_dir(&store).unwrap() {
        let file = entry.unwrap().path();
        let base = file.file_name().unwrap().to_str().unwrap().to_string();
        if !base.ends_with(".drv") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let drv = Derivation::parse(&text, &base).unwrap();
        assert_eq!(drv.to_aterm(), text, "{base} does not print back to the same bytes");
        assert_eq!(
            drv.drv_path().unwrap().to_string(),
            format!("/nix/store/{base}"),
            "drv path of {base}"
        );

        let mut blanked = drv.clone();
        blanked
            .fill_output_paths(&mut |input| modulo_of(Path::new(&root), input, &mut cache))
            .unwrap();
        assert_eq!(blanked, drv, "output paths of {base}");
        checked += 1;
    }
    assert_eq!(checked, 7, "expected 7 derivations in {}", store.display());
}
