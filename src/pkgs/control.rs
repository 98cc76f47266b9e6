//! Debian control-file syntax (deb822): the paragraphs of `Packages` and `Release` files, the clearsigned
//! wrapper of `InRelease`, and the fields of a Release.
//!
//! Owns: splitting text into paragraphs of `Name: value` fields (continuation lines start with a space or
//! tab, ` .` is an empty line of a multi-line value, names are case-insensitive, a line of only spaces and
//! tabs separates paragraphs like an empty one), undoing the clearsign dash-escaping, and reading a
//! Release's suite, dates, architectures, components and SHA256 list.
//!
//! Parsing borrows from the input: a paragraph is one vector of (name, value) slices, nothing is allocated
//! per line. Comment lines (`#`) are not accepted: they are only allowed in source control files, which are
//! not read here. Verifying an InRelease signature is not done here either (that is gpgv's job); this module
//! only takes the signed text out of it, rejecting anything outside the signed part.

use std::borrow::Cow;

use thiserror::Error;

/// Where and why control-file text is malformed. Lines count from 1.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ControlError {
    #[error("line {line}: not UTF-8 (byte {offset})")]
    NotUtf8 { line: usize, offset: usize },
    #[error("line {line}: continuation line before any field")]
    OrphanContinuation { line: usize },
    #[error("line {line}: expected 'Field: value', found {text:?}")]
    NotAField { line: usize, text: String },
    #[error("line {line}: invalid field name {name:?}")]
    BadFieldName { line: usize, name: String },
    #[error("line {line}: duplicate field {name:?} (first at line {first})")]
    DuplicateField { line: usize, name: String, first: usize },
    #[error("line {line}: clearsigned message: {reason}")]
    Clearsigned { line: usize, reason: &'static str },
    #[error("expected one paragraph, found {found}")]
    NotOneParagraph { found: usize },
    #[error("no {field} field")]
    MissingField { field: &'static str },
    #[error("line {line}: {field}: {reason}")]
    BadValue {
        line: usize,
        field: &'static str,
        reason: String,
    },
}

/// One `Name: value` field of a paragraph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    /// As written; compare with `eq_ignore_ascii_case`.
    pub name: &'a str,
    /// From the first non-blank character after the colon to the end of the last continuation line, line
    /// breaks and the continuation lines' leading whitespace included, trailing whitespace excluded. A
    /// multi-line field whose first line is empty (`SHA256:`) starts with its line break.
    pub value: &'a str,
    /// The line the field's name is on.
    pub line: usize,
}

impl<'a> Field<'a> {
    /// The value's first line (a Description's synopsis; empty for `SHA256:` and the like).
    pub fn first_line(&self) -> &'a str {
        self.value.split('\n').next().unwrap_or("")
    }

    /// The continuation lines, each without its first space or tab, ` .` given as an empty line.
    pub fn continuation_lines(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.value.split('\n').skip(1).map(|line| {
            let line = line.strip_prefix([' ', '\t']).unwrap_or(line);
            if line == "." { "" } else { line }
        })
    }
}

/// One paragraph: its fields in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paragraph<'a> {
    pub fields: Vec<Field<'a>>,
    /// The line of the first field.
    pub line: usize,
}

impl<'a> Paragraph<'a> {
    /// The field named `name`, ignoring ASCII case.
    pub fn field(&self, name: &str) -> Option<&Field<'a>> {
        self.fields.iter().find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// The value of the field named `name`, ignoring ASCII case.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.field(name).map(|f| f.value)
    }
}

/// The paragraphs of `text`, one at a time. After an error the iterator ends.
pub fn paragraphs(text: &str) -> Paragraphs<'_> {
    Paragraphs {
        text,
        pos: 0,
        line: 1,
        capacity: 8,
    }
}

/// [`paragraphs`] of bytes that must be UTF-8 (as Debian's indexes are).
pub fn paragraphs_from_bytes(bytes: &[u8]) -> Result<Paragraphs<'_>, ControlError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(paragraphs(text)),
        Err(e) => {
            let offset = e.valid_up_to();
            let line = 1 + bytes[..offset].iter().filter(|&&b| b == b'\n').count();
            Err(ControlError::NotUtf8 { line, offset })
        }
    }
}

/// All paragraphs of `text`.
pub fn parse(text: &str) -> Result<Vec<Paragraph<'_>>, ControlError> {
    paragraphs(text).collect()
}

/// Iterator over the paragraphs of a text; see [`paragraphs`].
#[derive(Debug, Clone)]
pub struct Paragraphs<'a> {
    text: &'a str,
    pos: usize,
    /// Number of the line starting at `pos`.
    line: usize,
    /// Fields in the previous paragraph, to size the next one's vector.
    capacity: usize,
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|&b| matches!(b, b' ' | b'\t' | b'\r'))
}

fn trim_end(bytes: &[u8], mut end: usize, start: usize) -> usize {
    while end > start && matches!(bytes[end - 1], b' ' | b'\t' | b'\r') {
        end -= 1;
    }
    end
}

/// dpkg's rule: printable ASCII without spaces, not starting with `-` or `#` (the colon ended the name).
fn valid_field_name(name: &[u8]) -> bool {
    !name.is_empty() && name[0] != b'-' && name[0] != b'#' && name.iter().all(|&b| (0x21..0x7f).contains(&b))
}

impl<'a> Paragraphs<'a> {
    /// End of the line starting at `pos` (the offset of its `\n`, or the text's end).
    fn line_end(&self, pos: usize) -> usize {
        match self.text[pos..].find('\n') {
            Some(i) => pos + i,
            None => self.text.len(),
        }
    }

    fn fail(&mut self, error: ControlError) -> Option<Result<Paragraph<'a>, ControlError>> {
        self.pos = self.text.len();
        Some(Err(error))
    }
}

impl<'a> Iterator for Paragraphs<'a> {
    type Item = Result<Paragraph<'a>, ControlError>;

    fn next(&mut self) -> Option<Self::Item> {
        let text = self.text;
        let bytes = text.as_bytes();
        // Blank lines before the paragraph.
        loop {
            if self.pos >= bytes.len() {
                return None;
            }
            let end = self.line_end(self.pos);
            if !is_blank(&bytes[self.pos..end]) {
                break;
            }
            self.pos = end + 1;
            self.line += 1;
        }
        let mut fields: Vec<Field<'a>> = Vec::with_capacity(self.capacity);
        let mut value_start = 0;
        let first_line = self.line;
        while self.pos < bytes.len() {
            let end = self.line_end(self.pos);
            let line = &bytes[self.pos..end];
            if is_blank(line) {
                self.pos = end + 1;
                self.line += 1;
                break;
            }
            if matches!(line[0], b' ' | b'\t') {
                let Some(field) = fields.last_mut() else {
                    return self.fail(ControlError::OrphanContinuation { line: self.line });
                };
                field.value = &text[value_start..trim_end(bytes, end, value_start)];
            } else {
                let Some(colon) = text[self.pos..end].find(':') else {
                    let line_text = text[self.pos..end].to_string();
                    return self.fail(ControlError::NotAField {
                        line: self.line,
                        text: line_text,
                    });
                };
                let name = &text[self.pos..self.pos + colon];
                if !valid_field_name(name.as_bytes()) {
                    let name = name.to_string();
                    return self.fail(ControlError::BadFieldName { line: self.line, name });
                }
                if let Some(first) = fields
                    .iter()
                    .find(|f| f.name.len() == name.len() && f.name.eq_ignore_ascii_case(name))
                {
                    let error = ControlError::DuplicateField {
                        line: self.line,
                        name: name.to_string(),
                        first: first.line,
                    };
                    return self.fail(error);
                }
                value_start = self.pos + colon + 1;
                while value_start < end && matches!(bytes[value_start], b' ' | b'\t') {
                    value_start += 1;
                }
                fields.push(Field {
                    name,
                    value: &text[value_start..trim_end(bytes, end, value_start)],
                    line: self.line,
                });
            }
            self.pos = end + 1;
            self.line += 1;
        }
        self.capacity = fields.len().max(8);
        Some(Ok(Paragraph {
            fields,
            line: first_line,
        }))
    }
}

const BEGIN_SIGNED: &str = "-----BEGIN PGP SIGNED MESSAGE-----";
const BEGIN_SIGNATURE: &str = "-----BEGIN PGP SIGNATURE-----";
const END_SIGNATURE: &str = "-----END PGP SIGNATURE-----";

/// The signed text of a clearsigned message (an InRelease file), dash-escaping undone.
///
/// The message must be exactly one clearsigned block: the BEGIN line first, `Hash:`-style armour headers,
/// an empty line, the dash-escaped text, then one signature block and nothing after it but whitespace
/// (apt refuses the same; text outside the signed part must never be parsed). The line break before the
/// signature is kept, so the result parses as a plain Release file. The signature is not checked here.
pub fn clearsigned_body(text: &str) -> Result<Cow<'_, str>, ControlError> {
    enum State {
        Start,
        Headers,
        Body,
        Signature,
        After,
    }
    let err = |line, reason| Err(ControlError::Clearsigned { line, reason });
    let mut state = State::Start;
    let (mut body_start, mut body_end) = (0, 0);
    let mut escaped = false;
    let mut offset = 0;
    let mut number = 0;
    for raw in text.split_inclusive('\n') {
        let start = offset;
        offset += raw.len();
        number += 1;
        let line = raw.trim_end_matches(['\n', '\r']);
        match state {
            State::Start if line.trim_end() == BEGIN_SIGNED => state = State::Headers,
            State::Start => {
                return err(number, "does not start with '-----BEGIN PGP SIGNED MESSAGE-----'");
            }
            State::Headers if line.trim().is_empty() => {
                body_start = offset;
                state = State::Body;
            }
            State::Headers if !line.contains(": ") => {
                return err(number, "armour header is not 'Name: value'");
            }
            State::Headers => {}
            State::Body if line.trim_end() == BEGIN_SIGNATURE => {
                body_end = start;
                state = State::Signature;
            }
            State::Body if line.starts_with("- ") => escaped = true,
            State::Body if line.starts_with('-') => {
                return err(number, "line starting with '-' is not dash-escaped");
            }
            State::Body => {}
            State::Signature if line.trim_end() == END_SIGNATURE => state = State::After,
            State::Signature if line.starts_with("-----") => {
                return err(number, "unexpected armour line inside the signature");
            }
            State::Signature => {}
            State::After if line.trim().is_empty() => {}
            State::After => return err(number, "text after the signature"),
        }
    }
    match state {
        State::After => {}
        State::Start => return err(1, "does not start with '-----BEGIN PGP SIGNED MESSAGE-----'"),
        State::Headers => return err(number, "ends inside the armour headers"),
        State::Body => return err(number, "no '-----BEGIN PGP SIGNATURE-----' line"),
        State::Signature => return err(number, "no '-----END PGP SIGNATURE-----' line"),
    }
    let body = &text[body_start..body_end];
    if !escaped {
        return Ok(Cow::Borrowed(body));
    }
    let mut out = String::with_capacity(body.len());
    for line in body.split_inclusive('\n') {
        out.push_str(line.strip_prefix("- ").unwrap_or(line));
    }
    Ok(Cow::Owned(out))
}

/// A date of a Release file, as written and as seconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseDate {
    pub text: String,
    pub unix: i64,
}

/// One line of a Release's `SHA256` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseFile {
    /// 64 lowercase hex digits.
    pub sha256: String,
    pub size: u64,
    /// Relative to the Release's directory, e.g. `main/binary-amd64/Packages.xz`.
    pub path: String,
}

/// The fields of a Release (or InRelease's signed text) that rixos uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Release {
    pub origin: Option<String>,
    pub label: Option<String>,
    pub suite: Option<String>,
    pub version: Option<String>,
    pub codename: Option<String>,
    pub date: Option<ReleaseDate>,
    pub valid_until: Option<ReleaseDate>,
    pub architectures: Vec<String>,
    pub components: Vec<String>,
    pub acquire_by_hash: bool,
    /// In the order listed.
    pub sha256: Vec<ReleaseFile>,
}

impl Release {
    /// Parses a plain Release file. It must be one paragraph with a SHA256 field (apt refuses Release files
    /// without one: MD5 and SHA1 are not trusted).
    pub fn parse(text: &str) -> Result<Release, ControlError> {
        let paragraphs = parse(text)?;
        let [paragraph] = paragraphs.as_slice() else {
            return Err(ControlError::NotOneParagraph {
                found: paragraphs.len(),
            });
        };
        let text_field = |name: &str| paragraph.get(name).map(str::to_string);
        let list = |name: &str| {
            paragraph
                .get(name)
                .map(|v| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default()
        };
        let date = |name: &'static str| -> Result<Option<ReleaseDate>, ControlError> {
            let Some(field) = paragraph.field(name) else {
                return Ok(None);
            };
            let unix = parse_date(field.value).map_err(|reason| ControlError::BadValue {
                line: field.line,
                field: name,
                reason,
            })?;
            Ok(Some(ReleaseDate {
                text: field.value.to_string(),
                unix,
            }))
        };
        let sha256_field = paragraph
            .field("SHA256")
            .ok_or(ControlError::MissingField { field: "SHA256" })?;
        let mut sha256 = Vec::new();
        for (line, entry) in (sha256_field.line + 1..).zip(sha256_field.continuation_lines()) {
            let bad = |reason: String| ControlError::BadValue {
                line,
                field: "SHA256",
                reason,
            };
            let parts: Vec<&str> = entry.split_whitespace().collect();
            let [hash, size, path] = parts.as_slice() else {
                return Err(bad(format!("expected 'sha256 size path', found {entry:?}")));
            };
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad(format!("{hash:?} is not a SHA256 (64 hex digits)")));
            }
            let size = size
                .parse()
                .map_err(|_| bad(format!("size {size:?} of {path} is not a number")))?;
            sha256.push(ReleaseFile {
                sha256: hash.to_ascii_lowercase(),
                size,
                path: path.to_string(),
            });
        }
        Ok(Release {
            origin: text_field("Origin"),
            label: text_field("Label"),
            suite: text_field("Suite"),
            version: text_field("Version"),
            codename: text_field("Codename"),
            date: date("Date")?,
            valid_until: date("Valid-Until")?,
            architectures: list("Architectures"),
            components: list("Components"),
            acquire_by_hash: paragraph
                .get("Acquire-By-Hash")
                .is_some_and(|v| v.eq_ignore_ascii_case("yes")),
            sha256,
        })
    }

    /// Parses the signed text of a clearsigned InRelease (see [`clearsigned_body`]).
    pub fn parse_in_release(text: &str) -> Result<Release, ControlError> {
        Release::parse(&clearsigned_body(text)?)
    }

    /// The SHA256 entry for `path` (e.g. `main/binary-amd64/Packages.xz`).
    pub fn file(&self, path: &str) -> Option<&ReleaseFile> {
        self.sha256.iter().find(|f| f.path == path)
    }

    /// Whether the Release has a Valid-Until that is before `unix_now`.
    pub fn expired_at(&self, unix_now: i64) -> bool {
        self.valid_until.as_ref().is_some_and(|d| d.unix < unix_now)
    }
}

/// Seconds since the Unix epoch of an RFC 2822 date as Release files write it: `Sat, 11 Jul 2026 10:16:37
/// UTC` (the day name is optional; the zone is `UTC`, `GMT`, `Z` or `+hhmm`/`-hhmm`).
pub fn parse_date(text: &str) -> Result<i64, String> {
    let bad = |what: &str| format!("{what} in date {text:?} (expected e.g. 'Sat, 11 Jul 2026 10:16:37 UTC')");
    let mut rest = text.trim();
    if let Some((day_name, after)) = rest.split_once(',') {
        if !day_name.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(bad("bad day name"));
        }
        rest = after;
    }
    let parts: Vec<&str> = rest.split_whitespace().collect();
    let [day, month, year, time, zone] = parts.as_slice() else {
        return Err(bad("wrong number of parts"));
    };
    let number = |s: &str, what: &str| -> Result<i64, String> {
        if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(what));
        }
        s.parse().map_err(|_| bad(what))
    };
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let month = MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(month))
        .ok_or_else(|| bad("bad month"))? as i64
        + 1;
    let year = number(year, "bad year")?;
    let day = number(day, "bad day")?;
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if day < 1 || day > month_days[(month - 1) as usize] {
        return Err(bad("bad day"));
    }
    let hms: Vec<&str> = time.split(':').collect();
    let [hour, minute, second] = hms.as_slice() else {
        return Err(bad("bad time"));
    };
    let (hour, minute, second) = (
        number(hour, "bad hour")?,
        number(minute, "bad minute")?,
        number(second, "bad second")?,
    );
    // 60 is a leap second.
    if hour > 23 || minute > 59 || second > 60 {
        return Err(bad("bad time"));
    }
    let offset = match *zone {
        "UTC" | "GMT" | "Z" | "UT" => 0,
        z if z.len() == 5 && (z.starts_with('+') || z.starts_with('-')) => {
            let hours = number(&z[1..3], "bad zone")?;
            let minutes = number(&z[3..5], "bad zone")?;
            let offset = hours * 3600 + minutes * 60;
            if z.starts_with('-') { -offset } else { offset }
        }
        _ => return Err(bad("bad zone")),
    };
    Ok(days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const PACKAGES: &str = "\
Package: bash
Version: 5.2.15-2+b7
Essential: yes
Description: GNU Bourne Again SHell
 Bash is an sh-compatible command language interpreter.
 .
  Verbatim line.
sha256: 0123

Package: coreutils
pre-depends: libacl1 (>= 2.2.23),
 libattr1 (>= 1:2.4.44)
\t
Package: last
Version: 1\r
";

    #[test]
    fn paragraphs_fields_and_lines() {
        let paragraphs = parse(PACKAGES).unwrap();
        let summary: Vec<(usize, Vec<(&str, usize)>)> = paragraphs
            .iter()
            .map(|p| (p.line, p.fields.iter().map(|f| (f.name, f.line)).collect()))
            .collect();
        assert_eq!(
            summary,
            [
                (
                    1,
                    vec![
                        ("Package", 1),
                        ("Version", 2),
                        ("Essential", 3),
                        ("Description", 4),
                        ("sha256", 8)
                    ]
                ),
                (10, vec![("Package", 10), ("pre-depends", 11)]),
                (14, vec![("Package", 14), ("Version", 15)]),
            ]
        );
        let bash = &paragraphs[0];
        assert_eq!(bash.get("ESSENTIAL"), Some("yes"));
        assert_eq!(bash.get("SHA256"), Some("0123"));
        assert_eq!(bash.get("Depends"), None);
        let description = bash.field("description").unwrap();
        assert_eq!(description.first_line(), "GNU Bourne Again SHell");
        let body: Vec<&str> = description.continuation_lines().collect();
        assert_eq!(
            body,
            [
                "Bash is an sh-compatible command language interpreter.",
                "",
                " Verbatim line."
            ]
        );
        assert_eq!(
            paragraphs[1].get("Pre-Depends"),
            Some("libacl1 (>= 2.2.23),\n libattr1 (>= 1:2.4.44)")
        );
        assert_eq!(paragraphs[2].get("version"), Some("1"));
    }

    #[test]
    fn empty_and_blank_texts() {
        for text in ["", "\n", "\n\n  \n\t\n"] {
            assert_eq!(parse(text).unwrap(), [], "{text:?}");
        }
        let paragraphs = parse("\n\nA: 1\n\n\n\nB: 2").unwrap();
        assert_eq!(paragraphs.len(), 2);
        assert_eq!(paragraphs[1].line, 7);
        let field = &parse("SHA256:\n a 1 x\n b 2 y\n").unwrap()[0].fields[0];
        assert_eq!(field.value, "\n a 1 x\n b 2 y");
        assert_eq!(field.first_line(), "");
        assert_eq!(field.continuation_lines().collect::<Vec<_>>(), ["a 1 x", "b 2 y"]);
    }

    #[test]
    fn malformed_texts() {
        let cases: &[(&str, &str)] = &[
            (" continued\n", "line 1: continuation line before any field"),
            (
                "A: 1\nnot a field\n",
                "line 2: expected 'Field: value', found \"not a field\"",
            ),
            ("A: 1\n: empty\n", "line 2: invalid field name \"\""),
            ("A: 1\n-B: 2\n", "line 2: invalid field name \"-B\""),
            ("A: 1\nB C: 2\n", "line 2: invalid field name \"B C\""),
            ("A: 1\nB: 2\na: 3\n", "line 3: duplicate field \"a\" (first at line 1)"),
        ];
        for &(text, message) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(err.to_string(), message, "{text:?}");
        }
        // The same name in two paragraphs is fine.
        assert!(parse("A: 1\n\nA: 2\n").is_ok());
        let err = paragraphs_from_bytes(b"A: 1\nB: \xff\n").unwrap_err();
        assert_eq!(err, ControlError::NotUtf8 { line: 2, offset: 8 });
    }

    const IN_RELEASE: &str = "\
-----BEGIN PGP SIGNED MESSAGE-----
Hash: SHA256

Origin: Debian
Suite: oldstable
Codename: bookworm
Date: Sat, 11 Jul 2026 10:16:37 UTC
Valid-Until: Sat, 18 Jul 2026 10:16:37 +0200
Acquire-By-Hash: yes
Architectures: all amd64 arm64
Components: main contrib
Description: Debian 12
- -- dash-escaped
MD5Sum:
 0ed6d4c8891eb86358b94bb35d9e4da4  1484322 contrib/Contents-all
SHA256:
 3957f28db16e3f28c7b34ae84f1c929c567de6970f3f1b95dac9b498dd80fe63   738242 contrib/Contents-all
 B0B7A0BE3D6DCA00DD6A8E2D0A1E3E3E94D5BB8E0E1F00DB11D5B0A4F6A0C2D1 18840233 main/binary-amd64/Packages.xz
-----BEGIN PGP SIGNATURE-----

iQIzBAEBCAAdFiEE
=abcd
-----END PGP SIGNATURE-----
";

    #[test]
    fn in_release() {
        let body = clearsigned_body(IN_RELEASE).unwrap();
        assert!(matches!(body, Cow::Owned(_)));
        assert!(body.starts_with("Origin: Debian\n"));
        assert!(body.contains("\nDescription: Debian 12\n-- dash-escaped\n"));
        assert!(body.ends_with("main/binary-amd64/Packages.xz\n"));
        // The dash-escaped line is a continuation-less field line `-- dash-escaped`: not a valid field.
        assert!(Release::parse_in_release(IN_RELEASE).is_err());
        let text = IN_RELEASE.replace("- -- dash-escaped\n", "");
        assert!(matches!(clearsigned_body(&text).unwrap(), Cow::Borrowed(_)));
        let release = Release::parse_in_release(&text).unwrap();
        assert_eq!(release.suite.as_deref(), Some("oldstable"));
        assert_eq!(release.codename.as_deref(), Some("bookworm"));
        assert_eq!(release.origin.as_deref(), Some("Debian"));
        assert_eq!(release.label, None);
        let date = release.date.as_ref().unwrap();
        assert_eq!(
            (date.text.as_str(), date.unix),
            ("Sat, 11 Jul 2026 10:16:37 UTC", 1_783_764_997)
        );
        assert_eq!(
            release.valid_until.as_ref().unwrap().unix,
            1_783_764_997 + 7 * 86400 - 7200
        );
        assert!(!release.expired_at(1_783_764_997));
        assert!(release.expired_at(1_783_764_997 + 7 * 86400));
        assert!(release.acquire_by_hash);
        assert_eq!(release.architectures, ["all", "amd64", "arm64"]);
        assert_eq!(release.components, ["main", "contrib"]);
        assert_eq!(release.sha256.len(), 2);
        let packages = release.file("main/binary-amd64/Packages.xz").unwrap();
        assert_eq!(packages.size, 18_840_233);
        assert_eq!(
            packages.sha256,
            "b0b7a0be3d6dca00dd6a8e2d0a1e3e3e94d5bb8e0e1f00db11d5b0a4f6a0c2d1"
        );
        assert_eq!(release.file("main/binary-amd64/Packages.gz"), None);
    }

    #[test]
    fn bad_clearsigned_messages() {
        let good = IN_RELEASE.replace("- -- dash-escaped\n", "");
        let cases: Vec<(String, &str)> = vec![
            (
                format!("junk\n{good}"),
                "line 1: clearsigned message: does not start with",
            ),
            (
                good.replace("Hash: SHA256", "Hash SHA256"),
                "line 2: clearsigned message: armour header",
            ),
            (
                good.replace("Description: Debian 12\n", "-bad\n"),
                "line 12: clearsigned message: line starting with '-'",
            ),
            (
                good[..good.find(BEGIN_SIGNATURE).unwrap()].to_string(),
                "line 17: clearsigned message: no '-----BEGIN PGP SIGNATURE-----' line",
            ),
            (
                good.replace("-----END PGP SIGNATURE-----\n", ""),
                "no '-----END PGP SIGNATURE-----' line",
            ),
            (
                format!("{good}\nOrigin: Evil\n"),
                "line 24: clearsigned message: text after the signature",
            ),
            (format!("{good}{good}"), "text after the signature"),
            (
                "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n".to_string(),
                "ends inside the armour headers",
            ),
        ];
        for (text, message) in cases {
            let err = clearsigned_body(&text).unwrap_err().to_string();
            assert!(err.contains(message), "{err:?} lacks {message:?}");
        }
        assert!(clearsigned_body(&format!("{good}\n\n")).is_ok());
    }

    #[test]
    fn bad_releases() {
        let cases: &[(&str, &str)] = &[
            ("Suite: x\n", "no SHA256 field"),
            ("Suite: x\n\nSuite: y\n", "expected one paragraph, found 2"),
            ("", "expected one paragraph, found 0"),
            ("SHA256:\n abc 1 x\n", "line 2: SHA256: \"abc\" is not a SHA256"),
            (
                "SHA256:\n 3957f28db16e3f28c7b34ae84f1c929c567de6970f3f1b95dac9b498dd80fe63 big x\n",
                "line 2: SHA256: size \"big\" of x is not a number",
            ),
            ("SHA256:\n a 1\n", "expected 'sha256 size path'"),
            ("Date: yesterday\nSHA256:\n", "line 1: Date: wrong number of parts"),
            (
                "Valid-Until: Sat, 31 Feb 2026 10:16:37 UTC\nSHA256:\n",
                "line 1: Valid-Until: bad day",
            ),
        ];
        for &(text, message) in cases {
            let err = Release::parse(text).unwrap_err().to_string();
            assert!(err.contains(message), "{text:?}: {err:?} lacks {message:?}");
        }
    }

    #[test]
    fn dates() {
        let cases: &[(&str, Result<i64, &str>)] = &[
            ("Thu, 01 Jan 1970 00:00:00 UTC", Ok(0)),
            ("01 Jan 1970 00:00:00 GMT", Ok(0)),
            ("Thu, 1 Jan 1970 01:00:00 +0100", Ok(0)),
            ("Wed, 31 Dec 1969 23:00:00 -0100", Ok(0)),
            ("Sat, 10 Jun 2023 09:36:54 UTC", Ok(1_686_389_814)),
            ("Thu, 29 Feb 2024 00:00:00 UTC", Ok(1_709_164_800)),
            ("Sun, 01 Mar 2100 00:00:00 UTC", Ok(4_107_542_400)),
            ("Thu, 29 Feb 2100 00:00:00 UTC", Err("bad day")),
            ("Sat, 10 Foo 2023 09:36:54 UTC", Err("bad month")),
            ("Sat, 10 Jun 2023 24:00:00 UTC", Err("bad time")),
            ("Sat, 10 Jun 2023 09:36 UTC", Err("bad time")),
            ("Sat, 10 Jun 2023 09:36:54 CEST", Err("bad zone")),
            ("Sat, 10 Jun 2023 09:36:54", Err("wrong number of parts")),
            ("S4t, 10 Jun 2023 09:36:54 UTC", Err("bad day name")),
        ];
        for &(text, expected) in cases {
            match (parse_date(text), expected) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{text}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{text}: {got:?} lacks {want:?}"),
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }
}
