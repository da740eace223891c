//! The log's wake-ups: what one says (the sending node, and the rows its round logged when
//! they fit), written from the publisher's queue and read by every other node.

use super::{BusEvent, NodeId};
use crate::store::Logged;

/// The most encoded bytes of logged rows one NATS wake-up carries (NATS takes 1 MB by
/// default); a larger round sends a bare wake-up and the other nodes read the log.
pub(crate) const MAX_CARRIED: usize = 256 * 1024;

/// Takes the queued log events out of `queued` and makes them one wake-up: the node, then
/// `:` and the rows they carried (postcard), or the node alone when one of them carried none
/// (the other nodes then read the log) or the rows are too many. None when none was queued.
pub(super) fn wake_up(node: NodeId, queued: &mut Vec<BusEvent>) -> Option<Vec<u8>> {
    let mut any = false;
    let mut bare = false;
    let mut rows: Vec<Logged> = Vec::new();
    queued.retain_mut(|event| match event {
        BusEvent::Log => {
            (any, bare) = (true, true);
            false
        }
        BusEvent::Logged(logged) => {
            any = true;
            rows.append(logged);
            false
        }
        _ => true,
    });
    if !any {
        return None;
    }
    let mut payload = node.to_string().into_bytes();
    if !bare
        && let Ok(encoded) = postcard::to_allocvec(&rows)
        && encoded.len() <= MAX_CARRIED
    {
        payload.push(b':');
        payload.extend(encoded);
    }
    Some(payload)
}

/// What a wake-up says: who sent it, and the rows it carries, if any.
pub(super) fn read_wake_up(payload: &[u8], postgres: bool) -> (Option<NodeId>, Option<Vec<Logged>>) {
    let (head, rows) = match payload.iter().position(|b| *b == b':') {
        Some(at) => (&payload[..at], Some(&payload[at + 1..])),
        None => (payload, None),
    };
    let node = std::str::from_utf8(head).ok().and_then(|h| h.parse::<NodeId>().ok());
    let rows = rows.and_then(|rows| {
        let decoded = if postgres {
            crate::store::logged_from_json(rows)
        } else {
            postcard::from_bytes(rows).map_err(|e| e.to_string())
        };
        decoded.map_err(|e| tracing::warn!(error = %e, "a wake-up's rows were unreadable; reading the log")).ok()
    });
    (node, rows)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use chat_protocol::UserRef;

    use super::*;

    fn logged(position: u64, content: &str) -> Logged {
        let message = chat_protocol::StoredMessage {
            id: chat_protocol::MessageId::new_v4([u8::try_from(position % 256).unwrap(); 16]),
            from: UserRef::teacher(1),
            to: UserRef::student(2),
            content: content.to_owned(),
            created_at: 1_700_000_000_000,
            read: false,
        };
        (position, message)
    }

    #[test]
    fn a_wake_up_carries_the_queued_rows_in_order_or_says_only_who_sent_it() {
        let mut queued = vec![
            BusEvent::Beat,
            BusEvent::Logged(vec![logged(5, "a"), logged(6, "b")]),
            BusEvent::Hello,
            BusEvent::Logged(vec![logged(7, "c")]),
        ];
        let payload = wake_up(42, &mut queued).unwrap();
        assert_eq!(queued, vec![BusEvent::Beat, BusEvent::Hello], "the other events stay queued");
        let (node, rows) = read_wake_up(&payload, false);
        assert_eq!(node, Some(42));
        assert_eq!(rows.unwrap(), vec![logged(5, "a"), logged(6, "b"), logged(7, "c")]);

        // A bare wake-up among them (the log moved without rows known): the node alone.
        let mut queued = vec![BusEvent::Logged(vec![logged(8, "d")]), BusEvent::Log];
        let payload = wake_up(42, &mut queued).unwrap();
        assert_eq!((read_wake_up(&payload, false), queued.len()), ((Some(42), None), 0));
        // Nothing about the log queued: no wake-up.
        assert_eq!(wake_up(42, &mut vec![BusEvent::Beat]), None);

        // Rows past the limit are not carried.
        let big = "x".repeat(MAX_CARRIED / 2);
        let mut queued = vec![BusEvent::Logged(vec![logged(9, &big), logged(10, &big), logged(11, "y")])];
        assert_eq!(read_wake_up(&wake_up(42, &mut queued).unwrap(), false), (Some(42), None));
        // An older node's wake-up (the node alone) and garbage after the node.
        assert_eq!(read_wake_up(b"42", false), (Some(42), None));
        assert_eq!(read_wake_up(b"42:\xff\x00", false), (Some(42), None));
    }

    #[test]
    fn the_postgres_sequencers_json_rows_read_as_logged_rows() {
        let json = br#"[[3,"01020304-0506-0708-090a-0b0c0d0e0f10","teacher",1,"student",2,"hi \"there\"",1700000000000,false]]"#;
        let (node, rows) = read_wake_up(&[b"7:".as_slice(), json].concat(), true);
        assert_eq!(node, Some(7));
        let rows = rows.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].0, rows[0].1.content.as_str(), rows[0].1.to), (3, "hi \"there\"", UserRef::student(2)));
        // A row that is not a message is refused as a whole (the node then reads the log).
        let bad = br#"7:[[3,"not-a-uuid","teacher",1,"student",2,"x",0,false]]"#;
        assert_eq!(read_wake_up(bad, true), (Some(7), None));
    }
}
