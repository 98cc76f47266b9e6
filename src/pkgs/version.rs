//! Debian versions and package relations, as dpkg reads them.
//!
//! Owns: checking a version string (`[epoch:]upstream[-revision]`, dpkg's `parseversion` rules, strict as
//! dpkg is for package indexes), ordering versions exactly as dpkg's `verrevcmp` does, and parsing the
//! relation fields (Depends, Pre-Depends, Recommends, Conflicts, Provides, ...) into borrowed alternatives.
//!
//! Knows nothing of package indexes or how relations are resolved: that is [`super::index`]. Parsed relations
//! borrow from the field text, so parsing a field allocates only one vector per entry.

use std::cmp::Ordering;
use std::fmt;

use thiserror::Error;

/// Why a version string is not one dpkg accepts. The messages are dpkg's.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VersionError {
    #[error("version string is empty")]
    Empty,
    #[error("version string {0:?} has embedded spaces")]
    EmbeddedSpace(String),
    #[error("epoch in version {0:?} is empty")]
    EmptyEpoch(String),
    #[error("epoch in version {0:?} is not a number")]
    EpochNotNumber(String),
    #[error("epoch in version {0:?} is too big")]
    EpochTooBig(String),
    #[error("nothing after colon in version {0:?}")]
    NothingAfterColon(String),
    #[error("revision number is empty in version {0:?}")]
    EmptyRevision(String),
    #[error("version number does not start with a digit in version {0:?}")]
    NoLeadingDigit(String),
    #[error("invalid character {ch:?} in version {version:?}")]
    InvalidCharacter { version: String, ch: char },
}

/// A checked Debian version. Equality and order are dpkg's: `1.0` equals `1.00` and `0:1.0`.
#[derive(Debug, Clone)]
pub struct Version {
    text: Box<str>,
}

impl Version {
    /// Checks `text` (surrounding whitespace is ignored, as dpkg ignores it).
    pub fn parse(text: &str) -> Result<Version, VersionError> {
        let text = text.trim();
        check(text)?;
        Ok(Version { text: text.into() })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The epoch, 0 when the version has none.
    pub fn epoch(&self) -> u32 {
        split(&self.text).0
    }

    /// The upstream part: between the epoch's colon and the last hyphen.
    pub fn upstream(&self) -> &str {
        split(&self.text).1
    }

    /// The Debian revision (after the last hyphen), if there is one.
    pub fn revision(&self) -> Option<&str> {
        let (_, _, revision) = split(&self.text);
        self.text.contains('-').then_some(revision)
    }
}

impl std::str::FromStr for Version {
    type Err = VersionError;
    fn from_str(text: &str) -> Result<Version, VersionError> {
        Version::parse(text)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Version) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Version) -> Ordering {
        compare(&self.text, &other.text)
    }
}

/// Checks a version string without copying it; `text` must already be trimmed.
pub fn check(text: &str) -> Result<(), VersionError> {
    let owned = || text.to_string();
    if text.is_empty() {
        return Err(VersionError::Empty);
    }
    if text.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err(VersionError::EmbeddedSpace(owned()));
    }
    let rest = match text.split_once(':') {
        Some((epoch, rest)) => {
            if epoch.is_empty() {
                return Err(VersionError::EmptyEpoch(owned()));
            }
            if !epoch.bytes().all(|b| b.is_ascii_digit()) {
                return Err(VersionError::EpochNotNumber(owned()));
            }
            // dpkg keeps epochs in an int.
            if epoch.parse::<u32>().ok().is_none_or(|e| e > i32::MAX as u32) {
                return Err(VersionError::EpochTooBig(owned()));
            }
            if rest.is_empty() {
                return Err(VersionError::NothingAfterColon(owned()));
            }
            rest
        }
        None => text,
    };
    let (upstream, revision) = match rest.rfind('-') {
        Some(hyphen) => {
            let revision = &rest[hyphen + 1..];
            if revision.is_empty() {
                return Err(VersionError::EmptyRevision(owned()));
            }
            (&rest[..hyphen], Some(revision))
        }
        None => (rest, None),
    };
    if !upstream.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(VersionError::NoLeadingDigit(owned()));
    }
    let bad = |allowed: &str, part: &str| {
        part.chars()
            .find(|&c| !c.is_ascii_alphanumeric() && !allowed.contains(c))
    };
    if let Some(ch) = bad(".-+~:", upstream).or_else(|| revision.and_then(|r| bad(".+~", r))) {
        return Err(VersionError::InvalidCharacter { version: owned(), ch });
    }
    Ok(())
}

/// Epoch, upstream and revision ("" when absent) of a version string, without checking it.
fn split(text: &str) -> (u32, &str, &str) {
    let (epoch, rest) = match text.split_once(':') {
        Some((epoch, rest)) => (epoch.parse().unwrap_or(0), rest),
        None => (0, text),
    };
    match rest.rfind('-') {
        Some(hyphen) => (epoch, &rest[..hyphen], &rest[hyphen + 1..]),
        None => (epoch, rest, ""),
    }
}

/// Compares two version strings as dpkg does: epochs numerically, then upstream, then revision, each with
/// [`verrevcmp`]. Meant for strings that passed [`check`]; any other input still gives a total order.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (epoch_a, upstream_a, revision_a) = split(a);
    let (epoch_b, upstream_b, revision_b) = split(b);
    epoch_a
        .cmp(&epoch_b)
        .then_with(|| verrevcmp(upstream_a.as_bytes(), upstream_b.as_bytes()))
        .then_with(|| verrevcmp(revision_a.as_bytes(), revision_b.as_bytes()))
}

/// dpkg's character weight: `~` before the end of the string (0), letters before everything else.
fn order(c: u8) -> i32 {
    match c {
        b'~' => -1,
        0 | b'0'..=b'9' => 0,
        c if c.is_ascii_alphabetic() => i32::from(c),
        c => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp`: alternating runs of non-digits (compared by [`order`], the end of the string being 0)
/// and digits (compared numerically, leading zeros ignored).
fn verrevcmp(a: &[u8], b: &[u8]) -> Ordering {
    let at = |s: &[u8], i: usize| s.get(i).copied().unwrap_or(0);
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let (ac, bc) = (order(at(a, i)), order(at(b, j)));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while at(a, i) == b'0' {
            i += 1;
        }
        while at(b, j) == b'0' {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while at(a, i).is_ascii_digit() && at(b, j).is_ascii_digit() {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if at(a, i).is_ascii_digit() {
            return Ordering::Greater;
        }
        if at(b, j).is_ascii_digit() {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

/// A version relation operator. dpkg reads the obsolete `<` as `<=` and `>` as `>=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RelationOp {
    /// `<<`
    Earlier,
    /// `<=`
    EarlierOrEqual,
    /// `=`
    Equal,
    /// `>=`
    LaterOrEqual,
    /// `>>`
    Later,
}

impl RelationOp {
    pub fn as_str(self) -> &'static str {
        match self {
            RelationOp::Earlier => "<<",
            RelationOp::EarlierOrEqual => "<=",
            RelationOp::Equal => "=",
            RelationOp::LaterOrEqual => ">=",
            RelationOp::Later => ">>",
        }
    }

    /// Whether `candidate` compared to the relation's version (`candidate.cmp(wanted)`) satisfies it.
    pub fn accepts(self, ordering: Ordering) -> bool {
        match self {
            RelationOp::Earlier => ordering == Ordering::Less,
            RelationOp::EarlierOrEqual => ordering != Ordering::Greater,
            RelationOp::Equal => ordering == Ordering::Equal,
            RelationOp::LaterOrEqual => ordering != Ordering::Less,
            RelationOp::Later => ordering == Ordering::Greater,
        }
    }
}

impl fmt::Display for RelationOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `(op version)` of an alternative; the version has passed [`check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Constraint<'a> {
    pub op: RelationOp,
    pub version: &'a str,
}

impl Constraint<'_> {
    /// Whether a package (or a provided version) `version` satisfies the constraint.
    pub fn satisfied_by(&self, version: &str) -> bool {
        self.op.accepts(compare(version, self.version))
    }
}

impl fmt::Display for Constraint<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op, self.version)
    }
}

/// The `:qualifier` after a package name in a relation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchQualifier<'a> {
    /// No qualifier: the depending package's architecture (or `all`).
    None,
    /// `:any`: any architecture, if the target is `Multi-Arch: allowed`.
    Any,
    /// `:native`: the native architecture.
    Native,
    /// An explicit architecture, `:amd64`.
    Arch(&'a str),
}

/// One `[!]arch` of a `[...]` architecture restriction list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchRestriction<'a> {
    pub negated: bool,
    pub arch: &'a str,
}

/// One `[!]profile` term of a `<...>` build-profile formula.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileTerm<'a> {
    pub negated: bool,
    pub profile: &'a str,
}

/// One alternative: `name[:arch] [(op version)] [[arch list]] [<profiles>...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alternative<'a> {
    pub name: &'a str,
    pub arch: ArchQualifier<'a>,
    pub constraint: Option<Constraint<'a>>,
    /// Empty when the alternative has no `[...]` list. Never mixes negated and plain entries.
    pub arch_restrictions: Vec<ArchRestriction<'a>>,
    /// The `<...>` formulas: the alternative applies if any formula holds (all of its terms hold).
    pub profiles: Vec<Vec<ProfileTerm<'a>>>,
}

impl Alternative<'_> {
    /// Whether the alternative is part of the relation on `arch` with the build `profiles` active: its
    /// architecture restriction list and build-profile formulas (both absent in binary package indexes).
    pub fn applies_to(&self, arch: &str, profiles: &[&str]) -> bool {
        let arch_ok = match self.arch_restrictions.first() {
            None => true,
            // Lists never mix negated and plain entries (checked when parsing).
            Some(first) if first.negated => self.arch_restrictions.iter().all(|r| !arch_matches(r.arch, arch)),
            Some(_) => self.arch_restrictions.iter().any(|r| arch_matches(r.arch, arch)),
        };
        let profiles_ok = self.profiles.is_empty()
            || self.profiles.iter().any(|formula| {
                formula
                    .iter()
                    .all(|term| profiles.contains(&term.profile) != term.negated)
            });
        arch_ok && profiles_ok
    }
}

impl fmt::Display for Alternative<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)?;
        match self.arch {
            ArchQualifier::None => {}
            ArchQualifier::Any => f.write_str(":any")?,
            ArchQualifier::Native => f.write_str(":native")?,
            ArchQualifier::Arch(arch) => write!(f, ":{arch}")?,
        }
        if let Some(constraint) = &self.constraint {
            write!(f, " ({constraint})")?;
        }
        if !self.arch_restrictions.is_empty() {
            f.write_str(" [")?;
            for (i, r) in self.arch_restrictions.iter().enumerate() {
                let sep = if i == 0 { "" } else { " " };
                let bang = if r.negated { "!" } else { "" };
                write!(f, "{sep}{bang}{}", r.arch)?;
            }
            f.write_str("]")?;
        }
        for formula in &self.profiles {
            f.write_str(" <")?;
            for (i, t) in formula.iter().enumerate() {
                let sep = if i == 0 { "" } else { " " };
                let bang = if t.negated { "!" } else { "" };
                write!(f, "{sep}{bang}{}", t.profile)?;
            }
            f.write_str(">")?;
        }
        Ok(())
    }
}

/// One comma-separated entry of a relation field: satisfied by any one of its alternatives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation<'a> {
    pub alternatives: Vec<Alternative<'a>>,
}

impl fmt::Display for Relation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, alternative) in self.alternatives.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{alternative}")?;
        }
        Ok(())
    }
}

/// Whether an architecture name or wildcard (`any`, `linux-any`, `any-amd64`) from a restriction list
/// matches the Debian architecture `arch`.
pub fn arch_matches(pattern: &str, arch: &str) -> bool {
    if pattern == arch || pattern == "any" {
        return true;
    }
    let Some((os, cpu)) = pattern.split_once('-') else {
        return false;
    };
    let (arch_os, arch_cpu) = arch_tuple(arch);
    (os == "any" || os == arch_os) && (cpu == "any" || cpu == arch_cpu)
}

/// (os, cpu) of a Debian architecture name, from dpkg's tables for the architectures Debian releases.
fn arch_tuple(arch: &str) -> (&str, &str) {
    match arch.split_once('-') {
        Some((os, cpu)) => (os, cpu),
        None => {
            let cpu = match arch {
                "armel" | "armhf" => "arm",
                "x32" => "amd64",
                "powerpcspe" => "powerpc",
                other => other,
            };
            ("linux", cpu)
        }
    }
}

/// A relation field that dpkg would reject, with where in the text.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{reason} at byte {offset} of {text:?}")]
pub struct RelationError {
    pub text: String,
    pub offset: usize,
    pub reason: RelationErrorReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RelationErrorReason {
    #[error("expected a package name")]
    MissingName,
    #[error("package name {0:?} does not start with a letter or digit")]
    BadName(String),
    #[error("empty entry between commas")]
    EmptyEntry,
    #[error("expected an architecture name")]
    MissingArch,
    #[error("expected a relation operator (<<, <=, =, >=, >>)")]
    BadOperator,
    #[error("expected a version")]
    MissingVersion,
    #[error("{0}")]
    BadVersion(VersionError),
    #[error("expected {0:?}")]
    Expected(char),
    #[error("unexpected {0:?}")]
    Unexpected(char),
    #[error("empty {0} list")]
    EmptyList(&'static str),
    #[error("architecture list mixes negated and plain architectures")]
    MixedArchList,
    #[error("alternatives ('|') are not allowed in Provides")]
    AlternativesInProvides,
    #[error("only exact versions ('=') are allowed in Provides")]
    InexactProvides,
}

/// Parses a relation field such as Depends: comma-separated entries of `|`-separated alternatives. An empty
/// field is no relations; a trailing comma is accepted, an empty entry between commas is not.
pub fn parse_relations(text: &str) -> Result<Vec<Relation<'_>>, RelationError> {
    let mut parser = Parser { text, pos: 0 };
    let mut relations = Vec::new();
    parser.skip_space();
    while !parser.at_end() {
        let mut alternatives = vec![parser.alternative()?];
        parser.skip_space();
        while parser.eat(b'|') {
            parser.skip_space();
            alternatives.push(parser.alternative()?);
            parser.skip_space();
        }
        relations.push(Relation { alternatives });
        match parser.peek() {
            None => break,
            Some(b',') => {
                parser.pos += 1;
                parser.skip_space();
                if parser.peek() == Some(b',') {
                    return Err(parser.error(RelationErrorReason::EmptyEntry));
                }
            }
            Some(_) => return Err(parser.unexpected()),
        }
    }
    Ok(relations)
}

/// Parses a Provides field: like [`parse_relations`], but without alternatives, and versions only as `(= v)`.
pub fn parse_provides(text: &str) -> Result<Vec<Alternative<'_>>, RelationError> {
    let relations = parse_relations(text)?;
    let mut provides = Vec::with_capacity(relations.len());
    for relation in relations {
        let mut alternatives = relation.alternatives.into_iter();
        let (Some(provided), None) = (alternatives.next(), alternatives.next()) else {
            let offset = text.find('|').unwrap_or(0);
            return Err(error_at(text, offset, RelationErrorReason::AlternativesInProvides));
        };
        if provided.constraint.is_some_and(|c| c.op != RelationOp::Equal) {
            let offset = offset_in(text, provided.name);
            return Err(error_at(text, offset, RelationErrorReason::InexactProvides));
        }
        provides.push(provided);
    }
    Ok(provides)
}

fn error_at(text: &str, offset: usize, reason: RelationErrorReason) -> RelationError {
    RelationError {
        text: text.to_string(),
        offset,
        reason,
    }
}

/// Byte offset of `part`, a slice of `text`, in `text`.
fn offset_in(text: &str, part: &str) -> usize {
    (part.as_ptr() as usize).saturating_sub(text.as_ptr() as usize)
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

/// Whether `name` is a package name dpkg accepts: a letter or digit, then letters, digits, `+`, `-`, `.`
/// (upper-case letters are accepted, as dpkg accepts them).
pub fn is_valid_package_name(name: &str) -> bool {
    name.as_bytes().first().is_some_and(|b| b.is_ascii_alphanumeric())
        && name.bytes().all(|b| is_name_byte(b) || b.is_ascii_uppercase())
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.')
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    fn eat(&mut self, b: u8) -> bool {
        let found = self.peek() == Some(b);
        if found {
            self.pos += 1;
        }
        found
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn take_while(&mut self, pred: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&pred) {
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    fn error(&self, reason: RelationErrorReason) -> RelationError {
        error_at(self.text, self.pos, reason)
    }

    fn unexpected(&self) -> RelationError {
        let ch = self.text[self.pos..].chars().next().unwrap_or(' ');
        self.error(RelationErrorReason::Unexpected(ch))
    }

    fn expect(&mut self, b: u8) -> Result<(), RelationError> {
        if self.eat(b) {
            Ok(())
        } else if self.at_end() {
            Err(self.error(RelationErrorReason::Expected(char::from(b))))
        } else {
            Err(self.unexpected())
        }
    }

    fn alternative(&mut self) -> Result<Alternative<'a>, RelationError> {
        let start = self.pos;
        let name = self.take_while(|b| is_name_byte(b) || b.is_ascii_uppercase());
        if name.is_empty() {
            return Err(self.error(RelationErrorReason::MissingName));
        }
        if !name.as_bytes()[0].is_ascii_alphanumeric() {
            return Err(error_at(
                self.text,
                start,
                RelationErrorReason::BadName(name.to_string()),
            ));
        }
        let arch = if self.eat(b':') {
            match self.take_while(|b| b.is_ascii_alphanumeric() || b == b'-') {
                "" => return Err(self.error(RelationErrorReason::MissingArch)),
                "any" => ArchQualifier::Any,
                "native" => ArchQualifier::Native,
                arch => ArchQualifier::Arch(arch),
            }
        } else {
            ArchQualifier::None
        };
        self.skip_space();
        let constraint = if self.eat(b'(') {
            self.skip_space();
            Some(self.constraint()?)
        } else {
            None
        };
        self.skip_space();
        let mut arch_restrictions = Vec::new();
        if self.eat(b'[') {
            arch_restrictions = self.negatable_list(b']', "architecture")?;
            if arch_restrictions.iter().any(|(negated, _)| *negated)
                && arch_restrictions.iter().any(|(negated, _)| !*negated)
            {
                return Err(self.error(RelationErrorReason::MixedArchList));
            }
            self.skip_space();
        }
        let mut profiles = Vec::new();
        while self.eat(b'<') {
            profiles.push(self.negatable_list(b'>', "build profile")?);
            self.skip_space();
        }
        Ok(Alternative {
            name,
            arch,
            constraint,
            arch_restrictions: arch_restrictions
                .into_iter()
                .map(|(negated, arch)| ArchRestriction { negated, arch })
                .collect(),
            profiles: profiles
                .into_iter()
                .map(|terms| {
                    terms
                        .into_iter()
                        .map(|(negated, profile)| ProfileTerm { negated, profile })
                        .collect()
                })
                .collect(),
        })
    }

    /// After `(`: `op version )`.
    fn constraint(&mut self) -> Result<Constraint<'a>, RelationError> {
        let op_start = self.pos;
        let op_text = self.take_while(|b| matches!(b, b'<' | b'>' | b'='));
        let op = match op_text {
            "<<" => RelationOp::Earlier,
            "<=" | "<" => RelationOp::EarlierOrEqual,
            "=" => RelationOp::Equal,
            ">=" | ">" => RelationOp::LaterOrEqual,
            ">>" => RelationOp::Later,
            _ => {
                return Err(error_at(self.text, op_start, RelationErrorReason::BadOperator));
            }
        };
        self.skip_space();
        let version_start = self.pos;
        let version = self.take_while(|b| b != b')' && !b.is_ascii_whitespace());
        if version.is_empty() {
            return Err(self.error(RelationErrorReason::MissingVersion));
        }
        check(version).map_err(|e| error_at(self.text, version_start, RelationErrorReason::BadVersion(e)))?;
        self.skip_space();
        self.expect(b')')?;
        Ok(Constraint { op, version })
    }

    /// After `[` or `<`: whitespace-separated `[!]name` items up to `close`.
    fn negatable_list(&mut self, close: u8, what: &'static str) -> Result<Vec<(bool, &'a str)>, RelationError> {
        let mut items = Vec::new();
        loop {
            self.skip_space();
            if self.eat(close) {
                break;
            }
            let negated = self.eat(b'!');
            let name = self.take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'+'));
            if name.is_empty() {
                return Err(if self.at_end() {
                    self.error(RelationErrorReason::Expected(char::from(close)))
                } else {
                    self.unexpected()
                });
            }
            items.push((negated, name));
        }
        if items.is_empty() {
            return Err(self.error(RelationErrorReason::EmptyList(what)));
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (smaller, larger) pairs, each also checked reversed and against itself.
    const ORDERED: &[(&str, &str)] = &[
        ("1.0~rc1", "1.0"),
        ("2.0", "1:0.1"),
        ("1.0-1", "1.0-1+b1"),
        ("2.36-9", "2.36-9+deb12u4"),
        ("1.2.3", "1.2.10"),
        ("1.0a", "1.0b"),
        ("1.0", "1.0a"),
        ("1.0~~", "1.0~~a"),
        ("1.0~~a", "1.0~"),
        ("1.0~", "1.0"),
        ("0~~", "0~~a"),
        ("0~~a", "0~"),
        ("0~", "0"),
        ("1.0", "1.0.1"),
        ("1.0", "1.0+dfsg"),
        ("1.0+dfsg", "1.0.1"),
        ("1.0a", "1.0+"),
        ("1.0z", "1.0."),
        ("1.0-1", "1.0-2"),
        ("1.0-9", "1.0-10"),
        ("1.0", "1.0-0.1"),
        ("1:1.0", "2:0.1"),
        ("9", "10"),
        ("0.9", "0.10"),
        ("1.001", "1.2"),
        ("2.36-9+deb12u3", "2.36-9+deb12u4"),
        ("2.36-9+deb12u9", "2.36-9+deb12u10"),
        ("1.2.3-1~bpo12+1", "1.2.3-1"),
        ("7.0-1~exp1", "7.0-1"),
        ("1:9.2p1-2+deb12u5", "1:9.2p1-2+deb12u6"),
        ("9.2p1", "9.2p2"),
        ("252.30-1~deb12u2", "252.33-1~deb12u1"),
        ("1.0-1", "1.0.0.1-1"),
        ("2.0-1-1", "2.0-2-1"),
        ("1:2", "1:2:3"),
    ];

    /// Pairs dpkg considers equal.
    const EQUAL: &[(&str, &str)] = &[
        ("1.0", "1.00"),
        ("0:1.0", "1.0"),
        ("1.0", "1.0-0"),
        ("1.01", "1.1"),
        ("00:1", "1"),
    ];

    #[test]
    fn ordering_matches_dpkg() {
        for &(small, large) in ORDERED {
            for v in [small, large] {
                check(v).unwrap_or_else(|e| panic!("{v}: {e}"));
                assert_eq!(compare(v, v), Ordering::Equal, "{v} = {v}");
            }
            assert_eq!(compare(small, large), Ordering::Less, "{small} < {large}");
            assert_eq!(compare(large, small), Ordering::Greater, "{large} > {small}");
            let (a, b) = (Version::parse(small).unwrap(), Version::parse(large).unwrap());
            assert!(a < b, "Version {small} < {large}");
        }
        for &(a, b) in EQUAL {
            assert_eq!(compare(a, b), Ordering::Equal, "{a} = {b}");
            assert_eq!(Version::parse(a).unwrap(), Version::parse(b).unwrap());
        }
    }

    #[test]
    fn tilde_sorts_before_the_end_of_a_string() {
        // `~~ < ~~a < ~ < (empty)` on the raw comparison dpkg applies to each part.
        let chain = ["~~", "~~a", "~", ""];
        for pair in chain.windows(2) {
            let (a, b) = (pair[0].as_bytes(), pair[1].as_bytes());
            assert_eq!(verrevcmp(a, b), Ordering::Less, "{:?} < {:?}", pair[0], pair[1]);
            assert_eq!(verrevcmp(b, a), Ordering::Greater);
        }
    }

    #[test]
    fn parts() {
        let cases: &[(&str, u32, &str, Option<&str>)] = &[
            ("1.0", 0, "1.0", None),
            ("1:2.36-9+deb12u4", 1, "2.36", Some("9+deb12u4")),
            ("2.0-1-1", 0, "2.0-1", Some("1")),
            ("1:2:3-4", 1, "2:3", Some("4")),
            ("  3.1  ", 0, "3.1", None),
        ];
        for &(text, epoch, upstream, revision) in cases {
            let v = Version::parse(text).unwrap();
            assert_eq!(
                (v.epoch(), v.upstream(), v.revision()),
                (epoch, upstream, revision),
                "{text}"
            );
            assert_eq!(v.to_string(), text.trim());
        }
    }

    #[test]
    fn invalid_versions() {
        let cases: &[(&str, &str)] = &[
            ("", "version string is empty"),
            ("1.0 1", "embedded spaces"),
            (":1.0", "epoch in version \":1.0\" is empty"),
            ("a:1.0", "is not a number"),
            ("99999999999:1", "is too big"),
            ("2147483648:1", "is too big"),
            ("1:", "nothing after colon"),
            ("1.0-", "revision number is empty"),
            ("a1.0", "does not start with a digit"),
            ("1:-1", "does not start with a digit"),
            ("1.0_1", "invalid character '_'"),
            ("1.0-1:2", "is not a number"),
            ("1.0-1~a:", "is not a number"),
            ("1:1.0-1:2", "invalid character ':'"),
            ("1.0-1_2", "invalid character '_'"),
        ];
        for &(text, message) in cases {
            let err = Version::parse(text).expect_err(text).to_string();
            assert!(err.contains(message), "{text:?}: {err:?} lacks {message:?}");
        }
        assert!(Version::parse("2147483647:1").is_ok());
    }

    #[test]
    fn relations_parse_and_print() {
        // (input, canonical rendering of each entry)
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("   ", &[]),
            ("libc6 (>= 2.34)", &["libc6 (>= 2.34)"]),
            (
                "libc6 (>= 2.34), libssl3 (>=3.0.0),zlib1g",
                &["libc6 (>= 2.34)", "libssl3 (>= 3.0.0)", "zlib1g"],
            ),
            (
                "default-mta | mail-transport-agent",
                &["default-mta | mail-transport-agent"],
            ),
            ("perl:any, python3:native", &["perl:any", "python3:native"]),
            ("libc6:i386 (<< 2.37)|libc6", &["libc6:i386 (<< 2.37) | libc6"]),
            ("foo (< 1), bar (> 2)", &["foo (<= 1)", "bar (>= 2)"]),
            ("foo (= 1:2.0-1)", &["foo (= 1:2.0-1)"]),
            ("foo (>> 1.0~rc1), ", &["foo (>> 1.0~rc1)"]),
            (
                "debhelper-compat (= 13), libfoo-dev [linux-any] <!nocheck> <stage1 !cross>",
                &[
                    "debhelper-compat (= 13)",
                    "libfoo-dev [linux-any] <!nocheck> <stage1 !cross>",
                ],
            ),
            ("foo [!i386 !armel]", &["foo [!i386 !armel]"]),
            ("foo\n (>= 1),\n bar", &["foo (>= 1)", "bar"]),
            ("libstdc++6 (>= 12)", &["libstdc++6 (>= 12)"]),
        ];
        for &(text, expected) in cases {
            let relations = parse_relations(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            let printed: Vec<String> = relations.iter().map(|r| r.to_string()).collect();
            assert_eq!(printed, expected, "{text:?}");
        }
    }

    #[test]
    fn relation_fields() {
        let relations = parse_relations("libc6:amd64 (>= 2.34) | libc6-udeb").unwrap();
        let first = &relations[0].alternatives[0];
        assert_eq!(first.name, "libc6");
        assert_eq!(first.arch, ArchQualifier::Arch("amd64"));
        let constraint = first.constraint.unwrap();
        assert_eq!((constraint.op, constraint.version), (RelationOp::LaterOrEqual, "2.34"));
        assert!(constraint.satisfied_by("2.36-9+deb12u4"));
        assert!(!constraint.satisfied_by("2.33"));
        assert!(constraint.satisfied_by("2.34"));
        assert_eq!(relations[0].alternatives[1].constraint, None);
    }

    #[test]
    fn invalid_relations() {
        let cases: &[(&str, usize, &str)] = &[
            ("foo, , bar", 5, "empty entry"),
            ("foo,,bar", 4, "empty entry"),
            (", foo", 0, "expected a package name"),
            ("foo | ", 6, "expected a package name"),
            ("foo (>= 1.0", 11, "expected ')'"),
            ("foo (~ 1.0)", 5, "expected a relation operator"),
            ("foo (>=< 1.0)", 5, "expected a relation operator"),
            ("foo (>= )", 8, "expected a version"),
            ("foo (>= a1)", 8, "does not start with a digit"),
            ("foo (>= 1 2)", 10, "unexpected '2'"),
            ("foo bar", 4, "unexpected 'b'"),
            ("foo:", 4, "expected an architecture name"),
            ("-foo", 0, "does not start with a letter or digit"),
            ("foo [i386 !amd64]", 17, "mixes negated and plain"),
            ("foo []", 6, "empty architecture list"),
            ("foo <>", 6, "empty build profile list"),
            ("foo [i386", 9, "expected ']'"),
            ("foo (>= 1) (<< 2)", 11, "unexpected '('"),
        ];
        for &(text, offset, message) in cases {
            let err = parse_relations(text).expect_err(text);
            assert!(err.to_string().contains(message), "{text:?}: {err} lacks {message:?}");
            assert_eq!(err.offset, offset, "{text:?}: {err}");
        }
    }

    #[test]
    fn provides() {
        let provided = parse_provides("awk, libfoo-abi-2 (= 2.1), mail-transport-agent").unwrap();
        let rendered: Vec<String> = provided.iter().map(|a| a.to_string()).collect();
        assert_eq!(rendered, ["awk", "libfoo-abi-2 (= 2.1)", "mail-transport-agent"]);
        let err = parse_provides("a | b").unwrap_err();
        assert_eq!(err.reason, RelationErrorReason::AlternativesInProvides);
        let err = parse_provides("a, b (>= 1)").unwrap_err();
        assert_eq!((err.reason, err.offset), (RelationErrorReason::InexactProvides, 3));
    }

    #[test]
    fn restrictions_and_profiles() {
        // (alternative, arch, active profiles, applies)
        let cases: &[(&str, &str, &[&str], bool)] = &[
            ("foo", "amd64", &[], true),
            ("foo [amd64]", "amd64", &[], true),
            ("foo [i386 arm64]", "amd64", &[], false),
            ("foo [!amd64]", "amd64", &[], false),
            ("foo [!i386]", "amd64", &[], true),
            ("foo [linux-any]", "amd64", &[], true),
            ("foo [any-amd64]", "amd64", &[], true),
            ("foo [any-arm]", "armhf", &[], true),
            ("foo [any-arm]", "amd64", &[], false),
            ("foo [kfreebsd-any]", "amd64", &[], false),
            ("foo [hurd-any]", "hurd-i386", &[], true),
            ("foo <!nocheck>", "amd64", &[], true),
            ("foo <!nocheck>", "amd64", &["nocheck"], false),
            ("foo <stage1>", "amd64", &[], false),
            ("foo <stage1 !cross>", "amd64", &["stage1"], true),
            ("foo <stage1 !cross>", "amd64", &["stage1", "cross"], false),
            ("foo <stage1> <cross>", "amd64", &["cross"], true),
        ];
        for &(text, arch, profiles, applies) in cases {
            let relations = parse_relations(text).unwrap();
            let alternative = &relations[0].alternatives[0];
            assert_eq!(
                alternative.applies_to(arch, profiles),
                applies,
                "{text} on {arch} {profiles:?}"
            );
        }
    }
}
