use clap::Parser;

use ingestor::cli::{Args, Command};
use ingestor::config::{self, Config};
use ingestor::exit::ExitCode;
use ingestor::report::Log;

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
    // The one logging handle, made before anything can fail.
    let log = Log::new(args.quiet, args.log_format);
    let ran = match args.command {
        Some(Command::Report(report)) => config::report_query(report)
            .map_err(anyhow::Error::from)
            .and_then(|q| ingestor::views::report::run(&q)),
        Some(Command::Status(status)) => ingestor::status::run(&config::status_query(status)),
        Some(Command::Fleet(fleet)) => ingestor::fleet::run(&fleet.dbs),
        None => Config::from_args(args, log)
            .map_err(anyhow::Error::from)
            .and_then(|config| ingestor::run::run(&config)),
    };
    match ran {
        Ok(()) => ExitCode::Success.into(),
        Err(e) => {
            log.error(format_args!("{e:#}"));
            ExitCode::of_error(&e).into()
        }
    }
}
