//! The pseudo-terminal of an attached one-off dyno: corrald keeps the master, systemd opens the slave by path.
//!
//! corrald never opens the slave itself. That way the master reads end of
//! file (Linux: `EIO`) exactly when the last process of the dyno has closed
//! it, after everything it wrote has been read: the end of the output.

use std::io;
use std::os::fd::OwnedFd;

use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
use rustix::termios::{tcgetattr, tcsetwinsize, SpecialCodeIndex, Winsize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The size a terminal has until the client reports its own.
const DEFAULT_SIZE: (u16, u16) = (80, 24);

/// A terminal pair whose slave a unit opens through `TTYPath=`.
///
/// Reading and writing go through tokio's blocking pool on two duplicates
/// of the master: registering a terminal with the reactor (`AsyncFd`)
/// takes `unsafe` in this tokio, which the crate forbids. Each has its own
/// file, so a read waiting for output never holds up input.
#[derive(Debug)]
pub(super) struct Pty {
    master: OwnedFd,
    path: String,
}

/// The master's output side.
#[derive(Debug)]
pub(super) struct PtyReader(tokio::fs::File);

/// The master's input side.
#[derive(Debug)]
pub(super) struct PtyWriter(tokio::fs::File);

impl Pty {
    /// Allocates a pair (`/dev/ptmx`), unlocked and sized 80x24.
    pub(super) fn open() -> io::Result<Self> {
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
        grantpt(&master)?;
        unlockpt(&master)?;
        let path = ptsname(&master, Vec::new())?
            .into_string()
            .map_err(|_| io::Error::other("the terminal's path is not UTF-8"))?;
        let pty = Self { master, path };
        pty.resize(DEFAULT_SIZE.0, DEFAULT_SIZE.1)?;
        Ok(pty)
    }

    /// The slave's path, e.g. `/dev/pts/3`.
    pub(super) fn path(&self) -> &str {
        &self.path
    }

    /// A reader of the output.
    pub(super) fn reader(&self) -> io::Result<PtyReader> {
        Ok(PtyReader(
            std::fs::File::from(self.master.try_clone()?).into(),
        ))
    }

    /// A writer of the input.
    pub(super) fn writer(&self) -> io::Result<PtyWriter> {
        Ok(PtyWriter(
            std::fs::File::from(self.master.try_clone()?).into(),
        ))
    }

    /// Sets the window size; the kernel sends SIGWINCH to the foreground
    /// process group when it changes.
    pub(super) fn resize(&self, cols: u16, rows: u16) -> io::Result<()> {
        let size = Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        Ok(tcsetwinsize(&self.master, size)?)
    }

    /// The byte that ends input on this terminal (`VEOF`, normally ^D): a
    /// terminal has no other end of file. It works where the program reads
    /// lines (canonical mode), as at a real terminal.
    pub(super) fn eof_byte(&self) -> io::Result<u8> {
        Ok(tcgetattr(&self.master)?.special_codes[SpecialCodeIndex::VEOF])
    }
}

impl PtyReader {
    /// Reads output; `Ok(0)` once no process has the slave open any more
    /// (Linux reports that as `EIO`). Cancel-safe: an interrupted read's
    /// data is returned by the next call.
    pub(super) async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.read(buf).await {
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::IO.raw_os_error()) => Ok(0),
            other => other,
        }
    }
}

impl PtyWriter {
    /// Writes some of `data` as input; how much it took. tokio's file
    /// writes behind: a failure shows on the next call. Cancel-safe: data
    /// is either taken, and counted, or not.
    pub(super) async fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0.write(data).await
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    /// Stands in for the dyno: opens the slave by path as systemd would.
    fn open_slave(pty: &Pty) -> std::fs::File {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(pty.path())
            .expect("open the slave")
    }

    #[tokio::test]
    async fn output_then_end_of_file_when_the_slave_closes() {
        let pty = Pty::open().expect("pty");
        assert!(pty.path().starts_with("/dev/pts/"), "{}", pty.path());
        let mut reader = pty.reader().expect("reader");
        let mut slave = open_slave(&pty);
        slave.write_all(b"hello\n").expect("write");
        drop(slave);
        let mut out = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            let n = tokio::time::timeout(std::time::Duration::from_secs(10), reader.read(&mut buf))
                .await
                .expect("no hang")
                .expect("read");
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        // The line discipline turns \n into \r\n on output.
        assert_eq!(out, b"hello\r\n");
    }

    #[tokio::test]
    async fn input_size_and_eof_reach_the_slave() {
        let pty = Pty::open().expect("pty");
        let mut slave = open_slave(&pty);
        assert_eq!(
            rustix::termios::tcgetwinsize(&slave)
                .map(|w| (w.ws_col, w.ws_row))
                .expect("size"),
            DEFAULT_SIZE
        );
        pty.resize(132, 43).expect("resize");
        assert_eq!(
            rustix::termios::tcgetwinsize(&slave)
                .map(|w| (w.ws_col, w.ws_row))
                .expect("size"),
            (132, 43)
        );
        let eof = pty.eof_byte().expect("VEOF");
        assert_eq!(eof, 4, "^D");
        let mut writer = pty.writer().expect("writer");
        let line = b"typed\n";
        assert_eq!(writer.write(line).await.expect("write"), line.len());
        assert_eq!(writer.write(&[eof]).await.expect("write"), 1);
        // Canonical mode: a line, then end of file (a read of 0).
        let mut buf = [0u8; 64];
        let n = slave.read(&mut buf).expect("read");
        assert_eq!(&buf[..n], line);
        assert_eq!(slave.read(&mut buf).expect("read"), 0);
    }
}
