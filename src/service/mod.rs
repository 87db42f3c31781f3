//! Business rules as plain async functions and services over a `DatabaseConnection`; they know
//! nothing of GraphQL or HTTP, so they are usable from the CLI as well.
pub mod auth;
pub mod rate_limit;
pub mod user;
