//! One package of an [`Index`] and its fields.

use std::fmt;

use super::{
    CODES, F_ARCH, F_DEPENDS, F_DESCRIPTION, F_FILENAME, F_NAME, F_PRE_DEPENDS, F_PROVIDES, F_RECOMMENDS, F_SECTION,
    F_SOURCE, F_VERSION, Index, MultiArch, NO_INSTALLED_SIZE, PackageId, Priority, u64_at,
};

/// One package of an [`Index`].
#[derive(Clone, Copy)]
pub struct Package<'a> {
    pub(super) index: &'a Index,
    pub(super) id: PackageId,
    pub(super) record: &'a [u8],
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
