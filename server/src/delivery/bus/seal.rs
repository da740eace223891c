//! Sealing bus traffic: every payload a node publishes is encrypted and authenticated under
//! the deployment's cluster key (`CHAT_BUS_KEY`), and every payload a node hears is opened,
//! checked for freshness and replay, and only then believed.
//!
//! Why: the bus is reachable by more than the nodes. Any role that can log in to the
//! database may `LISTEN` and `NOTIFY` on any channel (PostgreSQL has no privilege for
//! either), and anyone who can reach a NATS server without credentials may publish and
//! subscribe. A database login or NATS access must not let anyone read message text or make
//! a node deliver, move or forget anything. The key is not in the database and is not the
//! token secret: only the nodes hold it.
//!
//! The format (version 1): `0x01 | key id (4) | nonce (24) | XChaCha20-Poly1305(header | body)`,
//! with the channel's name and the first five bytes as associated data, so a payload sealed
//! for one deployment's channel does not open on another's. The header is the sending node,
//! its sequence number and the time it was sealed (Unix ms). Random 24-byte nonces: no
//! counter to keep across restarts, and no practical chance of a repeat under one key.
//!
//! Rotation: `CHAT_BUS_KEY` is a comma-separated list; the first key seals, every key
//! opens. Add the new key second on every node (a rolling restart), then put it first
//! everywhere, then drop the old one.

use std::collections::HashMap;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

use super::NodeId;

const VERSION: u8 = 1;
const KEY_ID: usize = 4;
const NONCE: usize = 24;
const HEADER: usize = 8 + 8 + 8;
const TAG: usize = 16;
/// What sealing adds to a body.
pub(crate) const OVERHEAD: usize = 1 + KEY_ID + NONCE + HEADER + TAG;
/// How far from this node's clock a payload's seal time may be: further is refused as stale
/// (a replay of something recorded earlier, or a node whose clock is wrong).
pub(crate) const FRESH_MS: i64 = 30_000;
/// The bytes a key must have.
pub(crate) const KEY_BYTES: usize = 32;

/// The deployment's cluster keys: the first seals, every one opens.
#[derive(Clone)]
pub struct BusKeys {
    keys: Vec<([u8; KEY_ID], XChaCha20Poly1305)>,
}

impl std::fmt::Debug for BusKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key: its id is enough to tell which one a node uses.
        let ids: Vec<String> = self.keys.iter().map(|(id, _)| hex::encode(id)).collect();
        f.debug_struct("BusKeys").field("ids", &ids).finish()
    }
}

impl PartialEq for BusKeys {
    fn eq(&self, other: &Self) -> bool {
        self.ids() == other.ids()
    }
}
impl Eq for BusKeys {}

pub(crate) use crate::delivery::notice::Rejected;

/// Who sealed a payload, in which order, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    /// The sending node.
    pub(crate) node: NodeId,
    /// The sending node's count of sealed payloads (from 1).
    pub(crate) seq: u64,
    /// When it was sealed, Unix ms on the sender's clock.
    pub(crate) sent_ms: i64,
}

impl BusKeys {
    /// Reads `CHAT_BUS_KEY`: comma-separated keys of 32 bytes each, as 64 hex digits or
    /// base64 (standard or URL-safe, padded or not).
    ///
    /// # Errors
    /// A sentence naming the setting and how to make a key.
    pub fn parse(value: &str) -> Result<BusKeys, String> {
        let how = "make one with `openssl rand -hex 32` and give every node of the deployment the same value";
        let mut keys = Vec::new();
        for (n, part) in value.split(',').map(str::trim).enumerate() {
            if part.is_empty() {
                return Err(format!("CHAT_BUS_KEY has an empty key (number {}); {how}", n + 1));
            }
            let bytes = decode_key(part).ok_or_else(|| {
                format!(
                    "CHAT_BUS_KEY's key number {} is not {KEY_BYTES} bytes of hex (64 digits) or base64; {how}",
                    n + 1
                )
            })?;
            let distinct = bytes.iter().collect::<std::collections::HashSet<_>>().len();
            if distinct < 12 {
                return Err(format!("CHAT_BUS_KEY's key number {} is not random enough; {how}", n + 1));
            }
            keys.push(BusKeys::key(&bytes));
        }
        if keys.is_empty() {
            return Err(format!("CHAT_BUS_KEY is empty; {how}"));
        }
        Ok(BusKeys { keys })
    }

    /// Keys from raw bytes (tests, benchmarks): the first seals.
    #[must_use]
    pub fn from_bytes(keys: &[[u8; KEY_BYTES]]) -> BusKeys {
        BusKeys { keys: keys.iter().map(|k| BusKeys::key(k)).collect() }
    }

    fn key(bytes: &[u8]) -> ([u8; KEY_ID], XChaCha20Poly1305) {
        let mut key = [0u8; KEY_BYTES];
        key.copy_from_slice(bytes);
        let digest = Sha256::new().chain_update(b"chat-server bus key id").chain_update(bytes).finalize();
        let mut id = [0; KEY_ID];
        id.copy_from_slice(&digest[..KEY_ID]);
        (id, XChaCha20Poly1305::new(&Key::from(key)))
    }

    /// The keys' ids (hex), the sealing one first: safe to log.
    #[must_use]
    pub fn ids(&self) -> Vec<String> {
        self.keys.iter().map(|(id, _)| hex::encode(id)).collect()
    }

    /// Seals `body` for `channel` under the first key.
    pub(crate) fn seal(&self, channel: &str, header: Header, body: &[u8]) -> Vec<u8> {
        let (id, cipher) = &self.keys[0];
        let nonce: [u8; NONCE] = rand::random();
        let mut plain = Vec::with_capacity(HEADER + body.len());
        plain.extend_from_slice(&header.node.to_le_bytes());
        plain.extend_from_slice(&header.seq.to_le_bytes());
        plain.extend_from_slice(&header.sent_ms.to_le_bytes());
        plain.extend_from_slice(body);
        let mut out = Vec::with_capacity(OVERHEAD + body.len());
        out.push(VERSION);
        out.extend_from_slice(id);
        let aad = aad(channel, &out);
        let sealed = cipher
            .encrypt(&XNonce::from(nonce), Payload { msg: &plain, aad: &aad })
            .unwrap_or_else(|_| unreachable!("XChaCha20-Poly1305 seals any length a bus payload has"));
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens a payload heard on `channel`: who sealed it and its body, if a key of ours
    /// sealed it for this channel.
    pub(crate) fn open(&self, channel: &str, sealed: &[u8]) -> Result<(Header, Vec<u8>), Rejected> {
        if sealed.len() < OVERHEAD || sealed[0] != VERSION {
            return Err(Rejected::Malformed);
        }
        let (prefix, rest) = sealed.split_at(1 + KEY_ID);
        let (nonce, ciphertext) = rest.split_at(NONCE);
        let (_, cipher) = self.keys.iter().find(|(id, _)| id[..] == prefix[1..]).ok_or(Rejected::UnknownKey)?;
        let mut nonce_bytes = [0u8; NONCE];
        nonce_bytes.copy_from_slice(nonce);
        let plain = cipher
            .decrypt(&XNonce::from(nonce_bytes), Payload { msg: ciphertext, aad: &aad(channel, prefix) })
            .map_err(|_| Rejected::Forged)?;
        let word = |at: usize| {
            let mut b = [0; 8];
            b.copy_from_slice(&plain[at..at + 8]);
            b
        };
        let header = Header {
            node: u64::from_le_bytes(word(0)),
            seq: u64::from_le_bytes(word(8)),
            sent_ms: i64::from_le_bytes(word(16)),
        };
        Ok((header, plain[HEADER..].to_vec()))
    }
}

fn aad(channel: &str, prefix: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(16 + channel.len() + prefix.len());
    aad.extend_from_slice(b"chat-bus\0");
    aad.extend_from_slice(channel.as_bytes());
    aad.push(0);
    aad.extend_from_slice(prefix);
    aad
}

fn decode_key(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let bytes = if text.len() == 2 * KEY_BYTES && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(text).ok()?
    } else {
        [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD].iter().find_map(|e| e.decode(text).ok())?
    };
    (bytes.len() == KEY_BYTES).then_some(bytes)
}

/// Freshness and replay: the newest sequence number heard from each node, so a payload
/// recorded off the bus and published again is refused (within [`FRESH_MS`] by its number,
/// after that by its time). Bounded: nodes not heard for twice the window are forgotten,
/// which is safe because anything they sealed is stale by then.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    newest: HashMap<NodeId, (u64, i64)>,
}

/// Nodes remembered at most; past it the ones not heard for longest are forgotten first.
const MAX_REMEMBERED: usize = 4096;

impl Replay {
    /// Whether a payload with `header`, heard at `now_ms`, is fresh and new; if so it is
    /// remembered.
    pub(crate) fn check(&mut self, header: Header, now_ms: i64) -> Result<(), Rejected> {
        if (now_ms - header.sent_ms).abs() > FRESH_MS {
            return Err(Rejected::Stale);
        }
        if let Some((seq, _)) = self.newest.get(&header.node)
            && header.seq <= *seq
        {
            return Err(Rejected::Replayed);
        }
        if self.newest.len() >= MAX_REMEMBERED && !self.newest.contains_key(&header.node) {
            self.newest.retain(|_, (_, heard)| now_ms - *heard <= 2 * FRESH_MS);
            if self.newest.len() >= MAX_REMEMBERED {
                // Every one of them spoke within the window: refusing a new node is the
                // bounded choice (a real deployment has a handful of nodes).
                return Err(Rejected::Replayed);
            }
        }
        self.newest.insert(header.node, (header.seq, now_ms));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn keys(seed: u8) -> BusKeys {
        let mut k = [0u8; KEY_BYTES];
        for (i, b) in k.iter_mut().enumerate() {
            *b = seed.wrapping_mul(31).wrapping_add(u8::try_from(i).unwrap().wrapping_mul(7));
        }
        BusKeys::from_bytes(&[k])
    }

    const H: Header = Header { node: 7, seq: 1, sent_ms: 1_000_000 };

    #[test]
    fn a_sealed_payload_opens_only_with_the_key_on_its_channel_and_unaltered() {
        let k = keys(1);
        let sealed = k.seal("chan", H, b"hello");
        assert_eq!(k.open("chan", &sealed).unwrap(), (H, b"hello".to_vec()));
        // The text is not on the wire.
        assert!(!sealed.windows(5).any(|w| w == b"hello"));
        assert_eq!(k.open("other", &sealed), Err(Rejected::Forged), "another deployment's channel");
        assert_eq!(keys(2).open("chan", &sealed), Err(Rejected::UnknownKey));
        for i in 0..sealed.len() {
            let mut bent = sealed.clone();
            bent[i] ^= 1;
            assert!(k.open("chan", &bent).is_err(), "byte {i} altered");
        }
        assert_eq!(k.open("chan", b"12345:[[1,\"x\"]]"), Err(Rejected::Malformed));
        assert_eq!(k.open("chan", &sealed[..OVERHEAD - 1]), Err(Rejected::Malformed));
        assert_eq!(sealed.len(), OVERHEAD + 5);
    }

    proptest::proptest! {
        #[test]
        fn anything_heard_either_opens_to_what_was_sealed_or_is_refused(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            node: u64,
            seq: u64,
            sent_ms: i64,
        ) {
            let k = keys(3);
            // Arbitrary bytes (a forger without the key): refused, never a panic.
            proptest::prop_assert!(k.open("c", &bytes).is_err());
            // A sealed payload opens to exactly its header and body.
            let header = Header { node, seq, sent_ms };
            proptest::prop_assert_eq!(k.open("c", &k.seal("c", header, &body)), Ok((header, body)));
        }
    }

    #[test]
    fn during_a_rotation_the_first_key_seals_and_both_open() {
        let (old, new) = (keys(1), keys(2));
        let both = BusKeys { keys: vec![new.keys[0].clone(), old.keys[0].clone()] };
        assert_eq!(both.open("c", &old.seal("c", H, b"x")).unwrap().1, b"x");
        assert_eq!(new.open("c", &both.seal("c", H, b"y")).unwrap().1, b"y");
        assert_eq!(old.open("c", &both.seal("c", H, b"y")), Err(Rejected::UnknownKey));
    }

    #[test]
    fn keys_are_read_as_hex_or_base64_and_weak_or_short_ones_are_refused() {
        let hex_key = "3f1c9a0b7e5d2c4f8a6b1e0d9c7f5a3b2e4d6c8f0a1b3c5d7e9f1a2b4c6d8e0f";
        let one = BusKeys::parse(hex_key).unwrap();
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, hex::decode(hex_key).unwrap());
        assert_eq!(BusKeys::parse(&b64).unwrap(), one);
        assert_eq!(BusKeys::parse(&format!("{hex_key}, {b64}")).unwrap().ids().len(), 2);
        for bad in ["", "short", &"00".repeat(32), &hex_key[..62], &format!("{hex_key},")] {
            let err = BusKeys::parse(bad).unwrap_err();
            assert!(err.starts_with("CHAT_BUS_KEY") && err.contains("openssl rand -hex 32"), "{bad:?}: {err}");
        }
        assert!(!format!("{one:?}").contains(hex_key), "Debug never shows a key");
    }

    #[test]
    fn a_replayed_or_stale_payload_is_refused_and_memory_stays_bounded() {
        let mut r = Replay::default();
        let now = 1_000_000;
        assert_eq!(r.check(H, now), Ok(()));
        assert_eq!(r.check(H, now), Err(Rejected::Replayed));
        assert_eq!(r.check(Header { seq: 2, ..H }, now), Ok(()));
        assert_eq!(r.check(Header { seq: 1, ..H }, now), Err(Rejected::Replayed), "older than the newest");
        assert_eq!(r.check(Header { seq: 3, ..H }, now + FRESH_MS + 1), Err(Rejected::Stale));
        assert_eq!(r.check(Header { seq: 3, ..H }, now - FRESH_MS - 1), Err(Rejected::Stale), "from the future");
        for node in 0..(MAX_REMEMBERED as u64 + 10) {
            let _ = r.check(Header { node: node + 100, seq: 1, sent_ms: now }, now);
        }
        assert!(r.newest.len() <= MAX_REMEMBERED);
        // Once they are all old, new nodes are heard again.
        let later = now + 3 * FRESH_MS;
        assert_eq!(r.check(Header { node: 1, seq: 1, sent_ms: later }, later), Ok(()));
        assert!(r.newest.len() < 10);
    }
}
