//! The opaque pagination cursor.
//!
//! Entries are listed newest first by `(timestamp, seq)`; a cursor is the
//! position of the last entry of a page. Because `seq` is unique within an
//! organization, the position is total: the next page starts strictly after
//! it, so entries arriving meanwhile are neither skipped nor repeated.
//!
//! Encoding: base64url (no padding) of a version byte and two big-endian i64.
//! Clients must treat it as opaque; the version byte lets it change later.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::Timestamp;

const VERSION: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub timestamp: Timestamp,
    pub seq: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cursor is not one this server issued; use next_cursor from a previous page exactly as given")]
pub struct BadCursor;

impl Cursor {
    pub fn encode(self) -> String {
        let mut buf = [0u8; 17];
        buf[0] = VERSION;
        buf[1..9].copy_from_slice(&self.timestamp.millis().to_be_bytes());
        buf[9..17].copy_from_slice(&self.seq.to_be_bytes());
        URL_SAFE_NO_PAD.encode(buf)
    }

    pub fn decode(s: &str) -> Result<Self, BadCursor> {
        if s.len() > 64 {
            return Err(BadCursor);
        }
        let buf = URL_SAFE_NO_PAD.decode(s).map_err(|_| BadCursor)?;
        if buf.len() != 17 || buf[0] != VERSION {
            return Err(BadCursor);
        }
        let ts = i64::from_be_bytes(buf[1..9].try_into().map_err(|_| BadCursor)?);
        let seq = i64::from_be_bytes(buf[9..17].try_into().map_err(|_| BadCursor)?);
        if seq < 1 {
            return Err(BadCursor);
        }
        Ok(Self {
            timestamp: Timestamp(ts),
            seq,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for (ts, seq) in [(0, 1), (1_790_000_000_123, 42), (-5, i64::MAX), (i64::MIN, 1)] {
            let c = Cursor {
                timestamp: Timestamp(ts),
                seq,
            };
            let s = c.encode();
            assert!(
                s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{s} is URL-safe"
            );
            assert_eq!(Cursor::decode(&s), Ok(c));
        }
    }

    #[test]
    fn refuses_anything_else() {
        let good = Cursor {
            timestamp: Timestamp(1),
            seq: 2,
        }
        .encode();
        for bad in [
            "",
            "abc",
            "!!!!",
            &good[..good.len() - 1],
            &format!("{good}AA"),
            &"A".repeat(100),
        ] {
            assert_eq!(Cursor::decode(bad), Err(BadCursor), "{bad}");
        }
        let mut wrong_version = URL_SAFE_NO_PAD.decode(&good).unwrap();
        wrong_version[0] = 2;
        assert_eq!(Cursor::decode(&URL_SAFE_NO_PAD.encode(wrong_version)), Err(BadCursor));
        let zero_seq = Cursor {
            timestamp: Timestamp(1),
            seq: 0,
        }
        .encode();
        assert_eq!(Cursor::decode(&zero_seq), Err(BadCursor));
    }
}
