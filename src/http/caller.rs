//! Who is calling over HTTP: the bearer token, checked, and the client address.
use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{HeaderMap, header, request::Parts},
};

use super::HttpState;
use crate::{graphql::guard::Caller, service::auth::AuthError};

impl FromRequestParts<HttpState> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        http: &HttpState,
    ) -> Result<Self, Self::Rejection> {
        let auth = match bearer_token(&parts.headers) {
            None => Err(AuthError::Missing),
            Some(token) => http.state.auth.authenticate(token),
        };
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        Ok(Caller {
            auth,
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

/// The peer address, or behind a trusted proxy the last hop it appended to `X-Forwarded-For`
/// (earlier entries are whatever the client chose to send).
pub fn client_ip(headers: &HeaderMap, peer: Option<IpAddr>, trust_forwarded_for: bool) -> IpAddr {
    let forwarded = trust_forwarded_for
        .then(|| headers.get("x-forwarded-for")?.to_str().ok())
        .flatten()
        .and_then(|list| list.rsplit(',').next())
        .and_then(|last| last.trim().parse().ok());
    forwarded
        .or(peer)
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}
