//! Turning the server URL the app has into the WebSocket endpoint.

use alloc::string::String;

/// The WebSocket endpoint's path on the server.
pub const WS_PATH: &str = "/ws";

/// Maps the app's server URL to the WebSocket URL: `http://host:4000` (the guide's
/// `NEXT_PUBLIC_SOCKET_URL`) becomes `ws://host:4000/ws`, `https://…` becomes `wss://…/ws`,
/// and a `ws://`/`wss://` URL is used as written. A path prefix is kept
/// (`https://school.example/chat` -> `wss://school.example/chat/ws`).
///
/// # Errors
/// A sentence saying what is wrong with `url`.
pub fn websocket_url(url: &str) -> Result<String, &'static str> {
    let url = url.trim();
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
        ("ws://", rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        ("wss://", rest)
    } else if url.starts_with("ws://") || url.starts_with("wss://") {
        return Ok(url.into());
    } else {
        return Err("the chat server URL must start with http://, https://, ws:// or wss://");
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default().trim_end_matches('/');
    if rest.is_empty() || rest.starts_with('/') {
        return Err("the chat server URL has no host");
    }
    let mut out = String::with_capacity(scheme.len() + rest.len() + WS_PATH.len());
    out.push_str(scheme);
    out.push_str(rest);
    if !rest.ends_with(WS_PATH) {
        out.push_str(WS_PATH);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::websocket_url;

    #[test]
    fn the_guides_socket_url_maps_to_the_websocket_endpoint() {
        assert_eq!(websocket_url("http://localhost:4000").as_deref(), Ok("ws://localhost:4000/ws"));
        assert_eq!(websocket_url("http://localhost:4000/").as_deref(), Ok("ws://localhost:4000/ws"));
        assert_eq!(websocket_url("https://chat.school.example").as_deref(), Ok("wss://chat.school.example/ws"));
        assert_eq!(websocket_url("https://school.example/chat").as_deref(), Ok("wss://school.example/chat/ws"));
        assert_eq!(websocket_url("ws://127.0.0.1:9/ws").as_deref(), Ok("ws://127.0.0.1:9/ws"));
        assert_eq!(websocket_url("http://h:1/ws").as_deref(), Ok("ws://h:1/ws"));
        assert!(websocket_url("localhost:4000").is_err());
        assert!(websocket_url("http://").is_err());
    }
}
