//! `corral sandbox`: try Corral on a machine without systemd as PID 1.

use std::path::PathBuf;

use clap::Args;

use super::CliError;
use crate::sandbox::{Sandbox, SandboxOptions};

/// Options of `corral sandbox`.
#[derive(Debug, Clone, Args)]
pub(crate) struct SandboxArgs {
    /// Loopback port for the Platform API.
    #[arg(long, default_value_t = 5555)]
    api_port: u16,
    /// Loopback port for the router.
    #[arg(long, default_value_t = 8080)]
    router_port: u16,
    /// Keep corrald's state in this directory of the machine (default: in
    /// memory, gone at exit).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Name of the throwaway host (unique per machine).
    #[arg(long, default_value = "corral")]
    name: String,
}

pub(super) async fn run(args: SandboxArgs) -> Result<(), CliError> {
    let mut options = SandboxOptions::new(args.name, args.api_port, args.router_port);
    if let Some(dir) = args.state_dir {
        std::fs::create_dir_all(&dir).map_err(|source| CliError::Io {
            context: format!("cannot create {}", dir.display()),
            source,
        })?;
        let dir = dir.canonicalize().map_err(|source| CliError::Io {
            context: format!("cannot resolve {}", dir.display()),
            source,
        })?;
        options.state_dir = Some(dir);
    }
    eprintln!("Booting a throwaway systemd host and starting corrald in it...");
    let sandbox = tokio::task::spawn_blocking(move || Sandbox::start(&options))
        .await
        .map_err(|e| CliError::Protocol(format!("the sandbox task failed: {e}")))??;
    let pid = sandbox.host().map_or(0, crate::sandbox::Host::pid);
    eprintln!(
        "\nCorral is running under a real systemd (PID {pid} on this machine).\n\n  API:     {}\n  Router:  http://{} (apps at http://APP.localhost:{})\n  Token:   {}\n\nIn another shell:\n",
        sandbox.api_url,
        sandbox.router_addr,
        sandbox.router_addr.port(),
        sandbox.token
    );
    println!(
        "export CORRAL_API_URL={} CORRAL_API_TOKEN={}",
        sandbox.api_url, sandbox.token
    );
    eprintln!(
        "corral apps:create demo\n\ncorrald's log: nsenter -t {pid} -a journalctl -u corrald -f\nPress Ctrl-C to stop; the host and everything in it are removed."
    );
    wait_for_stop().await;
    eprintln!("\nStopping corrald and powering the host off...");
    tokio::task::spawn_blocking(move || sandbox.stop())
        .await
        .map_err(|e| CliError::Protocol(format!("the sandbox task failed: {e}")))??;
    eprintln!("Stopped; nothing is left behind.");
    Ok(())
}

async fn wait_for_stop() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => {
            // Without handlers the default action would kill us mid-cleanup;
            // ctrl_c is the last resort that still lets teardown run.
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
