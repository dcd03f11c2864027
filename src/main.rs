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
    /// Try Portcullis on this machine: the proxy with `examples/demo.yaml` (or `-c FILE`)
    /// plus a demo identity provider, Okta API and app, all on 127.0.0.1.
    Demo,
    /// Policy tools.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(Subcommand, Debug)]
enum PolicyCommand {
    /// Show which route a request matches and what its policy decides, without starting
    /// the proxy or contacting the identity provider.
    Explain(ExplainArgs),
}

#[derive(clap::Args, Debug)]
struct ExplainArgs {
    /// The request URL, e.g. https://app.example.com/path?x=1
    #[arg(long)]
    url: String,
    /// The method.
    #[arg(long, default_value = "GET")]
    method: String,
    /// The user's email (implies a signed-in user).
    #[arg(long)]
    email: Option<String>,
    /// The user's IdP subject (implies a signed-in user).
    #[arg(long)]
    user: Option<String>,
    /// The user's groups, comma-separated (ids or names).
    #[arg(long, value_delimiter = ',')]
    groups: Vec<String>,
    /// A claim `name=value` (repeatable; repeated names make a list).
    #[arg(long)]
    claim: Vec<String>,
    /// The client's IP address.
    #[arg(long, default_value = "127.0.0.1")]
    ip: std::net::IpAddr,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Run) {
        Command::Run => run(cli.config.as_deref()),
        Command::Check => check(cli.config.as_deref()),
        Command::GenSecret => gen_secret(),
        Command::Demo => demo(cli.config.as_deref()),
        Command::Policy(PolicyCommand::Explain(args)) => explain(cli.config.as_deref(), &args),
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
    for key in loaded.config.auth.per_process_secrets() {
        tracing::warn!(
            "{key} is not set: using a random one for this process. Sessions end when it restarts, \
             and replicas cannot share them. Set it with `portcullis gen-secret`."
        );
    }
    if let Some(addr) = settings.metrics_address {
        tracing::warn!(%addr, "metrics_address is set, but this version does not serve metrics yet");
    }
    // The first worker runs here; `run` starts one more single-threaded worker per CPU.
    let runtime = tokio::runtime::Builder::new_current_thread()
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
    for w in portcullis::pipeline::check_warnings(&loaded) {
        println!("warning: {w}");
    }
    println!("configuration OK: {} route(s)", loaded.config.routes.len());
    Ok(ExitCode::SUCCESS)
}

fn explain(given: Option<&Path>, args: &ExplainArgs) -> anyhow::Result<ExitCode> {
    use portcullis::pipeline::{Answer, Question};
    let loaded = load(given)?;
    let url = url::Url::parse(&args.url).context("--url is not a URL")?;
    let method = http::Method::from_bytes(args.method.to_ascii_uppercase().as_bytes())
        .context("--method")?;
    let question = Question {
        url,
        method,
        user: user_of(args)?,
        client_ip: args.ip,
    };
    match portcullis::pipeline::explain(&loaded.config, &question) {
        Answer::BadRequest(why) => {
            println!("route: none (the proxy answers 400: {why})");
            Ok(ExitCode::FAILURE)
        }
        Answer::Internal => {
            println!("route: none (one of the proxy's own endpoints answers)");
            Ok(ExitCode::SUCCESS)
        }
        Answer::NoRoute => {
            println!("route: none (the proxy answers 404)");
            Ok(ExitCode::FAILURE)
        }
        Answer::Decided {
            route,
            decision,
            reason,
        } => {
            println!("route: {route}");
            println!("decision: {decision}");
            println!("because: {reason}");
            Ok(ExitCode::SUCCESS)
        }
        Answer::GroupsUnverified { route } => {
            println!("route: {route}");
            println!("decision: deny (503: the user's groups are unverified)");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The hypothetical user of `policy explain`, when any user flag is given.
fn user_of(args: &ExplainArgs) -> anyhow::Result<Option<portcullis::session::Session>> {
    let mut claims = serde_json::Map::new();
    for pair in &args.claim {
        let (k, v) = pair.split_once('=').context("--claim takes name=value")?;
        let value = serde_json::Value::String(v.to_owned());
        match claims.get_mut(k) {
            Some(serde_json::Value::Array(list)) => list.push(value),
            Some(existing) => *existing = serde_json::Value::Array(vec![existing.clone(), value]),
            None => {
                claims.insert(k.to_owned(), value);
            }
        }
    }
    let signed_in = args.email.is_some()
        || args.user.is_some()
        || !args.groups.is_empty()
        || !claims.is_empty();
    Ok(signed_in.then(|| {
        let sub = args
            .user
            .clone()
            .or_else(|| args.email.clone())
            .unwrap_or_else(|| "explain-user".into());
        portcullis::session::Session::hypothetical(
            sub,
            args.email.clone(),
            args.groups.clone(),
            claims,
        )
    }))
}

fn demo(given: Option<&Path>) -> anyhow::Result<ExitCode> {
    let path = given.unwrap_or(Path::new("examples/demo.yaml"));
    let loaded = load(Some(path))?;
    let settings = &loaded.config.server;
    portcullis::telemetry::init(settings.log_level, settings.log_json);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(portcullis::demo::run_demo(
        path,
        portcullis::server::shutdown_signal(),
    ))?;
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
