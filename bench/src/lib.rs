//! `chat-bench`: a load generator for the chat server's public contract (the team's `API.md`):
//! GraphQL over HTTP on `POST /graphql` and subscriptions over `graphql-transport-ws` on
//! `GET /graphql`. Each workload is a module with a config, an async `run`, and a report that
//! prints as text (`Display`) or JSON (`Serialize`); `main.rs` only parses arguments.

pub mod baseline;
pub mod client;
pub mod fanout;
pub mod floor;
pub mod gql;
pub mod http;
pub mod idle;
pub mod login;
pub mod pool;
pub mod progress;
pub mod report;
pub mod setup;
pub mod spread;
pub mod sys;
pub mod ws;
