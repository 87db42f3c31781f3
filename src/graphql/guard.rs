//! Who is calling, and the guards that check it. The transport (HTTP header or WebSocket
//! `connection_init`) turns credentials into a `Caller` in the request data; resolvers and
//! guards only read it. Protecting a field is one attribute: `#[graphql(guard = "SignedIn")]`.
use std::net::{IpAddr, Ipv4Addr};

use async_graphql::{Context, Guard};
use secrecy::SecretString;

use super::shared::Selection;
use crate::{
    entity::user::Role,
    error::{AppError, AppResult},
    service::auth::{AuthError, Device, Viewer},
};

/// The caller of one request, as the transport established it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub auth: Result<Viewer, AuthError>,
    pub ip: IpAddr,
    /// Its `User-Agent`, as a session keeps it (`service::auth::user_agent`).
    pub user_agent: Option<String>,
    /// With `AUTH_COOKIES`, the refresh cookie the request carried (see `http::cookie`).
    pub refresh_cookie: Option<RefreshCookie>,
}

/// The refresh token of a browser session's cookie.
#[derive(Debug, Clone)]
pub struct RefreshCookie {
    pub token: SecretString,
    /// Whether the request carried the CSRF header: a mutation may use the cookie only then.
    pub csrf_header: bool,
}

/// The request's caller. Every resolver reads it through here, so that a subscription knows
/// when an answer may depend on who asked, and is not to be shared (`shared`).
pub fn caller<'a>(ctx: &Context<'a>) -> Option<&'a Caller> {
    if let Some(selection) = ctx.data_opt::<Selection>() {
        selection.caller_read();
    }
    ctx.data_opt::<Caller>()
}

/// The signed-in viewer, or UNAUTHENTICATED saying why not (missing, expired, revoked...).
pub fn viewer<'a>(ctx: &Context<'a>) -> AppResult<&'a Viewer> {
    match caller(ctx).map(|c| &c.auth) {
        Some(Ok(viewer)) => Ok(viewer),
        Some(Err(err)) => Err((*err).into()),
        None => Err(AuthError::Missing.into()),
    }
}

/// The viewer if signed in, for fields that answer differently to strangers.
pub fn viewer_opt<'a>(ctx: &Context<'a>) -> Option<&'a Viewer> {
    caller(ctx).and_then(|c| c.auth.as_ref().ok())
}

/// The caller's address, for rate limits. Every transport sets it; unknown is 0.0.0.0.
pub fn caller_ip(ctx: &Context<'_>) -> IpAddr {
    caller(ctx).map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.ip)
}

/// Where the caller is, as a session it opens remembers.
pub fn caller_device(ctx: &Context<'_>) -> Device {
    Device {
        ip: caller_ip(ctx),
        user_agent: caller(ctx).and_then(|c| c.user_agent.clone()),
    }
}

pub struct SignedIn;

impl Guard for SignedIn {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        // Not `viewer`: whether the caller is signed in is not who they are, and a
        // subscription's answer shared with others (`shared`) is only ever shared between
        // signed-in subscribers.
        match ctx.data_opt::<Caller>().map(|c| &c.auth) {
            Some(Ok(_)) => Ok(()),
            Some(Err(err)) => Err(AppError::from(*err).into()),
            None => Err(AppError::from(AuthError::Missing).into()),
        }
    }
}

/// Signed in with at least this role: UNAUTHENTICATED for strangers, FORBIDDEN for others.
pub struct HasRole(pub Role);

impl Guard for HasRole {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        if viewer(ctx)?.role == self.0 {
            Ok(())
        } else {
            Err(AppError::Forbidden("not allowed for your role").into())
        }
    }
}
