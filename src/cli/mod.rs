//! The `corral` command-line interface: Heroku's verbs over the Platform API.
//!
//! Each command group lives in its own file; this one holds the argument
//! grammar, how the API address, token and app are found, and the error type
//! the binary turns into a message and an exit status.

mod apps;
mod builds;
mod certs;
mod client;
mod command;
mod config_vars;
mod deploy;
mod domains;
mod drains;
mod install;
mod logs;
mod maintenance;
mod metrics;
mod output;
mod ps;
mod releases;
mod run;
mod sandbox;
mod settings;

use std::process::ExitCode;

use clap::{Args, Parser};

use command::Command;

pub(crate) use client::{Client, Endpoint};
pub(crate) use settings::Settings;

/// Everything a command can fail with.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// The API answered with an error; its message is the user's guide.
    #[error("{message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Heroku error id.
        id: String,
        /// The API's message.
        message: String,
    },
    /// The API could not be reached.
    #[error("cannot reach the Corral API at {endpoint}: {source}. Is corrald running, and are CORRAL_API_URL or ~/.config/corral/config.toml right?")]
    Connect {
        /// Where we tried.
        endpoint: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The API answered something that is not HTTP or not the expected JSON.
    #[error("{0}")]
    Protocol(String),
    /// Settings are missing or malformed.
    #[error("{0}")]
    Config(String),
    /// The command line makes no sense.
    #[error("{0}")]
    Usage(String),
    /// `corral sandbox` failed.
    #[error(transparent)]
    Sandbox(#[from] crate::sandbox::SandboxError),
    /// `corral install` failed.
    #[error(transparent)]
    Install(#[from] crate::install::InstallError),
    /// Local I/O failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// What the OS said.
        source: std::io::Error,
    },
}

#[derive(Debug, Parser)]
#[command(
    name = "corral",
    version,
    about = "Corral: deploy and run apps on your own systemd host, the Heroku way",
    disable_help_subcommand = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `-a/--app`, shared by every command that acts on one app.
#[derive(Debug, Clone, Args)]
pub(crate) struct AppArg {
    /// The app to act on (default: from the git remote named `corral`).
    #[arg(short = 'a', long = "app", env = "CORRAL_APP")]
    app: Option<String>,
}

/// `--json`, for every listing.
#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct JsonArg {
    /// Print the API's JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs the CLI with the process's arguments and environment.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!(" ▸    cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(dispatch(cli.command));
    // `run` may leave a read of stdin behind, which tokio cannot cancel:
    // waiting for it would wait for the user's next keystroke.
    runtime.shutdown_background();
    match result {
        Ok(code) => code,
        Err(e) => {
            output::error(&e.to_string());
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command) -> Result<ExitCode, CliError> {
    if let Command::Sandbox(args) = command {
        return sandbox::run(args).await.map(|()| ExitCode::SUCCESS);
    }
    if let Command::Install(args) = command {
        return install::run(args).map(|()| ExitCode::SUCCESS);
    }
    let settings = Settings::load()?;
    if let Command::GitCredentials { operation } = &command {
        return builds::credentials(&settings, operation).map(|()| ExitCode::SUCCESS);
    }
    let client = settings.client()?;
    if let Command::Run(args) = command {
        return run::run(&client, args).await;
    }
    let result = match command {
        Command::Apps { json } => apps::list(&client, json.json).await,
        Command::AppsCreate { name, json } => apps::create(&client, name, json.json).await,
        Command::AppsInfo { name, app, json } => {
            let app = settings::resolve_app(name.or(app.app))?;
            apps::info(&client, &app, json.json).await
        }
        Command::AppsDestroy { name, app, confirm } => {
            let app = settings::resolve_app(name.or(app.app))?;
            apps::destroy(&client, &app, confirm).await
        }
        Command::Config { app, json, shell } => {
            let app = settings::resolve_app(app.app)?;
            config_vars::show(&client, &app, json.json, shell).await
        }
        Command::ConfigSet { pairs, app } => {
            let app = settings::resolve_app(app.app)?;
            config_vars::set(&client, &app, &pairs).await
        }
        Command::ConfigGet { key, app, shell } => {
            let app = settings::resolve_app(app.app)?;
            config_vars::get(&client, &app, &key, shell).await
        }
        Command::ConfigUnset { keys, app } => {
            let app = settings::resolve_app(app.app)?;
            config_vars::unset(&client, &app, &keys).await
        }
        Command::Releases { app, json, num } => {
            let app = settings::resolve_app(app.app)?;
            releases::list(&client, &app, json.json, num).await
        }
        Command::ReleasesInfo { release, app, json } => {
            let app = settings::resolve_app(app.app)?;
            releases::info(&client, &app, release.as_deref(), json.json).await
        }
        Command::ReleasesRollback { release, app } => {
            let app = settings::resolve_app(app.app)?;
            releases::rollback(&client, &app, release.as_deref()).await
        }
        Command::SlugsUpload { dir, commit, app } => {
            let app = settings::resolve_app(app.app)?;
            deploy::slugs_upload(&client, &app, &dir, commit).await
        }
        Command::DeployDir { dir, commit, app } => {
            let app = settings::resolve_app(app.app)?;
            deploy::deploy_dir(&client, &app, &dir, commit).await
        }
        Command::Builds { app, json } => {
            let app = settings::resolve_app(app.app)?;
            builds::list(&client, &app, json.json).await
        }
        Command::BuildsOutput { id, app } => {
            let app = settings::resolve_app(app.app)?;
            builds::output(&client, &app, id.as_deref()).await
        }
        Command::BuildsCachePurge { app, confirm } => {
            let app = settings::resolve_app(app.app)?;
            builds::purge_cache(&client, &app, confirm.as_deref()).await
        }
        Command::Buildpacks { app, json } => {
            let app = settings::resolve_app(app.app)?;
            builds::show(&client, &app, json.json).await
        }
        Command::BuildpacksSet {
            buildpack,
            index,
            app,
        } => {
            let app = settings::resolve_app(app.app)?;
            builds::change(&client, &app, builds::Change::Set(buildpack, index)).await
        }
        Command::BuildpacksAdd {
            buildpack,
            index,
            app,
        } => {
            let app = settings::resolve_app(app.app)?;
            builds::change(&client, &app, builds::Change::Add(buildpack, index)).await
        }
        Command::BuildpacksRemove {
            buildpack,
            index,
            app,
        } => {
            let app = settings::resolve_app(app.app)?;
            builds::change(&client, &app, builds::Change::Remove(buildpack, index)).await
        }
        Command::BuildpacksClear { app } => {
            let app = settings::resolve_app(app.app)?;
            builds::change(&client, &app, builds::Change::Clear).await
        }
        Command::GitRemote { remote, app } => {
            let app = settings::resolve_app(app.app)?;
            builds::remote(&client, &settings, &app, &remote).await
        }
        Command::GitCredentials { .. } => Ok(()),
        Command::Drains { app, json } => {
            let app = settings::resolve_app(app.app)?;
            drains::list(&client, &app, json.json).await
        }
        Command::DrainsAdd { url, app } => {
            let app = settings::resolve_app(app.app)?;
            drains::add(&client, &app, &url).await
        }
        Command::DrainsRemove { url, app } => {
            let app = settings::resolve_app(app.app)?;
            drains::remove(&client, &app, &url).await
        }
        Command::Domains { app, json } => {
            let app = settings::resolve_app(app.app)?;
            domains::list(&client, &app, json.json).await
        }
        Command::DomainsAdd {
            hostname,
            app,
            json,
        } => {
            let app = settings::resolve_app(app.app)?;
            domains::add(&client, &app, &hostname, json.json).await
        }
        Command::DomainsRemove { hostname, app } => {
            let app = settings::resolve_app(app.app)?;
            domains::remove(&client, &app, &hostname).await
        }
        Command::DomainsInfo {
            hostname,
            app,
            json,
        } => {
            let app = settings::resolve_app(app.app)?;
            domains::info(&client, &app, &hostname, json.json).await
        }
        Command::DomainsClear { app } => {
            let app = settings::resolve_app(app.app)?;
            domains::clear(&client, &app).await
        }
        Command::Certs { app, json } => {
            let app = settings::resolve_app(app.app)?;
            certs::list(&client, &app, json.json).await
        }
        Command::CertsAdd {
            crt,
            key,
            app,
            json,
        } => {
            let app = settings::resolve_app(app.app)?;
            certs::add(&client, &app, &crt, &key, json.json).await
        }
        Command::CertsInfo { name, app, json } => {
            let app = settings::resolve_app(app.app)?;
            certs::info(&client, &app, name.as_deref(), json.json).await
        }
        Command::CertsRemove { name, app, confirm } => {
            let app = settings::resolve_app(app.app)?;
            certs::remove(&client, &app, name.as_deref(), confirm).await
        }
        Command::Maintenance { app } => {
            let app = settings::resolve_app(app.app)?;
            maintenance::show(&client, &app).await
        }
        Command::MaintenanceOn { app } => {
            let app = settings::resolve_app(app.app)?;
            maintenance::set(&client, &app, true).await
        }
        Command::MaintenanceOff { app } => {
            let app = settings::resolve_app(app.app)?;
            maintenance::set(&client, &app, false).await
        }
        Command::Logs {
            num,
            tail,
            dyno,
            source,
            app,
        } => {
            let app = settings::resolve_app(app.app)?;
            let request = crate::api::types::LogSessionCreate {
                dyno,
                source,
                lines: Some(num),
                tail: Some(tail),
                process_type: None,
            };
            logs::show(&client, &app, &request).await
        }
        Command::Metrics { minutes, app, json } => {
            let app = settings::resolve_app(app.app)?;
            metrics::show(&client, &app, minutes, json.json).await
        }
        Command::Ps { app, json } => {
            let app = settings::resolve_app(app.app)?;
            ps::list(&client, &app, json.json).await
        }
        Command::PsRestart { dyno, app } => {
            let app = settings::resolve_app(app.app)?;
            ps::restart(&client, &app, dyno.as_deref()).await
        }
        Command::AppsSettings { changes, app, json } => {
            let app = settings::resolve_app(app.app)?;
            apps::settings(&client, &app, &changes, json.json).await
        }
        Command::PsStop { dyno, app } => {
            let app = settings::resolve_app(app.app)?;
            ps::stop(&client, &app, &dyno).await
        }
        Command::PsType { changes, app, json } => {
            let app = settings::resolve_app(app.app)?;
            ps::types(&client, &app, &changes, json.json).await
        }
        Command::PsFormation { app, json } => {
            let app = settings::resolve_app(app.app)?;
            ps::formation(&client, &app, json.json).await
        }
        Command::PsScale { changes, app } => {
            let app = settings::resolve_app(app.app)?;
            ps::scale(&client, &app, &changes).await
        }
        Command::RunDetached(args) => run::detached(&client, args).await,
        Command::Sandbox(_) | Command::Install(_) | Command::Run(_) => Ok(()),
    };
    result.map(|()| ExitCode::SUCCESS)
}
