//! What goes wrong: a Packages file that cannot be indexed, a dependency that cannot be resolved, a
//! cache that cannot be written or read.

use std::path::PathBuf;

use thiserror::Error;

use crate::pkgs::control::ControlError;
use crate::pkgs::version::RelationError;

use super::DepField;

/// A Packages file that cannot be indexed.
#[derive(Debug, Error)]
pub enum IndexError {
    #[error("{source_name}: {error}")]
    Syntax { source_name: String, error: ControlError },
    #[error("{source_name}:{line}: package {package}: {reason}")]
    Package {
        source_name: String,
        line: usize,
        package: String,
        reason: String,
    },
    #[error("{source_name}: the index would exceed 4 GiB of strings or 2^32 packages")]
    TooLarge { source_name: String },
}

/// A dependency that cannot be resolved.
#[derive(Debug, Error)]
pub enum ResolveError {
    #[error("{package}: {field}: {error}{}", required_by_text(.required_by))]
    BadRelation {
        package: String,
        field: DepField,
        error: RelationError,
        required_by: Vec<String>,
    },
    #[error("{package}: {field}: cannot satisfy {relation:?}: {reason}{}", required_by_text(.required_by))]
    Unsatisfiable {
        package: String,
        field: DepField,
        relation: String,
        reason: String,
        /// From [`Index::closure`]: the packages that led here, nearest first, ending at a root.
        required_by: Vec<String>,
    },
}

fn required_by_text(required_by: &[String]) -> String {
    if required_by.is_empty() {
        String::new()
    } else {
        format!(" (required by {})", required_by.join(" <- "))
    }
}

impl ResolveError {
    pub(super) fn set_required_by(&mut self, chain: Vec<String>) {
        match self {
            ResolveError::BadRelation { required_by, .. } | ResolveError::Unsatisfiable { required_by, .. } => {
                *required_by = chain
            }
        }
    }
}

/// A cache file that cannot be written or read.
#[derive(Debug, Error)]
pub enum CacheError {
    #[error("{action} index cache {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("index cache {path}: {error}; delete it to rebuild it from the Packages files")]
    Invalid { path: PathBuf, error: CacheFormatError },
}

/// Why bytes are not a valid cache.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CacheFormatError {
    #[error("not a rixos package index cache (bad magic)")]
    NotACache,
    #[error("format version {found}, this rixos reads version {expected}")]
    FormatVersion { found: u32, expected: u32 },
    #[error("corrupt: {0}")]
    Corrupt(String),
}
