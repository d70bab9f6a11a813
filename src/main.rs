use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

use ingestor::cli::Args;
use ingestor::config::Config;

/// Exit codes: 0 done, 1 the run failed (input, database, disk), 2 bad usage.
fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // clap's own report spans several lines; keep its first, the cause.
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            eprintln!(
                "ingestor: {} (see --help)",
                first.trim_start_matches("error: ")
            );
            return ExitCode::from(2);
        }
    };
    match ingestor::run::run(&Config::from_args(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ingestor: {e:#}");
            ingestor::exit::ExitCode::of_error(&e).into()
        }
    }
}
