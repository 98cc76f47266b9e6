//! Builders rixos runs itself (`builder = "builtin:NAME"`), outside the sandbox as Nix runs its own; their
//! outputs are checked, scanned and registered like any other.
//!
//! The store knows only its own (`fetchurl`, `buildenv`, `write`, `linkfarm`, `closure-info`). The layers above
//! add theirs to a `Builders` and hand it to the store (`LocalStore::set_builders`), so a new kind of output
//! (an initrd, an image, a bootloader tree) never needs a change here.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::derivation::Derivation;
use super::local::LocalStore;
use super::path::StorePath;

/// One build of a builtin builder: the derivation and where its outputs go.
pub struct Builtin<'a> {
    pub store: &'a LocalStore,
    pub drv_path: &'a StorePath,
    pub drv: &'a Derivation,
    /// Where each output is written, by output name (inside the build's staging directory).
    pub outputs: BTreeMap<String, PathBuf>,
}

impl Builtin<'_> {
    /// Where the output `out` is written.
    pub fn out(&self) -> Result<&Path> {
        self.outputs
            .get("out")
            .map(PathBuf::as_path)
            .with_context(|| format!("{}: {} needs an output 'out'", self.drv_path, self.drv.builder))
    }

    /// The derivation's attribute `key`, or "" when it has none.
    pub fn env(&self, key: &str) -> &str {
        self.drv.env.get(key).map_or("", String::as_str)
    }

    /// Where a logical path (`/nix/store/<name>/...`) is on disk, without following links.
    pub fn real(&self, logical: &str) -> PathBuf {
        self.store.real_path_of(logical)
    }

    /// The file a logical path names, links followed inside the store (`LocalStore::resolve`).
    pub fn resolve(&self, logical: &str) -> Result<PathBuf> {
        self.store.resolve(logical)
    }
}

/// What a builtin builder does: write its outputs, or say why it cannot.
pub type BuildFn = fn(&Builtin<'_>) -> Result<()>;

/// The builtin builders a store runs, by name (`builtin:NAME`).
#[derive(Clone)]
pub struct Builders {
    by_name: BTreeMap<&'static str, BuildFn>,
}

impl Builders {
    /// The store's own builders.
    pub fn store() -> Builders {
        let mut builders = Builders {
            by_name: BTreeMap::new(),
        };
        builders.add("builtin:fetchurl", fetchurl);
        builders.add("builtin:buildenv", buildenv);
        builders.add("builtin:write", write);
        builders.add("builtin:linkfarm", linkfarm);
        builders.add("builtin:closure-info", |b| {
            super::registration::build_closure_info(b.drv, b.out()?, b.store)
        });
        builders
    }

    /// Adds the builder `name` (`builtin:...`). Two builders of one name are a mistake in rixos itself.
    pub fn add(&mut self, name: &'static str, build: BuildFn) {
        assert!(
            name.starts_with("builtin:"),
            "builtin builder {name} must be named builtin:..."
        );
        let previous = self.by_name.insert(name, build);
        assert!(previous.is_none(), "two builtin builders are named {name}");
    }

    /// Runs the builder the derivation names.
    pub(crate) fn run(&self, build: &Builtin<'_>) -> Result<()> {
        let name = build.drv.builder.as_str();
        let Some(run) = self.by_name.get(name) else {
            let known: Vec<&str> = self.by_name.keys().copied().collect();
            bail!(
                "{}: unknown built-in builder {name:?} (this store knows {})",
                build.drv_path,
                known.join(", ")
            );
        };
        run(build).with_context(|| format!("building {}", build.drv_path))
    }
}

/// A fixed-output download (`<nix/fetchurl.nix>`).
fn fetchurl(b: &Builtin<'_>) -> Result<()> {
    let target = b.out()?;
    if b.drv.fixed_output().is_none() {
        bail!("builtin:fetchurl is only allowed in fixed-output derivations");
    }
    if b.env("unpack") == "1" {
        bail!("builtin:fetchurl with unpack = true is not supported yet");
    }
    let url = b.drv.env.get("url").context("builtin:fetchurl needs 'url'")?;
    super::build::fetch_url(url, target).with_context(|| format!("downloading {url}"))?;
    if b.env("executable") == "1" {
        fs::set_permissions(target, fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

/// A profile: the symlink forest of `derivations` (`super::buildenv`), with the manifest linked in.
fn buildenv(b: &Builtin<'_>) -> Result<()> {
    let target = b.out()?;
    let packages = super::buildenv::parse_packages(b.env("derivations"))?;
    super::buildenv::build_profile(target, packages, &|p| b.real(p))?;
    let manifest = b.env("manifest");
    if !manifest.is_empty() {
        std::os::unix::fs::symlink(manifest, target.join("manifest.nix"))?;
    }
    Ok(())
}

/// A file holding `text` (configuration files and scripts that name other store paths).
fn write(b: &Builtin<'_>) -> Result<()> {
    let target = b.out()?;
    fs::write(target, b.env("text"))?;
    if b.env("executable") == "1" {
        fs::set_permissions(target, fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

/// A directory of symlinks: one `PATH<TAB>TARGET` line each in `links` (the system's etc and toplevel).
fn linkfarm(b: &Builtin<'_>) -> Result<()> {
    let target = b.out()?;
    fs::create_dir(target)?;
    for line in b.env("links").lines().filter(|l| !l.is_empty()) {
        let (rel, to) = line
            .split_once('\t')
            .with_context(|| format!("link line {line:?} is not PATH<TAB>TARGET"))?;
        let rel = Path::new(rel);
        if rel.is_absolute() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            bail!("link path {} must be relative, without '..'", rel.display());
        }
        let link = target.join(rel);
        if let Some(parent) = link.parent() {
            fs::create_dir_all(parent)?;
        }
        std::os::unix::fs::symlink(to, &link).with_context(|| format!("linking {} to {to}", rel.display()))?;
    }
    Ok(())
}
