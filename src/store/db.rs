//! The store database in Nix's own SQLite schema (version 10), so `nix-store --store ROOT --verify` and other
//! Nix tools read a rixos store as their own.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use thiserror::Error;

use super::path::{StorePath, StorePathError};

pub const SCHEMA_VERSION: &str = "10";

/// Nix 2.8's libstore/schema.sql, table for table and index for index.
const SCHEMA: &str = "
create table if not exists ValidPaths (
    id               integer primary key autoincrement not null,
    path             text unique not null,
    hash             text not null,
    registrationTime integer not null,
    deriver          text,
    narSize          integer,
    ultimate         integer,
    sigs             text,
    ca               text
);
create table if not exists Refs (
    referrer  integer not null,
    reference integer not null,
    primary key (referrer, reference),
    foreign key (referrer) references ValidPaths(id) on delete cascade,
    foreign key (reference) references ValidPaths(id) on delete restrict
);
create index if not exists IndexReferrer on Refs(referrer);
create index if not exists IndexReference on Refs(reference);
create trigger if not exists DeleteSelfRefs before delete on ValidPaths
  begin
    delete from Refs where referrer = old.id and reference = old.id;
  end;
create table if not exists DerivationOutputs (
    drv  integer not null,
    id   text not null,
    path text not null,
    primary key (drv, id),
    foreign key (drv) references ValidPaths(id) on delete cascade
);
create index if not exists IndexDerivationOutputs on DerivationOutputs(path);
";

#[derive(Debug, Error)]
pub enum DbError {
    #[error("store database {path}: {source}")]
    Sqlite { path: String, source: rusqlite::Error },
    #[error("store database {path}: schema version {found}, but rixos speaks version {SCHEMA_VERSION}")]
    Version { path: String, found: String },
    #[error("store database: {path} refers to {reference}, which is not valid")]
    MissingReference { path: StorePath, reference: StorePath },
    #[error("store database holds a malformed path: {0}")]
    BadPath(#[from] StorePathError),
    #[error("store database {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// Wraps SQLite errors with the database's file name.
fn sql_error(path: &str) -> impl Fn(rusqlite::Error) -> DbError + '_ {
    move |source| DbError::Sqlite {
        path: path.to_string(),
        source,
    }
}

/// What the database records of one valid path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathInfo {
    pub path: StorePath,
    /// `sha256:<hex>` of the NAR.
    pub nar_hash: String,
    pub nar_size: u64,
    pub registration_time: i64,
    pub deriver: Option<StorePath>,
    pub references: Vec<StorePath>,
    /// Content address, e.g. `fixed:r:sha256:<nix32>` for added trees, `text:sha256:<nix32>` for text files.
    pub ca: Option<String>,
}

pub struct Database {
    conn: Connection,
    path: String,
}

impl Database {
    /// Opens `db_dir/db.sqlite`, creating the schema (and `db_dir/schema`) on first use.
    pub fn open(db_dir: &Path) -> Result<Database, DbError> {
        let shown = db_dir.join("db.sqlite").display().to_string();
        let io = |source| DbError::Io {
            path: db_dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(db_dir).map_err(io)?;
        let schema_file = db_dir.join("schema");
        match std::fs::read_to_string(&schema_file) {
            Ok(found) if found.trim() != SCHEMA_VERSION => {
                return Err(DbError::Version {
                    path: shown,
                    found: found.trim().to_string(),
                });
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let sql = |source| DbError::Sqlite {
            path: shown.clone(),
            source,
        };
        let conn = Connection::open(db_dir.join("db.sqlite")).map_err(sql)?;
        // As Nix configures its connection: WAL, foreign keys on, and a long wait for other writers.
        conn.busy_timeout(std::time::Duration::from_secs(60 * 60))
            .map_err(&sql)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(sql)?;
        let _mode: String = conn
            .query_row("pragma journal_mode = wal", [], |r| r.get(0))
            .map_err(&sql)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(sql)?;
        conn.execute_batch(SCHEMA).map_err(sql)?;
        if !schema_file.exists() {
            std::fs::write(&schema_file, SCHEMA_VERSION).map_err(io)?;
        }
        Ok(Database { conn, path: shown })
    }

    fn sql(&self, source: rusqlite::Error) -> DbError {
        DbError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Registers paths in one transaction: either all become valid or none does. References must be valid
    /// already or be among `infos`.
    pub fn register(&mut self, infos: &[PathInfo]) -> Result<(), DbError> {
        let sql = sql_error(&self.path);
        let tx = self.conn.transaction().map_err(&sql)?;
        for info in infos {
            tx.execute(
                "insert or replace into ValidPaths (path, hash, registrationTime, deriver, narSize, ca) \
                 values (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    info.path.to_string(),
                    info.nar_hash,
                    info.registration_time,
                    info.deriver.as_ref().map(StorePath::to_string),
                    info.nar_size as i64,
                    info.ca,
                ],
            )
            .map_err(&sql)?;
        }
        for info in infos {
            for reference in &info.references {
                let inserted = tx
                    .execute(
                        "insert or replace into Refs (referrer, reference) \
                         select a.id, b.id from ValidPaths a, ValidPaths b where a.path = ?1 and b.path = ?2",
                        params![info.path.to_string(), reference.to_string()],
                    )
                    .map_err(&sql)?;
                if inserted == 0 {
                    return Err(DbError::MissingReference {
                        path: info.path.clone(),
                        reference: reference.clone(),
                    });
                }
            }
        }
        tx.commit().map_err(&sql)
    }

    /// Makes paths invalid in one transaction. Their own references go first; a path still referenced by a
    /// valid path outside the set makes the whole call fail (the schema's `on delete restrict`).
    pub fn unregister(&mut self, paths: &[StorePath]) -> Result<(), DbError> {
        let sql = sql_error(&self.path);
        let tx = self.conn.transaction().map_err(&sql)?;
        for doomed in paths {
            tx.execute(
                "delete from Refs where referrer = (select id from ValidPaths where path = ?1)",
                [doomed.to_string()],
            )
            .map_err(&sql)?;
        }
        for doomed in paths {
            tx.execute("delete from ValidPaths where path = ?1", [doomed.to_string()])
                .map_err(&sql)?;
        }
        tx.commit().map_err(&sql)
    }

    pub fn is_valid(&self, path: &StorePath) -> Result<bool, DbError> {
        let found = self
            .conn
            .query_row("select 1 from ValidPaths where path = ?1", [path.to_string()], |_| {
                Ok(())
            })
            .optional()
            .map_err(|e| self.sql(e))?;
        Ok(found.is_some())
    }

    /// The derivation that built `path`, if the database knows it.
    pub fn deriver(&self, path: &StorePath) -> Result<Option<StorePath>, DbError> {
        let deriver: Option<Option<String>> = self
            .conn
            .query_row(
                "select deriver from ValidPaths where path = ?1",
                [path.to_string()],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.sql(e))?;
        Ok(deriver.flatten().as_deref().map(StorePath::parse).transpose()?)
    }

    pub fn info(&self, path: &StorePath) -> Result<Option<PathInfo>, DbError> {
        let row = self
            .conn
            .query_row(
                "select hash, narSize, registrationTime, deriver, ca from ValidPaths where path = ?1",
                [path.to_string()],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<i64>>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, Option<String>>(4)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.sql(e))?;
        let Some((nar_hash, nar_size, registration_time, deriver, ca)) = row else {
            return Ok(None);
        };
        Ok(Some(PathInfo {
            path: path.clone(),
            nar_hash,
            nar_size: nar_size.unwrap_or(0) as u64,
            registration_time,
            deriver: deriver.as_deref().map(StorePath::parse).transpose()?,
            references: self.references(path)?,
            ca,
        }))
    }

    /// The store paths a one-column query returns, sorted.
    fn paths_of(&self, query: &str, params: impl rusqlite::Params) -> Result<Vec<StorePath>, DbError> {
        let mut statement = self.conn.prepare_cached(query).map_err(|e| self.sql(e))?;
        let rows = statement
            .query_map(params, |r| r.get::<_, String>(0))
            .map_err(|e| self.sql(e))?;
        let mut paths = Vec::new();
        for row in rows {
            paths.push(StorePath::parse(&row.map_err(|e| self.sql(e))?)?);
        }
        paths.sort();
        Ok(paths)
    }

    pub fn references(&self, path: &StorePath) -> Result<Vec<StorePath>, DbError> {
        self.paths_of(
            "select b.path from ValidPaths a join Refs on Refs.referrer = a.id join ValidPaths b on b.id = Refs.reference \
             where a.path = ?1",
            [path.to_string()],
        )
    }

    pub fn referrers(&self, path: &StorePath) -> Result<Vec<StorePath>, DbError> {
        self.paths_of(
            "select a.path from ValidPaths b join Refs on Refs.reference = b.id join ValidPaths a on a.id = Refs.referrer \
             where b.path = ?1",
            [path.to_string()],
        )
    }

    /// Every valid path, sorted.
    pub fn all_paths(&self) -> Result<Vec<StorePath>, DbError> {
        self.paths_of("select path from ValidPaths", [])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::hash::sha256;
    use crate::store::path::text_path;

    fn info(name: &str, references: &[&StorePath]) -> PathInfo {
        PathInfo {
            path: text_path(name, &sha256(name.as_bytes()), references.iter().copied()).unwrap(),
            nar_hash: format!("sha256:{}", crate::store::hash::hex(&sha256(name.as_bytes()))),
            nar_size: 8,
            registration_time: 1,
            deriver: None,
            references: references.iter().map(|r| (*r).clone()).collect(),
            ca: None,
        }
    }

    #[test]
    fn references_and_referrers_follow_registration() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Database::open(dir.path()).unwrap();
        let lib = info("lib", &[]);
        let app = info("app", &[&lib.path]);
        let mut selfref = info("self", &[&lib.path]);
        selfref.references.push(selfref.path.clone());
        db.register(&[lib.clone(), app.clone(), selfref.clone()]).unwrap();
        assert_eq!(db.references(&app.path).unwrap(), std::slice::from_ref(&lib.path));
        let mut referrers = vec![app.path.clone(), selfref.path.clone()];
        referrers.sort();
        assert_eq!(db.referrers(&lib.path).unwrap(), referrers);
        assert_eq!(db.info(&app.path).unwrap().unwrap(), app);
        assert_eq!(std::fs::read_to_string(dir.path().join("schema")).unwrap(), "10");
    }

    #[test]
    fn a_missing_reference_registers_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Database::open(dir.path()).unwrap();
        let absent = info("absent", &[]);
        let ok = info("ok", &[]);
        let broken = info("broken", &[&absent.path]);
        let err = db.register(&[ok.clone(), broken]).unwrap_err();
        assert!(matches!(err, DbError::MissingReference { .. }), "{err}");
        assert!(!db.is_valid(&ok.path).unwrap(), "the transaction was not rolled back");
    }

    #[test]
    fn another_schema_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("schema"), "7").unwrap();
        let err = Database::open(dir.path()).err().expect("refused");
        assert!(err.to_string().contains("schema version 7"), "{err}");
    }
}
