//! The attach protocol: a one-off dyno's terminal as frames over an upgraded HTTP/1.1 connection.
//!
//! `corral run` asks for a dyno with `attach: true` and gets an
//! `attach_url`. It then sends `GET <attach_url>` with `Connection: Upgrade`
//! and `Upgrade: corral-attach`; corrald answers `101 Switching Protocols`,
//! starts the dyno, and from then on both sides speak frames:
//!
//! ```text
//! +------+----------------+------------------+
//! | type | length (u32 BE)| payload          |
//! +------+----------------+------------------+
//!
//! 1 stdin   client -> corrald   bytes for the dyno's stdin
//! 2 stdout  corrald -> client   the dyno's output (stdout and stderr)
//! 3 resize  client -> corrald   columns, rows: two u16 BE
//! 4 eof     client -> corrald   empty: stdin is at its end
//! 5 exit    corrald -> client   the exit status, i32 BE; the last frame
//! ```
//!
//! A status above 128 means the process died of signal `status - 128`, as
//! a shell reports it. A payload is at most [`MAX_PAYLOAD`] bytes; a longer
//! announced length is refused before anything is buffered.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::Decoder;

/// The `Upgrade:` token of the protocol.
pub(crate) const UPGRADE_PROTOCOL: &str = "corral-attach";

/// The largest payload of one frame. Senders split larger data.
pub(crate) const MAX_PAYLOAD: usize = 64 * 1024;

/// Type byte and length.
const HEADER_LEN: usize = 5;

const STDIN: u8 = 1;
const STDOUT: u8 = 2;
const RESIZE: u8 = 3;
const EOF: u8 = 4;
const EXIT: u8 = 5;

/// One message of the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Bytes for the dyno's stdin.
    Stdin(Bytes),
    /// Bytes the dyno wrote.
    Stdout(Bytes),
    /// The client's terminal has this size now.
    Resize {
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// The client's stdin ended.
    StdinEof,
    /// The dyno ended with this status; nothing follows.
    Exit(i32),
}

/// A frame that cannot be sent or read.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// A payload above [`MAX_PAYLOAD`].
    #[error("an attach frame of {len} bytes is larger than the limit of {MAX_PAYLOAD}")]
    TooLarge {
        /// The announced or given length.
        len: usize,
    },
    /// A type byte this version does not know.
    #[error("unknown attach frame type {0}; are corral and corrald of different versions?")]
    UnknownType(u8),
    /// A fixed-size frame with another length.
    #[error("an attach frame of type {kind} has {len} payload bytes instead of {expected}")]
    BadLength {
        /// The type byte.
        kind: u8,
        /// What it had.
        len: usize,
        /// What it needs.
        expected: usize,
    },
    /// The connection ended in the middle of a frame.
    #[error("the attach connection ended in the middle of a frame")]
    Truncated,
    /// Reading or writing the connection failed.
    #[error("the attach connection failed: {0}")]
    Io(#[from] std::io::Error),
}

impl Frame {
    fn kind(&self) -> u8 {
        match self {
            Frame::Stdin(_) => STDIN,
            Frame::Stdout(_) => STDOUT,
            Frame::Resize { .. } => RESIZE,
            Frame::StdinEof => EOF,
            Frame::Exit(_) => EXIT,
        }
    }

    /// The frame as bytes on the wire.
    pub(crate) fn to_bytes(&self) -> Result<Bytes, AttachError> {
        let mut payload = BytesMut::new();
        match self {
            Frame::Stdin(data) | Frame::Stdout(data) => payload.put_slice(data),
            Frame::Resize { cols, rows } => {
                payload.put_u16(*cols);
                payload.put_u16(*rows);
            }
            Frame::StdinEof => {}
            Frame::Exit(status) => payload.put_i32(*status),
        }
        let len = payload.len();
        if len > MAX_PAYLOAD {
            return Err(AttachError::TooLarge { len });
        }
        let mut out = BytesMut::with_capacity(HEADER_LEN + len);
        out.put_u8(self.kind());
        // Fits: at most MAX_PAYLOAD.
        out.put_u32(len as u32);
        out.put_slice(&payload);
        Ok(out.freeze())
    }
}

/// Takes one whole frame off the front of `src`; `None` while it holds
/// only part of one. The length is checked before the payload arrives.
pub fn decode(src: &mut BytesMut) -> Result<Option<Frame>, AttachError> {
    if src.len() < HEADER_LEN {
        return Ok(None);
    }
    let kind = src[0];
    let len = u32::from_be_bytes([src[1], src[2], src[3], src[4]]) as usize;
    if len > MAX_PAYLOAD {
        return Err(AttachError::TooLarge { len });
    }
    let fixed = match kind {
        STDIN | STDOUT => None,
        RESIZE | EXIT => Some(4),
        EOF => Some(0),
        other => return Err(AttachError::UnknownType(other)),
    };
    if let Some(expected) = fixed.filter(|e| *e != len) {
        return Err(AttachError::BadLength {
            kind,
            len,
            expected,
        });
    }
    if src.len() < HEADER_LEN + len {
        src.reserve(HEADER_LEN + len - src.len());
        return Ok(None);
    }
    src.advance(HEADER_LEN);
    let mut payload = src.split_to(len).freeze();
    Ok(Some(match kind {
        STDIN => Frame::Stdin(payload),
        STDOUT => Frame::Stdout(payload),
        RESIZE => Frame::Resize {
            cols: payload.get_u16(),
            rows: payload.get_u16(),
        },
        EOF => Frame::StdinEof,
        _ => Frame::Exit(payload.get_i32()),
    }))
}

/// [`decode`] as a tokio codec, for `FramedRead` over the connection.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Codec;

impl Decoder for Codec {
    type Item = Frame;
    type Error = AttachError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, AttachError> {
        decode(src)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, AttachError> {
        match decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(AttachError::Truncated),
        }
    }
}

/// The process exit code for a remote status: statuses outside 0..=255
/// (which a dyno cannot produce) become 255.
pub(crate) fn exit_code(status: i32) -> u8 {
    u8::try_from(status).unwrap_or(255)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_kinds() -> Vec<Frame> {
        vec![
            Frame::Stdin(Bytes::from_static(b"echo hi\r")),
            Frame::Stdout(Bytes::from(vec![0u8, 255, 10, 13])),
            Frame::Stdout(Bytes::from(vec![7u8; MAX_PAYLOAD])),
            Frame::Stdin(Bytes::new()),
            Frame::Resize {
                cols: 132,
                rows: 43,
            },
            Frame::StdinEof,
            Frame::Exit(3),
            Frame::Exit(-1),
        ]
    }

    #[test]
    fn frames_round_trip_whole_and_byte_by_byte() {
        let frames = all_kinds();
        let mut wire = BytesMut::new();
        for frame in &frames {
            wire.extend_from_slice(&frame.to_bytes().expect("encode"));
        }
        let mut whole = wire.clone();
        let mut decoded = Vec::new();
        while let Some(frame) = decode(&mut whole).expect("decode") {
            decoded.push(frame);
        }
        assert_eq!(decoded, frames);
        assert!(whole.is_empty());

        // Fed one byte at a time, as a slow connection would.
        let mut codec = Codec;
        let mut buf = BytesMut::new();
        let mut decoded = Vec::new();
        for byte in wire.iter() {
            buf.put_u8(*byte);
            while let Some(frame) = codec.decode(&mut buf).expect("decode") {
                decoded.push(frame);
            }
        }
        assert_eq!(codec.decode_eof(&mut buf).expect("clean end"), None);
        assert_eq!(decoded, frames);
    }

    #[test]
    fn the_wire_format_is_as_documented() {
        let bytes = Frame::Resize { cols: 80, rows: 24 }
            .to_bytes()
            .expect("encode");
        assert_eq!(&bytes[..], &[3, 0, 0, 0, 4, 0, 80, 0, 24]);
        let bytes = Frame::Exit(130).to_bytes().expect("encode");
        assert_eq!(&bytes[..], &[5, 0, 0, 0, 4, 0, 0, 0, 130]);
    }

    #[test]
    fn oversized_frames_are_refused_before_buffering() {
        let too_big = Frame::Stdout(Bytes::from(vec![0u8; MAX_PAYLOAD + 1]));
        assert!(matches!(
            too_big.to_bytes(),
            Err(AttachError::TooLarge { len }) if len == MAX_PAYLOAD + 1
        ));
        // Only the header of a 4 GiB frame: refused at once.
        let mut src = BytesMut::from(&[STDIN, 0xff, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            decode(&mut src),
            Err(AttachError::TooLarge { len }) if len == u32::MAX as usize
        ));
    }

    #[test]
    fn malformed_and_truncated_frames_are_errors() {
        let mut unknown = BytesMut::from(&[9u8, 0, 0, 0, 0][..]);
        assert!(matches!(
            decode(&mut unknown),
            Err(AttachError::UnknownType(9))
        ));
        let mut short_resize = BytesMut::from(&[RESIZE, 0, 0, 0, 2, 0, 80][..]);
        assert!(matches!(
            decode(&mut short_resize),
            Err(AttachError::BadLength {
                kind: RESIZE,
                len: 2,
                expected: 4
            })
        ));
        let mut eof_with_data = BytesMut::from(&[EOF, 0, 0, 0, 1, 0][..]);
        assert!(decode(&mut eof_with_data).is_err());

        // The connection ends after part of a frame: header, or payload.
        let whole = Frame::Stdin(Bytes::from_static(b"hello"))
            .to_bytes()
            .expect("encode");
        for cut in [1, HEADER_LEN, whole.len() - 1] {
            let mut partial = BytesMut::from(&whole[..cut]);
            assert_eq!(decode(&mut partial).expect("incomplete"), None);
            assert!(
                matches!(Codec.decode_eof(&mut partial), Err(AttachError::Truncated)),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn exit_codes_stay_in_a_byte() {
        assert_eq!(exit_code(0), 0);
        assert_eq!(exit_code(3), 3);
        assert_eq!(exit_code(143), 143);
        assert_eq!(exit_code(-1), 255);
        assert_eq!(exit_code(256), 255);
    }
}
