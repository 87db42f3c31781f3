//! The GraphiQL playground served to browsers on `GET /graphql`, pre-set with the
//! subscription endpoint and a Headers tab holding an `Authorization` header to fill in.
//! Everything it loads comes from this server (`assets`), so it works offline, and its
//! Content-Security-Policy lets the page load or connect to nothing else.
mod assets;

use axum::{
    body::Body,
    extract::Path,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use assets::Playground;

/// The path the files are served under; `http::router` mounts `asset` there.
pub const ASSETS_ROUTE: &str = "/playground/{*path}";

/// Scripts from this origin only, so no inline script runs, even one injected into the page.
/// Inline styles are allowed: a dialog (settings, shortcuts) makes GraphiQL add a `<style>`
/// element, to hide the page's scroll bars (react-remove-scroll); its `style` attributes are
/// set through the DOM, which the policy does not cover. `connect-src 'self'` covers the
/// same-origin `ws://` socket too (CSP level 3; Chromium refuses the socket without it). The
/// fonts are `data:` URLs inside GraphiQL's CSS.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
    connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// A year, the most a cache is asked to keep anything; a new version is a new path.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The page, fetched again on each load (`no-cache`): it names the files, whose paths change
/// with them. It is small; the files it names are what a browser keeps.
pub fn page() -> Response {
    let playground = Playground::get();
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
        Body::from(playground.page.as_str()),
    )
        .into_response()
}

/// `GET /playground/{path}`: one of the page's files, or 404.
pub async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = Playground::get().asset(&path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let caching = [
        (header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE)),
        (header::ETAG, asset.etag.clone()),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    if not_modified(&headers, &asset.etag) {
        return (StatusCode::NOT_MODIFIED, caching).into_response();
    }
    (
        caching,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        )],
        Body::from(asset.body),
    )
        .into_response()
}

/// Whether `If-None-Match` names this version (or any, `*`): then the cached copy is current.
fn not_modified(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let Some(etag) = etag.to_str().ok() else {
        return false;
    };
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim())
        // A weak comparison, as RFC 9110 asks of If-None-Match.
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}
