//! Browser sessions (`AUTH_COOKIES=true`): the refresh token also travels in an `HttpOnly`
//! cookie, out of reach of the page's scripts (and of whatever script an XSS slips in).
//!
//! A cookie goes with every request to `/graphql`, including one a hostile site makes the
//! browser send, so what it authenticates needs a second proof that the page is ours:
//! `SameSite=Strict` keeps it off cross-site requests in browsers that honour it, and on top
//! of that a mutation that uses it must carry `X-CSRF-Protection` (a header no cross-site form
//! can send, and a cross-origin script only after a CORS preflight that names an allowed
//! origin). A WebSocket cannot carry headers; its upgrade request must come from an allowed
//! origin instead (`same_site`).
use axum::http::{HeaderMap, HeaderValue, header};
use secrecy::SecretString;

use crate::graphql::guard::RefreshCookie;

pub const REFRESH_COOKIE: &str = "chat_refresh_token";

/// Any value will do: what matters is that a cross-site form cannot send it.
pub const CSRF_HEADER: &str = "x-csrf-protection";

/// Scoped to the endpoint: no other path of the site ever sees it.
const ATTRIBUTES: &str = "Path=/graphql; HttpOnly; Secure; SameSite=Strict";

/// The refresh cookie of a request, if it carries one.
pub fn refresh_cookie(headers: &HeaderMap) -> Option<RefreshCookie> {
    let token = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|line| line.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == REFRESH_COOKIE)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|value| !value.is_empty())?;
    Some(RefreshCookie {
        token: SecretString::from(token),
        csrf_header: headers
            .get(CSRF_HEADER)
            .is_some_and(|value| !value.is_empty()),
    })
}

/// Sets the cookie to `token` for `max_age_seconds` (the refresh token's lifetime).
pub fn set(token: &str, max_age_seconds: u64) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{REFRESH_COOKIE}={token}; Max-Age={max_age_seconds}; {ATTRIBUTES}"
    ))
    .ok()
}

/// Tells the browser to forget the cookie.
pub fn clear() -> HeaderValue {
    HeaderValue::from_str(&format!("{REFRESH_COOKIE}=; Max-Age=0; {ATTRIBUTES}"))
        .expect("a valid header value")
}

/// Whether a WebSocket upgrade comes from a page of this site (its `Origin` names the host it
/// was sent to) or of an allowed origin (`CORS_ALLOWED_ORIGINS`). A request without `Origin`
/// does not come from a browser page, and gets no cookie authentication.
pub fn same_site(headers: &HeaderMap, allowed: Option<&[String]>) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    if allowed.is_some_and(|list| list.iter().any(|o| o == origin)) {
        return true;
    }
    let authority = origin.split_once("://").map(|(_, rest)| rest);
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    authority.is_some() && authority == host
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let found = refresh_cookie(&headers(&[
            ("cookie", "a=1; chat_refresh_token=abc_-9"),
            ("x-csrf-protection", "1"),
        ]))
        .unwrap();
        assert_eq!(found.token.expose_secret(), "abc_-9");
        assert!(found.csrf_header);
        let found = refresh_cookie(&headers(&[
            ("cookie", "a=1"),
            ("cookie", "chat_refresh_token=\"x\""),
        ]))
        .unwrap();
        assert_eq!(found.token.expose_secret(), "x");
        assert!(!found.csrf_header);
        assert!(refresh_cookie(&headers(&[("cookie", "chat_refresh_token=")])).is_none());
        assert!(refresh_cookie(&headers(&[("cookie", "xchat_refresh_token=1")])).is_none());
    }

    #[test]
    fn a_socket_is_same_site_by_host_or_allowed_origin() {
        let allowed = ["https://app.example".to_owned()];
        let of = |origin: &str, host: &str| {
            same_site(
                &headers(&[("origin", origin), ("host", host)]),
                Some(&allowed),
            )
        };
        assert!(of("http://127.0.0.1:8000", "127.0.0.1:8000"));
        assert!(of("https://app.example", "api.example"));
        assert!(!of("https://evil.example", "api.example"));
        assert!(!of("null", "api.example"));
        assert!(!same_site(&headers(&[("host", "api.example")]), None));
    }
}
