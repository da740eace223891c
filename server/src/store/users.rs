//! The user directory: who exists and what they are called, read from `users_view` (the
//! app's Teacher and Student tables) through a cache. Names are cached for 60 s (the TTL
//! `server.rs` gives), so a renamed user shows the new name within a minute; a user who
//! does not exist is never cached (one created a moment ago works at once); a token
//! refresh asks the database itself, so a deleted user cannot stay connected.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chat_protocol::UserRef;

use crate::store::{Store, StoreError};

/// A cache in front of `users_view`: every send checks that its recipient exists, and
/// the database should not answer the same question thousands of times a second.
#[derive(Debug)]
pub(crate) struct UserDirectory {
    store: Store,
    cache: Mutex<HashMap<UserRef, (Arc<str>, Instant)>>,
    ttl: Duration,
}

/// Entries kept at most; the cache is simply emptied when it grows past this.
const DIRECTORY_CAPACITY: usize = 200_000;

impl UserDirectory {
    pub(crate) fn new(store: Store, ttl: Duration) -> Self {
        UserDirectory { store, cache: Mutex::new(HashMap::new()), ttl }
    }

    /// Whether the user still exists, asked of the database itself (not the cache): a
    /// token refresh must not keep a deleted user connected. Refreshes the cache.
    pub(crate) async fn still_exists(&self, user: UserRef) -> Result<bool, StoreError> {
        match self.store.find_user(user).await? {
            Some(name) => {
                let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
                cache.insert(user, (short_name(name), Instant::now()));
                Ok(true)
            }
            None => {
                self.cache.lock().unwrap_or_else(PoisonError::into_inner).remove(&user);
                Ok(false)
            }
        }
    }

    /// The user's display name, or `None` if `users_view` has no such user.
    pub(crate) async fn name(&self, user: UserRef) -> Result<Option<Arc<str>>, StoreError> {
        {
            let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((name, at)) = cache.get(&user)
                && at.elapsed() < self.ttl
            {
                return Ok(Some(Arc::clone(name)));
            }
        }
        // Unknown users are not cached: a user created a moment ago must work at once.
        let Some(name) = self.store.find_user(user).await? else {
            return Ok(None);
        };
        let name = short_name(name);
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= DIRECTORY_CAPACITY {
            cache.clear();
        }
        cache.insert(user, (Arc::clone(&name), Instant::now()));
        Ok(Some(name))
    }
}

/// A display name cut to the protocol's limit (the app's table puts no limit on names;
/// frames must stay bounded).
fn short_name(mut name: String) -> Arc<str> {
    crate::store::cut_at_char(&mut name, chat_protocol::MAX_NAME_BYTES);
    name.into()
}
