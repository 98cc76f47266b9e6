//! Small Packages texts and indexes for the tests, and the comparison of two indexes.

use super::package::Package;
use super::{Index, PackageId};

pub(super) const H: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A Packages paragraph with the required fields.
pub(super) fn package(name: &str, version: &str, extra: &str) -> String {
    format!(
        "Package: {name}\nVersion: {version}\nArchitecture: amd64\nFilename: pool/{name}_{version}.deb\n\
         Size: 1000\nSHA256: {H}\n{extra}\n"
    )
}

pub(super) fn index(paragraphs: &[String]) -> Index {
    Index::parse("amd64", "test", &paragraphs.join("\n")).unwrap_or_else(|e| panic!("{e}"))
}

/// A small archive: the libc6 <-> libgcc-s1 cycle, versioned and unversioned virtual packages, Multi-Arch,
/// architecture qualifiers, two versions of one package.
pub(super) fn archive() -> Index {
    index(&[
        package(
            "libc6",
            "2.36-9+deb12u4",
            "Depends: libgcc-s1\nMulti-Arch: same\nPriority: optional\nSection: libs\nSource: glibc\n\
             Installed-Size: 12000\nDescription: GNU C Library: Shared libraries\n Contains the standard libraries.",
        ),
        package("libc6", "2.36-9", "Depends: libgcc-s1\nMulti-Arch: same"),
        package(
            "libgcc-s1",
            "12.2.0-14",
            "Depends: gcc-12-base (= 12.2.0-14), libc6 (>= 2.35)\nSource: gcc-12 (12.2.0-14)",
        ),
        package("gcc-12-base", "12.2.0-14", "Multi-Arch: same"),
        package(
            "openssh-server",
            "1:9.2p1-2+deb12u6",
            "Pre-Depends: init-system-helpers (>= 1.54~)\n\
             Depends: libc6 (>= 2.36), perl:any, default-logind | logind, awk, libfoo-abi (>= 2)",
        ),
        package("init-system-helpers", "1.65.2", "Depends: perl-base (>= 5.20.1-3)"),
        package("perl-base", "5.36.0-7+deb12u2", "Essential: yes\nPriority: required"),
        package("perl", "5.36.0-7+deb12u2", "Multi-Arch: allowed\nDepends: perl-base"),
        package(
            "systemd",
            "252.33-1~deb12u1",
            "Provides: logind, default-logind (= 252)",
        ),
        package("elogind", "246.10-1", "Provides: logind"),
        package("gawk", "1:5.2.1-2", "Provides: awk\nPriority: optional"),
        package("mawk", "1.3.4.20200120-3.1", "Provides: awk\nPriority: required"),
        package("libfoo2", "2.0-1", "Provides: libfoo-abi (= 2.1)"),
        package("libfoo1", "1.0-1", "Provides: libfoo-abi (= 1)"),
        package(
            "cross",
            "1",
            "Depends: libc6:i386 | libc6:amd64, gcc-12-base [i386], nothing <stage1>",
        ),
        package(
            "broken",
            "1",
            "Depends: libc6 (>= 3), nothere | libfoo-abi (>= 3), perl-base",
        ),
        package("wants-any", "1", "Depends: libc6:any"),
        package("wants-i386", "1", "Depends: libc6:i386"),
    ])
}

pub(super) fn names(index: &Index, ids: &[PackageId]) -> Vec<String> {
    ids.iter().map(|&id| index.package(id).to_string()).collect()
}
/// Two indexes give the same answers.
pub(super) fn assert_same(a: &Index, b: &Index) {
    assert_eq!(a.arch(), b.arch());
    assert_eq!(a.sources().collect::<Vec<_>>(), b.sources().collect::<Vec<_>>());
    assert_eq!(a.len(), b.len());
    for id in a.ids() {
        let (p, q) = (a.package(id), b.package(id));
        let fields = |p: Package| {
            (
                [
                    p.name(),
                    p.version(),
                    p.architecture(),
                    p.filename(),
                    p.description(),
                    p.depends(),
                    p.pre_depends(),
                    p.recommends(),
                    p.provides(),
                    p.section().unwrap_or("-"),
                    p.source().unwrap_or("-"),
                ]
                .map(str::to_string),
                (p.size(), p.installed_size(), p.sha256()),
                (p.priority(), p.multi_arch(), p.essential()),
            )
        };
        assert_eq!(fields(p), fields(q));
    }
    let provided = |index: &Index| {
        (0..index.provides)
            .map(|i| {
                let (name, version, provider) = index.provide(i);
                (index.str(name).to_string(), index.str(version).to_string(), provider)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(provided(a), provided(b));
    assert_eq!(a.names().collect::<Vec<_>>(), b.names().collect::<Vec<_>>());
}
