//! URLs as Nix's fetchers parse and print them: authority, percent-encoding, query, Git's SCP-style
//! addresses.

use std::collections::BTreeMap;

use super::attrs::{FErr, FResult, bad_url};

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~".contains(&b)
}

fn is_sub_delim(b: u8) -> bool {
    b"!$&'()*+,;=".contains(&b)
}

pub(super) fn is_pchar(b: u8) -> bool {
    is_unreserved(b) || is_sub_delim(b) || b == b':' || b == b'@'
}

/// Whether every byte of `s` is allowed by `ok` or starts a well-formed `%XX`.
pub(super) fn valid_chars(s: &str, ok: impl Fn(u8) -> bool) -> bool {
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
pub(super) fn percent_decode(s: &str) -> FResult<String> {
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
pub(super) struct Authority {
    host_type: HostType,
    pub(super) host: String,
    user: Option<String>,
    password: Option<String>,
    port: Option<u16>,
}

impl Authority {
    pub(super) fn empty() -> Authority {
        Authority {
            host_type: HostType::Name,
            host: String::new(),
            user: None,
            password: None,
            port: None,
        }
    }

    pub(super) fn render(&self) -> String {
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

    pub(super) fn parse(text: &str) -> FResult<Authority> {
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
pub(super) struct Url {
    pub(super) scheme: String,
    pub(super) authority: Option<Authority>,
    pub(super) path: Vec<String>,
    pub(super) query: BTreeMap<String, String>,
    pub(super) fragment: String,
}

impl Url {
    pub(super) fn new(scheme: &str, authority: Option<Authority>, path: Vec<String>) -> Url {
        Url {
            scheme: scheme.to_string(),
            authority,
            path,
            query: BTreeMap::new(),
            fragment: String::new(),
        }
    }

    pub(super) fn render(&self) -> String {
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
    pub(super) fn segments(&self) -> Vec<String> {
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
pub(super) fn decode_query(query: &str, lenient: bool) -> FResult<BTreeMap<String, String>> {
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
pub(super) fn split_scheme(scheme: &str) -> (Option<&str>, &str) {
    match scheme.split_once('+') {
        Some((app, transport)) => (Some(app), transport),
        None => (None, scheme),
    }
}

/// Parses an absolute URL. With `lenient`, spaces and double quotes in the query (and carets in the
/// fragment) need not be escaped.
pub(super) fn parse_url(url: &str, lenient: bool) -> FResult<Url> {
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
pub(super) fn fix_git_url(url: &str) -> FResult<Url> {
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
