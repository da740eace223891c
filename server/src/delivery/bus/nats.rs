//! Reaching NATS as operators secure it: user and password or a token (in the URL or in
//! settings), an nkey seed, a `.creds` file (JWT), and TLS with the operator's CA and a client
//! certificate. Credentials never appear in logs or error messages.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;

use super::BusHealth;

/// How the node authenticates to NATS (`CHAT_NATS_*`), and its TLS settings. At most one way
/// of authenticating is set.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct NatsAuth {
    /// `CHAT_NATS_USER` (with `password`), or the URL's `user:password@`.
    pub user: Option<String>,
    /// `CHAT_NATS_PASSWORD`.
    pub password: Option<String>,
    /// `CHAT_NATS_TOKEN`, or the URL's `token@`.
    pub token: Option<String>,
    /// `CHAT_NATS_NKEY`: a user nkey seed (`SU…`).
    pub nkey_seed: Option<String>,
    /// `CHAT_NATS_CREDS`: a `.creds` file (a user JWT and its seed).
    pub creds_file: Option<PathBuf>,
    /// `CHAT_NATS_TLS_CA`: PEM roots to trust for the server's certificate.
    pub tls_ca: Option<PathBuf>,
    /// `CHAT_NATS_TLS_CERT`: this node's client certificate (PEM), with `tls_key`.
    pub tls_cert: Option<PathBuf>,
    /// `CHAT_NATS_TLS_KEY`: the client certificate's private key (PEM).
    pub tls_key: Option<PathBuf>,
}

impl std::fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsAuth")
            .field("method", &self.method())
            .field("tls_ca", &self.tls_ca)
            .field("tls_cert", &self.tls_cert)
            .finish_non_exhaustive()
    }
}

impl NatsAuth {
    /// The way this node authenticates, for logs: never the secret itself.
    #[must_use]
    pub fn method(&self) -> &'static str {
        if self.creds_file.is_some() {
            "creds file"
        } else if self.nkey_seed.is_some() {
            "nkey"
        } else if self.token.is_some() {
            "token"
        } else if self.user.is_some() {
            "user and password"
        } else if self.tls_cert.is_some() {
            "client certificate"
        } else {
            "none"
        }
    }

    /// Takes the credentials out of `url` (`nats://user:password@host`, `nats://token@host`)
    /// into these settings, and checks that the settings make sense together. Returns the
    /// URL without credentials.
    ///
    /// # Errors
    /// A sentence naming the settings at fault.
    pub fn with_url(mut self, url: &str) -> Result<(String, NatsAuth), String> {
        let mut parsed = url::Url::parse(url)
            .map_err(|e| format!("CHAT_BUS is not a URL NATS takes ({e}); write it as nats://host:4222"))?;
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        if !parsed.username().is_empty() {
            let user = decode(parsed.username());
            match parsed.password() {
                Some(password) => {
                    self.user.get_or_insert(user);
                    self.password.get_or_insert(decode(password));
                }
                None => {
                    self.token.get_or_insert(user);
                }
            }
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
        }
        let methods = [
            self.user.is_some() || self.password.is_some(),
            self.token.is_some(),
            self.nkey_seed.is_some(),
            self.creds_file.is_some(),
        ];
        if methods.iter().filter(|m| **m).count() > 1 {
            return Err("NATS credentials: set one of user and password (CHAT_NATS_USER/CHAT_NATS_PASSWORD or \
                        user:password@ in CHAT_BUS), a token (CHAT_NATS_TOKEN or token@ in CHAT_BUS), an nkey \
                        (CHAT_NATS_NKEY) or a creds file (CHAT_NATS_CREDS), not several"
                .to_owned());
        }
        if self.user.is_some() != self.password.is_some() {
            return Err("CHAT_NATS_USER and CHAT_NATS_PASSWORD go together: set both, or neither".to_owned());
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err("CHAT_NATS_TLS_CERT and CHAT_NATS_TLS_KEY go together: set both, or neither".to_owned());
        }
        if let Some(seed) = &self.nkey_seed
            && nkeys::KeyPair::from_seed(seed.trim()).is_err()
        {
            return Err(
                "CHAT_NATS_NKEY is not an nkey seed (it starts with SU; `nsc` or `nk -gen user` makes one)".to_owned()
            );
        }
        for (name, path) in [
            ("CHAT_NATS_CREDS", &self.creds_file),
            ("CHAT_NATS_TLS_CA", &self.tls_ca),
            ("CHAT_NATS_TLS_CERT", &self.tls_cert),
            ("CHAT_NATS_TLS_KEY", &self.tls_key),
        ] {
            if let Some(path) = path
                && let Err(e) = std::fs::metadata(path)
            {
                return Err(format!("{name}={}: {e}", path.display()));
            }
        }
        let mut clean = parsed.to_string();
        if clean.ends_with('/') && !url.ends_with('/') {
            clean.pop();
        }
        Ok((clean, self))
    }

    async fn options(&self) -> Result<async_nats::ConnectOptions, String> {
        let mut options = async_nats::ConnectOptions::new();
        if let Some(path) = &self.creds_file {
            options =
                options.credentials_file(path).await.map_err(|e| format!("CHAT_NATS_CREDS={}: {e}", path.display()))?;
        } else if let Some(seed) = &self.nkey_seed {
            options = options.nkey(seed.trim().to_owned());
        } else if let Some(token) = &self.token {
            options = options.token(token.clone());
        } else if let (Some(user), Some(password)) = (&self.user, &self.password) {
            options = options.user_and_password(user.clone(), password.clone());
        }
        if let Some(ca) = &self.tls_ca {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            options = options.add_client_certificate(cert.clone(), key.clone()).require_tls(true);
        }
        Ok(options)
    }
}

/// Connects in the background (a server that is down or refuses us does not hold the
/// start; `health` says what is wrong) and subscribes to `channel`.
pub(super) async fn connect(
    url: &str,
    auth: &NatsAuth,
    channel: &str,
    link: mpsc::UnboundedSender<bool>,
    health: BusHealth,
) -> Result<(async_nats::Client, async_nats::Subscriber), String> {
    let method = auth.method();
    let shown = url.to_owned();
    let options = auth
        .options()
        .await?
        .name("chat-server")
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5))
        .event_callback(move |event| {
            let (link, health, shown) = (link.clone(), health.clone(), shown.clone());
            async move {
                match event {
                    async_nats::Event::Connected => {
                        let _ = link.send(true);
                    }
                    async_nats::Event::Disconnected => {
                        let _ = link.send(false);
                    }
                    async_nats::Event::ServerError(async_nats::ServerError::AuthorizationViolation)
                    | async_nats::Event::ClientError(async_nats::ClientError::Other(_)) => {
                        let text = event.to_string();
                        let fix = if text.contains("authorization") {
                            "NATS refused this node's credentials: set CHAT_NATS_USER and CHAT_NATS_PASSWORD, \
                             CHAT_NATS_TOKEN, CHAT_NATS_NKEY or CHAT_NATS_CREDS (or user:password@ in CHAT_BUS) to \
                             what the NATS server expects"
                        } else if text.to_ascii_lowercase().contains("tls") {
                            "check CHAT_NATS_TLS_CA (the roots that signed the server's certificate) and, when the \
                             server asks for one, CHAT_NATS_TLS_CERT and CHAT_NATS_TLS_KEY"
                        } else {
                            "is nats-server running there?"
                        };
                        health.set_problem(format!(
                            "the NATS bus at {shown} is not connected ({text}; this node authenticates by {method}): \
                             {fix}"
                        ));
                    }
                    other => tracing::debug!(event = %other, "NATS"),
                }
            }
        })
        .reconnect_delay_callback(|attempts| {
            // Backoff to 5 s: an operator fixing credentials sees the node join within seconds.
            Duration::from_millis(100u64.saturating_mul(1 << attempts.min(6)).min(5_000))
        });
    let client = options.connect(url).await.map_err(|e| {
        format!("CHAT_BUS={url}: cannot connect to NATS ({e}); is nats-server running, and is the URL right?")
    })?;
    let subscriber = client
        .subscribe(channel.to_owned())
        .await
        .map_err(|e| format!("CHAT_BUS={url}: subscribing to {channel} failed: {e}"))?;
    Ok((client, subscriber))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn credentials_in_the_url_are_taken_out_of_it() {
        let (url, auth) = NatsAuth::default().with_url("nats://chat:p%40ss@127.0.0.1:4222").unwrap();
        assert_eq!(url, "nats://127.0.0.1:4222");
        assert_eq!((auth.user.as_deref(), auth.password.as_deref()), (Some("chat"), Some("p@ss")));
        let (url, auth) = NatsAuth::default().with_url("tls://s3cr3t@nats.school.example:4222").unwrap();
        assert_eq!((url.as_str(), auth.token.as_deref()), ("tls://nats.school.example:4222", Some("s3cr3t")));
        assert!(!format!("{auth:?}").contains("s3cr3t"), "Debug never shows a credential");
        let (url, auth) = NatsAuth::default().with_url("nats://127.0.0.1:4222").unwrap();
        assert_eq!((url.as_str(), auth.method()), ("nats://127.0.0.1:4222", "none"));
    }

    #[test]
    fn settings_that_do_not_go_together_are_named() {
        let both = NatsAuth { token: Some("t".into()), ..NatsAuth::default() };
        assert!(both.with_url("nats://u:p@h:4222").unwrap_err().contains("not several"));
        let half = NatsAuth { user: Some("u".into()), ..NatsAuth::default() };
        assert!(half.with_url("nats://h:4222").unwrap_err().contains("CHAT_NATS_PASSWORD"));
        let seed = NatsAuth { nkey_seed: Some("not-a-seed".into()), ..NatsAuth::default() };
        assert!(seed.with_url("nats://h:4222").unwrap_err().starts_with("CHAT_NATS_NKEY"));
        let cert = NatsAuth { tls_cert: Some("/nonexistent.pem".into()), ..NatsAuth::default() };
        assert!(cert.with_url("nats://h:4222").unwrap_err().contains("CHAT_NATS_TLS_KEY"));
        let creds = NatsAuth { creds_file: Some("/nonexistent.creds".into()), ..NatsAuth::default() };
        assert!(creds.with_url("nats://h:4222").unwrap_err().starts_with("CHAT_NATS_CREDS=/nonexistent.creds"));
    }
}
