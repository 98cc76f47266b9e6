//! `rixos gc`: delete old generations (with `-d` or `--delete-older-than`) and then every store path no root
//! keeps alive, like nix-collect-garbage.

use std::path::Path;

use anyhow::Result;
use clap::Args;

use crate::store::gc::GcReport;
use crate::store::local::LocalStore;
use crate::store::profile::{Profile, parse_age};

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Delete all generations of every profile but the current ones first.
    #[arg(short = 'd', long = "delete-old")]
    delete_old: bool,
    /// Delete generations older than this (e.g. 30d) first, keeping the one that was current then.
    #[arg(long, value_name = "AGE", conflicts_with = "delete_old")]
    delete_older_than: Option<String>,
    /// Show what would be deleted, delete nothing.
    #[arg(long)]
    dry_run: bool,
}

/// Every profile under `dir`, including per-user ones in subdirectories.
fn profiles(dir: &Path, found: &mut Vec<Profile>) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_dir() {
            profiles(&entry.path(), found)?;
        } else if entry.file_type()?.is_symlink() && !name.ends_with("-link") && !name.starts_with('.') {
            found.push(Profile::new(entry.path()));
        }
    }
    Ok(())
}

pub fn run(root: &Path, args: &GcArgs) -> Result<()> {
    let mut store = LocalStore::open_existing(root)?;
    let age = args.delete_older_than.as_deref().map(parse_age).transpose()?;
    if args.delete_old || age.is_some() {
        let mut found = Vec::new();
        profiles(&store.state_dir().join("profiles"), &mut found)?;
        for profile in found {
            let doomed = match age {
                Some(age) => profile.generations_older_than(age, std::time::SystemTime::now())?,
                None => profile.old_generations()?,
            };
            if !args.dry_run {
                profile.delete_generations(&doomed)?;
            }
            for number in doomed.iter().filter(|_| shows(args.dry_run)) {
                let verb = if args.dry_run { "would remove" } else { "removing" };
                println!("{verb} profile version {number} of {}", profile.path().display());
            }
        }
    }
    let report = store.collect_garbage(args.dry_run)?;
    print_report(&report, args.dry_run);
    Ok(())
}

/// Whether to print what is (or would be) deleted: under `-q` only a dry run, whose listing is its result.
fn shows(dry_run: bool) -> bool {
    dry_run || !crate::verbosity::quiet()
}

pub fn print_report(report: &GcReport, dry_run: bool) {
    if !shows(dry_run) {
        return;
    }
    for path in &report.deleted {
        println!("{} '{path}'", if dry_run { "would delete" } else { "deleting" });
    }
    let mib = report.freed_bytes as f64 / (1024.0 * 1024.0);
    if dry_run {
        println!(
            "{} store paths would be deleted, {mib:.2} MiB would be freed",
            report.deleted.len()
        );
    } else {
        println!("{} store paths deleted, {mib:.2} MiB freed", report.deleted.len());
    }
}
