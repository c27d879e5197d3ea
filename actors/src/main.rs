//! `clusterd`: parses the command line and runs one verb. Exit status: 0 on
//! success, 2 on bad usage or configuration, 1 on runtime failure.

use clap::Parser;
use std::io::Write;

/// The clustering passes allocate and free many small strings and tree
/// nodes from several threads, and every commit builds a command of several
/// MiB; mimalloc does that with far less time in the allocator than the
/// system's. Built without transparent huge pages: with them, memory that
/// the allocator purged and reuses is faulted back 2 MiB at a time, and
/// zeroing those pages took a third of the daemon's time under ingest.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = clusterd::cli::Cli::parse();
    match clusterd::cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            // A closed stderr must not turn an error into a panic.
            let _ = writeln!(std::io::stderr(), "clusterd: {e:#}");
            std::process::exit(e.exit_code());
        }
    }
}
