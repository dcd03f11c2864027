//! The `portcullis` command: run the proxy, check a configuration, make a secret.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use base64::Engine as _;
use clap::{Parser, Subcommand};
use portcullis::config::{self, env::ProcessEnv};

/// An authenticating reverse proxy that speaks Pomerium's configuration language.
#[derive(Parser, Debug)]
#[command(name = "portcullis", version, about)]
struct Cli {
    /// The configuration file. Without it, `./config.yaml` if present, else only the
    /// environment.
    #[arg(short = 'c', long = "config", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the proxy (the default).
    Run,
    /// Validate the configuration without starting anything; exit 1 on any problem.
    Check,
    /// Print a fresh base64 32-byte secret for `shared_secret` or `cookie_secret`.
    GenSecret,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Run) {
        Command::Run => run(cli.config.as_deref()),
        Command::Check => check(cli.config.as_deref()),
        Command::GenSecret => gen_secret(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The file to read: the one given, else `./config.yaml` when it exists.
fn config_path(given: Option<&Path>) -> Option<PathBuf> {
    match given {
        Some(p) => Some(p.to_owned()),
        None => Some(PathBuf::from("config.yaml")).filter(|p| p.exists()),
    }
}

fn load(given: Option<&Path>) -> anyhow::Result<config::Loaded> {
    let path = config_path(given);
    Ok(config::load(path.as_deref(), &ProcessEnv)?)
}

fn run(given: Option<&Path>) -> anyhow::Result<ExitCode> {
    let loaded = load(given)?;
    let settings = &loaded.config.server;
    portcullis::telemetry::init(settings.log_level, settings.log_json);
    for w in &loaded.warnings {
        tracing::warn!("config: {w}");
    }
    if settings.insecure {
        tracing::warn!(
            "insecure_server is on: serving plain HTTP without TLS. Only do this behind a \
             TLS-terminating load balancer on a trusted network."
        );
    }
    let auth = &loaded.config.auth;
    for (missing, key) in [
        (auth.cookie_secret.is_none(), "cookie_secret"),
        (auth.shared_secret.is_none(), "shared_secret"),
    ] {
        if missing {
            tracing::warn!(
                "{key} is not set: using a random one for this process. Sessions end when it restarts, \
                 and replicas cannot share them. Set it with `portcullis gen-secret`."
            );
        }
    }
    if let Some(addr) = settings.metrics_address {
        tracing::warn!(%addr, "metrics_address is set, but this version does not serve metrics yet");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(portcullis::run(
        loaded.config,
        portcullis::server::shutdown_signal(),
    ))?;
    Ok(ExitCode::SUCCESS)
}

fn check(given: Option<&Path>) -> anyhow::Result<ExitCode> {
    let loaded = match load(given) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e:#}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let table = portcullis::routes::RouteTable::new(loaded.config.routes.clone());
    let mut warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    for (later, earlier) in table.shadowed() {
        warnings.push(format!(
            "{} is never used: {} (earlier, same host) matches every path it matches",
            later.spec.name, earlier.spec.name
        ));
    }
    for w in &warnings {
        println!("warning: {w}");
    }
    println!("configuration OK: {} route(s)", table.routes().len());
    Ok(ExitCode::SUCCESS)
}

fn gen_secret() -> anyhow::Result<ExitCode> {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| anyhow::anyhow!("the system random number generator failed"))?;
    println!(
        "{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    );
    Ok(ExitCode::SUCCESS)
}
