//! Git's names: references, commit hashes, flake IDs and host names as the parsers accept them.

/// A branch or tag name as the flake ID shorthand accepts it.
pub(super) fn matches_ref_regex(s: &str) -> bool {
    let mut b = s.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphanumeric() || c == b'@')
        && b.all(|c| c.is_ascii_alphanumeric() || b"_./@+-".contains(&c))
}

/// A commit hash: 40 hex digits.
pub(super) fn matches_rev_regex(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|c| c.is_ascii_hexdigit())
}

/// Whether Git accepts `name` as a reference, branch or tag name (`git check-ref-format`).
pub(super) fn is_legal_ref_name(name: &str) -> bool {
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

pub(super) fn is_flake_id(s: &str) -> bool {
    let mut b = s.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphabetic()) && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

pub(super) fn is_host(s: &str) -> bool {
    s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-')
}
