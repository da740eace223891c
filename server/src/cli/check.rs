//! `check` (the guide's `npm run check:socket`): asks a running server for its health.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::CmdResult;

/// `check` options.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The server's URL, as the app's NEXT_PUBLIC_SOCKET_URL (http://localhost:4000).
    #[arg(long, env = "NEXT_PUBLIC_SOCKET_URL")]
    pub url: Option<String>,
    /// The port to try on localhost when no URL is given.
    #[arg(long, env = "SOCKET_PORT", default_value_t = 4000)]
    pub port: u16,
}

#[derive(Debug, serde::Deserialize)]
struct Health {
    status: String,
    version: String,
    #[serde(default)]
    commit: Option<String>,
    protocol: u16,
    connections: i64,
}

pub(super) async fn check(args: CheckArgs) -> CmdResult {
    let base = args.url.filter(|u| !u.trim().is_empty()).unwrap_or_else(|| format!("http://localhost:{}", args.port));
    let health_url = health_url(&base)?;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().map_err(|e| e.to_string())?;
    let response = match client.get(health_url.clone()).send().await {
        Ok(r) => r,
        Err(e) => {
            println!("chat server at {base}: not reachable ({e})");
            println!("  start it with: chat-server serve");
            return Ok(ExitCode::FAILURE);
        }
    };
    let status = response.status();
    let health: Result<Health, _> = response.json().await;
    match health {
        Ok(h) if status.is_success() && h.status == "ok" => {
            println!(
                "chat server at {base}: ok (version {}, protocol {}, commit {}, {} connection{})",
                h.version,
                h.protocol,
                h.commit.as_deref().unwrap_or("unknown"),
                h.connections,
                if h.connections == 1 { "" } else { "s" }
            );
            Ok(ExitCode::SUCCESS)
        }
        Ok(h) => {
            println!("chat server at {base}: {} (HTTP {status})", h.status);
            Ok(ExitCode::FAILURE)
        }
        Err(_) => {
            println!(
                "chat server at {base}: {health_url} answered HTTP {status}, which is not a chat-server health report"
            );
            println!("  is NEXT_PUBLIC_SOCKET_URL pointing at the chat server?");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `http://host:4000` (or `ws://…/ws`) -> `http://host:4000/healthz`.
fn health_url(base: &str) -> Result<url::Url, String> {
    let mut url = url::Url::parse(base.trim()).map_err(|e| {
        format!("NEXT_PUBLIC_SOCKET_URL '{base}' is not a URL ({e}); expected e.g. http://localhost:4000")
    })?;
    let scheme = match url.scheme() {
        "http" | "ws" => "http",
        "https" | "wss" => "https",
        other => {
            return Err(format!("NEXT_PUBLIC_SOCKET_URL '{base}' has the scheme '{other}'; expected http(s) or ws(s)"));
        }
    };
    url.set_scheme(scheme).map_err(|()| format!("cannot use the URL {base}"))?;
    let path = url.path().trim_end_matches('/').trim_end_matches(crate::net::http::WS_PATH).to_owned();
    url.set_path(&format!("{path}/healthz"));
    url.set_query(None);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_urls_follow_the_socket_url() {
        let h = |s: &str| health_url(s).map(|u| u.to_string());
        assert_eq!(h("http://localhost:4000"), Ok("http://localhost:4000/healthz".into()));
        assert_eq!(h("http://localhost:4000/"), Ok("http://localhost:4000/healthz".into()));
        assert_eq!(h("wss://chat.school.example/ws"), Ok("https://chat.school.example/healthz".into()));
        assert_eq!(h("https://school.example/chat"), Ok("https://school.example/chat/healthz".into()));
        assert!(h("localhost:4000").is_err());
    }
}
