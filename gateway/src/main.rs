//! `escrowd`: the server and the operator CLI.

use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = gateway::cli::Cli::parse();
    match gateway::cli::run(cli).await {
        Ok(code) => std::process::exit(code),
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(1);
        }
    }
}
