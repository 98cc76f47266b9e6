//! Flake references: a URL, a flake ID with branch and revision, or a path, with the flake's `dir` and
//! `#fragment`; parsed into an input and printed back.

use super::attrs::{AttrVal, FAttrs, FErr, FResult, bad_url, failure, maybe_str};
use super::git_names::{is_flake_id, matches_ref_regex};
use super::schemes::Input;
use super::url::{Authority, Url, decode_query, is_pchar, parse_url, percent_decode, valid_chars};

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
pub(super) fn parse_flake_ref(s: &str) -> FResult<FAttrs> {
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
pub(super) fn flake_ref_to_string(attrs: &FAttrs) -> FResult<String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::flakeref::attrs::attrs_to_json;

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
