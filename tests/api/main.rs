//! All API tests, in one binary (one link step, one harness).
mod helpers;

mod accounts;
mod admin;
mod bounds;
mod cancelled;
mod chat;
mod closing;
mod cluster;
mod devices;
mod failover;
mod faults;
mod graphql_http;
mod health;
mod limits;
mod mail;
mod malformed;
mod nesting;
mod process;
mod replays;
mod schema;
mod sessions;
mod startup;
mod storage;
pub mod subscriptions;
mod totp;
mod websocket;
mod ws_limits;
