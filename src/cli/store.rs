//! `rixos store ...`: store paths and NAR archives.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use crate::store::hash::nix32_encode;
use crate::store::local::LocalStore;
use crate::store::nar;
use crate::store::path::{STORE_DIR, StorePath};

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Print the sha256 of PATH's NAR serialisation as `sha256:<nix32>` (like `nix-hash --type sha256 --base32`).
    HashPath { path: PathBuf },
    /// Write the NAR serialisation of PATH to standard output (like `nix-store --dump`).
    Dump { path: PathBuf },
    /// Read a NAR from standard input and create it at DIR, which must not exist (like `nix-store --restore`).
    /// A bad archive leaves nothing at DIR.
    Restore { dir: PathBuf },
    /// Copy paths into the store and print their store paths (like `nix-store --add`).
    Add {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Build derivations (and what they need) in the sandbox; print their output paths (like
    /// `nix-store --realise`).
    Realise {
        #[arg(required = true)]
        drvs: Vec<String>,
    },
    /// Delete store paths that nothing keeps alive (like `nix-store --delete`); a live or referenced path is
    /// refused.
    Delete {
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Print what the database knows of store paths (like `nix-store --query`).
    Query(QueryArgs),
    /// Register the paths of registration text on standard input that are not valid yet (like
    /// `nix-store --load-db`): a closure's records for a store that holds its files but no database.
    LoadDb,
    /// Print the file each path names (a store path, or a path below one), its links followed inside this
    /// store: for a store under another root than /, whose links still name /nix/store.
    Resolve {
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Check that every valid path exists and, with --check-contents, still has its recorded hash. Prints one
    /// line per problem and fails if there is any.
    Verify {
        #[arg(long)]
        check_contents: bool,
        /// Rebuild damaged paths from the derivations that built them (added paths cannot be repaired).
        #[arg(long)]
        repair: bool,
    },
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["requisites", "references", "referrers", "deriver"])))]
pub struct QueryArgs {
    /// The closure: the paths and everything they reference, directly or not.
    #[arg(long, short = 'R')]
    requisites: bool,
    /// What the paths reference directly.
    #[arg(long)]
    references: bool,
    /// What references the paths directly.
    #[arg(long)]
    referrers: bool,
    /// The derivation each path was built by ("unknown-deriver" if none).
    #[arg(long)]
    deriver: bool,
    #[arg(required = true)]
    paths: Vec<String>,
}

impl StoreCommand {
    pub fn run(self, root: &Path) -> Result<()> {
        let quiet = crate::verbosity::quiet();
        match self {
            StoreCommand::HashPath { path } => {
                let (digest, _) = nar::hash_path(&path)?;
                println!("sha256:{}", nix32_encode(&digest));
            }
            StoreCommand::Dump { path } => {
                let stdout = std::io::stdout().lock();
                nar::dump(&path, stdout)?;
            }
            StoreCommand::Restore { dir } => restore(&dir)?,
            StoreCommand::Add { paths } => {
                let mut store = LocalStore::open(root)?;
                for path in paths {
                    println!("{}", store.add_path(&path)?);
                }
            }
            StoreCommand::Realise { drvs } => {
                let mut store = LocalStore::open_existing(root)?;
                store.set_builders(crate::builtin_builders());
                for drv in drvs {
                    let drv = parse_store_path(&drv, root)?;
                    for path in store.realise(&drv)?.values() {
                        println!("{path}");
                    }
                }
            }
            StoreCommand::Delete { paths } => {
                let mut store = LocalStore::open_existing(root)?;
                let paths: Vec<StorePath> = paths.iter().map(|p| parse_store_path(p, root)).collect::<Result<_>>()?;
                super::gc::print_report(&store.delete_checked(&paths)?, false);
            }
            StoreCommand::Query(args) => query(&LocalStore::open_existing(root)?, root, &args)?,
            StoreCommand::LoadDb => {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut text)
                    .context("reading the registration from standard input")?;
                let added = LocalStore::open_existing(root)?.load_registration(&text, "standard input")?;
                if !quiet {
                    eprintln!("registered {added} store paths");
                }
            }
            StoreCommand::Resolve { paths } => {
                crate::store::local::require_store(root)?;
                for path in paths {
                    if !path.starts_with(&format!("{STORE_DIR}/")) {
                        bail!("{path} is not in the store (a path below {STORE_DIR}/ is needed)");
                    }
                    println!("{}", crate::store::resolve::resolve_under(root, &path)?.display());
                }
            }
            StoreCommand::Verify { check_contents, repair } => {
                let mut store = LocalStore::open_existing(root)?;
                store.set_builders(crate::builtin_builders());
                let mut problems = Vec::new();
                for (path, problem) in store.verify(check_contents)? {
                    eprintln!("{problem}");
                    if repair {
                        // Repairing an earlier path may have repaired this one as its input.
                        if store.check_path(&path, check_contents)?.is_none() {
                            continue;
                        }
                        match store.repair_path(&path) {
                            Ok(()) if !quiet => eprintln!("repaired {path}"),
                            Ok(()) => {}
                            Err(e) => problems.push(format!("{e:#}")),
                        }
                    } else {
                        problems.push(problem);
                    }
                }
                for problem in problems.iter().filter(|_| repair) {
                    eprintln!("{problem}");
                }
                if !problems.is_empty() {
                    bail!("{} problem(s) in the store at {}", problems.len(), root.display());
                }
            }
        }
        std::io::stdout().flush().context("writing to standard output")
    }
}

/// Restores beside `dir` under a temporary name (`.NAME.restoring-PID`) and renames it into place, so `dir`
/// appears whole or not at all. An error, Ctrl-C or kill signal removes the temporary tree; those of processes
/// that died anyway (kill -9) are removed by the next restore into the same directory.
fn restore(dir: &std::path::Path) -> Result<()> {
    if std::fs::symlink_metadata(dir).is_ok() {
        bail!("{} already exists; restore creates it", dir.display());
    }
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let name = dir.file_name().context("the target has no file name")?;
    remove_stale_restores(parent)?;
    let staging = parent.join(format!(
        ".{}{RESTORING_INFIX}{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    catch_interrupts();
    nar::restore(InterruptibleReader(std::io::stdin().lock()), &staging)
        .with_context(|| format!("restoring {}", dir.display()))?;
    std::fs::rename(&staging, dir).map_err(|e| {
        let _ = nar::remove_tree(&staging);
        anyhow::Error::from(e).context(format!("moving the restored tree to {}", dir.display()))
    })
}

const RESTORING_INFIX: &str = ".restoring-";

/// Removes `.NAME.restoring-PID` trees in `dir` whose process no longer runs.
fn remove_stale_restores(dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((_, pid)) = name
            .strip_prefix('.')
            .and_then(|rest| rest.rsplit_once(RESTORING_INFIX))
        else {
            continue;
        };
        if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) && !Path::new("/proc").join(pid).exists() {
            nar::remove_tree(&entry.path())
                .with_context(|| format!("removing {}, left by an interrupted restore", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Set by SIGINT, SIGTERM or SIGHUP while a restore runs.
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn note_interrupt(_signal: nix::libc::c_int) {
    INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Turns the signals that would kill rixos midway into a flag the reader checks, so the restore fails and
/// cleans up instead. Without SA_RESTART, a read waiting for input returns at once.
fn catch_interrupts() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(SigHandler::Handler(note_interrupt), SaFlags::empty(), SigSet::empty());
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        let _ = unsafe { sigaction(signal, &action) };
    }
}

/// Standard input that fails once a signal was caught (see `catch_interrupts`).
struct InterruptibleReader<R>(R);

impl<R: std::io::Read> std::io::Read for InterruptibleReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(std::io::Error::other("interrupted"));
            }
            match self.0.read(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }
}

/// A store path given on the command line: a store path, a file inside one, a link to one (`result`,
/// `/run/current-system`), or its physical location under the store root.
fn parse_store_path(text: &str, root: &Path) -> Result<StorePath> {
    let top = crate::store::resolve::follow_links_to_store_path(root, text)?;
    Ok(StorePath::parse(&top)?)
}

fn query(store: &LocalStore, root: &Path, args: &QueryArgs) -> Result<()> {
    let paths: Vec<StorePath> = args
        .paths
        .iter()
        .map(|p| parse_store_path(p, root))
        .collect::<Result<_>>()?;
    for path in &paths {
        if !store.db().is_valid(path)? {
            bail!("{path} is not valid in the store at {}", root.display());
        }
    }
    let mut out: Vec<String> = Vec::new();
    if args.requisites {
        out.extend(store.requisites(&paths)?.iter().map(StorePath::to_string));
    } else {
        for path in &paths {
            if args.references {
                out.extend(store.db().references(path)?.iter().map(StorePath::to_string));
            } else if args.referrers {
                out.extend(store.db().referrers(path)?.iter().map(StorePath::to_string));
            } else {
                let info = store.db().info(path)?.context("a valid path has no database row")?;
                out.push(info.deriver.map_or("unknown-deriver".to_string(), |d| d.to_string()));
            }
        }
    }
    for line in out {
        println!("{line}");
    }
    Ok(())
}
