//! The GraphQL schema: one module per domain, each with its own roots, merged in `schema`;
//! and the `pipeline` every request passes through around them.
mod auth;
mod email;
mod event;
pub mod guard;
mod loaders;
mod member;
mod message;
pub mod pagination;
pub mod pipeline;
mod room;
pub mod schema;
mod session;
pub mod shared;
mod totp;
mod user;

pub use event::Established;
pub use schema::{AppSchema, build, sdl};

use async_graphql::{Context, ID};
use uuid::Uuid;

use crate::{
    error::{AppError, AppResult},
    state::AppState,
};

/// The application state every resolver works with. It is placed in the schema by `build`,
/// so it is always there; if it were not, the request fails as an internal error.
fn state<'a>(ctx: &Context<'a>) -> AppResult<&'a AppState> {
    ctx.data::<AppState>()
        .map_err(|e| anyhow::anyhow!("{}", e.message).into())
}

/// The schema's loaders, placed in it by `build` like the state.
fn loaders<'a>(ctx: &Context<'a>) -> AppResult<&'a loaders::Loaders> {
    ctx.data::<loaders::Loaders>()
        .map_err(|e| anyhow::anyhow!("{}", e.message).into())
}

/// Counts for GraphQL `Int` (32-bit) fields.
fn to_int(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// An `ID` argument naming a row; `field` is the argument, for the error.
fn parse_id(field: &'static str, id: &ID) -> AppResult<Uuid> {
    Uuid::parse_str(id)
        .map_err(|_| AppError::bad_input(field, format!("{field} is not a valid id")))
}
