//! The input schemes (`github`, `git`, `tarball`, `path`, ...): which URLs each takes, the attributes it
//! allows and how it prints an input as a URL.

use super::attrs::{
    AttrVal, FAttrs, FResult, attrs_to_json, attrs_to_query, bad_url, failure, get_str, maybe_bool, maybe_int,
    maybe_str,
};
use super::git_names::{is_flake_id, is_host, is_legal_ref_name, matches_ref_regex, matches_rev_regex};
use super::hash::{get_nar_hash, get_rev, parse_hash_any};
use super::url::{Url, fix_git_url, parse_url, split_scheme};

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
    pub(super) fn to_url(self, attrs: &FAttrs) -> FResult<Url> {
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
pub(super) struct Input {
    scheme: Option<Scheme>,
    pub(super) attrs: FAttrs,
}

impl Input {
    pub(super) fn from_url(url: &Url) -> FResult<Input> {
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

    pub(super) fn from_attrs(attrs: FAttrs) -> FResult<Input> {
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

    pub(super) fn to_url(&self) -> FResult<Url> {
        match self.scheme {
            Some(scheme) => scheme.to_url(&self.attrs),
            None => failure(format!(
                "cannot show unsupported input '{}'",
                attrs_to_json(&self.attrs)
            )),
        }
    }
}
