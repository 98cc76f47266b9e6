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

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::control::{self, ControlError, Field};
use super::version::{self, Alternative, ArchQualifier, Relation, RelationError, parse_provides, parse_relations};

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

/// A Packages file that cannot be indexed.
#[derive(Debug, Error)]
pub enum IndexError {
    #[error("{source_name}: {error}")]
    Syntax { source_name: String, error: ControlError },
    #[error("{source_name}:{line}: package {package}: {reason}")]
    Package {
        source_name: String,
        line: usize,
        package: String,
        reason: String,
    },
    #[error("{source_name}: the index would exceed 4 GiB of strings or 2^32 packages")]
    TooLarge { source_name: String },
}

/// A dependency that cannot be resolved.
#[derive(Debug, Error)]
pub enum ResolveError {
    #[error("{package}: {field}: {error}{}", required_by_text(.required_by))]
    BadRelation {
        package: String,
        field: DepField,
        error: RelationError,
        required_by: Vec<String>,
    },
    #[error("{package}: {field}: cannot satisfy {relation:?}: {reason}{}", required_by_text(.required_by))]
    Unsatisfiable {
        package: String,
        field: DepField,
        relation: String,
        reason: String,
        /// From [`Index::closure`]: the packages that led here, nearest first, ending at a root.
        required_by: Vec<String>,
    },
}

fn required_by_text(required_by: &[String]) -> String {
    if required_by.is_empty() {
        String::new()
    } else {
        format!(" (required by {})", required_by.join(" <- "))
    }
}

impl ResolveError {
    fn set_required_by(&mut self, chain: Vec<String>) {
        match self {
            ResolveError::BadRelation { required_by, .. } | ResolveError::Unsatisfiable { required_by, .. } => {
                *required_by = chain
            }
        }
    }
}

/// A cache file that cannot be written or read.
#[derive(Debug, Error)]
pub enum CacheError {
    #[error("{action} index cache {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("index cache {path}: {error}; delete it to rebuild it from the Packages files")]
    Invalid { path: PathBuf, error: CacheFormatError },
}

/// Why bytes are not a valid cache.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CacheFormatError {
    #[error("not a rixos package index cache (bad magic)")]
    NotACache,
    #[error("format version {found}, this rixos reads version {expected}")]
    FormatVersion { found: u32, expected: u32 },
    #[error("corrupt: {0}")]
    Corrupt(String),
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

/// The fields kept from a paragraph, by their lower-case names.
#[derive(Clone, Copy)]
enum Key {
    Package,
    Version,
    Architecture,
    MultiArch,
    Essential,
    Priority,
    Section,
    Filename,
    Size,
    Sha256,
    InstalledSize,
    Description,
    Depends,
    PreDepends,
    Recommends,
    Provides,
    Source,
}

const KEYS: usize = 17;

/// `name` in lower case as one integer (names longer than 16 bytes are not kept): matching a field name is
/// then one comparison, not a string comparison per candidate.
const fn packed(name: &[u8]) -> u128 {
    let mut value = 0u128;
    let mut i = 0;
    while i < name.len() && i < 16 {
        value |= (name[i].to_ascii_lowercase() as u128) << (8 * i);
        i += 1;
    }
    value
}

fn key(name: &str) -> Option<Key> {
    if name.len() > 16 {
        return None;
    }
    const PACKAGE: u128 = packed(b"package");
    const VERSION: u128 = packed(b"version");
    const ARCHITECTURE: u128 = packed(b"architecture");
    const MULTI_ARCH: u128 = packed(b"multi-arch");
    const ESSENTIAL: u128 = packed(b"essential");
    const PRIORITY: u128 = packed(b"priority");
    const SECTION: u128 = packed(b"section");
    const FILENAME: u128 = packed(b"filename");
    const SIZE: u128 = packed(b"size");
    const SHA256: u128 = packed(b"sha256");
    const INSTALLED_SIZE: u128 = packed(b"installed-size");
    const DESCRIPTION: u128 = packed(b"description");
    const DEPENDS: u128 = packed(b"depends");
    const PRE_DEPENDS: u128 = packed(b"pre-depends");
    const RECOMMENDS: u128 = packed(b"recommends");
    const PROVIDES: u128 = packed(b"provides");
    const SOURCE: u128 = packed(b"source");
    Some(match packed(name.as_bytes()) {
        PACKAGE => Key::Package,
        VERSION => Key::Version,
        ARCHITECTURE => Key::Architecture,
        MULTI_ARCH => Key::MultiArch,
        ESSENTIAL => Key::Essential,
        PRIORITY => Key::Priority,
        SECTION => Key::Section,
        FILENAME => Key::Filename,
        SIZE => Key::Size,
        SHA256 => Key::Sha256,
        INSTALLED_SIZE => Key::InstalledSize,
        DESCRIPTION => Key::Description,
        DEPENDS => Key::Depends,
        PRE_DEPENDS => Key::PreDepends,
        RECOMMENDS => Key::Recommends,
        PROVIDES => Key::Provides,
        SOURCE => Key::Source,
        _ => return None,
    })
}

fn decode_sha256(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let nibble = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *o = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

/// A package read from a Packages text, not yet placed.
struct Pending<'a> {
    fields: [&'a str; FIELDS],
    size: u64,
    installed_size: u64,
    sha256: [u8; 32],
    priority: u8,
    multi_arch: MultiArch,
    essential: bool,
    /// (name offset, name length, version offset, version length) within the Provides text.
    provides: Vec<[u32; 4]>,
}

/// Builds an [`Index`] from Packages texts, which it borrows until [`IndexBuilder::finish`].
pub struct IndexBuilder<'a> {
    arch: String,
    sources: Vec<String>,
    pending: Vec<Pending<'a>>,
    /// Bytes the string table will take, kept below 4 GiB.
    string_bytes: u64,
}

impl<'a> IndexBuilder<'a> {
    /// An empty index of the packages for the Debian architecture `arch` (and `all`).
    pub fn new(arch: &str) -> IndexBuilder<'a> {
        IndexBuilder {
            arch: arch.to_string(),
            sources: Vec::new(),
            pending: Vec::new(),
            string_bytes: arch.len() as u64,
        }
    }

    /// Adds the packages of one Packages file; `source_name` names it in errors and in [`Index::sources`]
    /// (put what identifies its content there, such as its SHA256, to tell whether a cache is current).
    /// When two files hold the same name, version and architecture, the one added first is kept.
    pub fn add(&mut self, source_name: &str, text: &'a str) -> Result<&mut Self, IndexError> {
        self.grow(source_name, source_name.len())?;
        self.sources.push(source_name.to_string());
        for paragraph in control::paragraphs(text) {
            let paragraph = paragraph.map_err(|error| IndexError::Syntax {
                source_name: source_name.to_string(),
                error,
            })?;
            let mut fields: [Option<Field<'a>>; KEYS] = [None; KEYS];
            for field in &paragraph.fields {
                if let Some(key) = key(field.name) {
                    fields[key as usize] = Some(*field);
                }
            }
            let pending = Self::package(source_name, paragraph.line, &fields)?;
            self.grow(source_name, pending.fields.iter().map(|f| f.len()).sum())?;
            if self.pending.len() >= u32::MAX as usize {
                return Err(IndexError::TooLarge {
                    source_name: source_name.to_string(),
                });
            }
            self.pending.push(pending);
        }
        Ok(self)
    }

    fn grow(&mut self, source_name: &str, bytes: usize) -> Result<(), IndexError> {
        self.string_bytes += bytes as u64;
        if self.string_bytes > u64::from(u32::MAX) {
            return Err(IndexError::TooLarge {
                source_name: source_name.to_string(),
            });
        }
        Ok(())
    }

    /// Checks and keeps the fields of one paragraph.
    fn package(source_name: &str, line: usize, fields: &[Option<Field<'a>>; KEYS]) -> Result<Pending<'a>, IndexError> {
        let get = |key: Key| fields[key as usize].map(|f| f.value);
        let package = get(Key::Package).unwrap_or("(no Package field)");
        let fail = |reason: String| IndexError::Package {
            source_name: source_name.to_string(),
            line,
            package: package.to_string(),
            reason,
        };
        let required = |key: Key, name: &str| get(key).ok_or_else(|| fail(format!("no {name} field")));
        let name = required(Key::Package, "Package")?;
        if !version::is_valid_package_name(name) {
            return Err(fail("invalid package name".to_string()));
        }
        let version = required(Key::Version, "Version")?;
        version::check(version).map_err(|e| fail(e.to_string()))?;
        let arch = required(Key::Architecture, "Architecture")?;
        if arch.is_empty() || arch.contains(char::is_whitespace) {
            return Err(fail(format!("invalid Architecture {arch:?}")));
        }
        let filename = required(Key::Filename, "Filename")?;
        let number = |key: Key, field: &str| -> Result<Option<u64>, IndexError> {
            get(key)
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| fail(format!("{field} {v:?} is not a number")))
                })
                .transpose()
        };
        let size = number(Key::Size, "Size")?.ok_or_else(|| fail("no Size field".to_string()))?;
        let installed_size = match number(Key::InstalledSize, "Installed-Size")? {
            Some(NO_INSTALLED_SIZE) => return Err(fail("Installed-Size is too big".to_string())),
            Some(n) => n,
            None => NO_INSTALLED_SIZE,
        };
        let sha256_text = required(Key::Sha256, "SHA256")?;
        let sha256 =
            decode_sha256(sha256_text).ok_or_else(|| fail(format!("SHA256 {sha256_text:?} is not 64 hex digits")))?;
        let multi_arch = match get(Key::MultiArch) {
            None | Some("no") => MultiArch::No,
            Some("same") => MultiArch::Same,
            Some("foreign") => MultiArch::Foreign,
            Some("allowed") => MultiArch::Allowed,
            Some(other) => return Err(fail(format!("unknown Multi-Arch value {other:?}"))),
        };
        let essential = match get(Key::Essential) {
            None | Some("no") => false,
            Some("yes") => true,
            Some(other) => return Err(fail(format!("Essential must be yes or no, not {other:?}"))),
        };
        let priority = get(Key::Priority).map_or(0, |p| Priority::parse(p) as u8 + 1);
        for (key, field) in [
            (Key::Depends, "Depends"),
            (Key::PreDepends, "Pre-Depends"),
            (Key::Recommends, "Recommends"),
        ] {
            if let Some(text) = get(key) {
                parse_relations(text).map_err(|e| fail(format!("{field}: {e}")))?;
            }
        }
        let provides_text = get(Key::Provides).unwrap_or("");
        let offset = |part: &str| (part.as_ptr() as usize - provides_text.as_ptr() as usize) as u32;
        let provides = parse_provides(provides_text)
            .map_err(|e| fail(format!("Provides: {e}")))?
            .iter()
            .map(|p| {
                let version = p.constraint.map_or("", |c| c.version);
                let version_at = if version.is_empty() { 0 } else { offset(version) };
                [offset(p.name), p.name.len() as u32, version_at, version.len() as u32]
            })
            .collect();
        let source = get(Key::Source).unwrap_or("");
        if !source.is_empty() && !valid_source_field(source) {
            return Err(fail(format!("Source {source:?} is not 'name' or 'name (version)'")));
        }
        let description = fields[Key::Description as usize].map_or("", |f| f.first_line());
        let mut kept = [""; FIELDS];
        kept[F_NAME] = name;
        kept[F_VERSION] = version;
        kept[F_ARCH] = arch;
        kept[F_SECTION] = get(Key::Section).unwrap_or("");
        kept[F_FILENAME] = filename;
        kept[F_DESCRIPTION] = description;
        kept[F_DEPENDS] = get(Key::Depends).unwrap_or("");
        kept[F_PRE_DEPENDS] = get(Key::PreDepends).unwrap_or("");
        kept[F_RECOMMENDS] = get(Key::Recommends).unwrap_or("");
        kept[F_PROVIDES] = provides_text;
        kept[F_SOURCE] = source;
        Ok(Pending {
            fields: kept,
            size,
            installed_size,
            sha256,
            priority,
            multi_arch,
            essential,
            provides,
        })
    }

    /// Sorts the packages (name, newest version first), drops repeated (name, version, architecture)
    /// triples, and lays out the tables.
    pub fn finish(self) -> Index {
        let IndexBuilder {
            arch,
            sources,
            pending,
            string_bytes,
        } = self;
        // Sorting by the names' first 16 bytes (big-endian, so integer order is byte order) first keeps most
        // comparisons out of the scattered texts.
        let prefix = |name: &str| {
            let mut bytes = [0u8; 16];
            let n = name.len().min(16);
            bytes[..n].copy_from_slice(&name.as_bytes()[..n]);
            u128::from_be_bytes(bytes)
        };
        let mut order: Vec<(u128, u32)> = pending
            .iter()
            .enumerate()
            .map(|(i, p)| (prefix(p.fields[F_NAME]), i as u32))
            .collect();
        order.sort_unstable_by(|&(prefix_a, a), &(prefix_b, b)| {
            prefix_a.cmp(&prefix_b).then_with(|| {
                let (fa, fb) = (&pending[a as usize].fields, &pending[b as usize].fields);
                fa[F_NAME]
                    .cmp(fb[F_NAME])
                    .then_with(|| version::compare(fb[F_VERSION], fa[F_VERSION]))
                    .then_with(|| fb[F_VERSION].cmp(fa[F_VERSION]))
                    .then_with(|| fa[F_ARCH].cmp(fb[F_ARCH]))
                    .then(a.cmp(&b))
            })
        });
        let same = |a: &Pending, b: &Pending| a.fields[..=F_ARCH] == b.fields[..=F_ARCH];
        order.dedup_by(|later, earlier| same(&pending[later.1 as usize], &pending[earlier.1 as usize]));

        // Every length and the total were checked when the packages were added.
        let mut strings = String::with_capacity(string_bytes as usize);
        let mut push = |s: &str| {
            let off = strings.len() as u32;
            strings.push_str(s);
            Str {
                off,
                len: s.len() as u32,
            }
        };
        let arch = push(&arch);
        let sources: Vec<Str> = sources.iter().map(|s| push(s)).collect();
        let mut tables = Vec::with_capacity(order.len() * RECORD_SIZE);
        // (provided name, record) for sorting.
        let mut provides: Vec<(&str, Str, Str, u32)> = Vec::new();
        for (id, &(_, position)) in order.iter().enumerate() {
            let p = &pending[position as usize];
            let base = strings.len() as u32;
            tables.extend_from_slice(&base.to_le_bytes());
            for field in p.fields {
                strings.push_str(field);
                tables.extend_from_slice(&(field.len() as u32).to_le_bytes());
            }
            tables.extend_from_slice(&[p.priority, p.multi_arch as u8, u8::from(p.essential), 0, 0, 0, 0, 0]);
            tables.extend_from_slice(&p.size.to_le_bytes());
            tables.extend_from_slice(&p.installed_size.to_le_bytes());
            tables.extend_from_slice(&p.sha256);
            let provides_at = base + p.fields[..F_PROVIDES].iter().map(|f| f.len() as u32).sum::<u32>();
            for &[name_at, name_len, version_at, version_len] in &p.provides {
                let name = &p.fields[F_PROVIDES][name_at as usize..(name_at + name_len) as usize];
                let version = match version_len {
                    0 => Str::default(),
                    len => Str {
                        off: provides_at + version_at,
                        len,
                    },
                };
                let name_str = Str {
                    off: provides_at + name_at,
                    len: name_len,
                };
                provides.push((name, name_str, version, id as u32));
            }
        }
        provides.sort_unstable_by(|a, b| a.0.cmp(b.0).then(a.3.cmp(&b.3)));
        for &(_, name, version, provider) in &provides {
            put_str(&mut tables, name);
            put_str(&mut tables, version);
            tables.extend_from_slice(&provider.to_le_bytes());
        }
        Index {
            arch,
            sources,
            tables,
            packages: order.len(),
            provides: provides.len(),
            strings,
        }
    }
}

/// `name` or `name (version)`, as the Source field of a binary package is written.
fn valid_source_field(source: &str) -> bool {
    match source.split_once(' ') {
        None => version::is_valid_package_name(source),
        Some((name, rest)) => {
            version::is_valid_package_name(name)
                && rest
                    .strip_prefix('(')
                    .and_then(|v| v.strip_suffix(')'))
                    .is_some_and(|v| version::check(v).is_ok())
        }
    }
}

/// One package of an [`Index`].
#[derive(Clone, Copy)]
pub struct Package<'a> {
    index: &'a Index,
    id: PackageId,
    record: &'a [u8],
}

impl fmt::Debug for Package<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Package({} {} {})", self.name(), self.version(), self.architecture())
    }
}

/// `name version`, as errors name a package.
impl fmt::Display for Package<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name(), self.version())
    }
}

impl<'a> Package<'a> {
    fn field(&self, field: usize) -> &'a str {
        let index: &'a Index = self.index;
        index.record_field(self.record, field)
    }

    fn optional(&self, field: usize) -> Option<&'a str> {
        Some(self.field(field)).filter(|s| !s.is_empty())
    }

    pub fn id(&self) -> PackageId {
        self.id
    }
    pub fn name(&self) -> &'a str {
        self.field(F_NAME)
    }
    pub fn version(&self) -> &'a str {
        self.field(F_VERSION)
    }
    pub fn architecture(&self) -> &'a str {
        self.field(F_ARCH)
    }
    pub fn multi_arch(&self) -> MultiArch {
        MultiArch::ALL[usize::from(self.record[CODES + 1])]
    }
    pub fn essential(&self) -> bool {
        self.record[CODES + 2] == 1
    }
    pub fn priority(&self) -> Option<Priority> {
        Priority::ALL
            .get(usize::from(self.record[CODES]).checked_sub(1)?)
            .copied()
    }
    pub fn section(&self) -> Option<&'a str> {
        self.optional(F_SECTION)
    }
    /// The .deb's path relative to the mirror's root (`pool/main/b/bash/bash_5.2.15-2+b7_amd64.deb`).
    pub fn filename(&self) -> &'a str {
        self.field(F_FILENAME)
    }
    /// The .deb's size in bytes.
    pub fn size(&self) -> u64 {
        u64_at(self.record, CODES + 8)
    }
    /// In KiB, as the field gives it.
    pub fn installed_size(&self) -> Option<u64> {
        Some(u64_at(self.record, CODES + 16)).filter(|&n| n != NO_INSTALLED_SIZE)
    }
    /// The .deb's SHA256.
    pub fn sha256(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(&self.record[CODES + 24..]);
        out
    }
    pub fn sha256_hex(&self) -> String {
        self.record[CODES + 24..].iter().map(|b| format!("{b:02x}")).collect()
    }
    /// The Description's first line (the synopsis).
    pub fn description(&self) -> &'a str {
        self.field(F_DESCRIPTION)
    }
    /// The raw Depends field, "" if absent; likewise the other relation fields.
    pub fn depends(&self) -> &'a str {
        self.field(F_DEPENDS)
    }
    pub fn pre_depends(&self) -> &'a str {
        self.field(F_PRE_DEPENDS)
    }
    pub fn recommends(&self) -> &'a str {
        self.field(F_RECOMMENDS)
    }
    pub fn provides(&self) -> &'a str {
        self.field(F_PROVIDES)
    }
    /// The raw Source field: absent when the source package has the binary's name and version.
    pub fn source(&self) -> Option<&'a str> {
        self.optional(F_SOURCE)
    }
    pub fn source_name(&self) -> &'a str {
        match self.source() {
            Some(source) => source.split(' ').next().unwrap_or(source),
            None => self.name(),
        }
    }
    pub fn source_version(&self) -> &'a str {
        self.source()
            .and_then(|s| s.split_once(" ("))
            .and_then(|(_, v)| v.strip_suffix(')'))
            .unwrap_or_else(|| self.version())
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

    /// Whether a package of architecture `arch` can satisfy this index's dependencies.
    fn installable(&self, package: Package) -> bool {
        let arch = package.architecture();
        arch == "all" || arch == self.arch()
    }

    /// The Pre-Depends entries then the Depends entries of `id`; [`Index::resolve`] numbers entries by their
    /// position here.
    pub fn dependencies(&self, id: PackageId) -> Result<Vec<(DepField, Relation<'_>)>, ResolveError> {
        let package = self.package(id);
        let mut entries = Vec::new();
        for (field, text) in [
            (DepField::PreDepends, package.pre_depends()),
            (DepField::Depends, package.depends()),
        ] {
            let relations = parse_relations(text).map_err(|error| ResolveError::BadRelation {
                package: package.to_string(),
                field,
                error,
                required_by: Vec::new(),
            })?;
            entries.extend(relations.into_iter().map(|r| (field, r)));
        }
        Ok(entries)
    }

    /// The package chosen for each entry of [`Index::dependencies`], as (entry position, package). For each
    /// entry, the first alternative that something satisfies wins: a real package of a suitable
    /// architecture whose version satisfies the constraint (the newest such), else a package providing the
    /// name (for a versioned constraint, only with a provided version that satisfies it), preferring
    /// Priority required, important, standard, then by name, then the newest. Alternatives qualified with
    /// another architecture are skipped, and entries whose architecture restrictions or build profiles
    /// exclude them are left out. An entry nothing satisfies is an error saying why for each alternative.
    pub fn resolve(&self, id: PackageId) -> Result<Vec<(usize, PackageId)>, ResolveError> {
        let mut chosen = Vec::new();
        for (position, (field, relation)) in self.dependencies(id)?.into_iter().enumerate() {
            let applicable: Vec<&Alternative> = relation
                .alternatives
                .iter()
                .filter(|a| a.applies_to(self.arch(), &[]))
                .collect();
            if applicable.is_empty() {
                continue;
            }
            match applicable.iter().find_map(|a| self.choose(a)) {
                Some(target) => chosen.push((position, target)),
                None => {
                    let reason = applicable
                        .iter()
                        .map(|a| self.explain(a))
                        .collect::<Vec<_>>()
                        .join("; ");
                    return Err(ResolveError::Unsatisfiable {
                        package: self.package(id).to_string(),
                        field,
                        relation: relation.to_string(),
                        reason,
                        required_by: Vec::new(),
                    });
                }
            }
        }
        Ok(chosen)
    }

    /// Whether the qualifier lets the alternative be satisfied here at all.
    fn qualifier_fits(&self, alternative: &Alternative) -> bool {
        match alternative.arch {
            ArchQualifier::Arch(arch) => arch == self.arch(),
            _ => true,
        }
    }

    /// Whether `package` can satisfy `alternative` by its architecture and Multi-Arch.
    fn fits(&self, alternative: &Alternative, package: Package) -> bool {
        self.installable(package)
            && (alternative.arch != ArchQualifier::Any || package.multi_arch() == MultiArch::Allowed)
    }

    fn choose(&self, alternative: &Alternative) -> Option<PackageId> {
        if !self.qualifier_fits(alternative) {
            return None;
        }
        let real = self.versions(alternative.name).find(|&id| {
            let package = self.package(id);
            self.fits(alternative, package) && alternative.constraint.is_none_or(|c| c.satisfied_by(package.version()))
        });
        if real.is_some() {
            return real;
        }
        let rank = |id: PackageId| match self.package(id).priority() {
            Some(p @ (Priority::Required | Priority::Important | Priority::Standard)) => p as u8,
            _ => 3,
        };
        self.providers(alternative.name)
            .filter(|&(id, provided)| {
                self.fits(alternative, self.package(id))
                    && match (alternative.constraint, provided) {
                        (None, _) => true,
                        (Some(c), Some(v)) => c.satisfied_by(v),
                        (Some(_), None) => false,
                    }
            })
            // Ids are in name order, newest version first.
            .min_by_key(|&(id, _)| (rank(id), id))
            .map(|(id, _)| id)
    }

    /// Why nothing satisfies `alternative`.
    fn explain(&self, alternative: &Alternative) -> String {
        let name = alternative.name;
        if let ArchQualifier::Arch(arch) = alternative.arch
            && arch != self.arch()
        {
            return format!("{alternative} is for architecture {arch}, not {}", self.arch());
        }
        let wanted = alternative.constraint.map(|c| format!(" {c}")).unwrap_or_default();
        let mut why = Vec::new();
        let versions: Vec<Package> = self.versions(name).map(|id| self.package(id)).collect();
        let fitting: Vec<&Package> = versions.iter().filter(|p| self.fits(alternative, **p)).collect();
        if versions.is_empty() {
            why.push(format!("no package {name}"));
        } else if fitting.is_empty() {
            let found: Vec<String> = versions
                .iter()
                .map(|p| {
                    format!(
                        "{} ({}, Multi-Arch: {:?})",
                        p.version(),
                        p.architecture(),
                        p.multi_arch()
                    )
                })
                .collect();
            let need = if alternative.arch == ArchQualifier::Any {
                format!("{} or all, Multi-Arch: allowed for :any", self.arch())
            } else {
                format!("{} or all", self.arch())
            };
            why.push(format!("{name} is only {} (needs {need})", found.join(", ")));
        } else {
            let found: Vec<&str> = fitting.iter().map(|p| p.version()).collect();
            why.push(format!("{name} has version {}, not{wanted}", found.join(", ")));
        }
        let providers: Vec<(PackageId, Option<&str>)> = self.providers(name).collect();
        if !providers.is_empty() {
            let list: Vec<String> = providers
                .iter()
                .map(|&(id, version)| {
                    let package = self.package(id);
                    match version {
                        Some(v) => format!("{} (= {v}) by {} ({})", name, package.name(), package.architecture()),
                        None => format!("{} by {} ({})", name, package.name(), package.architecture()),
                    }
                })
                .collect();
            why.push(format!("provided as {}, none fitting{wanted}", list.join(", ")));
        }
        why.join(", ")
    }

    /// The transitive closure of `roots` over Pre-Depends and Depends as [`Index::resolve`] chooses, each
    /// package once, dependencies before the packages that need them (except around cycles, which are
    /// normal in Debian: libc6 and libgcc-s1 depend on each other). The order is deterministic.
    pub fn closure(&self, roots: &[PackageId]) -> Result<Vec<PackageId>, ResolveError> {
        const UNSEEN: u8 = 0;
        const ACTIVE: u8 = 1;
        const DONE: u8 = 2;
        let mut state = vec![UNSEEN; self.packages];
        let mut order = Vec::new();
        // (package, its chosen dependencies, next one to visit)
        let mut stack: Vec<(PackageId, Vec<PackageId>, usize)> = Vec::new();
        let chain = |stack: &[(PackageId, Vec<PackageId>, usize)]| -> Vec<String> {
            stack
                .iter()
                .rev()
                .map(|(id, _, _)| self.package(*id).to_string())
                .collect()
        };
        let visit = |id: PackageId, stack: &[(PackageId, Vec<PackageId>, usize)]| {
            let mut deps: Vec<PackageId> = self
                .resolve(id)
                .map_err(|mut e| {
                    e.set_required_by(chain(stack));
                    e
                })?
                .into_iter()
                .map(|(_, dep)| dep)
                .collect();
            let mut seen = std::collections::HashSet::new();
            deps.retain(|d| seen.insert(*d));
            Ok::<_, ResolveError>(deps)
        };
        for &root in roots {
            if state[root.index()] != UNSEEN {
                continue;
            }
            state[root.index()] = ACTIVE;
            let deps = visit(root, &stack)?;
            stack.push((root, deps, 0));
            while let Some((id, deps, next)) = stack.last_mut() {
                if let Some(&dep) = deps.get(*next) {
                    *next += 1;
                    if state[dep.index()] == UNSEEN {
                        state[dep.index()] = ACTIVE;
                        let deps = visit(dep, &stack)?;
                        stack.push((dep, deps, 0));
                    }
                } else {
                    state[id.index()] = DONE;
                    order.push(*id);
                    stack.pop();
                }
            }
        }
        Ok(order)
    }
}

/// The header's counts, checked against each other and the file's length.
struct Header {
    sources: usize,
    packages: usize,
    provides: usize,
    strings: usize,
    /// Bytes of the sources, package and provides tables.
    tables_len: usize,
    arch: Str,
    checksum: u64,
}

/// A fast 64-bit checksum of the tables and string table, to catch a damaged file (not an adversary: the
/// cache is as trusted as the directory it is in). Four independent lanes over 8-byte words.
fn checksum(parts: &[&[u8]]) -> u64 {
    const K: [u64; 4] = [
        0x9e37_79b9_7f4a_7c15,
        0xc2b2_ae3d_27d4_eb4f,
        0x1656_67b1_9e37_79f9,
        0x85eb_ca77_c2b2_ae63,
    ];
    let mut lanes = K;
    let mut total = 0u64;
    for part in parts {
        total = total.wrapping_add(part.len() as u64);
        let mut chunks = part.chunks_exact(32);
        for chunk in &mut chunks {
            for (i, lane) in lanes.iter_mut().enumerate() {
                let word = u64_at(chunk, i * 8);
                *lane = (*lane ^ word).wrapping_mul(K[i]).rotate_left(29);
            }
        }
        for (i, &byte) in chunks.remainder().iter().enumerate() {
            let lane = &mut lanes[i % 4];
            *lane = (*lane ^ u64::from(byte)).wrapping_mul(K[i % 4]).rotate_left(29);
        }
    }
    lanes
        .iter()
        .fold(total, |h, &lane| (h ^ lane).wrapping_mul(K[0]).rotate_left(31))
}

impl Index {
    /// The cache file's header and tables (the string table follows them).
    fn cache_head(&self) -> Vec<u8> {
        let mut sources = Vec::with_capacity(self.sources.len() * STR_SIZE);
        for &s in &self.sources {
            put_str(&mut sources, s);
        }
        let strings = self.strings.as_bytes();
        let total = (HEADER_SIZE + sources.len() + self.tables.len() + strings.len()) as u64;
        let mut out = Vec::with_capacity(HEADER_SIZE + sources.len() + self.tables.len());
        out.extend_from_slice(MAGIC);
        for n in [
            FORMAT_VERSION,
            RECORD_SIZE as u32,
            self.sources.len() as u32,
            self.packages as u32,
            self.provides as u32,
            strings.len() as u32,
        ] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        put_str(&mut out, self.arch);
        out.extend_from_slice(&total.to_le_bytes());
        out.extend_from_slice(&checksum(&[&sources, &self.tables, strings]).to_le_bytes());
        out.resize(HEADER_SIZE, 0);
        out.extend_from_slice(&sources);
        out.extend_from_slice(&self.tables);
        out
    }

    /// The whole cache file.
    pub fn to_cache_bytes(&self) -> Vec<u8> {
        let mut out = self.cache_head();
        out.extend_from_slice(self.strings.as_bytes());
        out
    }

    /// Writes the cache to `path` atomically: a temporary file in the same directory, synced, then renamed
    /// over `path`.
    pub fn write_cache(&self, path: &Path) -> Result<(), CacheError> {
        let io = |source| CacheError::Io {
            action: "writing",
            path: path.to_path_buf(),
            source,
        };
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let mut file = tempfile::Builder::new()
            .prefix(".rixos-index-")
            .tempfile_in(dir)
            .map_err(io)?;
        file.write_all(&self.cache_head()).map_err(io)?;
        file.write_all(self.strings.as_bytes()).map_err(io)?;
        file.as_file().sync_all().map_err(io)?;
        file.persist(path).map_err(|e| io(e.error))?;
        Ok(())
    }

    /// Reads a cache that [`Index::write_cache`] wrote, validating all of it. This is the fast way: the
    /// tables and the string table are read straight into the buffers the index keeps.
    pub fn read_cache(path: &Path) -> Result<Index, CacheError> {
        let io = |source| CacheError::Io {
            action: "reading",
            path: path.to_path_buf(),
            source,
        };
        let invalid = |error| CacheError::Invalid {
            path: path.to_path_buf(),
            error,
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let file_len = file.metadata().map_err(io)?.len();
        let mut head = vec![0u8; (file_len as usize).min(HEADER_SIZE)];
        file.read_exact(&mut head).map_err(io)?;
        let header = Index::check_header(&head, file_len).map_err(invalid)?;
        let mut read = |len: usize| -> Result<Vec<u8>, CacheError> {
            // Fresh zeroed memory costs nothing more than uninitialised memory: it comes zeroed from the OS.
            let mut buffer = vec![0u8; len];
            file.read_exact(&mut buffer).map_err(io)?;
            Ok(buffer)
        };
        let sources = read(header.sources * STR_SIZE)?;
        let tables = read(header.tables_len - sources.len())?;
        let strings = read(header.strings)?;
        Index::decode(&header, &sources, tables, strings).map_err(invalid)
    }

    /// Reads a cache from its bytes (which it copies; [`Index::read_cache`] does not need to).
    pub fn from_cache_bytes(bytes: &[u8]) -> Result<Index, CacheFormatError> {
        let header = Index::check_header(&bytes[..bytes.len().min(HEADER_SIZE)], bytes.len() as u64)?;
        let (sources, rest) = bytes[HEADER_SIZE..].split_at(header.sources * STR_SIZE);
        let (tables, strings) = rest.split_at(header.tables_len - sources.len());
        Index::decode(&header, sources, tables.to_vec(), strings.to_vec())
    }

    /// Checks the header (`head`: the file's first bytes, at most [`HEADER_SIZE`]) against the file's length.
    fn check_header(head: &[u8], file_len: u64) -> Result<Header, CacheFormatError> {
        let corrupt = |reason: String| Err(CacheFormatError::Corrupt(reason));
        if head.len() < HEADER_SIZE {
            // A prefix of the magic is a truncated cache; anything else is some other file.
            if head.is_empty() || !MAGIC.starts_with(&head[..head.len().min(MAGIC.len())]) {
                return Err(CacheFormatError::NotACache);
            }
            return corrupt(format!("truncated: {file_len} bytes, shorter than the header"));
        }
        if &head[..8] != MAGIC {
            return Err(CacheFormatError::NotACache);
        }
        let version = u32_at(head, 8);
        if version != FORMAT_VERSION {
            return Err(CacheFormatError::FormatVersion {
                found: version,
                expected: FORMAT_VERSION,
            });
        }
        let record_size = u32_at(head, 12);
        if record_size as usize != RECORD_SIZE {
            return corrupt(format!("record size {record_size}, expected {RECORD_SIZE}"));
        }
        let count = |at: usize| u32_at(head, at) as usize;
        let (sources, packages, provides, strings) = (count(16), count(20), count(24), count(28));
        let arch = str_at(head, 32);
        let total = u64_at(head, 40);
        let checksum = u64_at(head, 48);
        // At most 2^32 of each of 8-, 104- and 20-byte entries: no overflow in 64 bits.
        let tables_len = sources * STR_SIZE + packages * RECORD_SIZE + provides * PROVIDE_SIZE;
        if (HEADER_SIZE + tables_len + strings) as u64 != total {
            return corrupt(format!("the header's length {total} does not match its counts"));
        }
        if total != file_len {
            return corrupt(format!(
                "the header says {total} bytes, the file has {file_len} (truncated or appended to)"
            ));
        }
        Ok(Header {
            sources,
            packages,
            provides,
            strings,
            tables_len,
            arch,
            checksum,
        })
    }

    fn decode(header: &Header, sources: &[u8], tables: Vec<u8>, strings: Vec<u8>) -> Result<Index, CacheFormatError> {
        Index::decode_checked(header, sources, tables, strings).map_err(CacheFormatError::Corrupt)
    }

    /// Builds the index from the tables and string table, checking every offset, code and the sort order.
    fn decode_checked(header: &Header, sources: &[u8], tables: Vec<u8>, strings: Vec<u8>) -> Result<Index, String> {
        if checksum(&[sources, &tables, &strings]) != header.checksum {
            return Err("checksum mismatch".to_string());
        }
        let strings = String::from_utf8(strings)
            .map_err(|e| format!("string table is not UTF-8 at byte {}", e.utf8_error().valid_up_to()))?;
        let outside = |what: &str, i: usize, start: usize, len: usize| {
            format!(
                "{what} {i}: string at {start}+{len} is not within the {}-byte string table",
                strings.len()
            )
        };
        let check = |s: Str, what: &str, i: usize| -> Result<Str, String> {
            let (start, end) = (s.off as usize, s.off as usize + s.len as usize);
            if end > strings.len() || !strings.is_char_boundary(start) || !strings.is_char_boundary(end) {
                return Err(outside(what, i, start, s.len as usize));
            }
            Ok(s)
        };
        let arch = check(header.arch, "architecture", 0)?;
        let sources = (0..header.sources)
            .map(|i| check(str_at(sources, i * STR_SIZE), "source", i))
            .collect::<Result<Vec<Str>, String>>()?;
        // Lookups are binary searches: the order must hold.
        let mut previous_name: &[u8] = &[];
        for (i, record) in tables[..header.packages * RECORD_SIZE]
            .chunks_exact(RECORD_SIZE)
            .enumerate()
        {
            let mut at = u32_at(record, 0) as usize;
            if !strings.is_char_boundary(at) {
                return Err(outside("package", i, at, 0));
            }
            let name_start = at;
            for field in 0..FIELDS {
                let len = u32_at(record, 4 + 4 * field) as usize;
                if !strings.is_char_boundary(at + len) {
                    return Err(outside("package", i, at, len));
                }
                at += len;
            }
            let name = &strings.as_bytes()[name_start..name_start + u32_at(record, 4 + 4 * F_NAME) as usize];
            if name.is_empty() {
                return Err(format!("package {i} has no name"));
            }
            if name < previous_name {
                return Err(format!("packages {} and {i} are out of order", i - 1));
            }
            previous_name = name;
            let (priority, multi_arch, essential) = (record[CODES], record[CODES + 1], record[CODES + 2]);
            if usize::from(priority) > Priority::ALL.len()
                || usize::from(multi_arch) >= MultiArch::ALL.len()
                || essential > 1
                || record[CODES + 3..CODES + 8] != [0; 5]
            {
                return Err(format!(
                    "package {i}: bad codes (priority {priority}, Multi-Arch {multi_arch}, Essential {essential})"
                ));
            }
        }
        for i in 0..header.provides {
            let at = header.packages * RECORD_SIZE + i * PROVIDE_SIZE;
            check(str_at(&tables, at), "provides entry", i)?;
            check(str_at(&tables, at + STR_SIZE), "provides entry", i)?;
            let provider = u32_at(&tables, at + 2 * STR_SIZE);
            if provider as usize >= header.packages {
                return Err(format!("provides entry {i}: package {provider} of {}", header.packages));
            }
        }
        let index = Index {
            arch,
            sources,
            tables,
            packages: header.packages,
            provides: header.provides,
            strings,
        };
        if let Some(i) =
            (1..index.provides).find(|&i| index.str(index.provide(i - 1).0) > index.str(index.provide(i).0))
        {
            return Err(format!("provides entries {} and {i} are out of order", i - 1));
        }
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// A Packages paragraph with the required fields.
    fn package(name: &str, version: &str, extra: &str) -> String {
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: amd64\nFilename: pool/{name}_{version}.deb\n\
             Size: 1000\nSHA256: {H}\n{extra}\n"
        )
    }

    fn index(paragraphs: &[String]) -> Index {
        Index::parse("amd64", "test", &paragraphs.join("\n")).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A small archive: the libc6 <-> libgcc-s1 cycle, versioned and unversioned virtual packages, Multi-Arch,
    /// architecture qualifiers, two versions of one package.
    fn archive() -> Index {
        index(&[
            package(
                "libc6",
                "2.36-9+deb12u4",
                "Depends: libgcc-s1\nMulti-Arch: same\nPriority: optional\nSection: libs\nSource: glibc\n\
                 Installed-Size: 12000\nDescription: GNU C Library: Shared libraries\n Contains the standard libraries.",
            ),
            package("libc6", "2.36-9", "Depends: libgcc-s1\nMulti-Arch: same"),
            package(
                "libgcc-s1",
                "12.2.0-14",
                "Depends: gcc-12-base (= 12.2.0-14), libc6 (>= 2.35)\nSource: gcc-12 (12.2.0-14)",
            ),
            package("gcc-12-base", "12.2.0-14", "Multi-Arch: same"),
            package(
                "openssh-server",
                "1:9.2p1-2+deb12u6",
                "Pre-Depends: init-system-helpers (>= 1.54~)\n\
                 Depends: libc6 (>= 2.36), perl:any, default-logind | logind, awk, libfoo-abi (>= 2)",
            ),
            package("init-system-helpers", "1.65.2", "Depends: perl-base (>= 5.20.1-3)"),
            package("perl-base", "5.36.0-7+deb12u2", "Essential: yes\nPriority: required"),
            package("perl", "5.36.0-7+deb12u2", "Multi-Arch: allowed\nDepends: perl-base"),
            package(
                "systemd",
                "252.33-1~deb12u1",
                "Provides: logind, default-logind (= 252)",
            ),
            package("elogind", "246.10-1", "Provides: logind"),
            package("gawk", "1:5.2.1-2", "Provides: awk\nPriority: optional"),
            package("mawk", "1.3.4.20200120-3.1", "Provides: awk\nPriority: required"),
            package("libfoo2", "2.0-1", "Provides: libfoo-abi (= 2.1)"),
            package("libfoo1", "1.0-1", "Provides: libfoo-abi (= 1)"),
            package(
                "cross",
                "1",
                "Depends: libc6:i386 | libc6:amd64, gcc-12-base [i386], nothing <stage1>",
            ),
            package(
                "broken",
                "1",
                "Depends: libc6 (>= 3), nothere | libfoo-abi (>= 3), perl-base",
            ),
            package("wants-any", "1", "Depends: libc6:any"),
            package("wants-i386", "1", "Depends: libc6:i386"),
        ])
    }

    fn names(index: &Index, ids: &[PackageId]) -> Vec<String> {
        ids.iter().map(|&id| index.package(id).to_string()).collect()
    }

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

    #[test]
    fn resolve_chooses_per_entry() {
        let index = archive();
        let ssh = index.newest("openssh-server").unwrap();
        let entries: Vec<String> = index
            .dependencies(ssh)
            .unwrap()
            .iter()
            .map(|(field, relation)| format!("{field}: {relation}"))
            .collect();
        assert_eq!(
            entries,
            [
                "Pre-Depends: init-system-helpers (>= 1.54~)",
                "Depends: libc6 (>= 2.36)",
                "Depends: perl:any",
                "Depends: default-logind | logind",
                "Depends: awk",
                "Depends: libfoo-abi (>= 2)",
            ]
        );
        let chosen: Vec<(usize, String)> = index
            .resolve(ssh)
            .unwrap()
            .into_iter()
            .map(|(entry, id)| (entry, index.package(id).to_string()))
            .collect();
        let expected: Vec<(usize, &str)> = vec![
            (0, "init-system-helpers 1.65.2"),
            (1, "libc6 2.36-9+deb12u4"),
            (2, "perl 5.36.0-7+deb12u2"),
            // default-logind is only virtual, provided by systemd.
            (3, "systemd 252.33-1~deb12u1"),
            // mawk is Priority: required, gawk optional.
            (4, "mawk 1.3.4.20200120-3.1"),
            // Only libfoo2 provides a version >= 2.
            (5, "libfoo2 2.0-1"),
        ];
        let expected: Vec<(usize, String)> = expected.into_iter().map(|(e, s)| (e, s.to_string())).collect();
        assert_eq!(chosen, expected);

        // libc6:i386 is skipped, [i386] and <stage1> entries do not apply on amd64 without profiles.
        let cross = index.newest("cross").unwrap();
        let chosen = index.resolve(cross).unwrap();
        assert_eq!(chosen.len(), 1);
        assert_eq!(index.package(chosen[0].1).to_string(), "libc6 2.36-9+deb12u4");
        // libc6 is Multi-Arch: same, not allowed: `:any` cannot use it.
        let err = index
            .resolve(index.newest("wants-any").unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("libc6 is only 2.36-9+deb12u4 (amd64, Multi-Arch: Same)"),
            "{err}"
        );
        let err = index
            .resolve(index.newest("wants-i386").unwrap())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "wants-i386 1: Depends: cannot satisfy \"libc6:i386\": libc6:i386 is for architecture i386, not amd64"
        );
    }

    #[test]
    fn unsatisfiable_entries_say_why() {
        let index = archive();
        let err = index.resolve(index.newest("broken").unwrap()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "broken 1: Depends: cannot satisfy \"libc6 (>= 3)\": libc6 has version 2.36-9+deb12u4, 2.36-9, not >= 3"
        );
        let index = index_with_broken_second_entry();
        let err = index.resolve(index.newest("broken").unwrap()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "broken 1: Depends: cannot satisfy \"nothere | libfoo-abi (>= 3)\": no package nothere; no package \
             libfoo-abi, provided as libfoo-abi (= 2.1) by libfoo2 (amd64), none fitting >= 3"
        );
    }

    fn index_with_broken_second_entry() -> Index {
        index(&[
            package("broken", "1", "Depends: perl-base, nothere | libfoo-abi (>= 3)"),
            package("perl-base", "5.36.0-7", ""),
            package("libfoo2", "2.0-1", "Provides: libfoo-abi (= 2.1)"),
        ])
    }

    #[test]
    fn closure_handles_cycles_in_order() {
        let index = archive();
        let ssh = index.newest("openssh-server").unwrap();
        let closure = index.closure(&[ssh]).unwrap();
        assert_eq!(
            names(&index, &closure),
            [
                "perl-base 5.36.0-7+deb12u2",
                "init-system-helpers 1.65.2",
                "gcc-12-base 12.2.0-14",
                "libgcc-s1 12.2.0-14",
                "libc6 2.36-9+deb12u4",
                "perl 5.36.0-7+deb12u2",
                "systemd 252.33-1~deb12u1",
                "mawk 1.3.4.20200120-3.1",
                "libfoo2 2.0-1",
                "openssh-server 1:9.2p1-2+deb12u6",
            ]
        );
        // Asking again, or with a root that is already inside, changes nothing.
        let libc = index.newest("libc6").unwrap();
        assert_eq!(index.closure(&[ssh, libc, ssh]).unwrap(), closure);
        // From the other side of the cycle.
        assert_eq!(
            names(&index, &index.closure(&[libc]).unwrap()),
            ["gcc-12-base 12.2.0-14", "libgcc-s1 12.2.0-14", "libc6 2.36-9+deb12u4"]
        );
    }

    #[test]
    fn closure_errors_name_the_chain() {
        let index = index(&[
            package("top", "1", "Depends: middle"),
            package("middle", "1", "Depends: missing (>= 1)"),
        ]);
        let err = index.closure(&[index.newest("top").unwrap()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "middle 1: Depends: cannot satisfy \"missing (>= 1)\": no package missing (required by top 1)"
        );
    }

    #[test]
    fn duplicates_across_files_keep_the_first() {
        let first = package("a", "1", "Description: from the first");
        let second = [package("a", "1", "Description: from the second"), package("a", "2", "")].join("\n");
        let mut builder = IndexBuilder::new("amd64");
        builder.add("first", &first).unwrap();
        builder.add("second", &second).unwrap();
        let index = builder.finish();
        let found: Vec<(&str, &str)> = index
            .versions("a")
            .map(|id| (index.package(id).version(), index.package(id).description()))
            .collect();
        assert_eq!(found, [("2", ""), ("1", "from the first")]);
        assert_eq!(index.sources().collect::<Vec<_>>(), ["first", "second"]);
    }

    #[test]
    fn bad_paragraphs() {
        let cases: Vec<(String, &str)> = vec![
            (
                "Version: 1\n".to_string(),
                "test:1: package (no Package field): no Package field",
            ),
            (
                package("a", "1", "").replace("Version: 1\n", ""),
                "test:1: package a: no Version field",
            ),
            (
                package("a", "x1", ""),
                "package a: version number does not start with a digit",
            ),
            (
                package("a", "1", "").replace("Size: 1000\n", ""),
                "package a: no Size field",
            ),
            (
                package("a", "1", "").replace("Size: 1000", "Size: big"),
                "package a: Size \"big\" is not a number",
            ),
            (
                package("a", "1", "").replace(H, "abc"),
                "package a: SHA256 \"abc\" is not 64 hex digits",
            ),
            (
                package("a", "1", "").replace("Filename", "X-Filename"),
                "package a: no Filename field",
            ),
            (
                package("a", "1", "Multi-Arch: sometimes"),
                "unknown Multi-Arch value \"sometimes\"",
            ),
            (package("a", "1", "Essential: maybe"), "Essential must be yes or no"),
            (
                package("a", "1", "Depends: b (>= )"),
                "package a: Depends: expected a version at byte 6",
            ),
            (package("a", "1", "Provides: b (>= 1)"), "Provides: only exact versions"),
            (package("a", "1", "Source: b (x)"), "Source \"b (x)\" is not"),
            (package("-a", "1", ""), "package -a: invalid package name"),
            (
                format!("{}\n\n{}", package("a", "1", ""), "Package: b\nbad line"),
                "test: line 11: expected 'Field: value', found \"bad line\"",
            ),
        ];
        for (text, message) in cases {
            let err = Index::parse("amd64", "test", &text).unwrap_err().to_string();
            assert!(err.contains(message), "{err:?} lacks {message:?}");
        }
    }

    #[test]
    fn cache_round_trip() {
        let index = archive();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.cache");
        index.write_cache(&path).unwrap();
        let read = Index::read_cache(&path).unwrap();
        assert_same(&index, &read);
        // Only the cache is left in the directory: the temporary file was renamed.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // Writing again replaces it.
        read.write_cache(&path).unwrap();
        assert_same(&index, &Index::read_cache(&path).unwrap());
        let empty = IndexBuilder::new("arm64").finish();
        empty.write_cache(&path).unwrap();
        let read = Index::read_cache(&path).unwrap();
        assert!(read.is_empty());
        assert_eq!(read.arch(), "arm64");
    }

    /// Two indexes give the same answers.
    fn assert_same(a: &Index, b: &Index) {
        assert_eq!(a.arch(), b.arch());
        assert_eq!(a.sources().collect::<Vec<_>>(), b.sources().collect::<Vec<_>>());
        assert_eq!(a.len(), b.len());
        for id in a.ids() {
            let (p, q) = (a.package(id), b.package(id));
            let fields = |p: Package| {
                (
                    [
                        p.name(),
                        p.version(),
                        p.architecture(),
                        p.filename(),
                        p.description(),
                        p.depends(),
                        p.pre_depends(),
                        p.recommends(),
                        p.provides(),
                        p.section().unwrap_or("-"),
                        p.source().unwrap_or("-"),
                    ]
                    .map(str::to_string),
                    (p.size(), p.installed_size(), p.sha256()),
                    (p.priority(), p.multi_arch(), p.essential()),
                )
            };
            assert_eq!(fields(p), fields(q));
        }
        let provided = |index: &Index| {
            (0..index.provides)
                .map(|i| {
                    let (name, version, provider) = index.provide(i);
                    (index.str(name).to_string(), index.str(version).to_string(), provider)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(provided(a), provided(b));
        assert_eq!(a.names().collect::<Vec<_>>(), b.names().collect::<Vec<_>>());
    }

    #[test]
    fn bad_caches_are_errors() {
        let index = archive();
        let good = index.to_cache_bytes();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.cache");
        let try_read = |bytes: &[u8]| {
            std::fs::write(&path, bytes).unwrap();
            Index::read_cache(&path).map(|_| ()).unwrap_err().to_string()
        };
        let patched = |offset: usize, value: &[u8]| {
            let mut bytes = good.clone();
            bytes[offset..offset + value.len()].copy_from_slice(value);
            bytes
        };
        // The string table starts after the header and tables; pointing a name past it must be caught even
        // with a matching checksum.
        let sources_len = index.sources.len() * STR_SIZE;
        let tables_len = index.tables.len();
        let with_checksum = |mut bytes: Vec<u8>| {
            let (sources, rest) = bytes[HEADER_SIZE..].split_at(sources_len);
            let (tables, strings) = rest.split_at(tables_len);
            let sum = checksum(&[sources, tables, strings]);
            bytes[48..56].copy_from_slice(&sum.to_le_bytes());
            bytes
        };
        let first_record = HEADER_SIZE + STR_SIZE;
        let mut unsorted = good.clone();
        // Swap the first two records.
        let (a, b) = (first_record, first_record + RECORD_SIZE);
        let record_a: Vec<u8> = unsorted[a..b].to_vec();
        let record_b: Vec<u8> = unsorted[b..b + RECORD_SIZE].to_vec();
        unsorted[a..b].copy_from_slice(&record_b);
        unsorted[b..b + RECORD_SIZE].copy_from_slice(&record_a);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (Vec::new(), "not a rixos package index cache (bad magic)"),
            (b"hello".to_vec(), "not a rixos package index cache (bad magic)"),
            (b"RIXOS".to_vec(), "corrupt: truncated: 5 bytes"),
            (patched(0, b"XIXOSIDX"), "not a rixos package index cache (bad magic)"),
            (
                patched(8, &2u32.to_le_bytes()),
                "format version 2, this rixos reads version 1",
            ),
            (patched(12, &7u32.to_le_bytes()), "record size 7"),
            (good[..good.len() - 1].to_vec(), "the file has"),
            ([good.as_slice(), b"x"].concat(), "truncated or appended to"),
            (patched(20, &1000u32.to_le_bytes()), "does not match its counts"),
            (patched(good.len() - 3, b"Z"), "checksum mismatch"),
            (
                with_checksum(patched(first_record, &u32::MAX.to_le_bytes())),
                "package 0: string at 4294967295+0",
            ),
            (
                with_checksum(patched(first_record + 4 + 4 * F_DESCRIPTION, &u32::MAX.to_le_bytes())),
                "package 0: string at ",
            ),
            (
                with_checksum(patched(first_record + 4, &[0; 4])),
                "package 0 has no name",
            ),
            (
                with_checksum(patched(first_record + CODES + 1, &[9])),
                "package 0: bad codes (priority 0, Multi-Arch 9",
            ),
            (
                with_checksum(patched(first_record + CODES + 3, &[1])),
                "package 0: bad codes",
            ),
            (
                with_checksum(patched(32, &u32::MAX.to_le_bytes())),
                "architecture 0: string at 4294967295",
            ),
            (
                with_checksum(patched(
                    first_record + index.len() * RECORD_SIZE + 16,
                    &u32::MAX.to_le_bytes(),
                )),
                "provides entry 0: package 4294967295 of 18",
            ),
            (with_checksum(unsorted), "packages 0 and 1 are out of order"),
        ];
        for (bytes, message) in cases {
            let err = try_read(&bytes);
            assert!(err.contains(message), "{err:?} lacks {message:?}");
            assert!(err.contains("delete it to rebuild it"), "{err}");
        }
        assert_same(&index, &Index::from_cache_bytes(&good).unwrap());
        assert_eq!(
            Index::from_cache_bytes(b"RIX").unwrap_err(),
            CacheFormatError::Corrupt("truncated: 3 bytes, shorter than the header".to_string())
        );
        assert!(
            Index::read_cache(&dir.path().join("missing"))
                .unwrap_err()
                .to_string()
                .starts_with("reading index cache")
        );
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
