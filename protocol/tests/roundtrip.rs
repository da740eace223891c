//! Property tests: every frame round-trips, and no input makes decoding panic.

#![allow(clippy::unwrap_used)]

mod strategies;

use chat_protocol::{ClientFrame, DecodeError, ServerFrame};
use proptest::prelude::*;
use strategies::{client_frame, server_frame};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_client_frame_round_trips(frame in client_frame()) {
        let bytes = frame.encode().expect("small frames encode");
        prop_assert_eq!(ClientFrame::decode(&bytes), Ok(frame));
    }

    /// The hand-written client frame encoder against serde's derived one: the same bytes.
    #[test]
    fn the_hand_written_encoder_writes_what_serde_writes(frame in client_frame()) {
        prop_assert_eq!(frame.encode(), frame.encode_with_serde());
    }

    #[test]
    fn every_server_frame_round_trips(frame in server_frame()) {
        let bytes = frame.encode().expect("small frames encode");
        prop_assert_eq!(ServerFrame::decode(&bytes), Ok(frame));
    }

    #[test]
    fn every_strict_prefix_of_a_client_frame_is_rejected(frame in client_frame()) {
        let bytes = frame.encode().expect("small frames encode");
        for cut in 0..bytes.len() {
            prop_assert!(ClientFrame::decode(&bytes[..cut]).is_err(), "prefix of {} bytes decoded", cut);
        }
    }

    #[test]
    fn every_strict_prefix_of_a_server_frame_is_rejected(frame in server_frame()) {
        let bytes = frame.encode().expect("small frames encode");
        for cut in 0..bytes.len() {
            prop_assert!(ServerFrame::decode(&bytes[..cut]).is_err(), "prefix of {} bytes decoded", cut);
        }
    }

    #[test]
    fn a_frame_followed_by_extra_bytes_is_rejected(frame in client_frame(), extra in proptest::collection::vec(any::<u8>(), 1..8)) {
        let mut bytes = frame.encode().expect("small frames encode");
        bytes.extend_from_slice(&extra);
        prop_assert_eq!(ClientFrame::decode(&bytes), Err(DecodeError::TrailingBytes));
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = ClientFrame::decode(&bytes);
        let _ = ServerFrame::decode(&bytes);
    }

    #[test]
    fn mutated_frames_never_panic(frame in server_frame(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let mut bytes = frame.encode().expect("small frames encode");
        if !bytes.is_empty() {
            for (index, value) in flips {
                let i = index.index(bytes.len());
                bytes[i] = value;
            }
        }
        let _ = ServerFrame::decode(&bytes);
        let _ = ClientFrame::decode(&bytes);
    }

    // The hand-written server frame decoder against serde's derived one: the same frame or
    // the same error, for every frame, every cut of it, bytes added, bytes changed, and
    // random bytes (most of which start with a valid variant index).
    #[test]
    fn the_hand_written_decoder_agrees_with_serde_on_every_frame_and_every_cut(frame in server_frame()) {
        let bytes = frame.encode().expect("small frames encode");
        for cut in 0..=bytes.len() {
            prop_assert_eq!(ServerFrame::decode(&bytes[..cut]), ServerFrame::decode_with_serde(&bytes[..cut]), "cut at {}", cut);
        }
    }

    #[test]
    fn the_hand_written_decoder_agrees_with_serde_on_changed_bytes(
        frame in server_frame(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        extra in proptest::collection::vec(any::<u8>(), 0..4),
    ) {
        let mut bytes = frame.encode().expect("small frames encode");
        for (index, value) in flips {
            let i = index.index(bytes.len());
            bytes[i] = value;
        }
        bytes.extend_from_slice(&extra);
        prop_assert_eq!(ServerFrame::decode(&bytes), ServerFrame::decode_with_serde(&bytes));
    }

    #[test]
    fn the_hand_written_decoder_agrees_with_serde_on_random_bytes(first in 0u8..26, bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut input = vec![first];
        input.extend_from_slice(&bytes);
        prop_assert_eq!(ServerFrame::decode(&input), ServerFrame::decode_with_serde(&input));
        prop_assert_eq!(ServerFrame::decode(&bytes), ServerFrame::decode_with_serde(&bytes));
    }
}

/// Varints at their edges: the longest valid encodings, one past them (too long, or a last
/// byte out of the type's range), and lengths claiming more than the input holds.
#[test]
fn the_hand_written_decoder_agrees_with_serde_on_varint_edges() {
    let cases: &[&[u8]] = &[
        // Done { req: u32::MAX } in five bytes, then the last byte one too large, then six bytes.
        &[11, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F],
        &[11, 0xFF, 0xFF, 0xFF, 0xFF, 0x10],
        &[11, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00],
        // Position { position: u64::MAX } in ten bytes, then the last byte out of range.
        &[19, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
        &[19, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02],
        // Fatal { code: u16 } with a code over u16::MAX; then a message length of 2^62.
        &[10, 0xFF, 0xFF, 0x04, 0],
        &[10, 0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40, b'x'],
        // Watching with a user of role 2, and a list claiming a billion users.
        &[12, 1, 1, 2, 2],
        &[12, 1, 0x80, 0x94, 0xEB, 0xDC, 0x03, 0, 2],
        // A variant index past the last one, and in a long form.
        &[24],
        &[0x8B, 0x00, 1],
        // Bad bool, bad option tag, bad UTF-8.
        &[7, 0, 2, 2],
        &[16, 1, 0, 2],
        &[10, 1, 2, 0xC3, 0x28],
    ];
    for bytes in cases {
        assert_eq!(ServerFrame::decode(bytes), ServerFrame::decode_with_serde(bytes), "{bytes:02x?}");
    }
    assert_eq!(ServerFrame::decode(&[11, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]), Ok(ServerFrame::Done { req: u32::MAX }));
    assert_eq!(ServerFrame::decode(&[24]), Err(DecodeError::Malformed));
}
