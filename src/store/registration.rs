//! Nix's registration text (`nix-path-registration`, what `nix-store --load-db` reads and NixOS's closureInfo
//! writes): for each path its name, NAR hash (base16), NAR size, deriver (or an empty line), the number of its
//! references and the references. It carries a closure's database records to a machine whose store holds the
//! files but not the database: a live ISO's squashfs, a VM that mounts the host's store.
//!
//! `builtin:closure-info` writes `$out/registration` and `$out/store-paths` for the closure of `rootPaths`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::db::PathInfo;
use super::derivation::Derivation;
use super::local::LocalStore;
use super::path::StorePath;

/// The registration text of `closure`, each path as the store's database records it.
pub fn registration(store: &LocalStore, closure: &[StorePath]) -> Result<String> {
    let mut out = String::new();
    for path in closure {
        let info = store
            .db()
            .info(path)?
            .with_context(|| format!("{path} is not valid in the store"))?;
        let hash = info.nar_hash.strip_prefix("sha256:").unwrap_or(&info.nar_hash);
        writeln!(out, "{path}\n{hash}\n{}", info.nar_size)?;
        writeln!(
            out,
            "{}",
            info.deriver.as_ref().map(ToString::to_string).unwrap_or_default()
        )?;
        writeln!(out, "{}", info.references.len())?;
        for r in &info.references {
            writeln!(out, "{r}")?;
        }
    }
    Ok(out)
}

/// Parses registration text; `origin` names it in errors. Registration time is left 0 (the loader sets it).
pub fn parse_registration(text: &str, origin: &str) -> Result<Vec<PathInfo>> {
    let mut lines = text.lines().enumerate().peekable();
    let mut infos = Vec::new();
    let mut next = |what: &str| -> Result<(usize, &str)> {
        lines
            .next()
            .map(|(n, l)| (n + 1, l))
            .with_context(|| format!("{origin}: the registration ends where {what} should be"))
    };
    loop {
        let (line, path) = match next("a store path") {
            Ok((_, "")) | Err(_) => break,
            Ok(found) => found,
        };
        let at = |n: usize| format!("{origin}:{n}");
        let path = StorePath::parse(path).with_context(|| format!("{}: not a store path", at(line)))?;
        let (n, hash) = next("a NAR hash")?;
        let hash = hash.strip_prefix("sha256:").unwrap_or(hash);
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("{}: {hash:?} is not a base16 sha256 NAR hash", at(n));
        }
        let (n, size) = next("a NAR size")?;
        let nar_size = size
            .parse()
            .with_context(|| format!("{}: {size:?} is not a NAR size", at(n)))?;
        let (n, deriver) = next("a deriver line")?;
        let deriver = match deriver {
            "" => None,
            d => Some(StorePath::parse(d).with_context(|| format!("{}: the deriver is not a store path", at(n)))?),
        };
        let (n, count) = next("the number of references")?;
        let count: usize = count
            .parse()
            .with_context(|| format!("{}: {count:?} is not a number of references", at(n)))?;
        let mut references = Vec::with_capacity(count);
        for _ in 0..count {
            let (n, r) = next("a reference")?;
            references.push(StorePath::parse(r).with_context(|| format!("{}: not a store path", at(n)))?);
        }
        infos.push(PathInfo {
            path,
            nar_hash: format!("sha256:{}", hash.to_ascii_lowercase()),
            nar_size,
            registration_time: 0,
            deriver,
            references,
            ca: None,
        });
    }
    Ok(infos)
}

impl LocalStore {
    /// `store load-db`: registers the paths of registration text that are not valid yet, in one transaction.
    /// Each must be present in the store directory; paths already valid keep their records. Returns how many
    /// were registered.
    pub fn load_registration(&mut self, text: &str, origin: &str) -> Result<usize> {
        let mut infos = Vec::new();
        for mut info in parse_registration(text, origin)? {
            if self.db().is_valid(&info.path)? {
                continue;
            }
            let real = self.real_path(&info.path);
            if std::fs::symlink_metadata(&real).is_err() {
                bail!(
                    "{origin}: {} is not in the store ({} is missing)",
                    info.path,
                    real.display()
                );
            }
            info.registration_time = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            infos.push(info);
        }
        self.register_durably(&infos)
            .with_context(|| format!("registering the paths of {origin}"))?;
        Ok(infos.len())
    }
}

/// `builtin:closure-info`: `$out/registration` and `$out/store-paths` (one path a line) for the closure of
/// `rootPaths` (store paths separated by white space).
pub fn build_closure_info(drv: &Derivation, target: &Path, store: &LocalStore) -> Result<()> {
    let roots = drv
        .env
        .get("rootPaths")
        .map_or("", String::as_str)
        .split_whitespace()
        .map(|p| {
            let base = p
                .trim_start_matches("/nix/store/")
                .split('/')
                .next()
                .unwrap_or_default();
            StorePath::from_base_name(base).with_context(|| format!("builtin:closure-info: {p:?} is not a store path"))
        })
        .collect::<Result<BTreeSet<_>>>()?;
    let roots: Vec<StorePath> = roots.into_iter().collect();
    let closure = store.requisites(&roots)?;
    std::fs::create_dir_all(target)?;
    std::fs::write(target.join("registration"), registration(store, &closure)?)?;
    let paths: String = closure.iter().map(|p| format!("{p}\n")).collect();
    std::fs::write(target.join("store-paths"), paths)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "0c5b8ef6a5d24c3f2d5f1e8d1c6f3b2a19e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4";

    #[test]
    fn parses_what_nix_writes() {
        let a = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a";
        let b = "/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-b";
        let d = "/nix/store/dddddddddddddddddddddddddddddddd-a.drv";
        let text = format!("{a}\n{HASH}\n120\n{d}\n2\n{a}\n{b}\n{b}\n{HASH}\n8\n\n0\n");
        let infos = parse_registration(&text, "reg").unwrap();
        assert_eq!(infos.len(), 2);
        assert_eq!(infos[0].path.to_string(), a);
        assert_eq!(infos[0].nar_hash, format!("sha256:{HASH}"));
        assert_eq!(infos[0].nar_size, 120);
        assert_eq!(infos[0].deriver.as_ref().map(ToString::to_string).as_deref(), Some(d));
        assert_eq!(infos[0].references.len(), 2);
        assert_eq!(infos[1].deriver, None);
        assert!(infos[1].references.is_empty());
    }

    #[test]
    fn loading_registers_what_is_missing_once_and_refuses_absent_paths() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LocalStore::open(&dir.path().join("root")).unwrap();
        let source = dir.path().join("file");
        std::fs::write(&source, "contents").unwrap();
        let path = store.add_path(&source).unwrap();
        let text = registration(&store, std::slice::from_ref(&path)).unwrap();
        let recorded = store.db().info(&path).unwrap().unwrap();
        // The files stay, the database forgets them: a store as a VM or a live ISO sees it.
        store.db_mut().unregister(std::slice::from_ref(&path)).unwrap();
        assert_eq!(store.load_registration(&text, "reg").unwrap(), 1);
        let loaded = store.db().info(&path).unwrap().unwrap();
        assert_eq!(
            (loaded.nar_hash, loaded.nar_size),
            (recorded.nar_hash, recorded.nar_size)
        );
        assert_eq!(
            store.load_registration(&text, "reg").unwrap(),
            0,
            "valid paths are kept as they are"
        );

        store.db_mut().unregister(std::slice::from_ref(&path)).unwrap();
        std::fs::remove_file(store.real_path(&path)).unwrap();
        let error = format!("{:#}", store.load_registration(&text, "reg").unwrap_err());
        assert!(error.contains("is not in the store"), "{error}");
        assert!(!store.db().is_valid(&path).unwrap());
    }

    #[test]
    fn says_where_a_registration_is_broken() {
        let a = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a";
        for (text, expected) in [
            (
                format!("{a}\nnot-a-hash\n1\n\n0\n"),
                "reg:2: \"not-a-hash\" is not a base16 sha256",
            ),
            (format!("{a}\n{HASH}\nbig\n\n0\n"), "reg:3: \"big\" is not a NAR size"),
            (
                format!("{a}\n{HASH}\n1\n\n2\n{a}\n"),
                "reg: the registration ends where a reference",
            ),
            ("/tmp/x\n".to_string(), "reg:1: not a store path"),
        ] {
            let error = format!("{:#}", parse_registration(&text, "reg").unwrap_err());
            assert!(error.contains(expected), "{error}");
        }
    }
}
