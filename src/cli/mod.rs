//! The command line: one clap-derive struct per command, dispatching into the library. Only commands that work
//! are exposed.

use std::process::ExitCode;

use clap::Parser;

/// Build, install and convert Linux systems the NixOS way.
#[derive(Debug, Parser)]
#[command(name = "rixos", version, about, long_about = None)]
pub struct Cli {
    /// Increase logging (repeatable).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

pub fn main() -> ExitCode {
    let _cli = Cli::parse();
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
