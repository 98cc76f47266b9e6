//! Flake references: `builtins.parseFlakeRef` and `builtins.flakeRefToString`.
//!
//! A flake reference is a URL (`github:NixOS/nixpkgs/23.05?dir=lib`), a flake ID with an optional
//! branch and revision (`nixpkgs/nixos-23.05`), or an absolute path. Parsing turns it into the
//! attributes of a fetcher input (`type`, `owner`, `repo`, `url`, ...) plus the flake's `dir`;
//! printing goes the other way. Both follow Nix's fetchers: the input schemes are tried in the
//! order of their names, each takes the URLs it knows, and a URL that no scheme parses cleanly falls
//! back to being a path. Nothing is fetched, so this needs neither the network nor the store.

use std::collections::BTreeMap;

use super::error::{Pos, Result, eval_error};
use super::eval::Evaluator;
use super::value::{Thunk, Value};

// ---- input attributes

/// One attribute of a fetcher input: Nix allows strings, unsigned integers and Booleans.
#[derive(Clone, Debug, PartialEq)]
enum AttrVal {
    Str(String),
    Int(u64),
    Bool(bool),
}

/// The attributes of an input, sorted by name as Nix's `std::map` is.
type FAttrs = BTreeMap<String, AttrVal>;

/// Errors of the fetcher layer. Nix distinguishes a URL that does not parse (`BadURL`, which makes
/// the parser try the next form of flake reference) from every other failure.
#[derive(Debug)]
enum FErr {
    BadUrl(String),
    Other(String),
}

impl FErr {
    fn message(self) -> String {
        match self {
            FErr::BadUrl(m) | FErr::Other(m) => m,
        }
    }
}

type FResult<T> = std::result::Result<T, FErr>;

fn bad_url<T>(message: impl Into<String>) -> FResult<T> {
    Err(FErr::BadUrl(message.into()))
}

fn failure<T>(message: impl Into<String>) -> FResult<T> {
    Err(FErr::Other(message.into()))
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The attributes as compact JSON, for error messages.
fn attrs_to_json(attrs: &FAttrs) -> String {
    let items: Vec<String> = attrs
        .iter()
        .map(|(k, v)| {
            let v = match v {
                AttrVal::Str(s) => json_string(s),
                AttrVal::Int(n) => n.to_string(),
                AttrVal::Bool(b) => b.to_string(),
            };
            format!("{}:{v}", json_string(k))
        })
        .collect();
    format!("{{{}}}", items.join(","))
}

fn maybe_str(attrs: &FAttrs, name: &str) -> FResult<Option<String>> {
    match attrs.get(name) {
        None => Ok(None),
        Some(AttrVal::Str(s)) => Ok(Some(s.clone())),
        Some(_) => failure(format!(
            "input attribute '{name}' is not a string {}",
            attrs_to_json(attrs)
        )),
    }
}

fn get_str(attrs: &FAttrs, name: &str) -> FResult<String> {
    maybe_str(attrs, name)?.ok_or_else(|| FErr::Other(format!("input attribute '{name}' is missing")))
}

fn maybe_int(attrs: &FAttrs, name: &str) -> FResult<Option<u64>> {
    match attrs.get(name) {
        None => Ok(None),
        Some(AttrVal::Int(n)) => Ok(Some(*n)),
        Some(_) => failure(format!("input attribute '{name}' is not an integer")),
    }
}

fn maybe_bool(attrs: &FAttrs, name: &str) -> FResult<Option<bool>> {
    match attrs.get(name) {
        None => Ok(None),
        Some(AttrVal::Bool(b)) => Ok(Some(*b)),
        Some(_) => failure(format!("input attribute '{name}' is not a Boolean")),
    }
}

/// Attributes as URL query parameters: integers in decimal, Booleans as `1`/`0`.
fn attrs_to_query(attrs: &FAttrs) -> BTreeMap<String, String> {
    attrs
        .iter()
        .map(|(k, v)| {
            let v = match v {
                AttrVal::Str(s) => s.clone(),
                AttrVal::Int(n) => n.to_string(),
                AttrVal::Bool(b) => if *b { "1" } else { "0" }.to_string(),
            };
            (k.clone(), v)
        })
        .collect()
}

// ---- hashes

fn hash_size(algo: &str) -> Option<usize> {
    Some(match algo {
        "md5" => 16,
        "sha1" => 20,
        "sha256" | "blake3" => 32,
        "sha512" => 64,
        _ => return None,
    })
}

fn unknown_algo(algo: &str) -> FErr {
    FErr::Other(format!(
        "unknown hash algorithm '{algo}', expect 'blake3', 'md5', 'sha1', 'sha256', or 'sha512'"
    ))
}

/// The digest in `body`, in base-16, Nix base-32 or base-64 (SRI hashes are always base-64).
fn decode_hash_body(original: &str, body: &str, algo: &str, sri: bool) -> FResult<Vec<u8>> {
    let size = hash_size(algo).ok_or_else(|| unknown_algo(algo))?;
    let base64 = |what: &str| -> FResult<Vec<u8>> {
        match super::builtins::base64_decode(body) {
            Some(b) if b.len() == size => Ok(b),
            Some(_) => failure(format!("invalid {what} hash '{original}'")),
            None => failure(format!("invalid base-64 hash '{original}'")),
        }
    };
    if sri {
        return base64("SRI");
    }
    if body.len() == size * 2 {
        return (0..size)
            .map(|i| body.get(2 * i..2 * i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| FErr::Other(format!("invalid base-16 hash '{original}'")));
    }
    if body.len() == crate::store::hash::nix32_len(size) {
        return crate::store::hash::nix32_decode(body, size)
            .map_err(|_| FErr::Other(format!("invalid base-32 hash '{original}'")));
    }
    if body.len() == size.div_ceil(3) * 4 {
        return base64("base-64");
    }
    failure(format!("hash '{body}' has wrong length for hash algorithm '{algo}'"))
}

/// Splits `algo:body` or the SRI form `algo-body`; the flag says which.
fn split_hash_prefix(s: &str) -> Option<(&str, &str, bool)> {
    if let Some((a, b)) = s.split_once(':') {
        return Some((a, b, false));
    }
    s.split_once('-').map(|(a, b)| (a, b, true))
}

/// A hash with or without a type prefix; an unprefixed one is of type `algo` (Nix's `Hash::parseAny`).
fn parse_hash_any(s: &str, algo: &str) -> FResult<(String, Vec<u8>)> {
    match split_hash_prefix(s) {
        Some((a, body, sri)) => {
            if hash_size(a).is_none() {
                return Err(unknown_algo(a));
            }
            if a != algo {
                return failure(format!("hash '{s}' should have type '{algo}'"));
            }
            Ok((a.to_string(), decode_hash_body(s, body, a, sri)?))
        }
        None => Ok((algo.to_string(), decode_hash_body(s, s, algo, false)?)),
    }
}

/// A hash that names its type (Nix's `Hash::parseAnyPrefixed`).
fn parse_hash_prefixed(s: &str) -> FResult<(String, Vec<u8>)> {
    match split_hash_prefix(s) {
        Some((a, body, sri)) => {
            if hash_size(a).is_none() {
                return Err(unknown_algo(a));
            }
            Ok((a.to_string(), decode_hash_body(s, body, a, sri)?))
        }
        None => failure(format!("hash '{s}' does not include a type")),
    }
}

/// The input's `rev` in base 16 (a commit hash), if it has one.
fn get_rev(attrs: &FAttrs) -> FResult<Option<String>> {
    let Some(s) = maybe_str(attrs, "rev")? else {
        return Ok(None);
    };
    let (_, bytes) = match parse_hash_prefixed(&s) {
        Ok(h) => h,
        Err(_) => parse_hash_any(&s, "sha1")?,
    };
    Ok(Some(crate::store::hash::hex(&bytes)))
}

/// The input's `narHash` in SRI form, if it has one; it must be SHA-256.
fn get_nar_hash(attrs: &FAttrs) -> FResult<Option<String>> {
    let Some(s) = maybe_str(attrs, "narHash")? else {
        return Ok(None);
    };
    let bytes = if s.is_empty() {
        vec![0u8; 32]
    } else {
        let Some((algo, body)) = s.split_once('-') else {
            return failure(format!("hash '{s}' is not SRI"));
        };
        if hash_size(algo).is_none() {
            return Err(unknown_algo(algo));
        }
        if algo != "sha256" {
            return failure("narHash must use SHA-256");
        }
        decode_hash_body(&s, body, algo, true)?
    };
    Ok(Some(format!("sha256-{}", super::builtins::base64_encode(&bytes))))
}

// ---- URLs

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~".contains(&b)
}

fn is_sub_delim(b: u8) -> bool {
    b"!$&'()*+,;=".contains(&b)
}

fn is_pchar(b: u8) -> bool {
    is_unreserved(b) || is_sub_delim(b) || b == b':' || b == b'@'
}

/// Whether every byte of `s` is allowed by `ok` or starts a well-formed `%XX`.
fn valid_chars(s: &str, ok: impl Fn(u8) -> bool) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit) && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit)) {
                return false;
            }
            i += 3;
        } else if ok(b[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// Percent-decodes `s`; a `%` not followed by two hex digits is an error.
fn percent_decode(s: &str) -> FResult<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let digit = |j: usize| b.get(j).and_then(|c| (*c as char).to_digit(16));
            match (digit(i + 1), digit(i + 2)) {
                (Some(hi), Some(lo)) => {
                    out.push((hi * 16 + lo) as u8);
                    i += 3;
                }
                _ => return bad_url(format!("invalid URI parameter '{s}': bad percent-encoding")),
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Percent-encodes every byte except the unreserved ones and those in `keep`.
fn percent_encode(s: &str, keep: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if is_unreserved(b) || keep.as_bytes().contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_encode_set(s: &str, set: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() && set.contains(&(c as u8)) {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum HostType {
    Name,
    IPv4,
    IPv6,
    IPvFuture,
}

#[derive(Clone, Debug)]
struct Authority {
    host_type: HostType,
    host: String,
    user: Option<String>,
    password: Option<String>,
    port: Option<u16>,
}

impl Authority {
    fn empty() -> Authority {
        Authority {
            host_type: HostType::Name,
            host: String::new(),
            user: None,
            password: None,
            port: None,
        }
    }

    fn render(&self) -> String {
        let mut out = String::new();
        if let Some(user) = &self.user {
            out.push_str(&percent_encode(user, ""));
            if let Some(password) = &self.password {
                out.push(':');
                out.push_str(&percent_encode(password, ""));
            }
            out.push('@');
        }
        match self.host_type {
            HostType::Name => out.push_str(&percent_encode(&self.host, "")),
            HostType::IPv4 => out.push_str(&self.host),
            HostType::IPv6 | HostType::IPvFuture => {
                out.push('[');
                out.push_str(&percent_encode(&self.host, ":"));
                out.push(']');
            }
        }
        if let Some(port) = self.port {
            out.push_str(&format!(":{port}"));
        }
        out
    }

    fn parse(text: &str) -> FResult<Authority> {
        let invalid = || FErr::BadUrl(format!("invalid URL authority: '{text}'"));
        let (userinfo, hostport) = match text.split_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, text),
        };
        let (mut user, mut password) = (None, None);
        if let Some(u) = userinfo {
            if !valid_chars(u, |b| is_unreserved(b) || is_sub_delim(b) || b == b':') {
                return Err(invalid());
            }
            match u.split_once(':') {
                Some((name, pw)) => {
                    user = Some(percent_decode(name)?);
                    password = Some(percent_decode(pw)?);
                }
                None => user = Some(percent_decode(u)?),
            }
        }
        let (host_type, host, port_text) = if let Some(rest) = hostport.strip_prefix('[') {
            let (literal, after) = rest.split_once(']').ok_or_else(invalid)?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(invalid)?),
            };
            let host_type = if literal.starts_with(['v', 'V']) {
                HostType::IPvFuture
            } else if !literal.is_empty()
                && literal.contains(':')
                && literal.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
            {
                HostType::IPv6
            } else {
                return Err(invalid());
            };
            (host_type, literal.to_string(), port)
        } else {
            let (host, port) = match hostport.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            };
            if !valid_chars(host, |b| is_unreserved(b) || is_sub_delim(b)) {
                return Err(invalid());
            }
            let host_type = if is_ipv4(host) { HostType::IPv4 } else { HostType::Name };
            (host_type, percent_decode(host)?, port)
        };
        let port = match port_text {
            None | Some("") => None,
            Some(p) => {
                if !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(invalid());
                }
                match p.parse::<u16>() {
                    Ok(n) if n != 0 => Some(n),
                    _ => return bad_url(format!("port '{p}' is invalid")),
                }
            }
        };
        Ok(Authority {
            host_type,
            host,
            user,
            password,
            port,
        })
    }
}

fn is_ipv4(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 4
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 3
                && p.bytes().all(|b| b.is_ascii_digit())
                && (p.len() == 1 || !p.starts_with('0'))
                && p.parse::<u16>().is_ok_and(|n| n <= 255)
        })
}

/// A parsed URL: the path as decoded segments (`/a/b` is `["", "a", "b"]`), the query decoded.
#[derive(Clone, Debug)]
struct Url {
    scheme: String,
    authority: Option<Authority>,
    path: Vec<String>,
    query: BTreeMap<String, String>,
    fragment: String,
}

impl Url {
    fn new(scheme: &str, authority: Option<Authority>, path: Vec<String>) -> Url {
        Url {
            scheme: scheme.to_string(),
            authority,
            path,
            query: BTreeMap::new(),
            fragment: String::new(),
        }
    }

    fn render(&self) -> String {
        let mut out = format!("{}:", self.scheme);
        if let Some(a) = &self.authority {
            out.push_str("//");
            out.push_str(&a.render());
        }
        let path: Vec<String> = self.path.iter().map(|p| percent_encode(p, ":@")).collect();
        out.push_str(&path.join("/"));
        if !self.query.is_empty() {
            out.push('?');
            out.push_str(&encode_query(&self.query));
        }
        if !self.fragment.is_empty() {
            out.push('#');
            out.push_str(&percent_encode(&self.fragment, ""));
        }
        out
    }

    /// The path's segments without the empty ones.
    fn segments(&self) -> Vec<String> {
        self.path.iter().filter(|s| !s.is_empty()).cloned().collect()
    }
}

fn encode_query(query: &BTreeMap<String, String>) -> String {
    let items: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k, ":@/?"), percent_encode(v, ":@/?")))
        .collect();
    items.join("&")
}

/// Decodes `a=b&c=d`; parameters without `=` are ignored, and the first of repeated ones wins.
/// With `lenient`, unescaped spaces and double quotes are accepted.
fn decode_query(query: &str, lenient: bool) -> FResult<BTreeMap<String, String>> {
    let fixed;
    let query = if lenient {
        fixed = percent_encode_set(query, b" \"");
        fixed.as_str()
    } else {
        query
    };
    if !valid_chars(query, |b| is_pchar(b) || b == b'/' || b == b'?') {
        return bad_url(format!("invalid URI query '{query}'"));
    }
    let mut out = BTreeMap::new();
    for param in query.split('&') {
        let Some((k, v)) = param.split_once('=') else {
            continue;
        };
        out.entry(percent_decode(k)?).or_insert(percent_decode(v)?);
    }
    Ok(out)
}

/// `tarball+https` is application `tarball` over transport `https`.
fn split_scheme(scheme: &str) -> (Option<&str>, &str) {
    match scheme.split_once('+') {
        Some((app, transport)) => (Some(app), transport),
        None => (None, scheme),
    }
}

/// Parses an absolute URL. With `lenient`, spaces and double quotes in the query (and carets in the
/// fragment) need not be escaped.
fn parse_url(url: &str, lenient: bool) -> FResult<Url> {
    let fixed = if lenient { lenient_fixup(url) } else { url.to_string() };
    let invalid = || FErr::BadUrl(format!("'{url}' is not a valid URL"));
    let (scheme, rest) = fixed.split_once(':').ok_or_else(invalid)?;
    let mut sb = scheme.bytes();
    if !sb.next().is_some_and(|b| b.is_ascii_alphabetic())
        || !sb.all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
    {
        return Err(invalid());
    }
    let (rest, fragment) = match rest.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (rest, None),
    };
    let (hier, query) = match rest.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match hier.strip_prefix("//") {
        Some(after) => {
            let end = after.find('/').unwrap_or(after.len());
            (Some(Authority::parse(&after[..end])?), &after[end..])
        }
        None => (None, hier),
    };
    if !valid_chars(path, |b| is_pchar(b) || b == b'/') {
        return Err(invalid());
    }
    let fragment_ok = |b: u8| is_pchar(b) || b == b'/' || b == b'?';
    if let Some(f) = fragment
        && !valid_chars(f, fragment_ok)
    {
        return Err(invalid());
    }
    if let Some(q) = query
        && !valid_chars(q, fragment_ok)
    {
        return Err(invalid());
    }
    if split_scheme(scheme).1 == "file"
        && let Some(a) = &authority
        && !a.host.is_empty()
    {
        return bad_url(format!("file:// URL '{url}' has unexpected authority '{}'", a.render()));
    }
    let path = path.split('/').map(percent_decode).collect::<FResult<Vec<String>>>()?;
    Ok(Url {
        scheme: scheme.to_string(),
        authority,
        path,
        query: match query {
            Some(q) => decode_query(q, false)?,
            None => BTreeMap::new(),
        },
        fragment: match fragment {
            Some(f) => percent_decode(f)?,
            None => String::new(),
        },
    })
}

fn lenient_fixup(url: &str) -> String {
    let mut fixed = String::with_capacity(url.len());
    let mut view = url;
    if let Some((before, after)) = url.split_once('?') {
        fixed.push_str(before);
        fixed.push('?');
        let end = after.find('#').unwrap_or(after.len());
        fixed.push_str(&percent_encode_set(&after[..end], b" \""));
        view = &after[end..];
    }
    if let Some((before, after)) = view.split_once('#') {
        fixed.push_str(before);
        fixed.push('#');
        fixed.push_str(&percent_encode_set(after, b" \"^"));
        return fixed;
    }
    fixed.push_str(view);
    fixed
}

/// A local path or SCP-style address (`git@host:path`) as Git understands it, as a URL.
fn fix_git_url(url: &str) -> FResult<Url> {
    if url.starts_with('/') {
        let mut path = vec![String::new()];
        path.extend(url.split('/').filter(|s| !s.is_empty()).map(str::to_string));
        if url.ends_with('/') {
            path.push(String::new());
        }
        return Ok(Url::new("file", Some(Authority::empty()), path));
    }
    if !url.contains("://")
        && let Some((host, path)) = url.split_once(':')
    {
        const GIT_SCHEMES: [&str; 7] = ["ssh", "http", "https", "file", "ftp", "ftps", "git"];
        let known = GIT_SCHEMES
            .iter()
            .any(|s| host == *s || host.strip_prefix("git+") == Some(s));
        if !host.contains('/') && !known {
            if path.is_empty() {
                return bad_url(format!("SCP-style Git URL '{url}' has an empty path"));
            }
            let (user, host) = match host.split_once('@') {
                Some((u, h)) => (Some(u.to_string()), h),
                None => (None, host),
            };
            let host_type = if is_ipv4(host) { HostType::IPv4 } else { HostType::Name };
            let mut segments: Vec<String> = path.split('/').map(str::to_string).collect();
            if !segments[0].is_empty() {
                segments.insert(0, String::new());
            }
            let authority = Authority {
                host_type,
                host: host.to_string(),
                user,
                password: None,
                port: None,
            };
            return Ok(Url::new("ssh", Some(authority), segments));
        }
    }
    let mut parsed = parse_url(url, false)?;
    if let (Some("git"), transport) = split_scheme(&parsed.scheme) {
        parsed.scheme = transport.to_string();
    }
    Ok(parsed)
}

// ---- Git names

/// A branch or tag name as the flake ID shorthand accepts it.
fn matches_ref_regex(s: &str) -> bool {
    let mut b = s.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphanumeric() || c == b'@')
        && b.all(|c| c.is_ascii_alphanumeric() || b"_./@+-".contains(&c))
}

/// A commit hash: 40 hex digits.
fn matches_rev_regex(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|c| c.is_ascii_hexdigit())
}

/// Whether Git accepts `name` as a reference, branch or tag name (`git check-ref-format`).
fn is_legal_ref_name(name: &str) -> bool {
    if name.is_empty() || name == "@" || name.starts_with('-') || name.ends_with('.') {
        return false;
    }
    if name.contains("..") || name.contains("@{") {
        return false;
    }
    if name
        .chars()
        .any(|c| (c as u32) < 0x20 || c == '\u{7f}' || " ~^:?*[\\".contains(c))
    {
        return false;
    }
    name.split('/')
        .all(|comp| !comp.is_empty() && !comp.starts_with('.') && !comp.ends_with(".lock"))
}

fn is_flake_id(s: &str) -> bool {
    let mut b = s.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphabetic()) && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

fn is_host(s: &str) -> bool {
    s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-')
}

// ---- input schemes

#[derive(Clone, Copy, PartialEq, Debug)]
enum Scheme {
    File,
    Git,
    GitHub,
    GitLab,
    Hg,
    Indirect,
    Path,
    SourceHut,
    Tarball,
}

/// The schemes in the order Nix tries them (the order of their names).
const SCHEMES: [Scheme; 9] = [
    Scheme::File,
    Scheme::Git,
    Scheme::GitHub,
    Scheme::GitLab,
    Scheme::Hg,
    Scheme::Indirect,
    Scheme::Path,
    Scheme::SourceHut,
    Scheme::Tarball,
];

const CURL_ATTRS: &[&str] = &["url", "narHash", "name", "unpack", "rev", "revCount", "lastModified"];

const GIT_BOOL_PARAMS: &[&str] = &[
    "shallow",
    "submodules",
    "lfs",
    "exportIgnore",
    "allRefs",
    "verifyCommit",
];

impl Scheme {
    fn name(self) -> &'static str {
        match self {
            Scheme::File => "file",
            Scheme::Git => "git",
            Scheme::GitHub => "github",
            Scheme::GitLab => "gitlab",
            Scheme::Hg => "hg",
            Scheme::Indirect => "indirect",
            Scheme::Path => "path",
            Scheme::SourceHut => "sourcehut",
            Scheme::Tarball => "tarball",
        }
    }

    fn by_name(name: &str) -> Option<Scheme> {
        SCHEMES.into_iter().find(|s| s.name() == name)
    }

    fn allowed_attrs(self) -> &'static [&'static str] {
        match self {
            Scheme::File | Scheme::Tarball => CURL_ATTRS,
            Scheme::Git => &[
                "url",
                "ref",
                "rev",
                "shallow",
                "submodules",
                "lfs",
                "exportIgnore",
                "lastModified",
                "revCount",
                "narHash",
                "allRefs",
                "name",
                "dirtyRev",
                "dirtyShortRev",
                "verifyCommit",
                "keytype",
                "publicKey",
                "publicKeys",
            ],
            Scheme::GitHub | Scheme::GitLab | Scheme::SourceHut => {
                &["owner", "repo", "ref", "rev", "narHash", "lastModified", "host"]
            }
            Scheme::Hg => &["url", "ref", "rev", "revCount", "narHash", "name"],
            Scheme::Indirect => &["id", "ref", "rev", "narHash"],
            Scheme::Path => &["path", "rev", "revCount", "lastModified", "narHash"],
        }
    }

    /// The input for `url` if this scheme takes URLs like it.
    fn input_from_url(self, url: &Url) -> FResult<Option<FAttrs>> {
        match self {
            Scheme::File | Scheme::Tarball => Ok(self.curl_from_url(url)),
            Scheme::Git => {
                if url.scheme != "git" && split_scheme(&url.scheme).0 != Some("git") {
                    return Ok(None);
                }
                let mut url2 = url.clone();
                url2.query.clear();
                let mut attrs = FAttrs::new();
                attrs.insert("type".into(), AttrVal::Str("git".into()));
                for (name, value) in &url.query {
                    if ["rev", "ref", "keytype", "publicKey", "publicKeys"].contains(&name.as_str()) {
                        attrs.insert(name.clone(), AttrVal::Str(value.clone()));
                    } else if GIT_BOOL_PARAMS.contains(&name.as_str()) {
                        attrs.insert(name.clone(), AttrVal::Bool(value == "1"));
                    } else {
                        url2.query.insert(name.clone(), value.clone());
                    }
                }
                attrs.insert("url".into(), AttrVal::Str(url2.render()));
                self.input_from_attrs(attrs).map(Some)
            }
            Scheme::GitHub | Scheme::GitLab | Scheme::SourceHut => {
                if url.scheme != self.name() {
                    return Ok(None);
                }
                let path = url.segments();
                let (mut rev, mut reference) = (None, None);
                let mut host = None;
                match path.len() {
                    0 | 1 => return bad_url(format!("URL '{}' is invalid", url.render())),
                    2 => {}
                    3 if matches_rev_regex(&path[2]) => rev = Some(path[2].clone()),
                    _ => reference = Some(path[2..].join("/")),
                }
                for (name, value) in &url.query {
                    match name.as_str() {
                        "rev" => {
                            if rev.is_some() {
                                return bad_url(format!("URL '{}' contains multiple commit hashes", url.render()));
                            }
                            rev = Some(value.clone());
                        }
                        "ref" => {
                            if reference.is_some() {
                                return bad_url(format!("URL '{}' contains multiple branch/tag names", url.render()));
                            }
                            reference = Some(value.clone());
                        }
                        "host" => host = Some(value.clone()),
                        _ => {}
                    }
                }
                let mut attrs = FAttrs::new();
                attrs.insert("type".into(), AttrVal::Str(self.name().into()));
                attrs.insert("owner".into(), AttrVal::Str(path[0].clone()));
                attrs.insert("repo".into(), AttrVal::Str(path[1].clone()));
                for (name, value) in [("rev", rev), ("ref", reference), ("host", host)] {
                    if let Some(v) = value {
                        attrs.insert(name.into(), AttrVal::Str(v));
                    }
                }
                if let Some(h) = url.query.get("narHash") {
                    attrs.insert("narHash".into(), AttrVal::Str(h.clone()));
                }
                self.input_from_attrs(attrs).map(Some)
            }
            Scheme::Hg => {
                if !["hg+http", "hg+https", "hg+ssh", "hg+file"].contains(&url.scheme.as_str()) {
                    return Ok(None);
                }
                let mut url2 = url.clone();
                url2.scheme = url.scheme[3..].to_string();
                url2.query.clear();
                let mut attrs = FAttrs::new();
                attrs.insert("type".into(), AttrVal::Str("hg".into()));
                for (name, value) in &url.query {
                    if name == "rev" || name == "ref" {
                        attrs.insert(name.clone(), AttrVal::Str(value.clone()));
                    } else {
                        url2.query.insert(name.clone(), value.clone());
                    }
                }
                attrs.insert("url".into(), AttrVal::Str(url2.render()));
                self.input_from_attrs(attrs).map(Some)
            }
            Scheme::Indirect => {
                if url.scheme != "flake" {
                    return Ok(None);
                }
                let path = url.segments();
                let shown = url.render();
                let (mut rev, mut reference) = (None, None);
                match path.len() {
                    1 => {}
                    2 => {
                        if matches_rev_regex(&path[1]) {
                            rev = Some(path[1].clone());
                        } else if is_legal_ref_name(&path[1]) {
                            reference = Some(path[1].clone());
                        } else {
                            return bad_url(format!(
                                "in flake URL '{shown}', '{}' is not a commit hash or branch/tag name",
                                path[1]
                            ));
                        }
                    }
                    3 => {
                        if !is_legal_ref_name(&path[1]) {
                            return bad_url(format!(
                                "in flake URL '{shown}', '{}' is not a branch/tag name",
                                path[1]
                            ));
                        }
                        reference = Some(path[1].clone());
                        if !matches_rev_regex(&path[2]) {
                            return bad_url(format!("in flake URL '{shown}', '{}' is not a commit hash", path[2]));
                        }
                        rev = Some(path[2].clone());
                    }
                    _ => return bad_url(format!("GitHub URL '{shown}' is invalid")),
                }
                if !is_flake_id(&path[0]) {
                    return bad_url(format!("'{}' is not a valid flake ID", path[0]));
                }
                let mut attrs = FAttrs::new();
                attrs.insert("type".into(), AttrVal::Str("indirect".into()));
                attrs.insert("id".into(), AttrVal::Str(path[0].clone()));
                if let Some(r) = rev {
                    attrs.insert("rev".into(), AttrVal::Str(r.to_ascii_lowercase()));
                }
                if let Some(r) = reference {
                    attrs.insert("ref".into(), AttrVal::Str(r));
                }
                Ok(Some(attrs))
            }
            Scheme::Path => {
                if url.scheme != "path" {
                    return Ok(None);
                }
                if let Some(a) = &url.authority
                    && !a.host.is_empty()
                {
                    return failure(format!(
                        "path URL '{}' should not have an authority ('{}')",
                        url.render(),
                        a.render()
                    ));
                }
                let mut attrs = FAttrs::new();
                attrs.insert("type".into(), AttrVal::Str("path".into()));
                attrs.insert("path".into(), AttrVal::Str(url.path.join("/")));
                for (name, value) in &url.query {
                    match name.as_str() {
                        "rev" | "narHash" => {
                            attrs.insert(name.clone(), AttrVal::Str(value.clone()));
                        }
                        "revCount" | "lastModified" => match parse_u64(value) {
                            Some(n) => {
                                attrs.insert(name.clone(), AttrVal::Int(n));
                            }
                            None => {
                                return failure(format!("path URL '{}' has invalid parameter '{name}'", url.render()));
                            }
                        },
                        _ => {
                            return failure(format!(
                                "path URL '{}' has unsupported parameter '{name}'",
                                url.render()
                            ));
                        }
                    }
                }
                Ok(Some(attrs))
            }
        }
    }

    /// `file` and `tarball`: a download over `file`, `http` or `https`.
    fn curl_from_url(self, url: &Url) -> Option<FAttrs> {
        let (app, transport) = split_scheme(&url.scheme);
        if !["file", "http", "https"].contains(&transport) {
            return None;
        }
        // Flake references always ask for a tree, so a bare URL is a tarball.
        let valid = match app {
            Some(app) => app == self.name(),
            None => self == Scheme::Tarball,
        };
        if !valid {
            return None;
        }
        let mut url = url.clone();
        url.scheme = transport.to_string();
        let mut attrs = FAttrs::new();
        for name in ["narHash", "rev"] {
            if let Some(v) = url.query.get(name) {
                attrs.insert(name.into(), AttrVal::Str(v.clone()));
            }
        }
        for name in ["revCount", "lastModified"] {
            if let Some(n) = url.query.get(name).and_then(|v| parse_u64(v)) {
                attrs.insert(name.into(), AttrVal::Int(n));
            }
        }
        for name in CURL_ATTRS {
            url.query.remove(*name);
        }
        attrs.insert("type".into(), AttrVal::Str(self.name().into()));
        attrs.insert("url".into(), AttrVal::Str(url.render()));
        Some(attrs)
    }

    /// Checks the attributes of an input of this scheme, normalising some of them.
    fn input_from_attrs(self, mut attrs: FAttrs) -> FResult<FAttrs> {
        match self {
            Scheme::File | Scheme::Tarball => {}
            Scheme::Git => {
                maybe_bool(&attrs, "verifyCommit")?;
                if let Some(r) = maybe_str(&attrs, "ref")?
                    && !is_legal_ref_name(&r)
                {
                    return bad_url(format!("invalid Git branch/tag name '{r}'"));
                }
                let url = fix_git_url(&get_str(&attrs, "url")?)?.render();
                attrs.insert("url".into(), AttrVal::Str(url));
                for name in ["shallow", "submodules", "allRefs"] {
                    maybe_bool(&attrs, name)?;
                }
            }
            Scheme::GitHub | Scheme::GitLab | Scheme::SourceHut => {
                get_str(&attrs, "owner")?;
                get_str(&attrs, "repo")?;
                let reference = maybe_str(&attrs, "ref")?;
                let rev = maybe_str(&attrs, "rev")?;
                if let (Some(reference), Some(rev)) = (&reference, &rev) {
                    return bad_url(format!(
                        "input {} contains both a commit hash ('{rev}') and a branch/tag name ('{reference}')",
                        attrs_to_json(&attrs)
                    ));
                }
                if let Some(rev) = &rev {
                    parse_hash_any(rev, "sha1")?;
                }
                if reference.is_some_and(|r| !is_legal_ref_name(&r)) {
                    return bad_url(format!(
                        "input {} contains an invalid branch/tag name",
                        attrs_to_json(&attrs)
                    ));
                }
                if maybe_str(&attrs, "host")?.is_some_and(|h| !is_host(&h)) {
                    return bad_url(format!(
                        "input {} contains an invalid instance host",
                        attrs_to_json(&attrs)
                    ));
                }
            }
            Scheme::Hg => {
                parse_url(&get_str(&attrs, "url")?, false)?;
                if let Some(r) = maybe_str(&attrs, "ref")?
                    && !matches_ref_regex(&r)
                {
                    return bad_url(format!("invalid Mercurial branch/tag name '{r}'"));
                }
            }
            Scheme::Indirect => {
                let id = get_str(&attrs, "id")?;
                if !is_flake_id(&id) {
                    return bad_url(format!("'{id}' is not a valid flake ID"));
                }
            }
            Scheme::Path => {
                get_str(&attrs, "path")?;
            }
        }
        Ok(attrs)
    }

    /// The URL that stands for an input of this scheme.
    fn to_url(self, attrs: &FAttrs) -> FResult<Url> {
        match self {
            Scheme::File | Scheme::Tarball => {
                let mut url = parse_url(&get_str(attrs, "url")?, false)?;
                if let Some(h) = get_nar_hash(attrs)? {
                    url.query.insert("narHash".into(), h);
                }
                Ok(url)
            }
            Scheme::Git => {
                let mut url = parse_url(&get_str(attrs, "url")?, false)?;
                if url.scheme != "git" {
                    url.scheme = format!("git+{}", url.scheme);
                }
                if let Some(rev) = get_rev(attrs)? {
                    url.query.insert("rev".into(), rev);
                }
                if let Some(r) = maybe_str(attrs, "ref")? {
                    url.query.insert("ref".into(), r);
                }
                for name in ["shallow", "lfs", "submodules", "exportIgnore", "verifyCommit"] {
                    if maybe_bool(attrs, name)?.unwrap_or(false) {
                        url.query.insert(name.into(), "1".into());
                    }
                }
                if let Some(keys) = maybe_str(attrs, "publicKeys")? {
                    url.query.insert("publicKeys".into(), keys);
                } else if let Some(key) = maybe_str(attrs, "publicKey")? {
                    let keytype = maybe_str(attrs, "keytype")?.unwrap_or_else(|| "ssh-ed25519".into());
                    url.query.insert("keytype".into(), keytype);
                    url.query.insert("publicKey".into(), key);
                }
                Ok(url)
            }
            Scheme::GitHub | Scheme::GitLab | Scheme::SourceHut => {
                let mut path = vec![get_str(attrs, "owner")?, get_str(attrs, "repo")?];
                if let Some(r) = maybe_str(attrs, "ref")? {
                    path.push(r);
                }
                if let Some(rev) = get_rev(attrs)? {
                    path.push(rev);
                }
                let mut url = Url::new(self.name(), None, path);
                if let Some(h) = get_nar_hash(attrs)? {
                    url.query.insert("narHash".into(), h);
                }
                if let Some(host) = maybe_str(attrs, "host")? {
                    url.query.insert("host".into(), host);
                }
                Ok(url)
            }
            Scheme::Hg => {
                let mut url = parse_url(&get_str(attrs, "url")?, false)?;
                url.scheme = format!("hg+{}", url.scheme);
                if let Some(rev) = get_rev(attrs)? {
                    url.query.insert("rev".into(), rev);
                }
                if let Some(r) = maybe_str(attrs, "ref")? {
                    url.query.insert("ref".into(), r);
                }
                Ok(url)
            }
            Scheme::Indirect => {
                let mut path = vec![get_str(attrs, "id")?];
                if let Some(r) = maybe_str(attrs, "ref")? {
                    path.push(r);
                }
                if let Some(rev) = get_rev(attrs)? {
                    path.push(rev);
                }
                Ok(Url::new("flake", None, path))
            }
            Scheme::Path => {
                let mut query = attrs_to_query(attrs);
                for name in ["path", "type", "__final"] {
                    query.remove(name);
                }
                let path = get_str(attrs, "path")?.split('/').map(str::to_string).collect();
                let mut url = Url::new("path", None, path);
                url.query = query;
                Ok(url)
            }
        }
    }
}

fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The checks Nix makes of every input: the common attributes have the right types.
fn fixup(attrs: &FAttrs) -> FResult<()> {
    get_str(attrs, "type")?;
    maybe_str(attrs, "ref")?;
    maybe_int(attrs, "revCount")?;
    maybe_int(attrs, "lastModified")?;
    Ok(())
}

/// A fetcher input: its attributes, and its scheme unless the type is unknown.
struct Input {
    scheme: Option<Scheme>,
    attrs: FAttrs,
}

impl Input {
    fn from_url(url: &Url) -> FResult<Input> {
        for scheme in SCHEMES {
            if let Some(attrs) = scheme.input_from_url(url)? {
                fixup(&attrs)?;
                return Ok(Input {
                    scheme: Some(scheme),
                    attrs,
                });
            }
        }
        if split_scheme(&url.scheme) == (Some("file"), "git") {
            return failure(format!(
                "input '{}' is unsupported; did you mean 'git+file' instead of 'file+git'?",
                url.render()
            ));
        }
        failure(format!("input '{}' is unsupported", url.render()))
    }

    fn from_attrs(attrs: FAttrs) -> FResult<Input> {
        let Some(type_name) = maybe_str(&attrs, "type")? else {
            return failure("'type' attribute to specify input scheme is required but not provided");
        };
        let Some(scheme) = Scheme::by_name(&type_name) else {
            fixup(&attrs)?;
            return Ok(Input { scheme: None, attrs });
        };
        let allowed = scheme.allowed_attrs();
        for name in attrs.keys() {
            if name != "type" && name != "__final" && !allowed.contains(&name.as_str()) {
                return failure(format!(
                    "input attribute '{name}' not supported by scheme '{type_name}'"
                ));
            }
        }
        let attrs = scheme.input_from_attrs(attrs)?;
        fixup(&attrs)?;
        Ok(Input {
            scheme: Some(scheme),
            attrs,
        })
    }

    fn to_url(&self) -> FResult<Url> {
        match self.scheme {
            Some(scheme) => scheme.to_url(&self.attrs),
            None => failure(format!(
                "cannot show unsupported input '{}'",
                attrs_to_json(&self.attrs)
            )),
        }
    }
}

// ---- flake references

/// A flake reference: an input, the subdirectory holding `flake.nix`, and the `#fragment` if any.
struct FlakeRef {
    input: Input,
    dir: String,
    fragment: String,
}

fn from_parsed_url(mut url: Url) -> FResult<FlakeRef> {
    let dir = url.query.remove("dir").unwrap_or_default();
    let fragment = std::mem::take(&mut url.fragment);
    Ok(FlakeRef {
        input: Input::from_url(&url)?,
        dir,
        fragment,
    })
}

/// `nixpkgs`, `nixpkgs/nixos-23.05`, `nixpkgs/<ref>/<rev>`, each with an optional `#fragment`.
fn parse_flake_id_ref(s: &str) -> FResult<Option<FlakeRef>> {
    let (main, fragment) = match s.split_once('#') {
        Some((m, f)) => (m, Some(f)),
        None => (s, None),
    };
    let (id, rest) = match main.split_once('/') {
        Some((id, rest)) => (id, Some(rest)),
        None => (main, None),
    };
    if !is_flake_id(id) || rest.is_some_and(|r| !matches_ref_regex(r)) {
        return Ok(None);
    }
    if let Some(f) = fragment
        && !valid_chars(f, |b| is_pchar(b) || b"/? \"^".contains(&b))
    {
        return Ok(None);
    }
    let url = Url::new("flake", None, main.split('/').map(str::to_string).collect());
    let input = Input::from_url(&url)?;
    let fragment = percent_decode(fragment.unwrap_or(""))?;
    Ok(Some(FlakeRef {
        input,
        dir: String::new(),
        fragment,
    }))
}

/// An absolute path, with an optional `?query` and `#fragment`.
fn parse_path_flake_ref(s: &str) -> FResult<FlakeRef> {
    let path_end = s.find(['?', '#']).unwrap_or(s.len());
    let path = &s[..path_end];
    let mut rest = &s[path_end..];
    let mut query = "";
    if let Some(after) = rest.strip_prefix('?') {
        let end = after.find('#').unwrap_or(after.len());
        query = &after[..end];
        rest = &after[end..];
    }
    let fragment = rest.strip_prefix('#').unwrap_or("");
    if fragment.contains(['\n', '\r', '\u{2028}', '\u{2029}']) {
        return failure(format!("invalid flakeref '{s}'"));
    }
    let query = decode_query(query, true)?;
    let fragment = percent_decode(fragment)?;
    if !path.starts_with('/') {
        return bad_url(format!("flake reference '{s}' is not an absolute path"));
    }
    let mut url = Url::new(
        "path",
        Some(Authority::empty()),
        path.split('/').map(str::to_string).collect(),
    );
    url.query = query;
    url.fragment = fragment;
    from_parsed_url(url)
}

fn parse_flake_ref_with_fragment(s: &str) -> FResult<FlakeRef> {
    if let Some(r) = parse_flake_id_ref(s)? {
        return Ok(r);
    }
    let as_url = parse_url(s, true).and_then(from_parsed_url);
    match as_url {
        Ok(r) => Ok(r),
        Err(FErr::BadUrl(_)) => parse_path_flake_ref(s),
        Err(e) => Err(e),
    }
}

/// The attributes of the flake reference `s`, as `builtins.parseFlakeRef` returns them.
fn parse_flake_ref(s: &str) -> FResult<FAttrs> {
    let r = parse_flake_ref_with_fragment(s)?;
    if !r.fragment.is_empty() {
        return failure(format!("unexpected fragment '{}' in flake reference '{s}'", r.fragment));
    }
    let mut attrs = r.input.attrs;
    if !r.dir.is_empty() {
        attrs.entry("dir".into()).or_insert(AttrVal::Str(r.dir));
    }
    Ok(attrs)
}

/// The URL form of the flake reference with attributes `attrs`.
fn flake_ref_to_string(attrs: &FAttrs) -> FResult<String> {
    let mut input_attrs = attrs.clone();
    input_attrs.remove("dir");
    let input = Input::from_attrs(input_attrs)?;
    let dir = maybe_str(attrs, "dir")?.unwrap_or_default();
    let mut url = input.to_url()?;
    if !dir.is_empty() {
        url.query.entry("dir".into()).or_insert(dir);
    }
    Ok(url.render())
}

// ---- the builtins

/// A context element as a store path, for messages.
fn context_path(element: &str) -> &str {
    if let Some(rest) = element.strip_prefix('=') {
        return rest;
    }
    if let Some(rest) = element.strip_prefix('!')
        && let Some((_, path)) = rest.split_once('!')
    {
        return path;
    }
    element
}

/// `builtins.parseFlakeRef "github:NixOS/nixpkgs/23.05?dir=lib"`: the reference's attributes.
pub fn prim_parse_flake_ref(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let v = ev.force(&a[0])?;
    let s = ev.expect_string(&v, pos)?;
    if let Some(element) = s.ctx.iter().next() {
        return eval_error(
            format!(
                "the string '{}' is not allowed to refer to a store path (such as '{}')",
                s.s,
                context_path(element)
            ),
            pos,
        );
    }
    let attrs = match parse_flake_ref(&s.s) {
        Ok(attrs) => attrs,
        Err(e) => return eval_error(e.message(), pos),
    };
    let entries = attrs
        .iter()
        .map(|(k, v)| {
            let v = match v {
                AttrVal::Str(s) => Value::str(s.as_str()),
                AttrVal::Int(n) => Value::Int(*n as i64),
                AttrVal::Bool(b) => Value::Bool(*b),
            };
            (k.as_str(), v)
        })
        .collect();
    Ok(super::builtins::make_attrs(entries))
}

/// `builtins.flakeRefToString { type = "github"; owner = "NixOS"; repo = "nixpkgs"; }`: the URL form.
pub fn prim_flake_ref_to_string(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let v = ev.force(&a[0])?;
    let set = ev.expect_attrs(&v, pos)?;
    let mut attrs = FAttrs::new();
    for entry in set.entries() {
        let name = entry.name.as_str();
        let value = match ev.force(&entry.value)? {
            Value::Int(n) if n < 0 => {
                return eval_error(format!("negative value given for flake ref attr {name}: {n}"), pos);
            }
            Value::Int(n) => AttrVal::Int(n as u64),
            Value::Bool(b) => AttrVal::Bool(b),
            Value::Str(s) => AttrVal::Str(s.s.clone()),
            other => {
                return eval_error(
                    format!(
                        "flake reference attribute sets may only contain integers, Booleans, and strings, \
                         but attribute '{name}' is {}",
                        other.describe()
                    ),
                    pos,
                );
            }
        };
        attrs.entry(name.to_string()).or_insert(value);
    }
    match flake_ref_to_string(&attrs) {
        Ok(s) => Ok(Value::str(s)),
        Err(e) => eval_error(e.message(), pos),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> String {
        match parse_flake_ref(s) {
            Ok(attrs) => attrs_to_json(&attrs),
            Err(e) => format!("error: {}", e.message()),
        }
    }

    fn show(attrs: &[(&str, AttrVal)]) -> String {
        let attrs: FAttrs = attrs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        match flake_ref_to_string(&attrs) {
            Ok(s) => s,
            Err(e) => format!("error: {}", e.message()),
        }
    }

    fn s(v: &str) -> AttrVal {
        AttrVal::Str(v.to_string())
    }

    #[test]
    fn parses_common_references() {
        assert_eq!(
            parse("github:NixOS/nixpkgs/23.05?dir=lib"),
            r#"{"dir":"lib","owner":"NixOS","ref":"23.05","repo":"nixpkgs","type":"github"}"#
        );
        assert_eq!(parse("nixpkgs"), r#"{"id":"nixpkgs","type":"indirect"}"#);
        assert_eq!(
            parse("nixpkgs/nixos-23.05"),
            r#"{"id":"nixpkgs","ref":"nixos-23.05","type":"indirect"}"#
        );
        assert_eq!(parse("flake:nixpkgs"), r#"{"id":"nixpkgs","type":"indirect"}"#);
        assert_eq!(parse("/foo/bar"), r#"{"path":"/foo/bar","type":"path"}"#);
        assert_eq!(
            parse("path:/foo/bar?lastModified=12&narHash=sha256-x"),
            r#"{"lastModified":12,"narHash":"sha256-x","path":"/foo/bar","type":"path"}"#
        );
        assert_eq!(
            parse("git+https://example.org/a/b?ref=main&shallow=1&x=y"),
            r#"{"ref":"main","shallow":true,"type":"git","url":"https://example.org/a/b?x=y"}"#
        );
        assert_eq!(
            parse("git+file:///home/me/src"),
            r#"{"type":"git","url":"file:///home/me/src"}"#
        );
        assert_eq!(
            parse("https://example.org/foo.tar.gz?dir=sub"),
            r#"{"dir":"sub","type":"tarball","url":"https://example.org/foo.tar.gz"}"#
        );
        assert_eq!(
            parse("file+https://example.org/foo"),
            r#"{"type":"file","url":"https://example.org/foo"}"#
        );
        assert_eq!(
            parse("sourcehut:~user/repo"),
            r#"{"owner":"~user","repo":"repo","type":"sourcehut"}"#
        );
        assert_eq!(parse("./foo"), "error: flake reference './foo' is not an absolute path");
        assert_eq!(
            parse("github:foo"),
            "error: flake reference 'github:foo' is not an absolute path"
        );
        assert_eq!(
            parse("nixpkgs#hello"),
            "error: unexpected fragment 'hello' in flake reference 'nixpkgs#hello'"
        );
    }

    #[test]
    fn prints_common_references() {
        assert_eq!(
            show(&[
                ("type", s("github")),
                ("owner", s("NixOS")),
                ("repo", s("nixpkgs")),
                ("ref", s("23.05")),
                ("dir", s("lib")),
            ]),
            "github:NixOS/nixpkgs/23.05?dir=lib"
        );
        assert_eq!(
            show(&[("type", s("path")), ("path", s("/foo")), ("revCount", AttrVal::Int(5)),]),
            "path:/foo?revCount=5"
        );
        assert_eq!(
            show(&[
                ("type", s("git")),
                ("url", s("https://example.org/a")),
                ("ref", s("main")),
                ("shallow", AttrVal::Bool(true)),
            ]),
            "git+https://example.org/a?ref=main&shallow=1"
        );
        assert_eq!(
            show(&[("type", s("indirect")), ("id", s("nixpkgs")), ("ref", s("x"))]),
            "flake:nixpkgs/x"
        );
        assert_eq!(
            show(&[
                ("type", s("github")),
                ("owner", s("a")),
                ("repo", s("b")),
                ("foo", s("c"))
            ]),
            "error: input attribute 'foo' not supported by scheme 'github'"
        );
    }
}
