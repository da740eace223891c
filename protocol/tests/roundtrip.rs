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
}
