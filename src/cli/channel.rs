//! `rixos channel`: the Debian snapshots the package set comes from (like nix-channel).

use std::path::Path;

use anyhow::Result;
use clap::Args;

use crate::pkgs::channel::Channels;
use crate::store::local::{LocalStore, require_store};

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct ChannelArgs {
    /// Add (or re-point) a channel: URL is MIRROR/dists/SUITE; NAME defaults to the suite.
    #[arg(long, num_args = 1..=2, value_names = ["URL", "NAME"])]
    pub add: Option<Vec<String>>,
    /// Remove a channel from the list (its snapshot stays in the current generation until the next update).
    #[arg(long, value_name = "NAME")]
    pub remove: Option<String>,
    /// Print each channel's name and URL, and the snapshot of the current generation.
    #[arg(long)]
    pub list: bool,
    /// Download and verify the channels (all, or those named) and make a new generation.
    #[arg(long, num_args = 0.., value_name = "NAME")]
    pub update: Option<Vec<String>>,
    /// Go back to the previous generation of channels.
    #[arg(long)]
    pub rollback: bool,
}

/// `--update` of every channel (for `rixos system switch --upgrade`).
pub fn update_all(root: &Path) -> Result<()> {
    run(
        root,
        &ChannelArgs {
            add: None,
            remove: None,
            list: false,
            update: Some(Vec::new()),
            rollback: false,
        },
    )
}

pub fn run(root: &Path, args: &ChannelArgs) -> Result<()> {
    let channels = Channels::new(root);
    let quiet = crate::verbosity::quiet();
    // Only adding and updating may start a new store; the rest read (or change) one that must exist.
    if args.add.is_none() && args.update.is_none() {
        require_store(root)?;
    }
    if let Some(add) = &args.add {
        // The channel list lives in a store's state, so adding one makes the store.
        LocalStore::open(root)?;
        let c = channels.add(&add[0], add.get(1).map(String::as_str))?;
        if !quiet {
            println!(
                "added channel '{}' ({}); run `rixos channel --update {}` to download it",
                c.name, c.url, c.name
            );
        }
    } else if let Some(name) = &args.remove {
        channels.remove(name)?;
    } else if args.list {
        let current = channels.current()?;
        for c in channels.list()? {
            let snapshot = current.get(&c.name).map_or("(not downloaded)", String::as_str);
            println!("{} {} {snapshot}", c.name, c.url);
        }
    } else if let Some(names) = &args.update {
        let mut store = LocalStore::open(root)?;
        for (name, path) in channels.update(&mut store, names)? {
            if !quiet {
                println!("{name} {path}");
            }
        }
    } else if args.rollback {
        let n = channels.rollback()?;
        if !quiet {
            println!("switched to channels generation {n}");
        }
    }
    Ok(())
}
