//! Set-up shared by the workloads: fresh users (unique per run, so runs repeat against the same
//! database), one public room they all join, and a helper that runs such calls in parallel with
//! progress on stderr.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use http::HeaderValue;

use crate::client::{Endpoint, HttpClient, bearer};
use crate::gql;
use crate::progress::Progress;

/// Every bench user's password (8–128 characters, per the contract).
pub const PASSWORD: &str = "chat-bench-password";

/// A registered user.
#[derive(Clone, Debug)]
pub struct Account {
    pub username: String,
    pub user_id: String,
    pub access_token: String,
    /// `Bearer <accessToken>`, ready for the `Authorization` header.
    pub auth: HeaderValue,
}

/// A short id that makes this run's usernames unique: 8 hex digits from the clock and the pid.
pub fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    let mixed = (nanos ^ (u64::from(std::process::id()) << 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("{:08x}", mixed >> 32)
}

/// `cb<run>_<i>`: 2 + 8 + 1 + up to 7 digits, within the 3–32 characters of `[A-Za-z0-9_]`.
pub fn username(run: &str, i: usize) -> String {
    format!("cb{run}_{i}")
}

/// Registers `count` users named after `run`, `concurrency` at a time. Each registration costs
/// the server an Argon2 hash, so this is slow for thousands of users: progress goes to stderr.
pub async fn register_users(
    endpoint: &Arc<Endpoint>,
    run: &str,
    count: usize,
    concurrency: usize,
) -> Result<Vec<Account>> {
    parallel(
        endpoint,
        count,
        concurrency,
        "registering users",
        async |client, i| {
            let username = username(run, i);
            let email = format!("{username}@example.com");
            let session = gql::register(client, &email, &username, PASSWORD)
                .await
                .with_context(|| format!("registering user {username}"))?;
            Ok(Account {
                auth: bearer(&session.access_token)?,
                username,
                user_id: session.user_id,
                access_token: session.access_token,
            })
        },
    )
    .await
}

/// The first account creates a public room and every other account joins it; returns its id.
/// Subscriptions require membership, so every socket's user must be in the room.
pub async fn shared_room(
    endpoint: &Arc<Endpoint>,
    run: &str,
    accounts: &[Account],
    concurrency: usize,
) -> Result<String> {
    let owner = accounts.first().context("no users to create the room")?;
    let mut client = HttpClient::new(endpoint.clone());
    let room_id = gql::create_room(&mut client, &owner.auth, &format!("chat-bench {run}"))
        .await
        .context("creating the bench room (createRoom)")?;
    let others = &accounts[1..];
    parallel(
        endpoint,
        others.len(),
        concurrency,
        "joining the room",
        async |client, i| {
            gql::join_room(client, &others[i].auth, &room_id)
                .await
                .with_context(|| format!("{} joining room {room_id}", others[i].username))
        },
    )
    .await?;
    Ok(room_id)
}

/// A room of 5 users with 100 messages, message `i` reacted to by the first `i % 5 + 1` users
/// in up to 3 emoji: the `http --query history` workload. Returns the first user's
/// `Authorization` and the room's id.
pub async fn reacted_history(endpoint: &Arc<Endpoint>, run: &str) -> Result<(HeaderValue, String)> {
    let users = register_users(endpoint, run, 5, 5).await?;
    let room_id = shared_room(endpoint, run, &users, 5).await?;
    let messages = parallel(endpoint, 100, 1, "sending history", async |client, i| {
        let author = &users[i % users.len()];
        Ok(gql::send_message(client, &author.auth, &room_id, &format!("message {i}")).await?)
    })
    .await?;
    parallel(
        endpoint,
        messages.len(),
        4,
        "reacting",
        async |client, i| {
            for (k, user) in users.iter().take(i % users.len() + 1).enumerate() {
                gql::add_reaction(client, &user.auth, &messages[i], ["👍", "❤️", "🎉"][k % 3])
                    .await?;
            }
            Ok(())
        },
    )
    .await?;
    Ok((users[0].auth.clone(), room_id))
}

/// 100 rooms of 3 users, each with 3 messages from the others, one of which mentions the
/// first user: the `http --query rooms` workload. Returns the first user's `Authorization`.
pub async fn busy_rooms(endpoint: &Arc<Endpoint>, run: &str) -> Result<HeaderValue> {
    let users = register_users(endpoint, run, 3, 3).await?;
    parallel(endpoint, 100, 4, "filling rooms", async |client, i| {
        let room_id =
            gql::create_room(client, &users[0].auth, &format!("cb{run} room {i}")).await?;
        for user in &users[1..] {
            gql::join_room(client, &user.auth, &room_id).await?;
        }
        for (k, body) in ["hello", "hi @{me}", "bye"].iter().enumerate() {
            let body = body.replace("{me}", &users[0].username);
            gql::send_message(client, &users[1 + k % 2].auth, &room_id, &body).await?;
        }
        Ok(())
    })
    .await?;
    Ok(users[0].auth.clone())
}

/// Runs `op(client, i)` for `i` in `0..count` on `concurrency` keep-alive connections, with
/// progress on stderr; stops at the first error. Results come back in index order.
pub async fn parallel<T>(
    endpoint: &Arc<Endpoint>,
    count: usize,
    concurrency: usize,
    label: &str,
    op: impl AsyncFn(&mut HttpClient, usize) -> Result<T>,
) -> Result<Vec<T>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let next = AtomicUsize::new(0);
    let (progress, guard) = Progress::start(label, count as u64);
    // Futures polled by this task, not spawned tasks: the work is on the server, and this way
    // `op` may borrow from the caller.
    let workers = (0..concurrency.clamp(1, count)).map(|_| async {
        let mut client = HttpClient::new(endpoint.clone());
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= count {
                return Ok::<_, anyhow::Error>(done);
            }
            done.push((i, op(&mut client, i).await?));
            progress.inc();
        }
    });
    let per_worker = futures_util::future::try_join_all(workers).await?;
    guard.finish();
    let mut results: Vec<(usize, T)> = per_worker.into_iter().flatten().collect();
    results.sort_unstable_by_key(|(i, _)| *i);
    Ok(results.into_iter().map(|(_, result)| result).collect())
}
