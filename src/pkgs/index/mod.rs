//! The package index: the binary packages of Debian `Packages` files, looked up by name or by what they
//! provide, their dependencies resolved, and a compact binary cache of it all.
//!
//! Owns: which fields of a package are kept (name, version, architecture, Multi-Arch, Essential, Priority,
//! Section, Filename, Size, SHA256, Installed-Size, the Description's first line, Depends, Pre-Depends,
//! Recommends, Provides, Source), the choice of one package per dependency, the transitive closure, and the
//! cache's on-disk format.
//!
//! Invariants:
//! - Every string lives in one string table; a package is a fixed-size record (where its strings start in
//!   the table and their lengths, its codes, sizes and hash). Records are sorted by name, then newest version
//!   first (dpkg's order), so a [`PackageId`] is stable for a given set of input files and lookups are binary
//!   searches. The cache file is those same bytes, so reading it is a read and a validation: nothing is
//!   decoded or rebuilt.
//! - Everything kept was checked when the index was built (versions, relation fields, hashes, sizes), and a
//!   cache is checked when read (magic, format version, length, checksum, every offset, every enum, the sort
//!   order): a bad cache is an error, never a panic or a wrong answer.
//! - Resolution is deterministic and knows one architecture (the index's, plus `all`). It chooses, never
//!   backtracks, and does not look at Conflicts or Breaks: it answers "what would this install", not "is
//!   this installable together".
//!
//! Knows nothing of the network, signatures or the store: texts come in, paths to cache files are given.

mod build;
mod cache;
mod error;
mod package;
mod resolve;
#[cfg(test)]
mod test_packages;

pub use build::IndexBuilder;
pub use error::{CacheError, CacheFormatError, IndexError, ResolveError};
pub use package::Package;

use std::fmt;

/// A package of one [`Index`]: its position in the index's sorted records. [`Index::package`] panics on an
/// id that is not from its index; [`Index::try_package`] does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PackageId(pub u32);

impl PackageId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MultiArch {
    No,
    Same,
    Foreign,
    Allowed,
}

/// A package's Priority, most important first (`Other` is any value Debian does not define).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    Required,
    Important,
    Standard,
    Optional,
    Extra,
    Other,
}

impl Priority {
    const ALL: [Priority; 6] = [
        Priority::Required,
        Priority::Important,
        Priority::Standard,
        Priority::Optional,
        Priority::Extra,
        Priority::Other,
    ];

    fn parse(text: &str) -> Priority {
        match text {
            "required" => Priority::Required,
            "important" => Priority::Important,
            "standard" => Priority::Standard,
            "optional" => Priority::Optional,
            "extra" => Priority::Extra,
            _ => Priority::Other,
        }
    }
}

/// The relation fields that [`Index::resolve`] follows, in the order it numbers their entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DepField {
    PreDepends,
    Depends,
}

impl DepField {
    pub fn as_str(self) -> &'static str {
        match self {
            DepField::PreDepends => "Pre-Depends",
            DepField::Depends => "Depends",
        }
    }
}

impl fmt::Display for DepField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string in the string table: byte offset and length.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Str {
    off: u32,
    len: u32,
}

// The cache file: a header, then the source names (Strs), the package records, the provides records, then
// the string table. All integers are little-endian. In memory the index keeps exactly these tables and this
// string table, so reading a cache decodes nothing.
//
// A package record (RECORD_SIZE bytes) keeps its strings one after another in the string table: the offset of
// the first, then the length of each of the FIELDS, then the codes, sizes and hash:
//   0 base u32 | 4 lengths 11 x u32 | 48 priority u8 (0 absent, else 1 + Priority) | 49 Multi-Arch u8 |
//   50 Essential u8 | 51 five zero bytes | 56 Size u64 | 64 Installed-Size u64 (u64::MAX absent) | 72 SHA256
// A provides record (PROVIDE_SIZE bytes): name Str, version Str (empty when unversioned), provider u32; the
// strings point into the provider's own Provides text.
const MAGIC: &[u8; 8] = b"RIXOSIDX";
const FORMAT_VERSION: u32 = 1;
const HEADER_SIZE: usize = 64;
const STR_SIZE: usize = 8;
const RECORD_SIZE: usize = 104;
const CODES: usize = 4 + 4 * FIELDS;
const PROVIDE_SIZE: usize = 2 * STR_SIZE + 4;
const FIELDS: usize = 11;
const F_NAME: usize = 0;
const F_VERSION: usize = 1;
const F_ARCH: usize = 2;
const F_SECTION: usize = 3;
const F_FILENAME: usize = 4;
const F_DESCRIPTION: usize = 5;
const F_DEPENDS: usize = 6;
const F_PRE_DEPENDS: usize = 7;
const F_RECOMMENDS: usize = 8;
const F_PROVIDES: usize = 9;
const F_SOURCE: usize = 10;
const NO_INSTALLED_SIZE: u64 = u64::MAX;

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

fn str_at(bytes: &[u8], at: usize) -> Str {
    Str {
        off: u32_at(bytes, at),
        len: u32_at(bytes, at + 4),
    }
}

fn put_str(out: &mut Vec<u8>, s: Str) {
    out.extend_from_slice(&s.off.to_le_bytes());
    out.extend_from_slice(&s.len.to_le_bytes());
}

/// The packages of one architecture from one or more Packages files. See the module documentation.
pub struct Index {
    arch: Str,
    sources: Vec<Str>,
    /// The package records, then the provides records, as in the cache file.
    tables: Vec<u8>,
    packages: usize,
    provides: usize,
    strings: String,
}

impl fmt::Debug for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Index")
            .field("arch", &self.arch())
            .field("sources", &self.sources().collect::<Vec<_>>())
            .field("packages", &self.packages)
            .field("provides", &self.provides)
            .field("string_bytes", &self.strings.len())
            .finish()
    }
}

impl MultiArch {
    const ALL: [MultiArch; 4] = [MultiArch::No, MultiArch::Same, MultiArch::Foreign, MultiArch::Allowed];
}

impl Index {
    /// The index of one Packages file.
    pub fn parse(arch: &str, source_name: &str, text: &str) -> Result<Index, IndexError> {
        let mut builder = IndexBuilder::new(arch);
        builder.add(source_name, text)?;
        Ok(builder.finish())
    }

    fn str(&self, s: Str) -> &str {
        // In range and on character boundaries: built so, or checked when the cache was read.
        &self.strings[s.off as usize..(s.off + s.len) as usize]
    }

    fn record(&self, i: usize) -> &[u8] {
        &self.tables[i * RECORD_SIZE..(i + 1) * RECORD_SIZE]
    }

    /// Field `field` of a record (from this index).
    fn record_field<'s>(&'s self, record: &[u8], field: usize) -> &'s str {
        let mut start = u32_at(record, 0) as usize;
        for i in 0..field {
            start += u32_at(record, 4 + 4 * i) as usize;
        }
        let len = u32_at(record, 4 + 4 * field) as usize;
        &self.strings[start..start + len]
    }

    fn name_of(&self, i: usize) -> &str {
        let record = self.record(i);
        let start = u32_at(record, 0) as usize;
        &self.strings[start..start + u32_at(record, 4) as usize]
    }

    /// (name, version, provider) of provides record `i`.
    fn provide(&self, i: usize) -> (Str, Str, u32) {
        let at = self.packages * RECORD_SIZE + i * PROVIDE_SIZE;
        (
            str_at(&self.tables, at),
            str_at(&self.tables, at + STR_SIZE),
            u32_at(&self.tables, at + 2 * STR_SIZE),
        )
    }

    /// The Debian architecture the index is for (packages of it and of `all` satisfy dependencies).
    pub fn arch(&self) -> &str {
        self.str(self.arch)
    }

    /// The names given to [`IndexBuilder::add`], in order.
    pub fn sources(&self) -> impl Iterator<Item = &str> + '_ {
        self.sources.iter().map(|&s| self.str(s))
    }

    pub fn len(&self) -> usize {
        self.packages
    }

    pub fn is_empty(&self) -> bool {
        self.packages == 0
    }

    /// All packages, sorted by name, newest version first.
    pub fn ids(&self) -> impl Iterator<Item = PackageId> + use<> {
        (0..self.packages as u32).map(PackageId)
    }

    /// The package `id`, which must come from this index (an id from another one may panic).
    pub fn package(&self, id: PackageId) -> Package<'_> {
        Package {
            index: self,
            id,
            record: self.record(id.index()),
        }
    }

    /// The package `id`, or None if `id` is not from this index.
    pub fn try_package(&self, id: PackageId) -> Option<Package<'_>> {
        (id.index() < self.packages).then(|| self.package(id))
    }

    /// The name of package `id` (which must come from this index).
    pub fn name(&self, id: PackageId) -> &str {
        self.name_of(id.index())
    }

    /// Each package name once, in order, with its newest package.
    pub fn names(&self) -> impl Iterator<Item = (&str, PackageId)> + '_ {
        (0..self.packages)
            .filter(|&i| i == 0 || self.name_of(i - 1) != self.name_of(i))
            .map(|i| (self.name_of(i), PackageId(i as u32)))
    }

    /// The packages named `name`, newest first (of every architecture the index holds).
    pub fn versions(&self, name: &str) -> impl Iterator<Item = PackageId> + use<> {
        let (mut low, mut high) = (0, self.packages);
        while low < high {
            let mid = low + (high - low) / 2;
            if self.name_of(mid) < name {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        let end = (low..self.packages)
            .find(|&i| self.name_of(i) != name)
            .unwrap_or(self.packages);
        (low as u32..end as u32).map(PackageId)
    }

    /// The newest package named `name`.
    pub fn newest(&self, name: &str) -> Option<PackageId> {
        self.versions(name).next()
    }

    /// The package named `name` at exactly `version` (as written).
    pub fn get(&self, name: &str, version: &str) -> Option<PackageId> {
        self.versions(name).find(|&id| self.package(id).version() == version)
    }

    /// The packages that provide `name`, with the version they provide if they give one, by provider id.
    pub fn providers<'s>(&'s self, name: &'s str) -> impl Iterator<Item = (PackageId, Option<&'s str>)> + 's {
        let (mut low, mut high) = (0, self.provides);
        while low < high {
            let mid = low + (high - low) / 2;
            if self.str(self.provide(mid).0) < name {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        (low..self.provides)
            .map(|i| self.provide(i))
            .take_while(move |&(provided, _, _)| self.str(provided) == name)
            .map(|(_, version, provider)| {
                let version = (version.len > 0).then(|| self.str(version));
                (PackageId(provider), version)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    use crate::pkgs::control;
    use crate::pkgs::index::test_packages::{H, archive, assert_same};

    #[test]
    fn lookups() {
        let index = archive();
        assert_eq!(index.arch(), "amd64");
        assert_eq!(index.sources().collect::<Vec<_>>(), ["test"]);
        assert_eq!(index.len(), 18);
        let versions: Vec<&str> = index.versions("libc6").map(|id| index.package(id).version()).collect();
        assert_eq!(versions, ["2.36-9+deb12u4", "2.36-9"]);
        assert_eq!(index.versions("nothere").count(), 0);
        assert_eq!(index.versions("").count(), 0);
        let libc = index.package(index.newest("libc6").unwrap());
        assert_eq!(libc.version(), "2.36-9+deb12u4");
        assert_eq!(libc.multi_arch(), MultiArch::Same);
        assert_eq!(libc.priority(), Some(Priority::Optional));
        assert_eq!(libc.section(), Some("libs"));
        assert_eq!(libc.description(), "GNU C Library: Shared libraries");
        assert_eq!(libc.installed_size(), Some(12000));
        assert_eq!(libc.filename(), "pool/libc6_2.36-9+deb12u4.deb");
        assert_eq!(libc.size(), 1000);
        assert_eq!(libc.sha256_hex(), H);
        assert_eq!(libc.sha256()[..2], [0x01, 0x23]);
        assert_eq!((libc.source_name(), libc.source_version()), ("glibc", "2.36-9+deb12u4"));
        assert!(!libc.essential());
        let gcc = index.package(index.newest("libgcc-s1").unwrap());
        assert_eq!((gcc.source_name(), gcc.source_version()), ("gcc-12", "12.2.0-14"));
        let perl_base = index.package(index.newest("perl-base").unwrap());
        assert!(perl_base.essential());
        assert_eq!(perl_base.priority(), Some(Priority::Required));
        assert_eq!(perl_base.section(), None);
        assert_eq!(perl_base.installed_size(), None);
        assert_eq!((perl_base.source_name(), perl_base.source()), ("perl-base", None));
        assert_eq!(
            index.get("libc6", "2.36-9").map(|id| index.package(id).version()),
            Some("2.36-9")
        );
        assert_eq!(index.get("libc6", "2.37"), None);
        let awk: Vec<(String, Option<&str>)> = index
            .providers("awk")
            .map(|(id, v)| (index.package(id).to_string(), v))
            .collect();
        assert_eq!(
            awk,
            [
                ("gawk 1:5.2.1-2".to_string(), None),
                ("mawk 1.3.4.20200120-3.1".to_string(), None)
            ]
        );
        let abi: Vec<Option<&str>> = index.providers("libfoo-abi").map(|(_, v)| v).collect();
        assert_eq!(abi, [Some("1"), Some("2.1")]);
        assert_eq!(index.providers("libc6").count(), 0);
        // Ids are in name order.
        let all: Vec<&str> = index.ids().map(|id| index.package(id).name()).collect();
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(all, sorted);
    }

    /// Decompresses with an external tool, or None if it is missing.
    fn run(program: &str, args: &[&str]) -> Option<String> {
        let output = std::process::Command::new(program).args(args).output().ok()?;
        if !output.status.success() {
            return None;
        }
        String::from_utf8(output.stdout).ok()
    }

    /// The host's bookworm main amd64 Packages file from apt's lists, decompressed.
    fn host_bookworm_packages() -> Option<(PathBuf, String)> {
        let lists = Path::new("/var/lib/apt/lists");
        let mut files: Vec<PathBuf> = std::fs::read_dir(lists)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.contains("_debian_dists_bookworm_main_binary-amd64_Packages"))
            })
            .collect();
        files.sort();
        let path = files.into_iter().next()?;
        let name = path.to_str()?;
        let text = if name.ends_with("_Packages") {
            std::fs::read_to_string(&path).ok()
        } else if name.ends_with(".lz4") {
            run("lz4", &["-dc", name]).or_else(|| run("/usr/lib/apt/apt-helper", &["cat-file", name]))
        } else {
            run("/usr/lib/apt/apt-helper", &["cat-file", name])
        }?;
        Some((path, text))
    }

    #[test]
    fn host_bookworm_index() {
        let Some((path, text)) = host_bookworm_packages() else {
            eprintln!(
                "NOTE: no bookworm main binary-amd64 Packages file in /var/lib/apt/lists (or no lz4 to \
                 decompress it); skipping the test on the real index (run apt-get update to enable it)"
            );
            return;
        };
        let started = std::time::Instant::now();
        let paragraphs = control::paragraphs(&text).count();
        let control_time = started.elapsed();
        let started = std::time::Instant::now();
        let index = Index::parse("amd64", &path.display().to_string(), &text).unwrap_or_else(|e| panic!("{e}"));
        let index_time = started.elapsed();
        assert_eq!(index.len(), paragraphs);
        for name in ["bash", "coreutils", "openssh-server", "systemd", "libc6"] {
            assert!(
                index.newest(name).is_some(),
                "{name} is missing from {}",
                path.display()
            );
        }
        let ssh = index.newest("openssh-server").unwrap();
        let started = std::time::Instant::now();
        let closure = index.closure(&[ssh]).unwrap_or_else(|e| panic!("{e}"));
        let closure_time = started.elapsed();
        let closure_names: Vec<&str> = closure.iter().map(|&id| index.package(id).name()).collect();
        assert!(closure_names.contains(&"libc6"), "{closure_names:?}");
        assert_eq!(closure.last(), Some(&ssh));

        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("index.cache");
        let started = std::time::Instant::now();
        index.write_cache(&cache).unwrap();
        let write_time = started.elapsed();
        let started = std::time::Instant::now();
        let read = Index::read_cache(&cache).unwrap();
        let read_time = started.elapsed();
        // The cache was just written, so it is in the page cache: this is the warm read.
        let started = std::time::Instant::now();
        let read = {
            drop(read);
            Index::read_cache(&cache).unwrap()
        };
        let reread_time = started.elapsed();
        assert_same(&index, &read);
        assert_eq!(read.closure(&[ssh]).unwrap(), closure);
        for name in ["bash", "coreutils", "openssh-server", "systemd", "libc6"] {
            assert_eq!(index.newest(name), read.newest(name));
        }
        eprintln!(
            "{}: {} paragraphs, {} MB; control parse {control_time:?}, index build {index_time:?}; closure of \
             openssh-server: {} packages in {closure_time:?}; cache {} MB written in {write_time:?}, read in \
             {read_time:?} (again {reread_time:?})",
            path.display(),
            paragraphs,
            text.len() / 1_000_000,
            closure.len(),
            std::fs::metadata(&cache).unwrap().len() / 1_000_000,
        );
    }
}
