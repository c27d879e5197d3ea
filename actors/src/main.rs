//! `clusterd`: parses the command line and runs one verb. Exit status: 0 on
//! success, 2 on bad usage or configuration, 1 on runtime failure.

use clap::Parser;

fn main() {
    let cli = clusterd::cli::Cli::parse();
    match clusterd::cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("clusterd: {e:#}");
            std::process::exit(e.exit_code());
        }
    }
}
