//! `enableTotp`, `confirmTotp`, `disableTotp`: two-factor login for the signed-in user (see
//! `service::auth::totp`; `verifyLogin` is with the other ways in, in `auth`).
use async_graphql::{Context, Object, SimpleObject};

use super::{
    guard::{SignedIn, caller_ip, viewer},
    state,
};
use crate::{domain::Password, error::AppResult};

/// A new TOTP secret, shown once: for the authenticator app, as a QR code of `uri` or typed.
#[derive(SimpleObject)]
pub struct TotpSetup {
    /// Base32, as authenticator apps take it typed in.
    secret: String,
    /// `otpauth://totp/…`: what a QR code for the app holds.
    uri: String,
}

#[derive(Default)]
pub struct TotpMutation;

#[Object]
impl TotpMutation {
    /// Starts turning two-factor login on: a new secret for the authenticator app. Nothing
    /// changes until `confirmTotp` proves the app has it; calling this again replaces it.
    /// FORBIDDEN while two-factor login is on.
    #[graphql(guard = "SignedIn")]
    async fn enable_totp(&self, ctx: &Context<'_>) -> AppResult<TotpSetup> {
        let setup = state(ctx)?.auth.enable_totp(viewer(ctx)?).await?;
        Ok(TotpSetup {
            secret: setup.secret,
            uri: setup.uri,
        })
    }

    /// Turns two-factor login on with a code from the app, and returns ten recovery codes,
    /// each good for one login without the app. They are shown only now. A wrong code is
    /// BAD_USER_INPUT on `code`.
    #[graphql(guard = "SignedIn")]
    async fn confirm_totp(&self, ctx: &Context<'_>, code: String) -> AppResult<Vec<String>> {
        state(ctx)?.auth.confirm_totp(viewer(ctx)?, &code).await
    }

    /// Turns two-factor login off, with the password and a code (or a recovery code). A
    /// wrong password is BAD_USER_INPUT on `password`, a wrong code on `code`.
    #[graphql(guard = "SignedIn")]
    async fn disable_totp(
        &self,
        ctx: &Context<'_>,
        password: String,
        code: String,
    ) -> AppResult<bool> {
        let password = Password::for_login("password", &password)?;
        state(ctx)?
            .auth
            .disable_totp(viewer(ctx)?, password, &code, caller_ip(ctx))
            .await?;
        Ok(true)
    }
}
