//! The argument grammar: every `corral` subcommand, its arguments and its help text.

use clap::Subcommand;

use super::{install, run, sandbox, AppArg, JsonArg};

#[derive(Debug, Subcommand)]
pub(super) enum Command {
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
        /// The commit it was built from (the release reads "Deploy" and its short form).
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
        /// TYPE=QUANTITY, TYPE=QUANTITY:SIZE or TYPE:SIZE.
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
