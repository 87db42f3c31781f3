//! Who is calling over HTTP: the bearer token, checked, and the client address.
use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{HeaderMap, header, request::Parts},
};

use super::{HttpState, cookie};
use crate::{
    graphql::guard::Caller,
    service::auth::{AuthError, user_agent},
};

impl FromRequestParts<HttpState> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        http: &HttpState,
    ) -> Result<Self, Self::Rejection> {
        let auth = match bearer_token(&parts.headers) {
            None => Err(AuthError::Missing),
            Some(token) => http.state.auth.authenticate(token).await,
        };
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .and_then(user_agent);
        let refresh_cookie = http
            .state
            .config
            .http
            .auth_cookies
            .then(|| cookie::refresh_cookie(&parts.headers))
            .flatten();
        Ok(Caller {
            auth,
            user_agent,
            refresh_cookie,
            ip: client_ip(
                &parts.headers,
                peer,
                http.state.config.http.trust_forwarded_for,
            ),
        })
    }
}

/// The token of `Authorization: Bearer <token>`. A header in another scheme counts as no
/// token; an empty one as an invalid token.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    parse_bearer(headers.get(header::AUTHORIZATION)?.to_str().ok()?)
}

/// The token of an `Authorization` value in the bearer scheme (`Bearer T`, any case).
pub fn parse_bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The peer address, or behind a trusted proxy the last hop it appended to `X-Forwarded-For`.
/// Everything before that hop is whatever the client chose to send, in the same line or in
/// header lines of its own (which come first: a proxy appends its line, or to the last one),
/// so the address is the last entry of the last line. A last entry that is not an address
/// counts as no header: the peer, which is the proxy, is used.
pub fn client_ip(headers: &HeaderMap, peer: Option<IpAddr>, trust_forwarded_for: bool) -> IpAddr {
    let forwarded = trust_forwarded_for
        .then(|| headers.get_all("x-forwarded-for").iter().next_back())
        .flatten()
        .and_then(|line| line.to_str().ok())
        .and_then(|line| line.rsplit(',').next())
        .and_then(|last| last.trim().parse().ok());
    forwarded
        .or(peer)
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip_of(lines: &[&str], trust: bool) -> String {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append("x-forwarded-for", HeaderValue::from_str(line).unwrap());
        }
        client_ip(&headers, Some("10.0.0.1".parse().unwrap()), trust).to_string()
    }

    #[test]
    fn the_proxys_hop_is_the_last_entry_of_the_last_line() {
        assert_eq!(ip_of(&["203.0.113.9"], true), "203.0.113.9");
        assert_eq!(ip_of(&["1.2.3.4, 203.0.113.9"], true), "203.0.113.9");
        // A line of the client's own, before the proxy's.
        assert_eq!(ip_of(&["1.2.3.4", "203.0.113.9"], true), "203.0.113.9");
        assert_eq!(
            ip_of(&["1.2.3.4", "5.6.7.8, 2001:db8::1"], true),
            "2001:db8::1"
        );
        // Not behind a proxy, or nothing usable: the peer.
        assert_eq!(ip_of(&["1.2.3.4"], false), "10.0.0.1");
        assert_eq!(ip_of(&["1.2.3.4", "garbage"], true), "10.0.0.1");
        assert_eq!(ip_of(&[], true), "10.0.0.1");
    }
}
