//! Building an [`Index`] from Packages texts: the fields kept, each checked, and the records sorted.

use crate::pkgs::control::{self, Field};
use crate::pkgs::version::{self, parse_provides, parse_relations};

use super::error::IndexError;
use super::{
    F_ARCH, F_DEPENDS, F_DESCRIPTION, F_FILENAME, F_NAME, F_PRE_DEPENDS, F_PROVIDES, F_RECOMMENDS, F_SECTION, F_SOURCE,
    F_VERSION, FIELDS, Index, MultiArch, NO_INSTALLED_SIZE, Priority, RECORD_SIZE, Str, put_str,
};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pkgs::index::test_packages::{H, package};

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
}
