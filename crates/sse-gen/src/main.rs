//! `sse-gen`: the generator's command line (see the library for what it writes).

fn main() -> std::process::ExitCode {
    match sse_gen::run_cli(std::env::args_os()) {
        Ok(w) => {
            eprintln!(
                "sse-gen: {} lines, {} bytes, {} adversarial",
                w.lines, w.bytes, w.adversarial
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => match e.downcast::<clap::Error>() {
            // --help, --version and usage errors print as clap prints them.
            Ok(clap) => clap.exit(),
            Err(e) => {
                eprintln!("sse-gen: {e:#}");
                std::process::ExitCode::FAILURE
            }
        },
    }
}
