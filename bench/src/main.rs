//! Command line of `chat-bench`: parses arguments, builds the runtime, runs one workload from
//! the library and prints its report (text, or one JSON object with `--json`).

use std::fmt::Display;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use chat_bench::fanout::FanoutConfig;
use chat_bench::http::{HttpConfig, Query};
use chat_bench::idle::IdleConfig;
use chat_bench::login::LoginConfig;
use chat_bench::spread::SpreadConfig;
use chat_bench::{baseline, fanout, floor, http, idle, login, spread, sys};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;

#[derive(Parser)]
#[command(
    name = "chat-bench",
    version,
    about = "Load generator for the chat server's GraphQL API (HTTP and graphql-transport-ws)"
)]
struct Cli {
    /// Server base URL; the GraphQL endpoint is <url>/graphql, the WebSocket one the same with ws://.
    #[arg(long, global = true, default_value = "http://127.0.0.1:8000")]
    url: String,
    /// Print one JSON object with every figure on stdout instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Worker threads of the bench's own runtime (its CPU use is reported).
    #[arg(long, global = true, default_value_t = 1)]
    threads: usize,
    /// The server's pid, to report its CPU use (and, for `idle`, its RSS).
    #[arg(long, global = true)]
    server_pid: Option<u32>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// `{ __typename }` or `me` over HTTP at a fixed concurrency.
    Http(HttpArgs),
    /// A login storm with a concurrent `me` latency probe.
    Login(LoginArgs),
    /// Server memory per idle, authenticated, subscribed WebSocket.
    Idle(IdleArgs),
    /// End-to-end latency, loss and duplication of one room's messages to N subscribers.
    Fanout(FanoutArgs),
    /// Events each instance hears from the others when subscribers spread over many rooms.
    Spread(SpreadArgs),
    /// Run the thinnest async-graphql + axum server, to compare `http --query typename` with.
    Baseline(BaselineArgs),
}

#[derive(Args)]
struct HttpArgs {
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds to measure.
    #[arg(long, default_value = "10", value_parser = seconds)]
    duration: Duration,
    /// Seconds to run before measuring.
    #[arg(long, default_value = "1", value_parser = seconds)]
    warmup: Duration,
    #[arg(long, value_enum, default_value_t = Query::Typename)]
    query: Query,
}

#[derive(Args)]
struct LoginArgs {
    /// Concurrent logins (one user registered per connection).
    #[arg(long, default_value_t = 16)]
    connections: usize,
    #[arg(long, default_value = "10", value_parser = seconds)]
    duration: Duration,
    /// `me` probes per second during the storm; 0 sends them back to back.
    #[arg(long, default_value_t = 200.0)]
    probe_rate: f64,
    /// Seconds the probe runs alone first, for its idle-server latency.
    #[arg(long, default_value = "2", value_parser = seconds)]
    probe_idle: Duration,
    /// Measure single-login latency first and report the Argon2 ceiling (server cores / t1).
    #[arg(long)]
    calibrate: bool,
    /// Sequential logins in the calibration.
    #[arg(long, default_value_t = 20)]
    calibrate_logins: usize,
    /// Cores the server may use, for the ceiling (default: this machine's).
    #[arg(long)]
    server_cores: Option<usize>,
    #[command(flatten)]
    setup: SetupArgs,
}

#[derive(Args)]
struct IdleArgs {
    #[arg(long, default_value_t = 1000)]
    sockets: usize,
    /// Users to register (sockets share their tokens); default one per socket.
    #[arg(long)]
    users: Option<usize>,
    /// Seconds between the last subscription and the RSS reading.
    #[arg(long, default_value = "2", value_parser = seconds)]
    settle: Duration,
    /// Seconds to hold the sockets after measuring.
    #[arg(long, default_value = "5", value_parser = seconds)]
    hold: Duration,
    /// Do not send the check message that proves every subscription is live.
    #[arg(long)]
    no_verify: bool,
    /// Count the sockets' RSS from after set-up, or from the server as first found (run it
    /// on a freshly started server: what an operator sees after a deploy).
    #[arg(long, value_enum, default_value_t = idle::Base::AfterSetup)]
    base: idle::Base,
    #[command(flatten)]
    sockets_opts: SocketArgs,
    #[command(flatten)]
    setup: SetupArgs,
}

#[derive(Args)]
struct FanoutArgs {
    #[arg(long, default_value_t = 100)]
    subscribers: usize,
    /// Users to register (sockets share their tokens); default one per subscriber.
    #[arg(long)]
    users: Option<usize>,
    /// Messages per second.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Seconds of sending.
    #[arg(long, default_value = "10", value_parser = seconds)]
    duration: Duration,
    /// Send through this second server instance (subscribers stay on --url).
    #[arg(long)]
    url2: Option<String>,
    /// Sender connections, each at rate/senders.
    #[arg(long, default_value_t = 1)]
    senders: usize,
    /// Pad message bodies to this many characters.
    #[arg(long, default_value_t = 0)]
    body_size: usize,
    /// Seconds between the last subscription and the first message.
    #[arg(long, default_value = "2", value_parser = seconds)]
    settle: Duration,
    /// Seconds to wait for stragglers after the last message.
    #[arg(long, default_value = "5", value_parser = seconds)]
    drain: Duration,
    /// Subscribe to roomEvents (every event of the room) instead of messageAdded.
    #[arg(long)]
    room_events: bool,
    /// Run the same fan-out against the machine's floor first (`baseline --prepared-frames`,
    /// started by the bench), and print the server's p99 and deliveries/s as multiples of it.
    #[arg(long)]
    floor: bool,
    /// Users who keep typing in the room meanwhile (a setTyping every 2 s each).
    #[arg(long, default_value_t = 0)]
    typists: usize,
    #[command(flatten)]
    sockets_opts: SocketArgs,
    #[command(flatten)]
    setup: SetupArgs,
}

#[derive(Args)]
struct SpreadArgs {
    /// The other instances (the first is --url; messages are sent through it).
    #[arg(long = "also", required = true)]
    also: Vec<String>,
    #[arg(long, default_value_t = 100)]
    rooms: usize,
    #[arg(long, default_value_t = 2000)]
    messages: usize,
}

#[derive(Args)]
struct SocketArgs {
    /// Loopback source addresses to spread sockets over (127.0.0.2, ...); 0: let the OS choose.
    #[arg(long, default_value_t = 4)]
    source_addrs: usize,
    /// Sockets being opened at the same time.
    #[arg(long, default_value_t = 256)]
    open_concurrency: usize,
}

#[derive(Args)]
struct SetupArgs {
    /// Registrations (and room joins) in flight during set-up.
    #[arg(long, default_value_t = 8)]
    register_concurrency: usize,
}

#[derive(Args)]
struct BaselineArgs {
    #[arg(long, default_value = "127.0.0.1:8001")]
    bind: SocketAddr,
    /// Server worker threads (default: one per core, like the chat server).
    #[arg(long)]
    workers: Option<usize>,
    /// Serialise each message's `messageAdded` frame once and write it to every subscriber,
    /// without GraphQL per delivery: the floor for `fanout` on this machine.
    #[arg(long)]
    prepared_frames: bool,
}

fn seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text.parse().map_err(|e| format!("{e}"))?;
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let threads = match &cli.command {
        Command::Baseline(args) => args
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        _ => cli.threads,
    };
    let result = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(run(cli)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    // Every socket is a file descriptor; the soft limit is often far below the hard one.
    sys::raise_nofile_limit()?;
    let Cli {
        url,
        json,
        server_pid,
        command,
        ..
    } = cli;
    match command {
        Command::Http(a) => {
            let config = HttpConfig {
                url,
                connections: a.connections,
                duration: a.duration,
                warmup: a.warmup,
                query: a.query,
                server_pid,
            };
            print(json, &http::run(config).await?)
        }
        Command::Login(a) => {
            let mut config = LoginConfig {
                url,
                connections: a.connections,
                duration: a.duration,
                probe_rate: a.probe_rate,
                probe_idle: a.probe_idle,
                calibrate_logins: if a.calibrate { a.calibrate_logins } else { 0 },
                server_pid,
                register_concurrency: a.setup.register_concurrency,
                ..LoginConfig::default()
            };
            if let Some(cores) = a.server_cores {
                config.server_cores = cores;
            }
            print(json, &login::run(config).await?)
        }
        Command::Idle(a) => {
            let config = IdleConfig {
                url,
                sockets: a.sockets,
                users: a.users,
                source_addrs: a.sockets_opts.source_addrs,
                open_concurrency: a.sockets_opts.open_concurrency,
                settle: a.settle,
                hold: a.hold,
                verify: !a.no_verify,
                server_pid,
                register_concurrency: a.setup.register_concurrency,
                base: a.base,
            };
            print(json, &idle::run(config).await?)
        }
        Command::Fanout(a) => {
            let config = FanoutConfig {
                url,
                url2: a.url2,
                subscribers: a.subscribers,
                users: a.users,
                rate: a.rate,
                duration: a.duration,
                senders: a.senders,
                body_size: a.body_size,
                settle: a.settle,
                drain: a.drain,
                source_addrs: a.sockets_opts.source_addrs,
                open_concurrency: a.sockets_opts.open_concurrency,
                server_pid,
                register_concurrency: a.setup.register_concurrency,
                room_events: a.room_events,
                typists: a.typists,
            };
            match a.floor {
                true => print(json, &floor::run(config).await?),
                false => print(json, &fanout::run(config).await?),
            }
        }
        Command::Spread(a) => {
            let config = SpreadConfig {
                urls: std::iter::once(url).chain(a.also).collect(),
                rooms: a.rooms,
                messages: a.messages,
            };
            print(json, &spread::run(config).await?)
        }
        Command::Baseline(a) => baseline::run(a.bind, a.prepared_frames).await,
    }
}

fn print(json: bool, report: &(impl Serialize + Display)) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}
