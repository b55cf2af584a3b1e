//! An attached one-off's session: the client's frames to the dyno's stdin and terminal, its output and exit status back.

use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use super::super::stdio::{Input, Output};
use super::{shell_status, SessionEnd, OUTPUT_CHUNK, OUTPUT_DRAIN, STDIN_BACKLOG, UNKNOWN_STATUS};
use crate::attach::{Codec, Frame};
use crate::systemd::UnitStatus;

/// Tells a client that its dyno could not start, then gives up on it.
pub(super) async fn refuse<W: AsyncWrite + Unpin>(writer: &mut W, message: &str) {
    for frame in [
        Frame::Stdout(Bytes::from(message.to_owned())),
        Frame::Exit(UNKNOWN_STATUS),
    ] {
        if send(writer, &frame).await.is_err() {
            return;
        }
    }
    let _ = writer.shutdown().await;
}

async fn send<W: AsyncWrite + Unpin>(writer: &mut W, frame: &Frame) -> std::io::Result<()> {
    let bytes = frame
        .to_bytes()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    writer.write_all(&bytes).await?;
    writer.flush().await
}

/// Relays frames between the client and the dyno until the dyno has ended
/// and its output is read (or [`OUTPUT_DRAIN`] passed), then sends the
/// exit status. Every branch is cancel-safe, so one `select!` serves all.
pub(super) async fn relay<R, W>(
    frames: &mut FramedRead<R, Codec>,
    writer: &mut W,
    output: &mut Output,
    input: &mut Input,
    watched: &mut dyn super::super::Watched,
    shutdown: &CancellationToken,
) -> SessionEnd
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; OUTPUT_CHUNK];
    let mut output_open = true;
    let mut client_open = true;
    let mut to_stdin = BytesMut::new();
    let mut eof_wanted = false;
    let mut status: Option<UnitStatus> = None;
    let drain = tokio::time::sleep(Duration::MAX);
    tokio::pin!(drain);
    {
        let exit = watched.wait_exit();
        tokio::pin!(exit);
        while output_open || status.is_none() {
            tokio::select! {
                read = output.read(&mut buf), if output_open => match read {
                    Ok(n) if n > 0 => {
                        let frame = Frame::Stdout(Bytes::copy_from_slice(&buf[..n]));
                        if send(writer, &frame).await.is_err() {
                            return SessionEnd::Abandoned;
                        }
                    }
                    // End of output (or an error reading it: there will be
                    // no more either way).
                    _ => output_open = false,
                },
                frame = frames.next(), if client_open && to_stdin.len() < STDIN_BACKLOG => {
                    match frame {
                        Some(Ok(Frame::Stdin(data))) => to_stdin.extend_from_slice(&data),
                        Some(Ok(Frame::Resize { cols, rows })) => {
                            if let Err(e) = input.resize(cols, rows) {
                                tracing::debug!(error = %e, "cannot resize the terminal");
                            }
                        }
                        Some(Ok(Frame::StdinEof)) => eof_wanted = true,
                        Some(Ok(other)) => {
                            tracing::debug!(?other, "ignoring a frame only corrald sends");
                        }
                        // Gone (or garbled) before the dyno ended. After
                        // the end, only the status is left to send.
                        Some(Err(_)) | None if status.is_none() => return SessionEnd::Abandoned,
                        Some(Err(_)) | None => client_open = false,
                    }
                }
                written = input.write(&to_stdin), if !to_stdin.is_empty() => match written {
                    Ok(n) => to_stdin.advance(n),
                    // The dyno closed its stdin: what it did not read is lost,
                    // as with a pipe.
                    Err(_) => to_stdin.clear(),
                },
                ended = &mut exit, if status.is_none() => match ended {
                    Ok(ended) => {
                        status = Some(ended);
                        drain.as_mut().reset(tokio::time::Instant::now() + OUTPUT_DRAIN);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "lost track of a one-off dyno");
                        return SessionEnd::Abandoned;
                    }
                },
                () = &mut drain, if status.is_some() => break,
                () = shutdown.cancelled() => return SessionEnd::Abandoned,
            }
            if eof_wanted && to_stdin.is_empty() {
                eof_wanted = false;
                input.end().await;
            }
        }
    }
    let Some(status) = status else {
        return SessionEnd::Abandoned;
    };
    // The client may be gone by now; the dyno ended regardless.
    let _ = send(writer, &Frame::Exit(shell_status(&status))).await;
    SessionEnd::Exited(status)
}
