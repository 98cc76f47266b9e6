//! Dependencies: the choice of one package per Depends/Pre-Depends entry, why an entry cannot be
//! satisfied, and the transitive closure.

use crate::pkgs::version::{Alternative, ArchQualifier, Relation, parse_relations};

use super::error::ResolveError;
use super::package::Package;
use super::{DepField, Index, MultiArch, PackageId, Priority};

impl Index {
    /// Whether a package of architecture `arch` can satisfy this index's dependencies.
    fn installable(&self, package: Package) -> bool {
        let arch = package.architecture();
        arch == "all" || arch == self.arch()
    }

    /// The Pre-Depends entries then the Depends entries of `id`; [`Index::resolve`] numbers entries by their
    /// position here.
    pub fn dependencies(&self, id: PackageId) -> Result<Vec<(DepField, Relation<'_>)>, ResolveError> {
        let package = self.package(id);
        let mut entries = Vec::new();
        for (field, text) in [
            (DepField::PreDepends, package.pre_depends()),
            (DepField::Depends, package.depends()),
        ] {
            let relations = parse_relations(text).map_err(|error| ResolveError::BadRelation {
                package: package.to_string(),
                field,
                error,
                required_by: Vec::new(),
            })?;
            entries.extend(relations.into_iter().map(|r| (field, r)));
        }
        Ok(entries)
    }

    /// The package chosen for each entry of [`Index::dependencies`], as (entry position, package). For each
    /// entry, the first alternative that something satisfies wins: a real package of a suitable
    /// architecture whose version satisfies the constraint (the newest such), else a package providing the
    /// name (for a versioned constraint, only with a provided version that satisfies it), preferring
    /// Priority required, important, standard, then by name, then the newest. Alternatives qualified with
    /// another architecture are skipped, and entries whose architecture restrictions or build profiles
    /// exclude them are left out. An entry nothing satisfies is an error saying why for each alternative.
    pub fn resolve(&self, id: PackageId) -> Result<Vec<(usize, PackageId)>, ResolveError> {
        let mut chosen = Vec::new();
        for (position, (field, relation)) in self.dependencies(id)?.into_iter().enumerate() {
            let applicable: Vec<&Alternative> = relation
                .alternatives
                .iter()
                .filter(|a| a.applies_to(self.arch(), &[]))
                .collect();
            if applicable.is_empty() {
                continue;
            }
            match applicable.iter().find_map(|a| self.choose(a)) {
                Some(target) => chosen.push((position, target)),
                None => {
                    let reason = applicable
                        .iter()
                        .map(|a| self.explain(a))
                        .collect::<Vec<_>>()
                        .join("; ");
                    return Err(ResolveError::Unsatisfiable {
                        package: self.package(id).to_string(),
                        field,
                        relation: relation.to_string(),
                        reason,
                        required_by: Vec::new(),
                    });
                }
            }
        }
        Ok(chosen)
    }

    /// Whether the qualifier lets the alternative be satisfied here at all.
    fn qualifier_fits(&self, alternative: &Alternative) -> bool {
        match alternative.arch {
            ArchQualifier::Arch(arch) => arch == self.arch(),
            _ => true,
        }
    }

    /// Whether `package` can satisfy `alternative` by its architecture and Multi-Arch.
    fn fits(&self, alternative: &Alternative, package: Package) -> bool {
        self.installable(package)
            && (alternative.arch != ArchQualifier::Any || package.multi_arch() == MultiArch::Allowed)
    }

    fn choose(&self, alternative: &Alternative) -> Option<PackageId> {
        if !self.qualifier_fits(alternative) {
            return None;
        }
        let real = self.versions(alternative.name).find(|&id| {
            let package = self.package(id);
            self.fits(alternative, package) && alternative.constraint.is_none_or(|c| c.satisfied_by(package.version()))
        });
        if real.is_some() {
            return real;
        }
        let rank = |id: PackageId| match self.package(id).priority() {
            Some(p @ (Priority::Required | Priority::Important | Priority::Standard)) => p as u8,
            _ => 3,
        };
        self.providers(alternative.name)
            .filter(|&(id, provided)| {
                self.fits(alternative, self.package(id))
                    && match (alternative.constraint, provided) {
                        (None, _) => true,
                        (Some(c), Some(v)) => c.satisfied_by(v),
                        (Some(_), None) => false,
                    }
            })
            // Ids are in name order, newest version first.
            .min_by_key(|&(id, _)| (rank(id), id))
            .map(|(id, _)| id)
    }

    /// Why nothing satisfies `alternative`.
    fn explain(&self, alternative: &Alternative) -> String {
        let name = alternative.name;
        if let ArchQualifier::Arch(arch) = alternative.arch
            && arch != self.arch()
        {
            return format!("{alternative} is for architecture {arch}, not {}", self.arch());
        }
        let wanted = alternative.constraint.map(|c| format!(" {c}")).unwrap_or_default();
        let mut why = Vec::new();
        let versions: Vec<Package> = self.versions(name).map(|id| self.package(id)).collect();
        let fitting: Vec<&Package> = versions.iter().filter(|p| self.fits(alternative, **p)).collect();
        if versions.is_empty() {
            why.push(format!("no package {name}"));
        } else if fitting.is_empty() {
            let found: Vec<String> = versions
                .iter()
                .map(|p| {
                    format!(
                        "{} ({}, Multi-Arch: {:?})",
                        p.version(),
                        p.architecture(),
                        p.multi_arch()
                    )
                })
                .collect();
            let need = if alternative.arch == ArchQualifier::Any {
                format!("{} or all, Multi-Arch: allowed for :any", self.arch())
            } else {
                format!("{} or all", self.arch())
            };
            why.push(format!("{name} is only {} (needs {need})", found.join(", ")));
        } else {
            let found: Vec<&str> = fitting.iter().map(|p| p.version()).collect();
            why.push(format!("{name} has version {}, not{wanted}", found.join(", ")));
        }
        let providers: Vec<(PackageId, Option<&str>)> = self.providers(name).collect();
        if !providers.is_empty() {
            let list: Vec<String> = providers
                .iter()
                .map(|&(id, version)| {
                    let package = self.package(id);
                    match version {
                        Some(v) => format!("{} (= {v}) by {} ({})", name, package.name(), package.architecture()),
                        None => format!("{} by {} ({})", name, package.name(), package.architecture()),
                    }
                })
                .collect();
            why.push(format!("provided as {}, none fitting{wanted}", list.join(", ")));
        }
        why.join(", ")
    }

    /// The transitive closure of `roots` over Pre-Depends and Depends as [`Index::resolve`] chooses, each
    /// package once, dependencies before the packages that need them (except around cycles, which are
    /// normal in Debian: libc6 and libgcc-s1 depend on each other). The order is deterministic.
    pub fn closure(&self, roots: &[PackageId]) -> Result<Vec<PackageId>, ResolveError> {
        const UNSEEN: u8 = 0;
        const ACTIVE: u8 = 1;
        const DONE: u8 = 2;
        let mut state = vec![UNSEEN; self.packages];
        let mut order = Vec::new();
        // (package, its chosen dependencies, next one to visit)
        let mut stack: Vec<(PackageId, Vec<PackageId>, usize)> = Vec::new();
        let chain = |stack: &[(PackageId, Vec<PackageId>, usize)]| -> Vec<String> {
            stack
                .iter()
                .rev()
                .map(|(id, _, _)| self.package(*id).to_string())
                .collect()
        };
        let visit = |id: PackageId, stack: &[(PackageId, Vec<PackageId>, usize)]| {
            let mut deps: Vec<PackageId> = self
                .resolve(id)
                .map_err(|mut e| {
                    e.set_required_by(chain(stack));
                    e
                })?
                .into_iter()
                .map(|(_, dep)| dep)
                .collect();
            let mut seen = std::collections::HashSet::new();
            deps.retain(|d| seen.insert(*d));
            Ok::<_, ResolveError>(deps)
        };
        for &root in roots {
            if state[root.index()] != UNSEEN {
                continue;
            }
            state[root.index()] = ACTIVE;
            let deps = visit(root, &stack)?;
            stack.push((root, deps, 0));
            while let Some((id, deps, next)) = stack.last_mut() {
                if let Some(&dep) = deps.get(*next) {
                    *next += 1;
                    if state[dep.index()] == UNSEEN {
                        state[dep.index()] = ACTIVE;
                        let deps = visit(dep, &stack)?;
                        stack.push((dep, deps, 0));
                    }
                } else {
                    state[id.index()] = DONE;
                    order.push(*id);
                    stack.pop();
                }
            }
        }
        Ok(order)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pkgs::index::test_packages::{archive, index, names, package};

    #[test]
    fn resolve_chooses_per_entry() {
        let index = archive();
        let ssh = index.newest("openssh-server").unwrap();
        let entries: Vec<String> = index
            .dependencies(ssh)
            .unwrap()
            .iter()
            .map(|(field, relation)| format!("{field}: {relation}"))
            .collect();
        assert_eq!(
            entries,
            [
                "Pre-Depends: init-system-helpers (>= 1.54~)",
                "Depends: libc6 (>= 2.36)",
                "Depends: perl:any",
                "Depends: default-logind | logind",
                "Depends: awk",
                "Depends: libfoo-abi (>= 2)",
            ]
        );
        let chosen: Vec<(usize, String)> = index
            .resolve(ssh)
            .unwrap()
            .into_iter()
            .map(|(entry, id)| (entry, index.package(id).to_string()))
            .collect();
        let expected: Vec<(usize, &str)> = vec![
            (0, "init-system-helpers 1.65.2"),
            (1, "libc6 2.36-9+deb12u4"),
            (2, "perl 5.36.0-7+deb12u2"),
            // default-logind is only virtual, provided by systemd.
            (3, "systemd 252.33-1~deb12u1"),
            // mawk is Priority: required, gawk optional.
            (4, "mawk 1.3.4.20200120-3.1"),
            // Only libfoo2 provides a version >= 2.
            (5, "libfoo2 2.0-1"),
        ];
        let expected: Vec<(usize, String)> = expected.into_iter().map(|(e, s)| (e, s.to_string())).collect();
        assert_eq!(chosen, expected);

        // libc6:i386 is skipped, [i386] and <stage1> entries do not apply on amd64 without profiles.
        let cross = index.newest("cross").unwrap();
        let chosen = index.resolve(cross).unwrap();
        assert_eq!(chosen.len(), 1);
        assert_eq!(index.package(chosen[0].1).to_string(), "libc6 2.36-9+deb12u4");
        // libc6 is Multi-Arch: same, not allowed: `:any` cannot use it.
        let err = index
            .resolve(index.newest("wants-any").unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("libc6 is only 2.36-9+deb12u4 (amd64, Multi-Arch: Same)"),
            "{err}"
        );
        let err = index
            .resolve(index.newest("wants-i386").unwrap())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "wants-i386 1: Depends: cannot satisfy \"libc6:i386\": libc6:i386 is for architecture i386, not amd64"
        );
    }

    #[test]
    fn unsatisfiable_entries_say_why() {
        let index = archive();
        let err = index.resolve(index.newest("broken").unwrap()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "broken 1: Depends: cannot satisfy \"libc6 (>= 3)\": libc6 has version 2.36-9+deb12u4, 2.36-9, not >= 3"
        );
        let index = index_with_broken_second_entry();
        let err = index.resolve(index.newest("broken").unwrap()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "broken 1: Depends: cannot satisfy \"nothere | libfoo-abi (>= 3)\": no package nothere; no package \
             libfoo-abi, provided as libfoo-abi (= 2.1) by libfoo2 (amd64), none fitting >= 3"
        );
    }

    fn index_with_broken_second_entry() -> Index {
        index(&[
            package("broken", "1", "Depends: perl-base, nothere | libfoo-abi (>= 3)"),
            package("perl-base", "5.36.0-7", ""),
            package("libfoo2", "2.0-1", "Provides: libfoo-abi (= 2.1)"),
        ])
    }

    #[test]
    fn closure_handles_cycles_in_order() {
        let index = archive();
        let ssh = index.newest("openssh-server").unwrap();
        let closure = index.closure(&[ssh]).unwrap();
        assert_eq!(
            names(&index, &closure),
            [
                "perl-base 5.36.0-7+deb12u2",
                "init-system-helpers 1.65.2",
                "gcc-12-base 12.2.0-14",
                "libgcc-s1 12.2.0-14",
                "libc6 2.36-9+deb12u4",
                "perl 5.36.0-7+deb12u2",
                "systemd 252.33-1~deb12u1",
                "mawk 1.3.4.20200120-3.1",
                "libfoo2 2.0-1",
                "openssh-server 1:9.2p1-2+deb12u6",
            ]
        );
        // Asking again, or with a root that is already inside, changes nothing.
        let libc = index.newest("libc6").unwrap();
        assert_eq!(index.closure(&[ssh, libc, ssh]).unwrap(), closure);
        // From the other side of the cycle.
        assert_eq!(
            names(&index, &index.closure(&[libc]).unwrap()),
            ["gcc-12-base 12.2.0-14", "libgcc-s1 12.2.0-14", "libc6 2.36-9+deb12u4"]
        );
    }

    #[test]
    fn closure_errors_name_the_chain() {
        let index = index(&[
            package("top", "1", "Depends: middle"),
            package("middle", "1", "Depends: missing (>= 1)"),
        ]);
        let err = index.closure(&[index.newest("top").unwrap()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "middle 1: Depends: cannot satisfy \"missing (>= 1)\": no package missing (required by top 1)"
        );
    }
}
