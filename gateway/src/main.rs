//! `escrowd`: the server and the operator CLI.

use clap::Parser;

/// mimalloc instead of the system allocator: profiles of catch-up and of the command path showed
/// about a third of this process's CPU in glibc's malloc and free (arena growth, consolidation,
/// page faults) for the short-lived JSON values and rows every event passes through.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
