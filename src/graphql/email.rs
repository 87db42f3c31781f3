//! `resendVerification`, `verifyEmail`, `requestPasswordReset`, `resetPassword`: what mailed
//! tokens do (see `service::auth::email`); and `changeEmail` and `changeUsername`, how a user
//! is known (`service::auth::profile`).
use async_graphql::{Context, Object};

use super::{
    guard::{SignedIn, caller_ip, viewer},
    state, to_int,
    user::User,
};
use crate::{
    domain::{Email, Password, Username},
    error::AppResult,
};

#[derive(Default)]
pub struct EmailMutation;

#[Object]
impl EmailMutation {
    /// Mails the signed-in user a new link to verify their address (`register` mails the
    /// first). False, and no mail, if the address is verified already.
    #[graphql(guard = "SignedIn")]
    async fn resend_verification(&self, ctx: &Context<'_>) -> AppResult<bool> {
        state(ctx)?.auth.resend_verification(viewer(ctx)?).await
    }

    /// Verifies the address a token was mailed to; no sign-in needed (the link may be opened
    /// anywhere). A token from `changeEmail` moves the account to its address. A token works
    /// once, until it expires (and a `register` one only while the address is still the
    /// user's); otherwise BAD_USER_INPUT on `token`. CONFLICT if the new address has been
    /// taken since.
    async fn verify_email(&self, ctx: &Context<'_>, token: String) -> AppResult<User> {
        let user = state(ctx)?
            .auth
            .verify_email(&token, caller_ip(ctx))
            .await?;
        Ok(User::own(user))
    }

    /// Mails a link to choose a new password, if the address has an account. Always true,
    /// whether it has one or not: the answer says nothing of who has an account. Rate limited
    /// per address asked about and per client (RATE_LIMITED).
    async fn request_password_reset(&self, ctx: &Context<'_>, email: String) -> AppResult<bool> {
        let email = Email::parse("email", &email)?;
        state(ctx)?
            .auth
            .request_password_reset(email, caller_ip(ctx))?;
        Ok(true)
    }

    /// Moves the signed-in user to a new address once they confirm their password: mails a
    /// link to the new address (`verifyEmail` with it makes the move) and a notice to the
    /// current one, which stays until then. A wrong password is BAD_USER_INPUT on
    /// `currentPassword` (and counts against the login rate limits); an address another
    /// account has is CONFLICT on `newEmail`. Rate limited with `resendVerification`.
    #[graphql(guard = "SignedIn")]
    async fn change_email(
        &self,
        ctx: &Context<'_>,
        current_password: String,
        new_email: String,
    ) -> AppResult<bool> {
        let password = Password::for_login("currentPassword", &current_password)?;
        let new_email = Email::parse("newEmail", &new_email)?;
        state(ctx)?
            .auth
            .change_email(viewer(ctx)?, password, new_email, caller_ip(ctx))
            .await?;
        Ok(true)
    }

    /// Renames the signed-in user (the rules of `register`; CONFLICT if taken). Messages
    /// show the new name, on every instance, at once.
    #[graphql(guard = "SignedIn")]
    async fn change_username(&self, ctx: &Context<'_>, username: String) -> AppResult<User> {
        let username = Username::parse("username", &username)?;
        let user = state(ctx)?
            .auth
            .change_username(viewer(ctx)?, username)
            .await?;
        Ok(User::own(user))
    }

    /// Sets a new password (8–128 characters) with a mailed token, and ends every session of
    /// the account (their sockets close with 4403); sign in again with the new password.
    /// Returns how many sessions it ended. A bad token is BAD_USER_INPUT on `token`.
    async fn reset_password(
        &self,
        ctx: &Context<'_>,
        token: String,
        new_password: String,
    ) -> AppResult<i32> {
        let password = Password::parse("newPassword", &new_password)?;
        let ended = state(ctx)?
            .auth
            .reset_password(&token, password, caller_ip(ctx))
            .await?;
        Ok(to_int(ended))
    }
}
