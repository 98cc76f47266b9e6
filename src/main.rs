//! The `rixos` binary: parses the command line and hands over to the library. No logic lives here.

fn main() -> std::process::ExitCode {
    rixos::cli::main()
}
