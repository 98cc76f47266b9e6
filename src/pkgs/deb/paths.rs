//! Paths inside a package: entry names checked, the usr-merge, and symlink targets resolved in the
//! package's tree and made relative.

/// A path inside the package: no empty, `.` or `..` components.
pub(super) type Components = Vec<Vec<u8>>;

/// The components of an entry name from a tar header (`./usr/bin/ls` -> `usr`, `bin`, `ls`), refusing
/// absolute names and `..`.
pub(super) fn archive_path(raw: &[u8]) -> Result<Components, &'static str> {
    if raw.is_empty() {
        return Err("has an empty name");
    }
    if raw[0] == b'/' {
        return Err("is an absolute path");
    }
    if raw.contains(&0) {
        return Err("has a NUL byte in its name");
    }
    let mut components = Vec::new();
    for component in raw.split(|&b| b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => return Err("has a '..' component"),
            name => components.push(name.to_vec()),
        }
    }
    Ok(components)
}

/// Where a path of the package lands in the output: `usr/X` and `X` are both `X`.
pub(super) fn merge_usr(components: &[Vec<u8>]) -> &[Vec<u8>] {
    match components.split_first() {
        Some((first, rest)) if first == b"usr" => rest,
        _ => components,
    }
}

/// The package path a symlink at `parent/...` with `target` points to, resolved lexically inside the
/// package's tree; `None` if it climbs above the root.
pub(super) fn resolve_link(parent: &[Vec<u8>], target: &[u8]) -> Option<Components> {
    let mut resolved: Components = if target.starts_with(b"/") {
        Vec::new()
    } else {
        parent.to_vec()
    };
    for component in target.split(|&b| b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => {
                resolved.pop()?;
            }
            name => resolved.push(name.to_vec()),
        }
    }
    Some(resolved)
}

/// The relative symlink target that leads from directory `from` to `to` (both output paths).
pub(super) fn relative_target(from: &[Vec<u8>], to: &[Vec<u8>]) -> Vec<u8> {
    let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&[u8]> = vec![b".."; from.len() - common];
    parts.extend(to[common..].iter().map(Vec::as_slice));
    if parts.is_empty() {
        return b".".to_vec();
    }
    parts.join(&b'/')
}

pub(super) fn display(components: &[Vec<u8>]) -> String {
    String::from_utf8_lossy(&components.join(&b'/')).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlink_targets_are_resolved_in_the_package_and_made_relative() {
        // (entry, target, the output link's target, or None if it escapes)
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("usr/bin/sh2", "/bin/sh", Some("sh")),
            ("usr/bin/sh2", "../../bin/sh", Some("sh")),
            (
                "bin/x",
                "/usr/lib/x86_64-linux-gnu/y",
                Some("../lib/x86_64-linux-gnu/y"),
            ),
            ("usr/share/doc/a/changelog", "../b/changelog", Some("../b/changelog")),
            ("usr/share/doc/a", "b", Some("b")),
            ("usr/lib/a/b/c", "/", Some("../../..")),
            ("usr/lib/a/b/c", "/usr", Some("../../..")),
            ("usr/lib/a/b/c", "/usr/lib/a/b", Some(".")),
            ("etc/x", "./y/./z//w/", Some("y/z/w")),
            ("etc/x", "../../etc/passwd", None),
            ("usr/bin/x", "../../../etc/passwd", None),
            ("x", "..", None),
        ];
        for (entry, target, expected) in cases {
            let original = archive_path(entry.as_bytes()).unwrap();
            let mapped = merge_usr(&original);
            let got = resolve_link(&original[..original.len() - 1], target.as_bytes())
                .map(|to| String::from_utf8(relative_target(&mapped[..mapped.len() - 1], merge_usr(&to))).unwrap());
            assert_eq!(got.as_deref(), *expected, "{entry} -> {target}");
        }
    }
}
