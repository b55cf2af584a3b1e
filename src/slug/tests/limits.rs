//! Extraction limits: gzip bombs, oversized extension headers, entry counts and path lengths.

use super::*;

/// A reader producing a tar stream with one 10 GB file of zeros, gzipped
/// lazily: only what the extractor asks for is ever compressed.
fn bomb(pulled: std::sync::Arc<std::sync::atomic::AtomicU64>) -> impl Read {
    let mut h = tar::Header::new_gnu();
    h.set_path("zeros").expect("set path");
    h.set_size(10 << 30);
    h.set_mode(0o644);
    h.set_cksum();
    let tar = io::Cursor::new(h.as_bytes().to_vec()).chain(io::repeat(0).take(10 << 30));
    flate2::read::GzEncoder::new(Counting { inner: tar, pulled }, Compression::fast())
}

/// Counts the bytes read through it: how far an extractor got into a
/// stream, which shows it stopped early without timing anything.
struct Counting<R> {
    inner: R,
    pulled: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pulled
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

#[test]
fn a_gzip_bomb_stops_at_the_limit_fast() {
    let sb = Sandbox::new();
    let pulled = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let err = unpack_archive(bomb(pulled.clone()), &sb.dest, &UnpackLimits::default())
        .expect_err("unpack archive should fail");
    assert!(
        matches!(
            err,
            SlugError::Limit {
                what: "unpacked bytes",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("zeros"), "{err}");
    // The declared 10 GB size is refused from the header: almost nothing of
    // the stream is decompressed.
    let read = pulled.load(std::sync::atomic::Ordering::Relaxed);
    assert!(read < 64 << 20, "read {read} bytes of a 10 GB bomb");
    assert!(!sb.dest.join("zeros").exists());

    // Many honest-looking entries that add up: stopped by declared sizes.
    let sb = Sandbox::new();
    let limits = UnpackLimits {
        max_bytes: 10_000,
        ..UnpackLimits::default()
    };
    let entries: Vec<_> = (0..10)
        .map(|i| file(&format!("f{i}"), &"y".repeat(3000)))
        .collect();
    let err = unpack_archive(&tgz(&entries)[..], &sb.dest, &limits)
        .expect_err("unpack archive should fail");
    assert!(err.to_string().contains("f3"), "{err}");
}

#[test]
fn oversized_extension_headers_are_refused_before_being_read() {
    // A GNU long name of 100 MB would be read whole into memory by the tar
    // crate; the guard refuses it from its header.
    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().expect("as gnu mut").name[..13].copy_from_slice(b"././@LongLink");
    h.set_entry_type(tar::EntryType::GNULongName);
    h.set_size(100 << 20);
    h.set_cksum();
    let pulled = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stream = Counting {
        inner: io::Cursor::new(h.as_bytes().to_vec()).chain(io::repeat(b'a').take(100 << 20)),
        pulled: pulled.clone(),
    };
    let sb = Sandbox::new();
    let err =
        unpack_tar(stream, &sb.dest, &UnpackLimits::default()).expect_err("unpack tar should fail");
    assert!(matches!(err, SlugError::Limit { .. }), "{err}");
    let read = pulled.load(std::sync::atomic::Ordering::Relaxed);
    assert!(read < 1 << 20, "read {read} bytes of a 100 MB header");
}

#[test]
fn entry_count_and_path_length_limits() {
    let limits = UnpackLimits {
        max_entries: 3,
        ..UnpackLimits::default()
    };
    let entries: Vec<_> = (0..5).map(|i| file(&format!("f{i}"), "")).collect();
    let sb = Sandbox::new();
    let err = unpack_archive(&tgz(&entries)[..], &sb.dest, &limits)
        .expect_err("unpack archive should fail");
    assert!(
        matches!(
            err,
            SlugError::Limit {
                what: "entries",
                max: 3,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("f3") && err.to_string().contains("max-entries"));

    let limits = UnpackLimits {
        max_path_len: 20,
        ..UnpackLimits::default()
    };
    let sb = Sandbox::new();
    let err = unpack_archive(&tgz(&[file(&"n".repeat(21), "")])[..], &sb.dest, &limits)
        .expect_err("unpack archive should fail");
    assert!(
        matches!(
            err,
            SlugError::Limit {
                what: "path length",
                ..
            }
        ),
        "{err}"
    );
    let sb = Sandbox::new();
    let err = unpack_archive(&tgz(&[sym("l", &"t".repeat(21))])[..], &sb.dest, &limits)
        .expect_err("unpack archive should fail");
    assert!(matches!(err, SlugError::Limit { .. }), "{err}");
}
