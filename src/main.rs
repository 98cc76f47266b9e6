//! The `rixos` binary: parses the command line and hands over to the library. No logic lives here.

#[global_allocator]
static ALLOCATOR: rixos::alloc::MiMalloc = rixos::alloc::MiMalloc;

fn main() -> std::process::ExitCode {
    rixos::cli::main()
}
