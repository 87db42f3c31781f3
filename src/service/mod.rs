//! Business rules as plain async functions and services over a `DatabaseConnection`; they know
//! nothing of GraphQL or HTTP, so they are usable from the CLI as well.
pub mod auth;
pub mod chat;
pub mod rate_limit;
pub mod user;

/// Which way a page of a list is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `first`/`after`: ascending from the cursor.
    Forward,
    /// `last`/`before`: the items just before the cursor.
    Backward,
}
