//! `spread`: what crossing instances costs each instance when subscribers are spread over many
//! rooms. One user creates R rooms; room i is watched (`messageAdded`) on instance i mod N;
//! M messages are sent round-robin over the rooms through the first instance. Each instance's
//! `chat_broker_received_total` (announcements it heard from the others) is read from its
//! `/metrics` before and after: with LISTEN/NOTIFY every instance hears every event; with NATS
//! an instance hears the events of the rooms it serves.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::client::{Endpoint, HttpClient};
use crate::gql;
use crate::setup;
use crate::ws::{GqlSocket, Inbound};

#[derive(Clone, Debug)]
pub struct SpreadConfig {
    /// Every instance; messages are sent through the first.
    pub urls: Vec<String>,
    pub rooms: usize,
    pub messages: usize,
}

#[derive(Debug, Serialize)]
pub struct InstanceFigures {
    pub url: String,
    pub rooms_served: usize,
    /// Messages delivered to its subscribers.
    pub delivered: usize,
    /// Announcements it heard from the other instances.
    pub received: f64,
}

#[derive(Debug, Serialize)]
pub struct SpreadReport {
    pub rooms: usize,
    pub messages: usize,
    pub instances: Vec<InstanceFigures>,
}

/// Subscriptions one socket carries (the server allows 100 by default).
const PER_SOCKET: usize = 50;

pub async fn run(config: SpreadConfig) -> Result<SpreadReport> {
    let instances = config.urls.len();
    if instances == 0 || config.rooms == 0 {
        bail!("need at least one instance and one room");
    }
    let endpoints: Vec<Arc<Endpoint>> = config
        .urls
        .iter()
        .map(|url| Endpoint::parse(url))
        .collect::<Result<_>>()?;
    let run = setup::run_id();
    let owner = setup::register_users(&endpoints[0], &run, 1, 1)
        .await?
        .remove(0);
    let mut client = HttpClient::new(endpoints[0].clone());
    let mut rooms = Vec::with_capacity(config.rooms);
    for i in 0..config.rooms {
        let name = format!("spread {run} {i}");
        rooms.push(
            gql::create_room(&mut client, &owner.auth, &name)
                .await
                .context("createRoom")?,
        );
    }
    // Room i on instance i mod N, PER_SOCKET rooms a socket.
    let mut watchers = Vec::new();
    for (k, endpoint) in endpoints.iter().enumerate() {
        let served: Vec<&String> = rooms.iter().skip(k).step_by(instances).collect();
        for chunk in served.chunks(PER_SOCKET) {
            let mut socket = GqlSocket::open(endpoint, None, &owner.access_token).await?;
            for (j, room) in chunk.iter().enumerate() {
                socket
                    .subscribe_messages(&format!("s{j}"), gql::MESSAGE_ADDED, room)
                    .await?;
            }
            watchers.push((k, socket));
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = received_by_each(&endpoints).await?;
    for i in 0..config.messages {
        let room = &rooms[i % config.rooms];
        gql::send_message(&mut client, &owner.auth, room, &format!("spread {i}"))
            .await
            .context("sendMessage")?;
    }
    // Each socket takes what its rooms were sent, or what came within the drain.
    let mut delivered = vec![0; instances];
    let counts = watchers.into_iter().map(|(k, mut socket)| async move {
        let mut count = 0;
        while let Ok(Ok(Inbound::Next(_))) =
            tokio::time::timeout(Duration::from_secs(3), socket.recv()).await
        {
            count += 1;
        }
        (k, count)
    });
    for (k, count) in futures_util::future::join_all(counts).await {
        delivered[k] += count;
    }
    let after = received_by_each(&endpoints).await?;
    let figures = (0..instances)
        .map(|k| InstanceFigures {
            url: config.urls[k].clone(),
            rooms_served: rooms.iter().skip(k).step_by(instances).count(),
            delivered: delivered[k],
            received: after[k] - before[k],
        })
        .collect();
    Ok(SpreadReport {
        rooms: config.rooms,
        messages: config.messages,
        instances: figures,
    })
}

async fn received_by_each(endpoints: &[Arc<Endpoint>]) -> Result<Vec<f64>> {
    let mut figures = Vec::with_capacity(endpoints.len());
    for endpoint in endpoints {
        figures.push(metric(endpoint, "chat_broker_received_total").await?);
    }
    Ok(figures)
}

/// The sum of the series `name` on the instance's `/metrics` (served beside the API).
async fn metric(endpoint: &Endpoint, name: &str) -> Result<f64> {
    let mut stream = tokio::net::TcpStream::connect(endpoint.addr).await?;
    let request = format!("GET /metrics HTTP/1.0\r\nHost: {}\r\n\r\n", endpoint.addr);
    stream.write_all(request.as_bytes()).await?;
    let mut text = String::new();
    stream.read_to_string(&mut text).await?;
    Ok(text
        .lines()
        .filter(|line| line.split([' ', '{']).next() == Some(name))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

impl fmt::Display for SpreadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} messages over {} rooms, room i watched on instance i mod {}",
            self.messages,
            self.rooms,
            self.instances.len()
        )?;
        for (k, i) in self.instances.iter().enumerate() {
            writeln!(
                f,
                "instance {k} ({}): serves {} rooms, delivered {}, heard {} announcements ({:.0}% of the messages)",
                i.url,
                i.rooms_served,
                i.delivered,
                i.received,
                100.0 * i.received / self.messages.max(1) as f64
            )?;
        }
        Ok(())
    }
}
