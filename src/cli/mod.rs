//! The `corral` command-line interface: Heroku's verbs over the Platform API.
//!
//! Each command group lives in its own file; this one holds the argument
//! grammar, how the API address, token and app are found, and the error type
//! the binary turns into a message and an exit status.

mod apps;
mod builds;
mod certs;
mod client;
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

use clap::{Args, Parser, Subcommand};

pub use client::{Client, Endpoint};
pub use settings::Settings;

/// Everything a command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
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

#[derive(Debug, Subcommand)]
enum Command {
    /// List your apps.
    Apps {
        #[command(flatten)]
        json: JsonArg,
    },
    /// Create an app (a random name when none is given).
    #[command(name = "apps:create", visible_alias = "create")]
    AppsCreate {
        /// The app's name.
        name: Option<String>,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Show an app's details.
    #[command(name = "apps:info", visible_alias = "info")]
    AppsInfo {
        /// The app (same as -a).
        name: Option<String>,
        #[command(flatten)]
        app: AppArg,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Show or change an app's settings: `apps:settings boot_timeout=120`
    /// (`boot_timeout=` returns to the platform default).
    #[command(name = "apps:settings")]
    AppsSettings {
        /// KEY=VALUE changes; none shows the settings.
        changes: Vec<String>,
        #[command(flatten)]
        app: AppArg,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Delete an app and everything it owns.
    #[command(name = "apps:destroy", visible_alias = "destroy")]
    AppsDestroy {
        /// The app (same as -a).
        name: Option<String>,
        #[command(flatten)]
        app: AppArg,
        /// The app's name again, to confirm without a prompt.
        #[arg(long)]
        confirm: Option<String>,
    },
    /// Show an app's config vars.
    Config {
        #[command(flatten)]
        app: AppArg,
        #[command(flatten)]
        json: JsonArg,
        /// Print as KEY=value lines for a shell.
        #[arg(short = 's', long)]
        shell: bool,
    },
    /// Set config vars: `config:set KEY=value ...` (makes a new release).
    #[command(name = "config:set")]
    ConfigSet {
        /// KEY=value pairs.
        #[arg(required = true)]
        pairs: Vec<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Print one config var's value.
    #[command(name = "config:get")]
    ConfigGet {
        /// The var's name.
        key: String,
        #[command(flatten)]
        app: AppArg,
        /// Print as KEY=value.
        #[arg(short = 's', long)]
        shell: bool,
    },
    /// Remove config vars (makes a new release).
    #[command(name = "config:unset", visible_alias = "config:remove")]
    ConfigUnset {
        /// The vars' names.
        #[arg(required = true)]
        keys: Vec<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// List an app's releases, newest first.
    Releases {
        #[command(flatten)]
        app: AppArg,
        #[command(flatten)]
        json: JsonArg,
        /// How many to show.
        #[arg(short = 'n', long = "num", default_value_t = 15)]
        num: usize,
    },
    /// Show one release (default: the newest) and its config vars.
    #[command(name = "releases:info")]
    ReleasesInfo {
        /// The release, like v3.
        release: Option<String>,
        #[command(flatten)]
        app: AppArg,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Roll back code and config to a release (default: the previous one).
    #[command(name = "releases:rollback", visible_alias = "rollback")]
    ReleasesRollback {
        /// The release, like v3.
        release: Option<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Pack a directory (with a Procfile) into a slug and upload it.
    #[command(name = "slugs:upload")]
    SlugsUpload {
        /// The app's built directory.
        dir: std::path::PathBuf,
        /// The commit it was built from.
        #[arg(long)]
        commit: Option<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Pack, upload and release a directory: a deploy without git.
    #[command(name = "deploy:dir")]
    DeployDir {
        /// The app's built directory (with a Procfile).
        dir: std::path::PathBuf,
        /// The commit it was built from (shown as "Deploy <commit>").
        #[arg(long)]
        commit: Option<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// List an app's log drains.
    Drains {
        #[command(flatten)]
        app: AppArg,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Add a log drain: syslog://HOST:PORT, syslog+tls://HOST:PORT or https://HOST/PATH.
    #[command(name = "drains:add")]
    DrainsAdd {
        /// The receiver's URL.
        url: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// Remove a log drain.
    #[command(name = "drains:remove")]
    DrainsRemove {
        /// The drain's URL (or its id or token).
        url: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// List an app's domains: its default one and the custom ones.
    Domains {
        #[command(flatten)]
        app: AppArg,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Add a custom domain, such as www.example.com or *.example.com.
    #[command(name = "domains:add")]
    DomainsAdd {
        /// The hostname.
        hostname: String,
        #[command(flatten)]
        app: AppArg,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Remove a custom domain.
    #[command(name = "domains:remove")]
    DomainsRemove {
        /// The hostname (or the domain's id).
        hostname: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// Show one domain.
    #[command(name = "domains:info")]
    DomainsInfo {
        /// The hostname (or the domain's id).
        hostname: String,
        #[command(flatten)]
        app: AppArg,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Remove all custom domains of an app.
    #[command(name = "domains:clear")]
    DomainsClear {
        #[command(flatten)]
        app: AppArg,
    },
    /// List an app's builds (one per `git push` of main).
    Builds {
        #[command(flatten)]
        app: AppArg,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Print a build's output (the newest build's without an id).
    #[command(name = "builds:output")]
    BuildsOutput {
        /// The build's id.
        id: Option<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Empty the app's build cache; the next build starts from scratch.
    #[command(name = "builds:cache:purge")]
    BuildsCachePurge {
        #[command(flatten)]
        app: AppArg,
        /// The app's name again, to confirm without a prompt.
        #[arg(long)]
        confirm: Option<String>,
    },
    /// Show the buildpacks an app has set (none: pushes detect one).
    Buildpacks {
        #[command(flatten)]
        app: AppArg,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Set the app's buildpack: a shipped one's name (python), an
    /// absolute path on the host, or a git URL (with #branch).
    #[command(name = "buildpacks:set")]
    BuildpacksSet {
        /// The buildpack.
        buildpack: String,
        /// Replace the one at this position (from 1) instead of all.
        #[arg(short = 'i', long)]
        index: Option<usize>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Add a buildpack to the app's chain (at the end, or at --index).
    #[command(name = "buildpacks:add")]
    BuildpacksAdd {
        /// The buildpack.
        buildpack: String,
        /// Insert at this position (from 1).
        #[arg(short = 'i', long)]
        index: Option<usize>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Remove a buildpack from the app's chain, by name or --index.
    #[command(name = "buildpacks:remove")]
    BuildpacksRemove {
        /// The buildpack.
        buildpack: Option<String>,
        /// Remove the one at this position (from 1).
        #[arg(short = 'i', long)]
        index: Option<usize>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Clear the app's buildpacks: pushes detect one again.
    #[command(name = "buildpacks:clear")]
    BuildpacksClear {
        #[command(flatten)]
        app: AppArg,
    },
    /// Add a git remote for the app (default name `corral`) and let git
    /// get the API token from this CLI when it pushes.
    #[command(name = "git:remote")]
    GitRemote {
        /// The remote's name.
        #[arg(short = 'r', long, default_value = "corral")]
        remote: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// git's credential helper (set up by git:remote; run by git).
    #[command(name = "git:credentials", hide = true)]
    GitCredentials {
        /// get, store or erase.
        operation: String,
    },
    /// List an app's SSL certificates (SNI endpoints).
    Certs {
        #[command(flatten)]
        app: AppArg,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Add an SSL certificate: the router serves it over TLS for the
    /// app's domains it names (`certs:add server.crt server.key`).
    #[command(name = "certs:add")]
    CertsAdd {
        /// The certificate chain, PEM: the server certificate, then its
        /// intermediates.
        crt: std::path::PathBuf,
        /// Its private key, PEM, unencrypted.
        key: std::path::PathBuf,
        #[command(flatten)]
        app: AppArg,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Show an SSL certificate's details.
    #[command(name = "certs:info")]
    CertsInfo {
        /// The certificate's name (needed when the app has several).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        app: AppArg,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Remove an SSL certificate.
    #[command(name = "certs:remove")]
    CertsRemove {
        /// The certificate's name (needed when the app has several).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        app: AppArg,
        /// The app's name again, to confirm without a prompt.
        #[arg(long)]
        confirm: Option<String>,
    },
    /// Print whether an app is in maintenance mode: on or off.
    Maintenance {
        #[command(flatten)]
        app: AppArg,
    },
    /// Put an app in maintenance mode: the router answers with a
    /// maintenance page instead of forwarding requests.
    #[command(name = "maintenance:on")]
    MaintenanceOn {
        #[command(flatten)]
        app: AppArg,
    },
    /// Take an app out of maintenance mode.
    #[command(name = "maintenance:off")]
    MaintenanceOff {
        #[command(flatten)]
        app: AppArg,
    },
    /// Show the app's log stream: dynos, router and platform lines.
    Logs {
        /// History lines first (at most 1500).
        #[arg(short = 'n', long = "num", default_value_t = 100)]
        num: u32,
        /// Keep streaming new lines.
        #[arg(short = 't', long)]
        tail: bool,
        /// Only this dyno (web.1), process type (web) or `router`.
        #[arg(short = 'd', long = "dyno-name", visible_alias = "dyno", alias = "ps")]
        dyno: Option<String>,
        /// Only `app` lines, or the platform's (`corral`).
        #[arg(short = 's', long)]
        source: Option<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// The router's figures for an app: requests per status class,
    /// p50/p95/p99 service and queue time over the last minutes.
    Metrics {
        /// Minutes to look back over (1 to 60).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=60))]
        minutes: u32,
        #[command(flatten)]
        app: AppArg,
        #[command(flatten)]
        json: JsonArg,
    },
    /// List an app's dynos and their state.
    Ps {
        #[command(flatten)]
        app: AppArg,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Restart all dynos, one (`ps:restart web.1`) or a type's (`ps:restart web`).
    #[command(name = "ps:restart", visible_alias = "restart")]
    PsRestart {
        /// A dyno, like web.1, or a process type, like web.
        dyno: Option<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Stop a dyno or a type's dynos; formation dynos are started again
    /// fresh, a one-off dyno ends.
    #[command(name = "ps:stop", visible_alias = "stop")]
    PsStop {
        /// A dyno, like web.1 or run.4211, or a process type, like web.
        dyno: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// Show or change the dyno size of process types: `ps:type web=standard-2x`.
    #[command(name = "ps:type", visible_alias = "ps:resize")]
    PsType {
        /// TYPE=SIZE; none shows the current sizes.
        changes: Vec<String>,
        #[command(flatten)]
        app: AppArg,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Show an app's formation: how many dynos of each process type.
    #[command(name = "ps:formation", visible_alias = "formation")]
    PsFormation {
        #[command(flatten)]
        app: AppArg,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Scale process types: `ps:scale web=2 worker=1:standard-2x`.
    #[command(name = "ps:scale", visible_alias = "scale")]
    PsScale {
        /// TYPE=QUANTITY[:SIZE] or TYPE:SIZE.
        #[arg(required = true)]
        changes: Vec<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Run a command in a one-off dyno, attached to this terminal; exits
    /// with its status: `run bash`, `run -- python manage.py migrate`.
    Run(run::RunArgs),
    /// Run a command in a one-off dyno in the background, logging to the
    /// app's log stream.
    #[command(name = "run:detached")]
    RunDetached(run::DetachedArgs),
    /// Boot a throwaway systemd host with corrald in it (run as root).
    Sandbox(sandbox::SandboxArgs),
    /// Install corrald's systemd units, slice, tmpfiles.d and sysusers.d
    /// files on this host (as root), or below --root.
    Install(install::InstallArgs),
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
