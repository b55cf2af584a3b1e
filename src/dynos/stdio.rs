//! A dyno's stdio and corrald's ends of it: a terminal or pipes for one-offs, an output pipe for the release phase.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;

use super::pty::{Pty, PtyReader, PtyWriter};
use crate::systemd::Stdio;

/// Output only, for a dyno nobody types into: stdin is `/dev/null`,
/// stdout and stderr one pipe, read in order.
pub(crate) fn output_only() -> std::io::Result<(Stdio, Output)> {
    let (tx, rx) = pipe::pipe()?;
    let stdout = tx.into_blocking_fd()?;
    let stdio = Stdio::Fds {
        stdin: std::fs::File::open("/dev/null")?.into(),
        stderr: stdout.try_clone()?,
        stdout,
    };
    Ok((stdio, Output::Pipe(rx)))
}

/// The unit's stdio, and corrald's ends of it: a terminal, or pipes with
/// `force_no_tty`. The ends meant for the unit travel in the `Stdio` and
/// are closed once systemd has its copies, so that the end of the output
/// shows when the dyno closes its own.
pub(crate) fn open(tty: bool) -> std::io::Result<(Stdio, Output, Input)> {
    if tty {
        let pty = Pty::open()?;
        let stdio = Stdio::Tty {
            path: pty.path().to_owned(),
        };
        let (reader, writer) = (pty.reader()?, pty.writer()?);
        return Ok((stdio, Output::Pty(reader), Input::Pty(pty, writer)));
    }
    let (stdin_tx, stdin_rx) = pipe::pipe()?;
    let (stdout_tx, stdout_rx) = pipe::pipe()?;
    let stdout = stdout_tx.into_blocking_fd()?;
    let stdio = Stdio::Fds {
        stdin: stdin_rx.into_blocking_fd()?,
        stderr: stdout.try_clone()?,
        stdout,
    };
    Ok((stdio, Output::Pipe(stdout_rx), Input::Pipe(Some(stdin_tx))))
}

/// Where the dyno's output is read.
pub(crate) enum Output {
    Pty(PtyReader),
    Pipe(pipe::Receiver),
}

impl Output {
    pub(crate) async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Output::Pty(reader) => reader.read(buf).await,
            Output::Pipe(pipe) => pipe.read(buf).await,
        }
    }
}

/// Where the dyno's input is written.
pub(crate) enum Input {
    /// The master (for the window size) and its input side.
    Pty(Pty, PtyWriter),
    Pipe(Option<pipe::Sender>),
}

impl Input {
    pub(crate) async fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        match self {
            Input::Pty(_, writer) => writer.write(data).await,
            Input::Pipe(Some(pipe)) => pipe.write(data).await,
            Input::Pipe(None) => Err(std::io::ErrorKind::BrokenPipe.into()),
        }
    }

    pub(crate) fn resize(&self, cols: u16, rows: u16) -> std::io::Result<()> {
        match self {
            Input::Pty(pty, _) => pty.resize(cols, rows),
            // Without a terminal there is no size to set.
            Input::Pipe(_) => Ok(()),
        }
    }

    /// Ends the dyno's stdin: closes the pipe, or types ^D on a terminal.
    pub(crate) async fn end(&mut self) {
        match self {
            Input::Pty(pty, writer) => {
                if let Ok(eof) = pty.eof_byte() {
                    let _ = writer.write(&[eof]).await;
                }
            }
            Input::Pipe(pipe) => drop(pipe.take()),
        }
    }
}
