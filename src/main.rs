use clap::Parser;

use momentline::cli::{self, Cli};
use momentline::telemetry;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Before the settings are read, so that reading them can be logged.
    telemetry::init();
    match cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("momentline: {}", telemetry::error_chain(&e));
            std::process::ExitCode::FAILURE
        }
    }
}
