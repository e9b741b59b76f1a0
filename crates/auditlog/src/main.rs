//! The `auditlog` command. `main` only parses arguments, sets up logging,
//! opens the chosen store and hands over to the subcommand.

#![forbid(unsafe_code)]

// See Cargo.toml for why this allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod admin;
mod backend;
mod cli;
mod demo;
mod export;
mod migrate_store;
mod serve;
mod signing_key;
mod verify;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command, KeyCommand, MemberCommand, OrgCommand};

/// Servers log at `info`; one-shot commands only warn, so their output is
/// what they print. `AUDITLOG_LOG` overrides both.
fn init_logging(default: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("AUDITLOG_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let json = std::env::var("AUDITLOG_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    auditlog_server::init_tls();
    let serving = matches!(cli.command, Command::Serve(_) | Command::Demo(_) | Command::Bench(_));
    init_logging(if serving { "info" } else { "warn" });
    let result = match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Migrate(args) => backend::open(&args.database).await.map(|_| {
            println!("database is up to date");
        }),
        Command::MigrateStore(args) => migrate_store::run(args).await,
        Command::Export(args) => export::run(args).await,
        Command::Org(OrgCommand::Create(args)) => admin::create_org(args).await,
        Command::Key(KeyCommand::Create(args)) => admin::create_key(args).await,
        Command::Key(KeyCommand::ShowSigning(args)) => {
            signing_key::path(args.signing.signing_key.as_deref(), &args.db.database)
                .and_then(|path| signing_key::load_or_create(&path))
                .map(|key| println!("{}", key.verifier_key()))
        }
        Command::Verify(args) => match verify::run(args) {
            Ok(report) if verify::print(&report) => Ok(()),
            Ok(_) => return ExitCode::FAILURE,
            Err(e) => Err(e),
        },
        Command::Member(MemberCommand::Add(args)) => admin::add_member(args).await,
        Command::Bench(section) => auditlog_bench::run(section).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
