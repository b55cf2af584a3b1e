//! `corral install`: puts corrald's systemd units and snippets on this host (or below --root) and starts it.

use std::path::PathBuf;

use clap::Args;

use super::CliError;
use crate::install::{self, Change, Options};

/// Options of `corral install`.
#[derive(Debug, Clone, Args)]
pub(crate) struct InstallArgs {
    /// corrald's path on the target host (default: the corrald beside this
    /// corral).
    #[arg(long, value_name = "PATH")]
    corrald: Option<PathBuf>,
    /// Write the files below DIR instead of / and run nothing (for
    /// packages and images, like `systemctl --root`).
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Also enable and start corrald.service (and the router's units with
    /// --split-router).
    #[arg(long)]
    now: bool,
    /// Run the router as its own units: a new config gets
    /// `[router] mode = "split"`, and --now starts corral-router.socket and
    /// corral-router.service too.
    #[arg(long)]
    split_router: bool,
    /// Replace installed files that differ from this version's.
    #[arg(long)]
    force: bool,
}

pub(super) fn run(args: InstallArgs) -> Result<(), CliError> {
    let corrald = match args.corrald {
        Some(path) => path,
        None => install::default_corrald().ok_or_else(|| {
            CliError::Usage(
                "cannot tell where this corral runs from; name corrald with --corrald PATH"
                    .to_owned(),
            )
        })?,
    };
    let options = Options {
        root: args.root.clone(),
        corrald,
        split_router: args.split_router,
        force: args.force,
        now: args.now,
    };
    let plan = install::plan(&options)?;
    install::apply(&plan, &mut |line| println!("{line}"))?;

    let replaced = plan.files.iter().any(|f| f.change == Change::Replace);
    match &args.root {
        Some(root) => eprintln!(
            "\nThe files are below {}. On the target host, run as root:\n  systemd-sysusers {}\n  systemd-tmpfiles --create {}\n  systemctl daemon-reload\n  systemctl enable --now corrald.service",
            root.display(),
            install::SYSUSERS_PATH,
            install::TMPFILES_PATH
        ),
        None if args.now => {
            if replaced {
                eprintln!("\nA unit changed while corrald may have been running: `systemctl restart corrald` applies it.");
            }
            eprintln!(
                "\ncorrald is enabled and started; its log: journalctl -u corrald\nCreate an API token with: corrald tokens create --name NAME\nMembers of group corral (usermod -aG corral USER) may use its socket, unix:///var/lib/corral/api.sock."
            );
        }
        None => eprintln!(
            "\nStart corrald with: systemctl enable --now corrald.service{}",
            if args.split_router {
                " corral-router.socket corral-router.service"
            } else {
                ""
            }
        ),
    }
    Ok(())
}
