//! Feeds arbitrary bytes to both decoders. Decoding must never panic, and whatever
//! decodes must encode back to exactly the same bytes (postcard is canonical for the
//! frames' types, so a second encoding of the same value could only differ by a bug).
#![no_main]

use chat_protocol::{ClientFrame, ServerFrame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = ClientFrame::decode(data) {
        let again = frame.encode().expect("a decoded client frame re-encodes");
        assert_eq!(ClientFrame::decode(&again).as_ref(), Ok(&frame));
        let _ = frame.validate();
    }
    if let Ok(frame) = ServerFrame::decode(data) {
        let again = frame.encode().expect("a decoded server frame re-encodes");
        assert_eq!(ServerFrame::decode(&again).as_ref(), Ok(&frame));
    }
});
