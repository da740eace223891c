//! `chat-server demo`: the product working in a browser with nothing installed.
//!
//! The embedded SQLite database with a few demo teachers and students (their ids overlap:
//! teacher 1 and student 1 both exist), and a page at `/` where you pick who you are and
//! chat, through the real `chat-sdk` package (`pkg/dist`, served under `/sdk/`).
//!
//! `/demo/token` hands out a chat token for any demo user to whoever asks. It exists only
//! in demo mode, which says so in its log; a real app mints tokens for its signed-in user
//! in its own route handler.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use chat_protocol::{Role, UserRef};
use serde::{Deserialize, Serialize};

use crate::auth::Auth;
use crate::config::Policy;
use crate::store::{SqliteStore, StoreError};

/// The page served at `/`.
pub(crate) const PAGE: &str = include_str!("demo/index.html");

/// Where a build from this repository finds the browser package (`bash pkg/build.sh`).
pub(crate) const DEFAULT_SDK_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../pkg/dist");

/// How long a demo token lives; the SDK refreshes it before it expires.
const TOKEN_LIFETIME_SECS: i64 = 15 * 60;

/// The demo's teachers and students. Ids overlap on purpose.
pub(crate) const DEMO_USERS: &[(Role, &str)] = &[
    (Role::Teacher, "Ms. Rivera"),
    (Role::Teacher, "Mr. Okafor"),
    (Role::Student, "Ada"),
    (Role::Student, "Ben"),
    (Role::Student, "Chloé"),
];

/// The files of the built `chat-sdk` package a page needs, held in memory.
#[derive(Clone, Debug)]
pub(crate) struct SdkFiles {
    /// The package's JavaScript modules, by file name (`SDK_MODULES`).
    modules: Vec<(&'static str, Bytes)>,
    wasm: Bytes,
}

/// The modules of the package's entry point (`index.js` and what it imports) and `chat-sdk/announce`.
const SDK_MODULES: [&str; 7] =
    ["index.js", "connection.js", "types.js", "outbox.js", "tabs.js", "announce.js", "chat_sdk.js"];

impl SdkFiles {
    /// Reads the package from `dir` (a `pkg/dist` built by `pkg/build.sh`).
    ///
    /// # Errors
    /// A sentence saying which file is missing and how to build it.
    pub(crate) fn load(dir: &std::path::Path) -> Result<SdkFiles, String> {
        let read = |name: &str| {
            std::fs::read(dir.join(name)).map(Bytes::from).map_err(|e| {
                format!(
                    "the browser package is not built ({}: {e}). Build it with `bash pkg/build.sh` from the \
                     repository, or run `bash scripts/demo.sh`, which builds it and starts the demo; \
                     or point --sdk-dir (CHAT_DEMO_SDK_DIR) at a built chat-sdk dist/ folder",
                    dir.join(name).display()
                )
            })
        };
        let modules = SDK_MODULES.iter().map(|&name| Ok((name, read(name)?))).collect::<Result<_, String>>()?;
        Ok(SdkFiles { modules, wasm: read("chat_sdk_bg.wasm")? })
    }
}

/// Adds the demo users if the directory is empty; returns the directory.
///
/// # Errors
/// A database error.
pub(crate) async fn seed(store: &SqliteStore) -> Result<Vec<crate::store::DirectoryUser>, StoreError> {
    if store.users().await?.is_empty() {
        for &(role, name) in DEMO_USERS {
            store.add_user(role, name).await?;
        }
    }
    store.users().await
}

#[derive(Debug)]
struct Demo {
    store: SqliteStore,
    auth: Auth,
    policy: Policy,
    sdk: SdkFiles,
    hosts: AllowedHosts,
}

/// The host names the demo answers to. A page on another site cannot read the demo's
/// answers (no CORS), but with DNS rebinding its name resolves to 127.0.0.1 and the browser
/// treats the demo as that site: so the `Host` a request names must be the demo's own.
#[derive(Clone, Debug, Default)]
pub(crate) struct AllowedHosts(Vec<String>);

impl AllowedHosts {
    /// `localhost` (and `*.localhost`), IP addresses, and these names.
    #[must_use]
    pub(crate) fn new(names: &[String]) -> Self {
        AllowedHosts(names.iter().map(|n| n.trim().to_ascii_lowercase()).filter(|n| !n.is_empty()).collect())
    }

    /// Whether a request with this `Host` header is for the demo.
    #[must_use]
    pub(crate) fn allows(&self, host: Option<&str>) -> bool {
        let Some(host) = host else { return false };
        let name = match host.strip_prefix('[') {
            // [::1]:4000
            Some(rest) => return rest.split(']').next().is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok()),
            None => {
                host.rsplit_once(':').map_or(host, |(name, port)| if port.parse::<u16>().is_ok() { name } else { host })
            }
        }
        .to_ascii_lowercase();
        name.parse::<std::net::IpAddr>().is_ok()
            || name == "localhost"
            || name.ends_with(".localhost")
            || self.0.contains(&name)
    }
}

/// The refusal for a request that names another host, if it does.
fn refuse_other_host(demo: &Demo, headers: &HeaderMap) -> Option<Response> {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if demo.hosts.allows(host) {
        return None;
    }
    tracing::warn!(host = host.unwrap_or(""), "demo: refused a request naming another host (DNS rebinding?)");
    Some(
        (
            StatusCode::FORBIDDEN,
            "this demo answers only to localhost and IP addresses; add the host name to CHAT_DEMO_ALLOWED_HOSTS\n",
        )
            .into_response(),
    )
}

/// The demo's routes: the page, the package, the user list and the token endpoint.
pub(crate) fn routes(
    store: SqliteStore,
    token_secret: &[u8],
    policy: Policy,
    sdk: SdkFiles,
    hosts: AllowedHosts,
) -> Router {
    let demo = Arc::new(Demo { store, auth: Auth::new(token_secret), policy, sdk, hosts });
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/sdk/{module}", get(sdk_module))
        .route(
            "/sdk/chat_sdk_bg.wasm",
            get(|State(d): State<Arc<Demo>>| async move {
                ([(header::CONTENT_TYPE, "application/wasm"), (header::CACHE_CONTROL, "no-cache")], d.sdk.wasm.clone())
            }),
        )
        .route("/demo/users", get(users))
        .route("/demo/token", get(token))
        .with_state(demo)
}

/// One JavaScript module of the package (the `.wasm` has a route of its own).
async fn sdk_module(State(d): State<Arc<Demo>>, Path(module): Path<String>) -> Response {
    match d.sdk.modules.iter().find(|(name, _)| *name == module) {
        Some((_, body)) => javascript(body.clone()),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn javascript(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], body)
        .into_response()
}

#[derive(Serialize)]
struct UserJson {
    role: &'static str,
    id: i32,
    name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UsersJson {
    users: Vec<UserJson>,
    /// For each role, the roles it may message under the server's policy.
    may_message: std::collections::BTreeMap<&'static str, Vec<&'static str>>,
}

async fn users(State(demo): State<Arc<Demo>>, headers: HeaderMap) -> Response {
    if let Some(refused) = refuse_other_host(&demo, &headers) {
        return refused;
    }
    match demo.store.users().await {
        Ok(list) => {
            let roles = [Role::Teacher, Role::Student];
            let may_message = roles
                .iter()
                .map(|&a| {
                    (a.as_str(), roles.iter().filter(|&&b| demo.policy.allows(a, b)).map(|b| b.as_str()).collect())
                })
                .collect();
            let users = list.into_iter().map(|u| UserJson { role: u.role.as_str(), id: u.id, name: u.name }).collect();
            Json(UsersJson { users, may_message }).into_response()
        }
        Err(e) => internal(&e),
    }
}

#[derive(Deserialize)]
struct TokenQuery {
    role: String,
    id: i32,
}

#[derive(Serialize)]
struct TokenJson {
    token: String,
    name: String,
}

async fn token(State(demo): State<Arc<Demo>>, headers: HeaderMap, Query(q): Query<TokenQuery>) -> Response {
    if let Some(refused) = refuse_other_host(&demo, &headers) {
        return refused;
    }
    let Some(role) = Role::parse(&q.role) else {
        return (StatusCode::BAD_REQUEST, "role must be teacher or student\n").into_response();
    };
    let user = UserRef::new(role, q.id);
    let name = match demo.store.find_user(user).await {
        Ok(name) => name,
        Err(e) => return internal(&e),
    };
    let Some(name) = name else {
        return (StatusCode::NOT_FOUND, format!("there is no {} {} in the demo\n", role.as_str(), q.id))
            .into_response();
    };
    let now = crate::now_ms() / 1000;
    match demo.auth.mint(user, now, now + TOKEN_LIFETIME_SECS) {
        Ok(token) => {
            tracing::info!(user = %format_args!("{} {}", role.as_str(), q.id), "demo: handed out a token");
            ([(header::CACHE_CONTROL, "no-store")], Json(TokenJson { token, name })).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "demo: cannot mint a token");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot mint a token\n").into_response()
        }
    }
}

fn internal(e: &StoreError) -> Response {
    tracing::error!(error = %e, "demo: database error");
    (StatusCode::INTERNAL_SERVER_ERROR, "database error; see the server log\n").into_response()
}

#[cfg(test)]
mod tests {
    use super::AllowedHosts;

    #[test]
    fn only_local_names_ip_addresses_and_listed_hosts_are_the_demo() {
        let hosts = AllowedHosts::new(&["chat.school.test".to_owned()]);
        for ok in
            ["localhost:4000", "127.0.0.1:4000", "[::1]:4000", "192.168.1.20", "app.localhost", "Chat.School.test:80"]
        {
            assert!(hosts.allows(Some(ok)), "{ok}");
        }
        for bad in ["evil.example:4000", "localhost.evil.example", "127.0.0.1.nip.io:4000", "[evil]:4000", ""] {
            assert!(!hosts.allows(Some(bad)), "{bad}");
        }
        assert!(!hosts.allows(None));
    }
}
