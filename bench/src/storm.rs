//! `storm`: many clients reconnect at once and catch up on what they missed.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, bail};
use chat_protocol::{ClientFrame, Cursor, IdGenerator, ServerFrame, UserRef};
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::env::{Env, next_frame};

/// Sends `messages` (recipient, content) from `sender`, `inflight` unacked at a time, and
/// returns once every one was acked (that is, committed).
pub(crate) async fn send_all(
    env: &Env,
    sender: UserRef,
    messages: Vec<(UserRef, String)>,
    inflight: usize,
) -> Result<u64> {
    let mut ws = env.connect(sender).await?;
    let mut ids = IdGenerator::new();
    let mut pending = messages.into_iter().enumerate();
    let mut outstanding = 0usize;
    let mut acked = 0u64;
    loop {
        while outstanding < inflight {
            let Some((n, (to, content))) = pending.next() else { break };
            let req = n as u32 + 1;
            let id = ids
                .next(env.unix_ms(), (u64::from(req) ^ (u64::from(sender.id as u32) << 32) ^ env.salt).to_le_bytes());
            ws.feed(Message::Binary(ClientFrame::Send { req, id, to, content }.encode()?.into())).await?;
            outstanding += 1;
        }
        ws.flush().await?;
        if outstanding == 0 {
            return Ok(acked);
        }
        match next_frame(&mut ws).await? {
            ServerFrame::Sent { .. } => {
                acked += 1;
                outstanding -= 1;
            }
            ServerFrame::Error { code, message, .. } => bail!("send refused: {code} {message}"),
            _ => {}
        }
    }
}

/// Reconnects as `user` and pages through `Sync` from `after` until nothing more is missed;
/// returns when it re-authenticated, when it was caught up, and how many tagged messages came.
pub(crate) async fn reconnect_and_sync(
    env: &Env,
    user: UserRef,
    after: Cursor,
    tag: &str,
) -> Result<(Instant, Instant, u64)> {
    let mut ws = env.connect(user).await?;
    let welcomed = Instant::now();
    let mut after = after;
    let mut got = 0u64;
    for req in 1.. {
        let sync = ClientFrame::Sync { req, after, limit: chat_protocol::MAX_SYNC_PAGE };
        ws.send(Message::Binary(sync.encode()?.into())).await?;
        let (messages, more) = loop {
            match next_frame(&mut ws).await? {
                ServerFrame::SyncPage { req: r, messages, more } if r == req => break (messages, more),
                ServerFrame::Error { code, message, .. } => bail!("sync refused: {code} {message}"),
                _ => {}
            }
        };
        got += messages.iter().filter(|m| m.content.starts_with(tag)).count() as u64;
        if let Some(last) = messages.last() {
            after = last.cursor();
        }
        if !more {
            break;
        }
    }
    Ok((welcomed, Instant::now(), got))
}

pub(crate) async fn storm(
    env: Arc<Env>,
    connections: u32,
    missed: u32,
    concurrency: usize,
) -> Result<serde_json::Value> {
    // The storm's clients: students 1..=1000, several connections (tabs) each.
    let students = connections.clamp(1, 1000);
    let users: Vec<UserRef> = (0..connections).map(|i| UserRef::student((i % students) as i32 + 1)).collect();
    let mut conns = Vec::with_capacity(users.len());
    for chunk in users.chunks(256) {
        let tasks: Vec<_> = chunk
            .iter()
            .map(|&u| {
                let env = env.clone();
                tokio::spawn(async move { env.connect(u).await })
            })
            .collect();
        for t in tasks {
            conns.push(t.await??);
        }
    }
    // Everyone drops at once (a server restart, a network blip).
    drop(conns);
    let dropped_at = env.unix_ms() as i64;

    // While they are away, `missed` messages reach them from 50 teachers; acked means committed.
    let tag = format!("s:{:x}:", env.salt);
    let mut expected = vec![0u64; students as usize];
    let mut per_teacher: Vec<Vec<(UserRef, String)>> = vec![Vec::new(); 50];
    for n in 0..missed {
        let student = n % students;
        expected[student as usize] += 1;
        per_teacher[(n % 50) as usize].push((UserRef::student(student as i32 + 1), format!("{tag}{n}")));
    }
    let sending = Instant::now();
    let mut senders = Vec::new();
    for (t, batch) in per_teacher.into_iter().enumerate() {
        let env = env.clone();
        senders.push(tokio::spawn(async move { send_all(&env, UserRef::teacher(t as i32 + 1), batch, 64).await }));
    }
    let mut acked = 0;
    for s in senders {
        acked += s.await??;
    }
    let send_seconds = sending.elapsed().as_secs_f64();

    // Everyone comes back at once and catches up from just before the drop (the SDK syncs
    // from its last seen message minus a margin; the margin here is a second).
    let after = Cursor::from_time(dropped_at - 1000);
    let gate = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let started = Instant::now();
    let tasks: Vec<_> = users
        .iter()
        .map(|&user| {
            let (env, gate, tag) = (env.clone(), gate.clone(), tag.clone());
            tokio::spawn(async move {
                let _slot = gate.acquire_owned().await?;
                reconnect_and_sync(&env, user, after, &tag).await
            })
        })
        .collect();
    let (mut last_welcome, mut last_caught_up) = (started, started);
    let (mut delivered, mut lost, mut duplicated) = (0u64, 0u64, 0u64);
    for (task, user) in tasks.into_iter().zip(&users) {
        let (welcomed, caught_up, got) = task.await??;
        last_welcome = last_welcome.max(welcomed);
        last_caught_up = last_caught_up.max(caught_up);
        let want = expected[user.id as usize - 1];
        delivered += got;
        lost += want.saturating_sub(got);
        duplicated += got.saturating_sub(want);
    }
    Ok(json!({
        "scenario": "storm", "connections": connections, "missed": missed, "acked_while_away": acked,
        "send_seconds": send_seconds,
        "reconnect_seconds": (last_welcome - started).as_secs_f64(),
        "caught_up_seconds": (last_caught_up - started).as_secs_f64(),
        "delivered_in_catch_up": delivered, "lost": lost, "duplicated": duplicated,
    }))
}
