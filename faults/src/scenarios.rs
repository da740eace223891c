//! The scenarios: each sets a stage (database, server, users), injects its fault, and ends
//! with `settle`, which counts.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::server::Server;
use crate::{Backend, Cli, SECRET, Scale, abuse, settle, stage, stage_in};

/// `kill -9` under load, `kills` times, restarting at once each time.
pub async fn kill9(cli: &Cli, backend: Backend, scale: Scale) -> Result<(Value, bool)> {
    let started = Instant::now();
    let mut s = stage(cli, backend, "kill9", scale, &[]).await?;
    s.load.start_sending(scale.per_user, 4, 64);
    let mut downtime = Vec::new();
    for _ in 0..scale.kills {
        tokio::time::sleep(scale.between_faults).await;
        s.server.kill9()?;
        let down = Instant::now();
        s.server.start(&[]).await?;
        downtime.push(down.elapsed().as_millis());
    }
    tokio::time::sleep(scale.between_faults).await;
    let extra = json!({ "kills": scale.kills, "restart_ms": downtime });
    settle(s, "kill9", backend, extra, started).await
}

/// Two nodes on one database (`CHAT_BUS`), behind a round-robin balancer, under load; one
/// node is killed with SIGKILL and started again, A and B in turn. The killed node's clients
/// reconnect through the balancer to the other node, resend what was not acked and catch up
/// from their log position: nothing acked is lost, nothing is delivered twice.
pub async fn node_kill(cli: &Cli, bus: &str, scale: Scale) -> Result<(Value, bool)> {
    let started = Instant::now();
    let bus_url = match bus {
        "nats" => "nats://127.0.0.1:4222".to_owned(),
        _ => "postgres".to_owned(),
    };
    let dir = cli.work_dir.join(format!("node-kill-{bus}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let users = scale.pairs + 64;
    let db = crate::Db::create(cli, Backend::Postgres, &dir, users).await?;
    let vars = vec![
        ("DATABASE_URL".to_owned(), db.url.clone()),
        ("CHAT_TOKEN_SECRET".to_owned(), SECRET.to_owned()),
        ("CHAT_BUS".to_owned(), bus_url),
        ("CHAT_BUS_KEY".to_owned(), crate::BUS_KEY.to_owned()),
    ];
    let mut a = Server::new(cli.server_bin.clone(), crate::server::free_port()?, dir.join("a.log"), vars.clone());
    a.start(&["--apply-schema"]).await?;
    let mut b = Server::new(cli.server_bin.clone(), crate::server::free_port()?, dir.join("b.log"), vars);
    b.start(&[]).await?;
    let balancer = crate::balancer::Balancer::start(vec![a.port, b.port]).await?;
    let load = crate::load::Load::connect(&balancer.http_url(), SECRET.as_bytes(), scale.pairs).await?;
    let mut s = crate::Stage { db, server: a, load, others: vec![b], balancer: Some(balancer) };
    s.load.start_sending(scale.per_user, 4, 64);
    let mut downtime = Vec::new();
    for k in 0..scale.kills {
        tokio::time::sleep(scale.between_faults).await;
        let victim = if k % 2 == 0 { &mut s.others[0] } else { &mut s.server };
        victim.kill9()?;
        let down = Instant::now();
        // Its clients move to the other node meanwhile.
        tokio::time::sleep(scale.between_faults / 2).await;
        victim.start(&[]).await?;
        downtime.push(down.elapsed().as_millis());
    }
    tokio::time::sleep(scale.between_faults).await;
    let extra = json!({ "bus": bus, "nodes": 2, "kills": scale.kills, "down_ms": downtime });
    settle(s, "node-kill", Backend::Postgres, extra, started).await
}

/// PostgreSQL stopped under load and started again: the server stays up, says it is not
/// ready while the database is gone, refuses sends with a retryable error (the SDK keeps
/// them), and carries on by itself once the database is back.
pub async fn pg_restart(cli: &Cli, scale: Scale) -> Result<(Value, bool)> {
    let started = Instant::now();
    let mut s = stage(cli, Backend::Postgres, "pg-restart", scale, &[("CHAT_DB_TIMEOUT", "2")]).await?;
    s.load.start_sending(scale.per_user, 4, 64);
    tokio::time::sleep(scale.between_faults).await;
    let errors_before = s.server.metric("chat_errors_total{code=\"unavailable\"").await;
    pg_control(&cli.pg_control, "stop").await?;
    let down = Instant::now();
    // The database is gone: readiness must say so (waited for, not timed).
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
    let noticed = async {
        loop {
            let status =
                http.get(format!("{}/readyz", s.server.http_url())).send().await.map_or(0, |r| r.status().as_u16());
            if status == 503 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let reported = tokio::time::timeout(Duration::from_secs(30), noticed).await.is_ok();
    let noticed_after = down.elapsed();
    tokio::time::sleep(scale.stall.min(Duration::from_secs(10))).await;
    let alive_while_down = s.server.alive();
    let errors_while_down = s.server.metric("chat_errors_total{code=\"unavailable\"").await - errors_before;
    pg_control(&cli.pg_control, "start").await?;
    let downtime = down.elapsed();
    let back = async {
        while s.server.ready_status().await != 200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let recovered = tokio::time::timeout(Duration::from_secs(60), back).await.is_ok();
    let ready_again_after = down.elapsed();
    tokio::time::sleep(scale.between_faults).await;
    let extra = json!({
        "database_down_s": (downtime.as_secs_f64() * 10.0).round() / 10.0,
        "readyz_503_after_ms": noticed_after.as_millis(),
        "ready_again_after_s": (ready_again_after.as_secs_f64() * 10.0).round() / 10.0,
        "server_stayed_up": alive_while_down,
        "unavailable_answers_while_down": errors_while_down,
    });
    let (report, ok) = settle(s, "pg-restart", Backend::Postgres, extra, started).await?;
    Ok((report, ok && reported && recovered && alive_while_down))
}

/// Runs `<control> <verb>` off the async threads (a stop waits for PostgreSQL to shut down).
async fn pg_control(control: &str, verb: &str) -> Result<()> {
    let mut parts = control.split_whitespace().map(str::to_owned);
    let program = parts.next().context("--pg-control is empty")?;
    let mut args: Vec<String> = parts.collect();
    args.push(verb.to_owned());
    let status = tokio::task::spawn_blocking(move || Command::new(program).args(args).status()).await??;
    if !status.success() {
        bail!("PostgreSQL {verb} failed: {status}");
    }
    Ok(())
}

/// A session holds `LOCK TABLE "Message"` for a while under load.
pub async fn stall(cli: &Cli, scale: Scale) -> Result<(Value, bool)> {
    let started = Instant::now();
    let mut s = stage(cli, Backend::Postgres, "stall", scale, &[("CHAT_DB_TIMEOUT", "1")]).await?;
    s.load.start_sending(scale.per_user, 4, 64);
    tokio::time::sleep(scale.between_faults).await;
    let pool = s.db.pg_pool().await?;
    let mut tx = pool.begin().await?;
    sqlx::query(r#"LOCK TABLE "Message" IN ACCESS EXCLUSIVE MODE"#).execute(&mut *tx).await?;
    let watcher = watch_readiness(s.server.http_url());
    tokio::time::sleep(scale.stall).await;
    tx.rollback().await?;
    pool.close().await;
    let (not_ready, samples) = watcher.stop().await;
    tokio::time::sleep(scale.between_faults).await;
    let extra = json!({
        "stall_s": scale.stall.as_secs(),
        "readyz_not_ready_samples": not_ready,
        "readyz_samples": samples,
    });
    let (report, ok) = settle(s, "stall", Backend::Postgres, extra, started).await?;
    Ok((report, ok && not_ready > 0))
}

/// The server's database connections are cut (`pg_terminate_backend`) under load.
pub async fn cut(cli: &Cli, scale: Scale) -> Result<(Value, bool)> {
    let started = Instant::now();
    let mut s = stage(cli, Backend::Postgres, "cut", scale, &[]).await?;
    s.load.start_sending(scale.per_user, 4, 64);
    let pool = s.db.pg_pool().await?;
    let db_name: String = sqlx::query_scalar("SELECT current_database()").fetch_one(&pool).await?;
    let mut terminated = 0i64;
    for _ in 0..scale.kills.max(2) {
        tokio::time::sleep(scale.between_faults).await;
        let n: i64 = sqlx::query_scalar(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&db_name)
        .fetch_one(&pool)
        .await?;
        terminated += n;
    }
    pool.close().await;
    tokio::time::sleep(scale.between_faults).await;
    let extra = json!({ "cuts": scale.kills.max(2), "connections_terminated": terminated });
    settle(s, "cut", Backend::Postgres, extra, started).await
}

/// The SQLite file's disk fills up under load, then gets room again.
pub async fn disk_full(cli: &Cli, scale: Scale) -> Result<(Value, bool)> {
    let started = Instant::now();
    let dir = cli.work_dir.join("disk-full-sqlite");
    let _ = Command::new("umount").arg(&dir).status();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"])
        .arg(&dir)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("SKIP disk-full [sqlite]: cannot mount a tmpfs here (needs root)");
        return Ok((
            json!({ "scenario": "disk-full", "backend": "sqlite", "ok": true, "skipped": "cannot mount tmpfs" }),
            true,
        ));
    }
    let result = async {
        // The log stays off the full disk, so what the server says about it is kept.
        let log = cli.work_dir.join("disk-full-sqlite.log");
        let _ = std::fs::remove_file(&log);
        let mut s = stage_in(cli, Backend::Sqlite, &dir, &log, scale, &[("CHAT_DB_TIMEOUT", "2")]).await?;
        // Larger messages fill 3 MiB in seconds.
        s.load.start_sending(scale.per_user * 4, 8, 2048);
        let watcher = watch_readiness(s.server.http_url());
        let full = async {
            while s.server.metric("chat_errors_total{code=\"unavailable\"").await == 0.0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        let filled = tokio::time::timeout(Duration::from_secs(120), full).await.is_ok();
        let full_after = started.elapsed();
        tokio::time::sleep(scale.between_faults).await;
        let remounted = Command::new("mount").args(["-o", "remount,size=256m"]).arg(&dir).status()?.success();
        tokio::time::sleep(scale.between_faults).await;
        let (not_ready, samples) = watcher.stop().await;
        let extra = json!({
            "disk_filled": filled,
            "full_after_s": full_after.as_secs_f64().round(),
            "room_given_back": remounted,
            "readyz_not_ready_samples": not_ready,
            "readyz_samples": samples,
        });
        let (report, ok) = settle(s, "disk-full", Backend::Sqlite, extra, started).await?;
        Ok::<_, anyhow::Error>((report, ok && filled && remounted && not_ready > 0))
    }
    .await;
    let _ = Command::new("umount").arg(&dir).status();
    result
}

/// Real users' latency quiet, then the same load with every kind of abuser at once.
pub async fn abuse_run(cli: &Cli, scale: Scale) -> Result<(Value, bool)> {
    let started = Instant::now();
    // Quiet.
    let mut quiet = stage(cli, Backend::Postgres, "abuse-quiet", scale, &[]).await?;
    quiet.load.start_sending(scale.per_user, 4, 64);
    let rss_quiet = sample_rss(&quiet.server, scale.quiet).await;
    let (quiet_report, quiet_ok) = settle(quiet, "abuse-quiet", Backend::Postgres, json!({}), started).await?;

    // Abusive. The node is on a PostgreSQL bus, where anyone with a database login can listen
    // and publish: a bus attacker joins the abusers.
    let started = Instant::now();
    let bus_env = [("CHAT_BUS", "postgres"), ("CHAT_BUS_KEY", crate::BUS_KEY)];
    let mut s = stage(cli, Backend::Postgres, "abuse", scale, &bus_env).await?;
    let bus_attacker = crate::bus_attack::BusAttacker::start(&s.db.url, i32::try_from(scale.pairs)?).await?;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", s.server.port).parse()?;
    let mix = if cli.smoke {
        abuse::Mix { flooders: 4, non_readers: 4, half_open: 50, garbage: 4, fuzzers: 4 }
    } else {
        abuse::Mix { flooders: 16, non_readers: 16, half_open: 400, garbage: 16, fuzzers: 16 }
    };
    let abusers = abuse::Abusers::start(addr, SECRET.as_bytes(), i32::try_from(scale.pairs)?, mix);
    s.load.start_sending(scale.per_user, 4, 64);
    let rss_abused = sample_rss(&s.server, scale.abusive).await;
    let counts = abusers.stop().await;
    let (bus_sent, bus_overheard) = (Arc::clone(&bus_attacker.sent), Arc::clone(&bus_attacker.overheard));
    bus_attacker.stop().await;
    let bus_rejected = s.server.metric("chat_bus_rejected_total").await;
    // What the server itself saw and refused (the abusers' own counts include frames written
    // into sockets the server had already closed).
    let server_errors = s.server.metric("chat_errors_total").await;
    let server_refused = s.server.metric("chat_refused_total").await;
    let write_failures = s.server.metric("chat_write_failures_total").await;
    let load = std::sync::atomic::Ordering::Relaxed;
    let quiet_p99 = quiet_report["delivery_ms"]["p99"].as_f64().unwrap_or(0.0);
    let extra = json!({
        "abusers": { "flooders": mix.flooders, "non_readers": mix.non_readers, "half_open": mix.half_open,
                     "garbage": mix.garbage, "fuzzers": mix.fuzzers },
        "abusive_frames_written": counts.bad_inputs.load(load),
        "server_error_frames": server_errors,
        "server_refused_connections": server_refused,
        "server_write_failures": write_failures,
        "abuser_connections": counts.connections.load(load),
        "abuser_connections_closed_by_server": counts.closed_by_server.load(load),
        "rss_mib": { "quiet_max": rss_quiet as f64 / 1024.0, "abused_max": rss_abused as f64 / 1024.0 },
        "quiet_delivery_p99_ms": quiet_p99,
        "bus_attack": { "payloads_published": bus_sent.load(load), "real_payloads_overheard": bus_overheard.load(load),
                        "refused_by_the_node": bus_rejected },
    });
    let bus_held = bus_sent.load(load) > 0 && bus_rejected > 0.0;
    let (mut report, ok) = settle(s, "abuse", Backend::Postgres, extra, started).await?;
    let ok = ok && bus_held;
    let abused_p99 = report["delivery_ms"]["p99"].as_f64().unwrap_or(0.0);
    report["p99_factor"] = json!(if quiet_p99 > 0.0 { (abused_p99 / quiet_p99 * 10.0).round() / 10.0 } else { 0.0 });
    Ok((json!([quiet_report, report]), ok && quiet_ok))
}

async fn sample_rss(server: &Server, for_how_long: Duration) -> u64 {
    let deadline = Instant::now() + for_how_long;
    let mut max = 0;
    while Instant::now() < deadline {
        max = max.max(server.rss_kib().unwrap_or(0));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    max
}

/// Polls `/readyz` in the background, counting how often it said "not ready".
struct Readiness {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<(u32, u32)>,
}

fn watch_readiness(base: String) -> Readiness {
    let (stop, mut stopped) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(3)).build().unwrap_or_default();
        let (mut not_ready, mut samples) = (0, 0);
        loop {
            let status = http.get(format!("{base}/readyz")).send().await.map_or(0, |r| r.status().as_u16());
            samples += 1;
            if status != 200 {
                not_ready += 1;
            }
            tokio::select! {
                _ = &mut stopped => return (not_ready, samples),
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    });
    Readiness { stop, task }
}

impl Readiness {
    async fn stop(self) -> (u32, u32) {
        let _ = self.stop.send(());
        self.task.await.unwrap_or((0, 0))
    }
}
