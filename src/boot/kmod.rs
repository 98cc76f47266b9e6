//! Kernel modules: resolving a module name to the module files to load, dependencies first, from the
//! `modules.dep` index that depmod writes into `lib/modules/<version>/`.
//!
//! Names are matched the way modprobe matches them: `-` and `_` are the same character.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum KmodError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}: not a modules.dep line (expected 'module.ko: dependencies...')")]
    Syntax { path: PathBuf, line: usize },
    #[error("kernel module {name:?} is not in {index} (is it built into the kernel, or misspelt?)")]
    Unknown { name: String, index: PathBuf },
}

/// The parsed `modules.dep` of one kernel's module tree.
#[derive(Debug, Clone)]
pub struct ModuleIndex {
    root: PathBuf,
    index_path: PathBuf,
    /// Module name (normalised) to its file, relative to `root`, and its direct and indirect dependencies.
    modules: HashMap<String, (PathBuf, Vec<String>)>,
}

/// `kernel/drivers/scsi/sr_mod.ko.xz` -> `sr_mod`; dashes become underscores as modprobe does.
pub fn module_name(file: &Path) -> String {
    let base = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let stem = base.split(".ko").next().unwrap_or(base);
    stem.replace('-', "_")
}

impl ModuleIndex {
    /// Reads `<modules_dir>/modules.dep`, where `modules_dir` is `lib/modules/<version>`.
    pub fn load(modules_dir: &Path) -> Result<Self, KmodError> {
        let index_path = modules_dir.join("modules.dep");
        let text = std::fs::read_to_string(&index_path).map_err(|source| KmodError::Read {
            path: index_path.clone(),
            source,
        })?;
        Self::parse(modules_dir, &index_path, &text)
    }

    fn parse(root: &Path, index_path: &Path, text: &str) -> Result<Self, KmodError> {
        let mut modules = HashMap::new();
        for (number, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let Some((file, deps)) = line.split_once(':') else {
                return Err(KmodError::Syntax {
                    path: index_path.to_path_buf(),
                    line: number + 1,
                });
            };
            let file = PathBuf::from(file.trim());
            let deps = deps.split_whitespace().map(|d| module_name(Path::new(d))).collect();
            modules.insert(module_name(&file), (file, deps));
        }
        Ok(ModuleIndex {
            root: root.to_path_buf(),
            index_path: index_path.to_path_buf(),
            modules,
        })
    }

    /// The files to load for `names`, each dependency before the modules that need it, each file once.
    /// Paths are relative to the module directory.
    pub fn load_order<S: AsRef<str>>(&self, names: &[S]) -> Result<Vec<PathBuf>, KmodError> {
        let mut order = Vec::new();
        let mut seen = HashSet::new();
        for name in names {
            self.visit(&name.as_ref().replace('-', "_"), &mut seen, &mut order)?;
        }
        Ok(order)
    }

    fn visit(&self, name: &str, seen: &mut HashSet<String>, order: &mut Vec<PathBuf>) -> Result<(), KmodError> {
        if !seen.insert(name.to_string()) {
            return Ok(());
        }
        let (file, deps) = self.modules.get(name).ok_or_else(|| KmodError::Unknown {
            name: name.to_string(),
            index: self.index_path.clone(),
        })?;
        // depmod lists the full closure; visiting each one recursively keeps the order right whatever it is.
        for dep in deps {
            self.visit(dep, seen, order)?;
        }
        order.push(file.clone());
        Ok(())
    }

    /// The module directory this index belongs to.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "\
kernel/drivers/scsi/sr_mod.ko: kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko kernel/drivers/cdrom/cdrom.ko
kernel/drivers/scsi/scsi_mod.ko: kernel/drivers/scsi/scsi_common.ko
kernel/drivers/scsi/scsi_common.ko:
kernel/drivers/cdrom/cdrom.ko:
kernel/drivers/usb/storage/usb-storage.ko.xz: kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
";

    fn index() -> ModuleIndex {
        ModuleIndex::parse(Path::new("/m"), Path::new("/m/modules.dep"), DEP).unwrap()
    }

    fn names(files: Vec<PathBuf>) -> Vec<String> {
        files.iter().map(|f| module_name(f)).collect()
    }

    #[test]
    fn dependencies_come_first_and_once() {
        let order = index().load_order(&["sr_mod", "usb-storage"]).unwrap();
        assert_eq!(
            names(order),
            ["scsi_common", "scsi_mod", "cdrom", "sr_mod", "usb_storage"]
        );
    }

    #[test]
    fn compressed_module_keeps_its_file_name() {
        let order = index().load_order(&["usb_storage"]).unwrap();
        assert_eq!(
            order.last().unwrap(),
            Path::new("kernel/drivers/usb/storage/usb-storage.ko.xz")
        );
    }

    #[test]
    fn unknown_module_is_named() {
        let err = index().load_order(&["nosuchmod"]).unwrap_err().to_string();
        assert!(err.contains("\"nosuchmod\"") && err.contains("/m/modules.dep"), "{err}");
    }

    #[test]
    fn malformed_line_names_file_and_line() {
        let err = ModuleIndex::parse(Path::new("/m"), Path::new("/m/modules.dep"), "a.ko:\nbroken\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "/m/modules.dep:2: not a modules.dep line (expected 'module.ko: dependencies...')"
        );
    }
}
