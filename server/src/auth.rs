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
//!
//! Only HS256 is accepted: `alg: none` and every other algorithm are refused.

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
}

/// A verified token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verified {
    /// Who the token is for.
    pub user: UserRef,
    /// When it expires, in milliseconds since the epoch.
    pub expires_at: Millis,
}

/// Verifies (and, for tests and the demo, mints) tokens with one shared secret.
#[derive(Clone)]
pub struct Auth {
    decoding: DecodingKey,
    encoding: EncodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").finish_non_exhaustive()
    }
}

/// The shortest secret accepted: HS256 keys should carry at least 256 bits.
pub const MIN_SECRET_BYTES: usize = 32;

impl Auth {
    /// An authenticator for `secret`.
    #[must_use]
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_required_spec_claims(&["exp"]);
        validation.validate_exp = true;
        // Clocks of the app and this server may disagree slightly.
        validation.leeway = 5;
        validation.validate_aud = false;
        Auth { decoding: DecodingKey::from_secret(secret), encoding: EncodingKey::from_secret(secret), validation }
    }

    /// Verifies a token.
    ///
    /// # Errors
    /// [`ErrorCode::TOKEN_EXPIRED`] for an expired token, [`ErrorCode::UNAUTHORIZED`] for
    /// anything else wrong (signature, algorithm, format, claims), with a short reason.
    pub fn verify(&self, token: &str) -> Result<Verified, (ErrorCode, &'static str)> {
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => (ErrorCode::TOKEN_EXPIRED, "the token has expired"),
                ErrorKind::InvalidSignature => (ErrorCode::UNAUTHORIZED, "the token's signature is not valid"),
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    (ErrorCode::UNAUTHORIZED, "the token must be signed with HS256")
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
        Ok(Verified { user: UserRef::new(role, data.claims.id), expires_at: data.claims.exp.saturating_mul(1000) })
    }

    /// Mints a token for `user` valid until `exp` (seconds since the epoch). The app
    /// normally does this; the server needs it for tests and the demo.
    ///
    /// # Errors
    /// A signing failure (not expected with an HMAC key).
    pub fn mint(&self, user: UserRef, iat: i64, exp: i64) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = Claims { role: user.role.as_str().to_owned(), id: user.id, exp, iat: Some(iat) };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
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
        let v = auth.verify(&t).expect("verifies");
        assert_eq!(v.user, UserRef::student(4));
        assert_eq!(v.expires_at, (now() + 60) * 1000);
    }

    #[test]
    fn expired_forged_and_unsigned_tokens_are_refused() {
        let auth = Auth::new(SECRET);
        let expired = auth.mint(UserRef::teacher(1), now() - 100, now() - 60).expect("mints");
        assert_eq!(auth.verify(&expired).map_err(|e| e.0), Err(ErrorCode::TOKEN_EXPIRED));

        let other = Auth::new(b"another secret of at least 32 bytes!!");
        let forged = other.mint(UserRef::teacher(1), now(), now() + 60).expect("mints");
        assert_eq!(auth.verify(&forged).map_err(|e| e.0), Err(ErrorCode::UNAUTHORIZED));

        // {"alg":"none","typ":"JWT"} . {"role":"teacher","id":1,"exp":9999999999} .
        let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJyb2xlIjoidGVhY2hlciIsImlkIjoxLCJleHAiOjk5OTk5OTk5OTl9.";
        assert_eq!(auth.verify(none).map_err(|e| e.0), Err(ErrorCode::UNAUTHORIZED));
        assert_eq!(auth.verify("garbage").map_err(|e| e.0), Err(ErrorCode::UNAUTHORIZED));
    }
}
