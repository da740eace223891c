//! The school's moderation rules on the send path, on both backends, over real sockets: a send
//! or an edit a rule blocks is refused with `content_blocked` and the rule's sentence, nothing
//! is stored or delivered, evasions (spacing, look-alikes, zero-width characters) do not get
//! through, and the rules file is read again without a restart (what SIGHUP runs), a broken
//! one leaving the rules in force.

#![allow(clippy::unwrap_used)]

mod common;

use chat_protocol::{ClientFrame, ErrorCode, ServerFrame, UserRef};
use chat_server::moderation::{Moderation, Rules};
use common::{Backend, Client, TestStore, start_with};
use rstest::rstest;

const T1: UserRef = UserRef::teacher(1);
const S1: UserRef = UserRef::student(1);

const RULES: &str = r#"
[[rule]]
name = "threats"
action = "block"
message = "This reads as a threat, so it was not sent. If something is wrong, talk to a teacher."
words = ["kill you"]

[[rule]]
name = "phone numbers"
action = "block"
message = "Phone numbers stay out of school chat."
patterns = ['(?:\+?\d[\s.\-]?){9,14}\d']
"#;

async fn ask(c: &mut Client, frame: impl FnOnce(u32) -> ClientFrame) -> ServerFrame {
    let req = c.req();
    c.send(&frame(req)).await;
    c.recv_until(|f| f.request_id() == Some(req)).await.0
}

#[rstest]
#[tokio::test]
async fn a_blocked_text_is_refused_with_the_rules_sentence_and_nothing_is_stored(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let dir = std::env::temp_dir().join(format!("chat-moderation-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rules.toml");
    std::fs::write(&file, RULES).unwrap();
    let moderation = Moderation::new(Some(Rules::load(&file).unwrap()));
    let shared = moderation.clone();
    let server = start_with(&db, move |c| c.safety.moderation = shared).await;
    let mut student = Client::login(&server, S1).await;
    let mut teacher = Client::login(&server, T1).await;

    for text in ["I will kill you", "I will k i l l you", "I will k\u{200B}ill y\u{043E}u", "call 555 123 4567"] {
        let (_, answer) = student.send_message(T1, text).await;
        let ServerFrame::Error { code, message, .. } = answer else { panic!("{text:?} was not refused: {answer:?}") };
        assert_eq!(code, ErrorCode::CONTENT_BLOCKED, "{text:?}");
        assert!(message.contains("was not sent") || message.contains("Phone numbers"), "{message}");
    }
    assert_eq!(db.message_count().await, 0, "nothing blocked is stored");
    // An ordinary message goes, and is delivered.
    let (id, answer) = student.send_message(T1, "That skill will kill it at the recital").await;
    assert!(matches!(answer, ServerFrame::Sent { .. }), "{answer:?}");
    teacher.recv_until(|f| matches!(f, ServerFrame::Message { message, .. } | ServerFrame::MessageAt { message, .. } if message.id == id)).await;
    // An edit is held to the same words: "hi", then edited into a threat, is refused; the text stays.
    let answer = ask(&mut student, |req| ClientFrame::Edit { req, id, content: "kill   you".into() }).await;
    assert!(matches!(answer, ServerFrame::Error { code: ErrorCode::CONTENT_BLOCKED, .. }), "{answer:?}");
    assert_eq!(db.message_count().await, 1);

    // The school changes the file: read again (what SIGHUP does), no restart.
    std::fs::write(&file, "[[rule]]\nname = \"threats\"\naction = \"block\"\nwords = [\"hurt you\"]\n").unwrap();
    assert_eq!(moderation.reload().unwrap(), Some(1));
    let (_, answer) = student.send_message(T1, "call 555 123 4567").await;
    assert!(!matches!(answer, ServerFrame::Error { .. }), "the phone rule is gone: {answer:?}");
    let (_, answer) = student.send_message(T1, "I'll hurt you").await;
    assert!(matches!(answer, ServerFrame::Error { code: ErrorCode::CONTENT_BLOCKED, .. }), "{answer:?}");
    // A broken file: the rules in force stay, and the error names the file.
    std::fs::write(&file, "[[rule]]\nname = \"x\"\naction = \"block\"\npatterns = [\"(\"]\n").unwrap();
    let error = moderation.reload().unwrap_err();
    assert!(error.contains("rules.toml") && error.contains("not a regular expression"), "{error}");
    let (_, answer) = student.send_message(T1, "I'll hurt you").await;
    assert!(matches!(answer, ServerFrame::Error { code: ErrorCode::CONTENT_BLOCKED, .. }), "{answer:?}");
    server.stop().await.unwrap();
    std::fs::remove_dir_all(&dir).ok();
}
