//! A reader that watches the decompressed tar stream to bound the bytes and
//! the memory the tar crate can be made to spend.
//!
//! The extractor counts the declared size of every entry it sees, but the
//! tar crate consumes GNU long-name/long-link and PAX headers itself and reads
//! each one whole into memory: a single `L` header declaring 4 GiB would
//! allocate 4 GiB. This guard follows the tar framing alongside the crate
//! (reusing its header and PAX parsers, so both agree on where each header
//! starts) and refuses oversized extension headers before their bytes are
//! read. A cap on the whole decompressed stream backs it up, so even a
//! framing disagreement cannot turn into an unbounded gzip bomb.

use std::error::Error;
use std::fmt;
use std::io::{self, Read};

const BLOCK: u64 = 512;

/// A limit the guard enforced; carried inside an `io::Error` through the tar
/// crate and turned back into a `SlugError` by the extractor.
#[derive(Debug)]
pub(crate) struct GuardViolation {
    /// What was too large.
    pub(crate) what: &'static str,
    /// The limit in force.
    pub(crate) max: u64,
    /// The config key behind the limit.
    pub(crate) key: &'static str,
}

impl fmt::Display for GuardViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} exceeds {}", self.what, self.max)
    }
}

impl Error for GuardViolation {}

/// See the module docs.
pub(crate) struct TarGuard<R> {
    inner: R,
    /// Decompressed bytes passed so far, and the most allowed.
    total: u64,
    max_total: u64,
    /// The largest extension (L/K/x/g) payload allowed.
    max_meta: u64,
    header: [u8; BLOCK as usize],
    filled: usize,
    /// Payload and padding bytes still to pass before the next header.
    skip: u64,
    /// A PAX header's payload being collected, with the bytes still due.
    pax: Option<(Vec<u8>, u64)>,
    /// The PAX `size` override waiting for the next real entry.
    pending_size: Option<u64>,
    /// An end-of-archive block was seen: the tar crate reads no further.
    ended: bool,
}

impl<R> TarGuard<R> {
    pub(crate) fn new(inner: R, max_total: u64, max_meta: u64) -> Self {
        Self {
            inner,
            total: 0,
            max_total,
            max_meta,
            header: [0; BLOCK as usize],
            filled: 0,
            skip: 0,
            pax: None,
            pending_size: None,
            ended: false,
        }
    }

    fn observe(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() && !self.ended {
            if self.skip > 0 {
                let n = buf
                    .len()
                    .min(usize::try_from(self.skip).unwrap_or(usize::MAX));
                if let Some((data, due)) = &mut self.pax {
                    let take = n.min(usize::try_from(*due).unwrap_or(usize::MAX));
                    data.extend_from_slice(&buf[..take]);
                    *due -= take as u64;
                }
                self.skip -= n as u64;
                buf = &buf[n..];
                if self.skip == 0 {
                    self.finish_payload();
                }
                continue;
            }
            let n = buf.len().min(self.header.len() - self.filled);
            self.header[self.filled..self.filled + n].copy_from_slice(&buf[..n]);
            self.filled += n;
            buf = &buf[n..];
            if self.filled == self.header.len() {
                self.filled = 0;
                self.on_header()?;
            }
        }
        Ok(())
    }

    fn finish_payload(&mut self) {
        if let Some((data, _)) = self.pax.take() {
            self.pending_size = pax_size(&data);
        }
    }

    /// Mirrors `tar::Archive`'s framing: extension headers use their own
    /// size; the next real entry uses a PAX `size` if one preceded it.
    fn on_header(&mut self) -> io::Result<()> {
        if self.header.iter().all(|b| *b == 0) {
            self.ended = true;
            return Ok(());
        }
        let header = tar::Header::from_byte_slice(&self.header);
        let ty = header.entry_type();
        // A corrupt size field makes the tar crate fail on this same header.
        let Ok(size) = header.entry_size() else {
            self.ended = true;
            return Ok(());
        };
        let is_ext = ty.is_gnu_longname()
            || ty.is_gnu_longlink()
            || ty.is_pax_local_extensions()
            || ty.is_pax_global_extensions();
        let size = if is_ext {
            if size > self.max_meta {
                return Err(violation(GuardViolation {
                    what: "a long-name or PAX header's size",
                    max: self.max_meta,
                    key: "max-path-len",
                }));
            }
            size
        } else {
            self.pending_size.take().unwrap_or(size)
        };
        if ty.is_gnu_sparse() {
            // Sparse headers are followed by extra header blocks this guard
            // does not track; the extractor refuses sparse entries anyway.
            self.ended = true;
            return Ok(());
        }
        self.skip = size
            .checked_add(BLOCK - 1)
            .map(|s| s & !(BLOCK - 1))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "entry size overflows"))?;
        if ty.is_pax_local_extensions() {
            // Bounded by max_meta above.
            self.pax = Some((Vec::with_capacity(size as usize), size));
            if self.skip == 0 {
                self.finish_payload();
            }
        }
        Ok(())
    }
}

/// The `size` record of a PAX header exactly as the tar crate reads it:
/// the first `size` key, parsed as u64, stopping at the first malformed record.
fn pax_size(data: &[u8]) -> Option<u64> {
    for ext in tar::PaxExtensions::new(data) {
        let ext = ext.ok()?;
        if ext.key() != Ok("size") {
            continue;
        }
        return ext.value().ok()?.parse::<u64>().ok();
    }
    None
}

fn violation(v: GuardViolation) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, v)
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.total = self.total.saturating_add(n as u64);
        if self.total > self.max_total {
            return Err(violation(GuardViolation {
                what: "the decompressed archive",
                max: self.max_total,
                key: "max-unpacked-bytes",
            }));
        }
        self.observe(&buf[..n])?;
        Ok(n)
    }
}
