//! `register`, `login`, `refresh`, `logout`, `changePassword`, `deleteAccount`; and, with
//! `AUTH_COOKIES`, the refresh token's cookie (see `http::cookie`).
use async_graphql::{Context, InputObject, Object};
use axum::http::header::SET_COOKIE;
use secrecy::ExposeSecret;

use super::{
    guard::{SignedIn, caller, caller_device, caller_ip, viewer},
    state, to_int,
    user::User,
};
use crate::{
    domain::{Email, Password, Username},
    error::{AppError, AppResult},
    http::cookie,
    service::auth::{Issued, Registration},
};

// No `Debug` on the inputs: they hold passwords, and must not be printable by accident.

#[derive(InputObject)]
pub struct RegisterInput {
    email: String,
    username: String,
    password: String,
}

#[derive(InputObject)]
pub struct LoginInput {
    /// An email address or a username.
    login: String,
    password: String,
}

pub struct AuthPayload(Issued);

impl AuthPayload {
    /// The tokens, and in cookie mode the refresh token's cookie too.
    fn new(ctx: &Context<'_>, issued: Issued) -> AppResult<Self> {
        let state = state(ctx)?;
        if state.config.http.auth_cookies {
            let max_age = state.config.auth.refresh_token_ttl.as_secs();
            if let Some(value) = cookie::set(&issued.refresh_token, max_age) {
                ctx.append_http_header(SET_COOKIE, value);
            }
        }
        Ok(Self(issued))
    }
}

/// Where a `refresh` or `logout` takes its refresh token from.
enum Presented {
    Argument(String),
    /// The browser session's cookie (cookie mode, no argument).
    Cookie(String),
}

impl Presented {
    /// The argument if given, else the cookie, which needs the CSRF header alongside.
    fn of(ctx: &Context<'_>, argument: Option<String>) -> AppResult<Self> {
        if let Some(token) = argument {
            return Ok(Self::Argument(token));
        }
        let cookie = caller(ctx).and_then(|c| c.refresh_cookie.as_ref());
        match cookie {
            Some(cookie) if cookie.csrf_header => {
                Ok(Self::Cookie(cookie.token.expose_secret().to_owned()))
            }
            Some(_) => Err(AppError::Forbidden(
                "a request that uses the refresh cookie must carry the X-CSRF-Protection header",
            )),
            None if state(ctx)?.config.http.auth_cookies => Err(AppError::bad_input(
                "refreshToken",
                "refreshToken is required: no refresh cookie came with the request",
            )),
            None => Err(AppError::bad_input(
                "refreshToken",
                "refreshToken is required",
            )),
        }
    }

    fn token(&self) -> &str {
        match self {
            Self::Argument(token) | Self::Cookie(token) => token,
        }
    }

    /// Whether it is the browser session's: ending or losing it clears the cookie.
    fn is_browser_session(&self, ctx: &Context<'_>) -> bool {
        match self {
            Self::Cookie(_) => true,
            Self::Argument(token) => caller(ctx)
                .and_then(|c| c.refresh_cookie.as_ref())
                .is_some_and(|cookie| cookie.token.expose_secret() == token),
        }
    }
}

fn clear_cookie(ctx: &Context<'_>) {
    ctx.append_http_header(SET_COOKIE, cookie::clear());
}

#[Object]
impl AuthPayload {
    /// A JWT to send as `Authorization: Bearer <accessToken>`.
    async fn access_token(&self) -> &str {
        &self.0.access_token
    }

    /// Opaque and single use: `refresh` returns the next one.
    async fn refresh_token(&self) -> &str {
        &self.0.refresh_token
    }

    /// Always "Bearer".
    async fn token_type(&self) -> &'static str {
        "Bearer"
    }

    /// Seconds until `accessToken` expires.
    async fn expires_in(&self) -> i32 {
        to_int(self.0.expires_in)
    }

    async fn user(&self) -> User {
        User::own(self.0.user.clone())
    }
}

#[derive(Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    /// Creates an account and signs it in.
    async fn register(&self, ctx: &Context<'_>, input: RegisterInput) -> AppResult<AuthPayload> {
        let registration = Registration {
            email: Email::parse("email", &input.email)?,
            username: Username::parse("username", &input.username)?,
            password: Password::parse("password", &input.password)?,
        };
        let issued = state(ctx)?
            .auth
            .register(registration, &caller_device(ctx))
            .await?;
        AuthPayload::new(ctx, issued)
    }

    /// Signs in with an email address or username, opening a new session. With two-factor
    /// login on, a right password gets MFA_REQUIRED instead, with `extensions.challenge`
    /// (and `expiresIn`, seconds): `verifyLogin` with it and a code opens the session.
    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> AppResult<AuthPayload> {
        let password = Password::for_login("password", &input.password)?;
        let issued = state(ctx)?
            .auth
            .login(&input.login, password, &caller_device(ctx))
            .await?;
        AuthPayload::new(ctx, issued)
    }

    /// Finishes a login that answered MFA_REQUIRED: the challenge and a code from the
    /// authenticator app (or a recovery code, once). A code works once; a wrong one is
    /// BAD_USER_INPUT on `code` and counts against the login rate limits; an expired
    /// challenge is UNAUTHENTICATED (log in again).
    async fn verify_login(
        &self,
        ctx: &Context<'_>,
        challenge: String,
        code: String,
    ) -> AppResult<AuthPayload> {
        let issued = state(ctx)?
            .auth
            .verify_login(&challenge, &code, &caller_device(ctx))
            .await?;
        AuthPayload::new(ctx, issued)
    }

    /// Exchanges a refresh token for new tokens. A used token presented again ends its
    /// session, unless it comes within seconds of its first use (two tabs at once, an answer
    /// lost on the way): that gets the same tokens again. With `AUTH_COOKIES`, the token may
    /// come in the session's cookie instead (with the `X-CSRF-Protection` header), which is
    /// then rotated too, or cleared when refused.
    async fn refresh(
        &self,
        ctx: &Context<'_>,
        refresh_token: Option<String>,
    ) -> AppResult<AuthPayload> {
        let presented = Presented::of(ctx, refresh_token)?;
        let refreshed = state(ctx)?
            .auth
            .refresh(presented.token(), caller_ip(ctx))
            .await;
        match refreshed {
            Ok(issued) => AuthPayload::new(ctx, issued),
            Err(err @ AppError::Unauthenticated(_)) => {
                if presented.is_browser_session(ctx) {
                    clear_cookie(ctx);
                }
                Err(err)
            }
            Err(err) => Err(err),
        }
    }

    /// Ends the session of this refresh token (with `AUTH_COOKIES`, of the session's cookie
    /// when absent, which it clears). False if it had already ended.
    async fn logout(&self, ctx: &Context<'_>, refresh_token: Option<String>) -> AppResult<bool> {
        let presented = Presented::of(ctx, refresh_token)?;
        let ended = state(ctx)?.auth.logout(presented.token()).await?;
        if presented.is_browser_session(ctx) {
            clear_cookie(ctx);
        }
        Ok(ended)
    }

    /// Deletes the signed-in user's account, confirmed with its password: every session ends
    /// (tokens refused and sockets closed at once), the username and email are freed, and
    /// the user's messages stay, by an author renamed `deleted_…`.
    #[graphql(guard = "SignedIn")]
    async fn delete_account(&self, ctx: &Context<'_>, password: String) -> AppResult<bool> {
        let password = Password::for_login("password", &password)?;
        state(ctx)?
            .auth
            .delete_account(viewer(ctx)?, password, caller_ip(ctx))
            .await?;
        Ok(true)
    }

    /// Sets a new password (8–128 characters) once the current one is confirmed, and ends
    /// every other session of the user (their sockets close with 4403); the current one goes
    /// on. Returns how many sessions it ended. A wrong current password is BAD_USER_INPUT on
    /// `currentPassword`, and counts against the login rate limits.
    #[graphql(guard = "SignedIn")]
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        current_password: String,
        new_password: String,
    ) -> AppResult<i32> {
        let current = Password::for_login("currentPassword", &current_password)?;
        let new = Password::parse("newPassword", &new_password)?;
        let ended = state(ctx)?
            .auth
            .change_password(viewer(ctx)?, current, new, caller_ip(ctx))
            .await?;
        Ok(to_int(ended))
    }
}
