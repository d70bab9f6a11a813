//! How a run ends, as the shell sees it (fd's `exit_codes.rs` does the same).

/// The process's exit status: 0 done, 1 the run failed (input, database,
/// disk), 2 bad usage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCode {
    Success,
    Failure,
    Usage,
}

impl ExitCode {
    /// The status for a run that ended with `err`: a [`UsageError`] anywhere
    /// in its chain is the user's mistake on the command line.
    pub fn of_error(err: &anyhow::Error) -> ExitCode {
        if err.chain().any(|c| c.is::<UsageError>()) {
            ExitCode::Usage
        } else {
            ExitCode::Failure
        }
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(match code {
            ExitCode::Success => 0,
            ExitCode::Failure => 1,
            ExitCode::Usage => 2,
        })
    }
}

/// A mistake in what the user asked for (a flag out of range, arguments
/// swapped), found before anything was written: exit status 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}
