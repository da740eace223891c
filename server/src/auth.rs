//! Verifying the tokens the Next.js app mints for its signed-in users.
//!
//! A token is an HS256 JWT signed with the secret shared between the app and this server
//! (`CHAT_TOKEN_SECRET`). Its claims:
//!
//! | claim  | type   | meaning                                         |
//! |--------|--------|-------------------------------------------------|
//! | `role` | string | `"teacher"` or `"student"`                      |
//! | `id`   | number | the user's id in `"Teacher"` / `"Student"`       |
//! | `exp`  | number | expiry, seconds since the epoch (required)       |
//! | `iat`  | number | issued at (optional)                             |
//! | `nbf`  | number | not before (optional; honoured when present)     |
//! | `aud`  | string | required when `CHAT_TOKEN_AUDIENCE` is set        |
//! | `iss`  | string | required when `CHAT_TOKEN_ISSUER` is set          |
//!
//! Only HS256 is accepted: `alg: none` and every other algorithm are refused. A token may
//! live at most `CHAT_TOKEN_MAX_LIFETIME` (24 hours by default): `exp` further than that
//! after `iat` or after now is refused, so a leaked token cannot be valid for years.

use std::time::Duration;

use chat_protocol::{ErrorCode, Millis, Role, UserRef};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The claims of a chat token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// `"teacher"` or `"student"`.
    pub role: String,
    /// The user's id in its table.
    pub id: i32,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Not before, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// A supervisor: a teacher the app lets read any student's conversations (read-only,
    /// every read audited). Absent means false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub supervisor: bool,
    /// With `supervisor`: the ids of the students this supervisor may read (say, their
    /// school's or their class's). Absent: every student.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervises: Option<Vec<i32>>,
}

/// Whose conversations a token lets its teacher read as a supervisor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Supervision {
    /// Nobody's (not a supervisor).
    #[default]
    None,
    /// Every student's.
    AllStudents,
    /// These students' (ids, sorted).
    Students(Vec<i32>),
}

impl Supervision {
    /// Whether this is a supervisor at all.
    #[must_use]
    pub fn is_supervisor(&self) -> bool {
        !matches!(self, Supervision::None)
    }

    /// Whether student `id`'s conversations may be read.
    #[must_use]
    pub fn covers(&self, id: i32) -> bool {
        match self {
            Supervision::None => false,
            Supervision::AllStudents => true,
            Supervision::Students(ids) => ids.binary_search(&id).is_ok(),
        }
    }
}

/// A verified token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// Who the token is for.
    pub user: UserRef,
    /// When it expires, in milliseconds since the epoch.
    pub expires_at: Millis,
    /// Whose conversations the user may read as a supervisor (only a teacher can be one).
    pub supervision: Supervision,
}

/// Verifies (and, for tests and the demo, mints) tokens with one shared secret.
#[derive(Clone)]
pub struct Auth {
    decoding: DecodingKey,
    encoding: EncodingKey,
    validation: Validation,
    max_lifetime_secs: i64,
    audience: Option<String>,
    issuer: Option<String>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").finish_non_exhaustive()
    }
}

/// The shortest secret accepted: HS256 keys should carry at least 256 bits.
pub const MIN_SECRET_BYTES: usize = 32;

/// Words that mark a value copied from an example or a guide rather than made for this
/// school (lowercase; letters and digits only, as compared).
const PLACEHOLDER_WORDS: [&str; 8] =
    ["changeme", "change", "replace", "example", "placeholder", "yoursecret", "insecure", "dummy"];

/// Why a secret (the token secret) is too weak to use, if it is: too short, a placeholder
/// from an example, or too little variety to be random (a repeated pattern). The sentence
/// says how to make a good one.
#[must_use]
pub fn weak_secret(name: &str, secret: &str) -> Option<String> {
    let how = "make one with `openssl rand -hex 32` (the app and the chat server share it)";
    if secret.len() < MIN_SECRET_BYTES {
        return Some(format!(
            "{name} is {} bytes long; use at least {MIN_SECRET_BYTES} random bytes: {how}",
            secret.len()
        ));
    }
    let letters: String = secret.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect();
    if let Some(word) = PLACEHOLDER_WORDS.iter().find(|w| letters.contains(**w)) {
        return Some(format!(
            "{name} looks like a placeholder from an example (it contains \"{word}\"): anyone who read that example \
             could sign tokens for any user; {how}"
        ));
    }
    let distinct = secret.chars().collect::<std::collections::HashSet<_>>().len();
    let bytes = secret.as_bytes();
    let repeats =
        bytes.len() >= 16 && (0..bytes.len() - 8).any(|i| bytes[i + 8..].windows(8).any(|w| w == &bytes[i..i + 8]));
    if distinct < 12 || repeats {
        return Some(format!(
            "{name} is not random enough (too few different characters, or a repeated pattern); {how}"
        ));
    }
    None
}

/// How far the app's clock and this server's may disagree on `exp` and `nbf`, in seconds.
const LEEWAY_SECS: i64 = 5;
const TOKEN_EXPIRED: &str = "the token has expired";
const TOKEN_EARLY: &str = "the token is not valid yet (nbf)";

impl Auth {
    /// An authenticator for `secret` with the default rules (24-hour lifetime at most, no
    /// audience or issuer required).
    #[must_use]
    pub fn new(secret: &[u8]) -> Self {
        Auth::with_rules(secret, &crate::config::TokenRules::default())
    }

    /// An authenticator for `secret` that also enforces `rules`.
    #[must_use]
    pub fn with_rules(secret: &[u8], rules: &crate::config::TokenRules) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        let mut required = vec!["exp"];
        // `exp` and `nbf` are checked in `verify` against the server's clock (injectable),
        // not the library's reading of the system time.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        match &rules.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        if let Some(iss) = &rules.issuer {
            validation.set_issuer(&[iss]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        Auth {
            decoding: DecodingKey::from_secret(secret),
            encoding: EncodingKey::from_secret(secret),
            validation,
            max_lifetime_secs: i64::try_from(rules.max_lifetime.as_secs()).unwrap_or(i64::MAX),
            audience: rules.audience.clone(),
            issuer: rules.issuer.clone(),
        }
    }

    /// The longest token lifetime accepted.
    #[must_use]
    pub fn max_lifetime(&self) -> Duration {
        Duration::from_secs(u64::try_from(self.max_lifetime_secs).unwrap_or(0))
    }

    /// Verifies a token at `now_ms` (the server's clock).
    ///
    /// # Errors
    /// [`ErrorCode::TOKEN_EXPIRED`] for an expired token, [`ErrorCode::UNAUTHORIZED`] for
    /// anything else wrong (signature, algorithm, format, claims), with a short reason.
    pub fn verify(&self, token: &str, now_ms: Millis) -> Result<Verified, (ErrorCode, &'static str)> {
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => (ErrorCode::TOKEN_EXPIRED, TOKEN_EXPIRED),
                ErrorKind::InvalidSignature => (ErrorCode::UNAUTHORIZED, "the token's signature is not valid"),
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    (ErrorCode::UNAUTHORIZED, "the token must be signed with HS256")
                }
                ErrorKind::ImmatureSignature => (ErrorCode::UNAUTHORIZED, TOKEN_EARLY),
                ErrorKind::InvalidAudience => {
                    (ErrorCode::UNAUTHORIZED, "the token's audience (aud) is not CHAT_TOKEN_AUDIENCE")
                }
                ErrorKind::InvalidIssuer => {
                    (ErrorCode::UNAUTHORIZED, "the token's issuer (iss) is not CHAT_TOKEN_ISSUER")
                }
                ErrorKind::MissingRequiredClaim(_) => (ErrorCode::UNAUTHORIZED, "the token lacks a required claim"),
                ErrorKind::Json(_) => (ErrorCode::UNAUTHORIZED, "the token's claims need role, id and exp"),
                _ => (ErrorCode::UNAUTHORIZED, "the token is malformed"),
            })?;
        let role = Role::parse(&data.claims.role)
            .ok_or((ErrorCode::UNAUTHORIZED, "the token's role must be \"teacher\" or \"student\""))?;
        if data.claims.id <= 0 {
            return Err((ErrorCode::UNAUTHORIZED, "the token's id must be positive"));
        }
        let now = now_ms.div_euclid(1000);
        // Clocks of the app and this server may disagree slightly.
        if data.claims.exp.saturating_add(LEEWAY_SECS) < now {
            return Err((ErrorCode::TOKEN_EXPIRED, TOKEN_EXPIRED));
        }
        if data.claims.nbf.is_some_and(|nbf| nbf > now.saturating_add(LEEWAY_SECS)) {
            return Err((ErrorCode::UNAUTHORIZED, TOKEN_EARLY));
        }
        let issued = data.claims.iat.unwrap_or(now).min(now);
        if data.claims.exp.saturating_sub(issued) > self.max_lifetime_secs.saturating_add(5) {
            return Err((ErrorCode::UNAUTHORIZED, "the token lives longer than CHAT_TOKEN_MAX_LIFETIME allows"));
        }
        if data.claims.supervisor && role != Role::Teacher {
            return Err((ErrorCode::UNAUTHORIZED, "only a teacher can be a supervisor (the token's supervisor claim)"));
        }
        let supervision = match (data.claims.supervisor, data.claims.supervises) {
            (false, None) => Supervision::None,
            (false, Some(_)) => {
                return Err((ErrorCode::UNAUTHORIZED, "the token's supervises claim needs supervisor: true"));
            }
            (true, None) => Supervision::AllStudents,
            (true, Some(mut ids)) => {
                ids.sort_unstable();
                ids.dedup();
                Supervision::Students(ids)
            }
        };
        Ok(Verified {
            user: UserRef::new(role, data.claims.id),
            expires_at: data.claims.exp.saturating_mul(1000),
            supervision,
        })
    }

    /// Mints a token for `user` valid until `exp` (seconds since the epoch). The app
    /// normally does this; the server needs it for tests and the demo.
    ///
    /// # Errors
    /// A signing failure (not expected with an HMAC key).
    pub fn mint(&self, user: UserRef, iat: i64, exp: i64) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = Claims {
            role: user.role.as_str().to_owned(),
            id: user.id,
            exp,
            iat: Some(iat),
            nbf: None,
            aud: self.audience.clone(),
            iss: self.issuer.clone(),
            supervisor: false,
            supervises: None,
        };
        self.mint_claims(&claims)
    }

    /// Signs arbitrary claims (tests of the checks above).
    ///
    /// # Errors
    /// A signing failure (not expected with an HMAC key).
    pub fn mint_claims(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn now() -> i64 {
        i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()))
            .unwrap_or(0)
    }

    #[test]
    fn a_minted_token_verifies_to_its_user() {
        let auth = Auth::new(SECRET);
        let t = auth.mint(UserRef::student(4), now(), now() + 60).expect("mints");
        let v = auth.verify(&t, crate::now_ms()).expect("verifies");
        assert_eq!(v.user, UserRef::student(4));
        assert_eq!(v.expires_at, (now() + 60) * 1000);
    }

    #[test]
    fn expired_forged_and_unsigned_tokens_are_refused() {
        let auth = Auth::new(SECRET);
        let expired = auth.mint(UserRef::teacher(1), now() - 100, now() - 60).expect("mints");
        assert_eq!(auth.verify(&expired, crate::now_ms()).map_err(|e| e.0), Err(ErrorCode::TOKEN_EXPIRED));
        // Time is the server's clock: the expired token was good two minutes before on it,
        // and a good one is expired two hours later.
        let before = (now() - 120) * 1000;
        assert_eq!(auth.verify(&expired, before).map(|v| v.user), Ok(UserRef::teacher(1)));
        let good = auth.mint(UserRef::teacher(1), now(), now() + 60).expect("mints");
        let later = crate::now_ms() + 2 * 3_600_000;
        assert_eq!(auth.verify(&good, later).map_err(|e| e.0), Err(ErrorCode::TOKEN_EXPIRED));

        let other = Auth::new(b"another secret of at least 32 bytes!!");
        let forged = other.mint(UserRef::teacher(1), now(), now() + 60).expect("mints");
        assert_eq!(auth.verify(&forged, crate::now_ms()).map_err(|e| e.0), Err(ErrorCode::UNAUTHORIZED));

        // {"alg":"none","typ":"JWT"} . {"role":"teacher","id":1,"exp":9999999999} .
        let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJyb2xlIjoidGVhY2hlciIsImlkIjoxLCJleHAiOjk5OTk5OTk5OTl9.";
        assert_eq!(auth.verify(none, crate::now_ms()).map_err(|e| e.0), Err(ErrorCode::UNAUTHORIZED));
        assert_eq!(auth.verify("garbage", crate::now_ms()).map_err(|e| e.0), Err(ErrorCode::UNAUTHORIZED));
    }

    fn claims(iat: Option<i64>, exp: i64) -> Claims {
        Claims {
            role: "student".into(),
            id: 3,
            exp,
            iat,
            nbf: None,
            aud: None,
            iss: None,
            supervisor: false,
            supervises: None,
        }
    }

    #[test]
    fn a_token_that_is_not_valid_yet_is_refused() {
        let auth = Auth::new(SECRET);
        let early = auth.mint_claims(&Claims { nbf: Some(now() + 600), ..claims(Some(now()), now() + 900) }).unwrap();
        let why = auth.verify(&early, crate::now_ms()).expect_err("nbf in the future");
        assert_eq!(why.0, ErrorCode::UNAUTHORIZED);
        assert!(why.1.contains("nbf"), "{}", why.1);
        let ready = auth.mint_claims(&Claims { nbf: Some(now() - 1), ..claims(Some(now()), now() + 900) }).unwrap();
        assert!(auth.verify(&ready, crate::now_ms()).is_ok());
    }

    #[test]
    fn tokens_living_longer_than_the_maximum_are_refused() {
        let auth = Auth::new(SECRET);
        // exp in year 2999, with and without iat.
        for iat in [Some(now()), None] {
            let forever = auth.mint_claims(&claims(iat, 32_503_680_000)).unwrap();
            let why = auth.verify(&forever, crate::now_ms()).expect_err("too long");
            assert!(why.1.contains("CHAT_TOKEN_MAX_LIFETIME"), "{}", why.1);
        }
        // Issued long ago with a long life: also refused, even though exp is near.
        let old = auth.mint_claims(&claims(Some(now() - 3 * 86_400), now() + 60)).unwrap();
        assert!(auth.verify(&old, crate::now_ms()).is_err());
        let day = auth.mint_claims(&claims(Some(now()), now() + 86_000)).unwrap();
        assert!(auth.verify(&day, crate::now_ms()).is_ok());
    }

    #[test]
    fn only_a_teacher_can_be_a_supervisor() {
        let auth = Auth::new(SECRET);
        let teacher = Claims { role: "teacher".into(), supervisor: true, ..claims(Some(now()), now() + 60) };
        assert_eq!(
            auth.verify(&auth.mint_claims(&teacher).unwrap(), crate::now_ms()).map(|v| v.supervision),
            Ok(Supervision::AllStudents)
        );
        let class = Claims { supervises: Some(vec![9, 4, 9]), ..teacher.clone() };
        let scope = auth.verify(&auth.mint_claims(&class).unwrap(), crate::now_ms()).unwrap().supervision;
        assert_eq!(scope, Supervision::Students(vec![4, 9]));
        assert!(scope.covers(4) && !scope.covers(5));
        let student = Claims { supervisor: true, ..claims(Some(now()), now() + 60) };
        let refused =
            auth.verify(&auth.mint_claims(&student).unwrap(), crate::now_ms()).expect_err("a student supervisor");
        assert!(refused.1.contains("only a teacher can be a supervisor"));
        let half = Claims { supervisor: false, ..class };
        assert!(
            auth.verify(&auth.mint_claims(&half).unwrap(), crate::now_ms())
                .expect_err("scope alone")
                .1
                .contains("needs supervisor")
        );
        let plain = auth.mint(UserRef::teacher(1), now(), now() + 60).unwrap();
        assert_eq!(auth.verify(&plain, crate::now_ms()).map(|v| v.supervision), Ok(Supervision::None));
    }

    #[test]
    fn audience_and_issuer_are_required_when_configured() {
        let rules = crate::config::TokenRules {
            audience: Some("chat".into()),
            issuer: Some("https://school.example".into()),
            ..crate::config::TokenRules::default()
        };
        let auth = Auth::with_rules(SECRET, &rules);
        let plain = Auth::new(SECRET).mint(UserRef::student(3), now(), now() + 60).unwrap();
        assert!(auth.verify(&plain, crate::now_ms()).is_err(), "no aud/iss");
        let good = auth.mint(UserRef::student(3), now(), now() + 60).unwrap();
        assert_eq!(auth.verify(&good, crate::now_ms()).map(|v| v.user), Ok(UserRef::student(3)));
        let wrong_aud = auth
            .mint_claims(&Claims {
                aud: Some("other".into()),
                iss: rules.issuer.clone(),
                ..claims(Some(now()), now() + 60)
            })
            .unwrap();
        assert!(auth.verify(&wrong_aud, crate::now_ms()).expect_err("aud").1.contains("aud"));
        let wrong_iss = auth
            .mint_claims(&Claims {
                aud: rules.audience.clone(),
                iss: Some("https://evil.example".into()),
                ..claims(Some(now()), now() + 60)
            })
            .unwrap();
        assert!(auth.verify(&wrong_iss, crate::now_ms()).expect_err("iss").1.contains("iss"));
        // Without the rules, aud and iss are ignored.
        assert!(Auth::new(SECRET).verify(&good, crate::now_ms()).is_ok());
    }
}
