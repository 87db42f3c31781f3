//! chat-server: a GraphQL API for accounts (JWT) and real-time chat (subscriptions).
//!
//! Calls go one way, and no two modules import each other:
//! `startup` → `http` → `graphql` → `service` → `broker` → `entity`. `state` holds the
//! services; `domain` (input types), `error`, `config`, `db` (connections) and `text` are used
//! throughout.
pub mod broker; // fan-out: in-memory, or Postgres LISTEN/NOTIFY
pub mod config; // typed settings from the environment
pub mod db; // connecting (on SQLite, a connection of its own for writes) and migrating
pub mod domain; // parse-once input newtypes
pub mod entity; // SeaORM models
pub mod error; // AppError and its mapping to extensions.code
pub mod graphql; // schema roots per domain, guards, paging; pipeline/ around them
pub mod http; // axum routes and middleware
pub mod mail; // outgoing mail: SMTP, or .eml files in development
pub mod os; // file-descriptor limit, returning freed memory to the OS
pub mod service; // business rules over the database
pub mod startup; // Application: build, bind, serve
pub mod state; // AppState shared by every request
pub mod telemetry; // logging and metrics
pub mod text; // cutting client-chosen text to size
