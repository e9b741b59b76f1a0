//! The `auditlog` command. `main` only parses arguments, sets up logging,
//! opens the chosen store and hands over to the subcommand.

#![forbid(unsafe_code)]

// See Cargo.toml for why this allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod admin;
mod backend;
mod backup;
mod check;
mod cli;
mod demo;
mod export;
mod migrate_store;
mod serve;
mod settings;
mod signing_key;
mod streams;
mod verify;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command, ConfigCommand, KeyCommand, MemberCommand, OrgCommand};
use settings::LogFormat;

/// Logs go to stderr, so that stdout holds only what a command prints.
/// `filter` was checked where it was read.
fn init_logging(filter: &str, format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Every command but `serve` (whose settings include logging) logs as the
/// environment says: servers at `info` by default, one-shot commands only
/// warn, so their output is what they print.
fn init_logging_from_env(default: &str) {
    let filter = std::env::var("AUDITLOG_LOG")
        .ok()
        .filter(|f| tracing_subscriber::EnvFilter::try_new(f).is_ok())
        .unwrap_or_else(|| default.to_owned());
    let json = std::env::var("AUDITLOG_LOG_FORMAT").is_ok_and(|v| v == "json");
    init_logging(&filter, if json { LogFormat::Json } else { LogFormat::Text });
}

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// `serve` loads its settings before it logs, as they say how to log.
async fn run_serve(args: cli::ServeArgs) -> Result<(), backend::AnyError> {
    let settings = settings::load(&args, process_env)?;
    init_logging(&settings.log.filter, settings.log.format);
    serve::run(settings).await
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    auditlog_server::init_tls();
    match &cli.command {
        Command::Serve(_) => {}
        Command::Demo(_) | Command::Bench(_) => init_logging_from_env("info"),
        _ => init_logging_from_env("warn"),
    }
    let result = match cli.command {
        Command::Serve(args) => run_serve(*args).await,
        Command::Config(ConfigCommand::Default) => {
            print!("{}", settings::DEFAULT_FILE);
            Ok(())
        }
        Command::Config(ConfigCommand::Show(args)) => settings::load(&args, process_env)
            .map(|settings| print!("{}", settings.to_redacted_toml()))
            .map_err(Into::into),
        Command::Demo(args) => demo::run(args).await,
        Command::Migrate(args) => backend::open(&args.database).await.map(|_| {
            println!("database is up to date");
        }),
        Command::MigrateStore(args) => migrate_store::run(args).await,
        Command::Export(args) => export::run(args).await,
        Command::Org(OrgCommand::Create(args)) => admin::create_org(args).await,
        Command::Org(OrgCommand::Sso(args)) => admin::configure_sso(args).await,
        Command::Stream(command) => streams::run(command).await,
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
        Command::Member(MemberCommand::Erase(args)) => admin::erase_member(args).await,
        Command::Backup(args) => backup::run(args),
        Command::Check(args) => match check::run(args).await {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => Err(e),
        },
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
