//! `run` and `run:detached`: a command in a one-off dyno, attached to this terminal or not.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::process::ExitCode;

use bytes::Bytes;
use clap::Args;
use futures_util::StreamExt;
use hyper_util::rt::TokioIo;
use rustix::termios::{tcgetattr, tcgetwinsize, tcsetattr, OptionalActions, Termios};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::codec::FramedRead;

use super::client::Client;
use super::config_vars::shell_quote;
use super::ps::display_size;
use super::{output, AppArg, CliError};
use crate::api::types::{Dyno, DynoCreate};
use crate::attach::{exit_code, Codec, Frame, UPGRADE_PROTOCOL};
use crate::model::{AppName, ConfigVarName};

/// Options shared by `run` and `run:detached`.
#[derive(Debug, Clone, Args)]
pub(crate) struct DynoOptions {
    #[command(flatten)]
    app: AppArg,
    /// Dyno size (default: the app's web size, else standard-1X).
    #[arg(short = 's', long)]
    size: Option<String>,
    /// Environment variables for the dyno: "KEY=value;KEY2=value2".
    #[arg(short = 'e', long)]
    env: Vec<String>,
}

/// `corral run`.
#[derive(Debug, Clone, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    options: DynoOptions,
    /// Run without a terminal, even when stdin is one.
    #[arg(long)]
    no_tty: bool,
    /// Accepted for Heroku's CLI users: the exit status always propagates.
    #[arg(short = 'x', long = "exit-code")]
    exit_code: bool,
    /// The command. One word is shell code as given ("rake test"); several
    /// are quoted so the dyno sees the same words (-- sh -c 'exit 3').
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// `corral run:detached`.
#[derive(Debug, Clone, Args)]
pub(crate) struct DetachedArgs {
    #[command(flatten)]
    options: DynoOptions,
    /// The command, as for `run`.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// The command line a dyno runs: one argument is shell code already (as
/// Heroku's CLI takes it); several are single-quoted where needed, so the
/// dyno's shell splits them back into the same words.
pub(crate) fn shell_join(args: &[String]) -> String {
    if let [one] = args {
        return one.clone();
    }
    args.iter()
        .map(|word| shell_quote(word))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Parses `-e "A=1;B=2"` (and repeats of `-e`) into variables.
fn parse_env(specs: &[String]) -> Result<BTreeMap<String, String>, CliError> {
    let mut env = BTreeMap::new();
    for pair in specs.iter().flat_map(|s| s.split(';')) {
        if pair.trim().is_empty() {
            continue;
        }
        let (name, value) = pair.split_once('=').ok_or_else(|| {
            CliError::Usage(format!(
                "{pair:?} is not KEY=value; separate variables with ';', e.g. -e \"A=1;B=2\"."
            ))
        })?;
        let name = ConfigVarName::parse(name.trim()).map_err(|e| CliError::Usage(e.message))?;
        env.insert(name.to_string(), value.to_owned());
    }
    Ok(env)
}

impl DynoOptions {
    fn request(&self, command: String, attach: bool) -> Result<DynoCreate, CliError> {
        // The size is the server's to check: an operator may add sizes
        // (`[dynos.sizes]`) this client cannot know.
        let env = parse_env(&self.env)?;
        Ok(DynoCreate {
            command,
            attach: Some(attach),
            env: (!env.is_empty()).then_some(env),
            force_no_tty: None,
            size: self.size.clone(),
            process_type: None,
            time_to_live: None,
        })
    }
}

/// `corral run`: exits with the dyno's exit status.
pub(super) async fn run(client: &Client, args: RunArgs) -> Result<ExitCode, CliError> {
    // -x/--exit-code is what this command always does.
    let _ = args.exit_code;
    let app = super::settings::resolve_app(args.options.app.app.clone())?;
    let command = shell_join(&args.command);
    // Like ssh: a terminal only when there is one to connect it to.
    let tty = !args.no_tty && std::io::stdin().is_terminal();
    let mut request = args.options.request(command.clone(), true)?;
    request.force_no_tty = Some(!tty);
    if tty {
        if let Ok(term) = std::env::var("TERM") {
            request
                .env
                .get_or_insert_with(BTreeMap::new)
                .entry("TERM".to_owned())
                .or_insert(term);
        }
    }
    let (dyno, connection) = output::action(
        &format!("Running `{command}` on {}", output::app_label(app.as_str())),
        async {
            let dyno: Dyno = client
                .send_json(http::Method::POST, &format!("/apps/{app}/dynos"), &request)
                .await?;
            let url = dyno.attach_url.clone().ok_or_else(|| {
                CliError::Protocol("the API gave no attach URL for the dyno".to_owned())
            })?;
            let connection = client.upgrade(&url, UPGRADE_PROTOCOL).await?;
            Ok::<_, CliError>((dyno, connection))
        },
    )
    .await?;
    eprintln!("up, {} ({})", dyno.name, display_size(&dyno.size));
    let status = {
        // Restored when this block ends, however it ends.
        let _raw = if tty { Some(RawMode::enter()?) } else { None };
        session(TokioIo::new(connection), tty).await
    }?;
    Ok(ExitCode::from(exit_code(status)))
}

/// `corral run:detached`.
pub(super) async fn detached(client: &Client, args: DetachedArgs) -> Result<(), CliError> {
    let app: AppName = super::settings::resolve_app(args.options.app.app.clone())?;
    let command = shell_join(&args.command);
    let request = args.options.request(command.clone(), false)?;
    let dyno: Dyno = output::action(
        &format!("Running `{command}` on {}", output::app_label(app.as_str())),
        client.send_json(http::Method::POST, &format!("/apps/{app}/dynos"), &request),
    )
    .await?;
    eprintln!("done, {} ({})", dyno.name, display_size(&dyno.size));
    println!(
        "Run `corral logs -a {app} --dyno {}` to view the output.",
        dyno.name
    );
    Ok(())
}

/// Relays stdin, window sizes and output until the dyno's exit status.
async fn session<S>(connection: S, tty: bool) -> Result<i32, CliError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let io = |context: &str| {
        let context = context.to_owned();
        move |source| CliError::Io { context, source }
    };
    let (reader, mut writer) = tokio::io::split(connection);
    let mut frames = FramedRead::new(reader, Codec);
    let mut stdin = tokio::io::stdin();
    let mut stdout = tokio::io::stdout();
    let mut resized = signal(SignalKind::window_change()).map_err(io("cannot watch SIGWINCH"))?;
    let mut hangup = signal(SignalKind::hangup()).map_err(io("cannot watch SIGHUP"))?;
    let mut terminate = signal(SignalKind::terminate()).map_err(io("cannot watch SIGTERM"))?;
    let lost =
        |e: std::io::Error| CliError::Protocol(format!("lost the connection to the dyno: {e}"));
    if tty {
        if let Some(frame) = window_size() {
            send(&mut writer, &frame).await.map_err(lost)?;
        }
    }
    let mut buf = vec![0u8; 16 * 1024];
    let mut stdin_open = true;
    loop {
        tokio::select! {
            read = stdin.read(&mut buf), if stdin_open => {
                let frame = match read {
                    Ok(n) if n > 0 => Frame::Stdin(Bytes::copy_from_slice(&buf[..n])),
                    // End of input (or unreadable input): the dyno sees EOF.
                    _ => {
                        stdin_open = false;
                        Frame::StdinEof
                    }
                };
                send(&mut writer, &frame).await.map_err(lost)?;
            }
            _ = resized.recv(), if tty => {
                if let Some(frame) = window_size() {
                    send(&mut writer, &frame).await.map_err(lost)?;
                }
            }
            frame = frames.next() => match frame {
                Some(Ok(Frame::Stdout(data))) => {
                    stdout.write_all(&data).await.map_err(io("cannot write the output"))?;
                    stdout.flush().await.map_err(io("cannot write the output"))?;
                }
                Some(Ok(Frame::Exit(status))) => return Ok(status),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(CliError::Protocol(e.to_string())),
                None => {
                    return Err(CliError::Protocol(
                        "the connection to the dyno ended before its exit status".to_owned(),
                    ))
                }
            },
            // Closing the connection makes corrald stop the dyno.
            _ = hangup.recv() => return Ok(128 + 1),
            _ = terminate.recv() => return Ok(128 + 15),
        }
    }
}

async fn send<W: tokio::io::AsyncWrite + Unpin>(
    writer: &mut W,
    frame: &Frame,
) -> std::io::Result<()> {
    let bytes = frame
        .to_bytes()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    writer.write_all(&bytes).await?;
    writer.flush().await
}

/// The terminal's size as a resize frame, when stdin is a terminal that
/// knows its size (a fresh pseudo-terminal says 0x0: the dyno's 80x24
/// default is better than that).
fn window_size() -> Option<Frame> {
    let size = tcgetwinsize(std::io::stdin())
        .ok()
        .filter(|s| s.ws_col > 0 && s.ws_row > 0)?;
    Some(Frame::Resize {
        cols: size.ws_col,
        rows: size.ws_row,
    })
}

/// stdin in raw mode (keystrokes go to the dyno as typed, ^C included)
/// until dropped, which restores the saved settings.
struct RawMode {
    saved: Termios,
}

impl RawMode {
    fn enter() -> Result<Self, CliError> {
        let fail = |e: rustix::io::Errno| CliError::Io {
            context: "cannot put the terminal in raw mode".to_owned(),
            source: e.into(),
        };
        let saved = tcgetattr(std::io::stdin()).map_err(fail)?;
        let mut raw = saved.clone();
        raw.make_raw();
        tcsetattr(std::io::stdin(), OptionalActions::Now, &raw).map_err(fail)?;
        Ok(Self { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Err(e) = tcsetattr(std::io::stdin(), OptionalActions::Now, &self.saved) {
            output::error(&format!("cannot restore the terminal ({e}); run `reset`"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    /// What `sh` makes of a joined command: its words, one per line.
    fn sh_words(command: &str) -> Vec<String> {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "for w in {command}; do printf '%s\\n' \"$w\"; done"
            ))
            .output()
            .expect("sh");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn several_words_are_quoted_back_to_themselves() {
        assert_eq!(
            shell_join(&words(&["sh", "-c", "exit 3"])),
            "sh -c 'exit 3'"
        );
        assert_eq!(
            shell_join(&words(&["python", "manage.py", "migrate"])),
            "python manage.py migrate"
        );
        let tricky = words(&[
            "echo", "%n $HOME", "it's", "a\"b", "`id`", "$(id)", "x;y", "*", "",
        ]);
        let joined = shell_join(&tricky);
        assert_eq!(
            joined,
            r#"echo '%n $HOME' 'it'\''s' 'a"b' '`id`' '$(id)' 'x;y' '*' ''"#
        );
        assert_eq!(sh_words(&joined), tricky);
    }

    #[test]
    fn one_word_is_shell_code_as_given() {
        assert_eq!(shell_join(&words(&["rake test"])), "rake test");
        assert_eq!(shell_join(&words(&["echo $HOME"])), "echo $HOME");
        assert_eq!(shell_join(&words(&["bash"])), "bash");
    }

    #[test]
    fn env_options_split_on_semicolons() {
        let env = parse_env(&words(&["A=1;B=x=y", "C=", ";"])).expect("env");
        assert_eq!(
            env,
            BTreeMap::from([
                ("A".to_owned(), "1".to_owned()),
                ("B".to_owned(), "x=y".to_owned()),
                ("C".to_owned(), String::new()),
            ])
        );
        for bad in ["A", "1A=x", "A-B=1"] {
            assert!(parse_env(&words(&[bad])).is_err(), "{bad}");
        }
    }
}
