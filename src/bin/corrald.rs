//! The corrald daemon: parses arguments and hands over to the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use corral::config::{Config, DEFAULT_CONFIG_PATH};
use corral::daemon;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(name = "corrald", version, about = "The Corral platform daemon")]
struct Args {
    /// The configuration file [default: /etc/corral/corrald.toml, where a
    /// missing file counts as empty, so flags alone can configure corrald]
    #[arg(long, global = true, env = "CORRALD_CONFIG")]
    config: Option<PathBuf>,
    /// Override one key of the file, e.g. `--set router.base-domain=apps.example.com`
    /// or `--set api.listen=127.0.0.1:5000`; repeatable.
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon (the default).
    Serve,
    /// Validate a configuration file and exit.
    CheckConfig {
        /// The file to check; defaults to --config.
        file: Option<PathBuf>,
    },
    /// Run only the router, fed by corrald (config `router.mode = "split"`),
    /// on the sockets systemd passes (socket activation) or `router.listen`.
    Router,
    /// Remove slugs that no release within retention needs, once, and report.
    GcOnce,
    /// git's pre-receive hook in app repositories: hands a push to corrald
    /// and prints the build's output (run by git, not by hand).
    #[command(hide = true)]
    GitHook,
    /// Manage API tokens.
    #[command(subcommand)]
    Tokens(TokenCommand),
    /// Print the configuration reference (docs/configuration.md) as
    /// Markdown; hidden because it serves the repository, not operators.
    #[command(hide = true)]
    ConfigReference,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create an account with an API token and print the token once.
    Create {
        /// Who or what the token is for.
        #[arg(long)]
        name: String,
        /// The email shown as owner of apps and author of releases.
        #[arg(long)]
        email: Option<String>,
    },
}

fn main() -> ExitCode {
    // The hook talks to git on stdout; it must stay free of log lines.
    if std::env::args().nth(1).as_deref() == Some("git-hook") {
        return ExitCode::from(u8::try_from(corral::builds::run_hook_client()).unwrap_or(1));
    }
    init_logging();
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("corrald: {e:#}");
            ExitCode::FAILURE
        }
    }
}

impl Args {
    /// The configuration: the file (the default one may be missing) with
    /// the `--set` overrides applied.
    fn load_config(&self) -> Result<Config, corral::config::ConfigError> {
        match &self.config {
            Some(path) => Config::load_with(path, false, &self.overrides),
            None => Config::load_with(Path::new(DEFAULT_CONFIG_PATH), true, &self.overrides),
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    match args.command.as_ref().unwrap_or(&Command::Serve) {
        Command::CheckConfig { file } => {
            // An explicit file must exist: checking nothing is no check.
            let path = file
                .clone()
                .or_else(|| args.config.clone())
                .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
            Config::load_with(&path, false, &args.overrides)?;
            println!("{}: ok", path.display());
            Ok(())
        }
        Command::Tokens(TokenCommand::Create { name, email }) => {
            let config = args.load_config()?;
            let store = daemon::open_store(&config)?;
            let token = store.create_token_blocking(name, email.as_deref())?;
            eprintln!(
                "Created token for {} ({}). It is shown only this once:",
                token.account.name, token.account.email
            );
            println!("{}", token.secret);
            Ok(())
        }
        Command::ConfigReference => {
            print!("{}", corral::config::reference_markdown()?);
            Ok(())
        }
        Command::GitHook => {
            anyhow::bail!("git-hook is run by git as the first argument");
        }
        Command::GcOnce => {
            let config = args.load_config()?;
            let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
            let report = runtime.block_on(daemon::collect_garbage(&config))?;
            println!(
                "Removed {} slug(s), freed {:.1} MB.",
                report.removed.len(),
                report.freed_bytes as f64 / 1e6
            );
            for digest in &report.removed {
                println!("  {digest}");
            }
            Ok(())
        }
        Command::Router => {
            let config = args.load_config()?;
            let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
            runtime.block_on(async {
                let shutdown = CancellationToken::new();
                let signals = tokio::spawn(wait_for_signal(shutdown.clone()));
                let result = daemon::run_router(config, shutdown).await;
                signals.abort();
                result
            })?;
            Ok(())
        }
        Command::Serve => {
            let config = args.load_config()?;
            let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
            runtime.block_on(async {
                let shutdown = CancellationToken::new();
                let signals = tokio::spawn(wait_for_signal(shutdown.clone()));
                let result = daemon::run(config, shutdown).await;
                signals.abort();
                result
            })?;
            Ok(())
        }
    }
}

/// Cancels `shutdown` on SIGTERM (systemd's stop) or SIGINT (Ctrl-C).
async fn wait_for_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop corrald with SIGKILL");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
    shutdown.cancel();
}

/// corrald's own log on stderr; router and platform lines, which belong to
/// apps' streams, go to the journal with the apps' fields instead when
/// journald is there (and to stderr otherwise, e.g. run by hand).
fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;

    let journal = corral::logs::JournalLayer::connect();
    let to_journal = journal.is_some();
    let text = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter(tracing_subscriber::filter::filter_fn(move |meta| {
            !(to_journal && corral::logs::is_stream_target(meta.target()))
        }));
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::EnvFilter::try_from_env("CORRALD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with(text)
        .with(journal)
        .init();
}
