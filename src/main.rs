use clap::Parser;

use ingestor::cli::{Args, Command};
use ingestor::config::{self, Config};
use ingestor::exit::ExitCode;

/// Exit codes: 0 done, 1 the run failed (input, database, disk), 2 bad usage.
fn main() -> std::process::ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            // clap's own report, whole: what is wrong with which argument and
            // the usage line (or the help or version asked for, on stdout).
            let _ = e.print();
            let code = if e.use_stderr() {
                ExitCode::Usage
            } else {
                ExitCode::Success
            };
            return code.into();
        }
    };
    let ran = match args.command {
        Some(Command::Report(report)) => config::report_query(report)
            .map_err(anyhow::Error::from)
            .and_then(|q| ingestor::views::report::run(&q)),
        Some(Command::Fleet(fleet)) => ingestor::fleet::run(&fleet.dbs),
        None => Config::from_args(args)
            .map_err(anyhow::Error::from)
            .and_then(|config| {
                ingestor::db::set_checkpoint(config.checkpoint);
                ingestor::run::run(&config)
            }),
    };
    match ran {
        Ok(()) => ExitCode::Success.into(),
        Err(e) => {
            eprintln!("ingestor: {e:#}");
            ExitCode::of_error(&e).into()
        }
    }
}
