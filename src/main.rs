use std::process::ExitCode;

use clap::{Parser, Subcommand};

use chat_server::{
    config::{Config, RateLimits},
    db, service, startup, telemetry,
};

#[derive(Parser)]
#[command(
    version,
    about = "GraphQL chat server: accounts with JWT auth and live chat"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the GraphQL schema (SDL) to stdout.
    PrintSchema,
    /// Make a user an ADMIN (takes effect on their next token).
    Promote { username: String },
}

/// Stack for each runtime thread (tokio's default is 2 MiB). A stack overflow aborts the whole
/// process, so nothing a client sends may come near one: documents nesting deeper than
/// `GRAPHQL_MAX_NESTING` (64; at most `config::MAX_NESTING_LIMIT`, 256) are refused before
/// parsing, and parsing and validating 256 levels take under 2 MiB even in a debug build.
/// The rest is headroom behind that bound, for recursion we did not think of. Only the pages
/// a thread touches are memory; the rest is address space.
const THREAD_STACK_BYTES: usize = 8 * 1024 * 1024;

/// jemalloc rather than glibc's allocator. A subscribed socket keeps a few dozen small blocks
/// for its life, allocated amid the larger ones its set-up frees at once; glibc can give back
/// only whole free pages of what it keeps, and kept 20–34 KiB of memory per idle socket
/// against jemalloc's 16–21 KiB (after set-up, at 2,000 sockets). jemalloc also takes 14%
/// fewer instructions per request. Measured in `BENCHMARKS.md` (issue 17).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options: a thread of its own gives freed memory back after a second, as the
/// server is idle or not (without it, only later allocations would), and straight to the
/// system rather than lazily (`MADV_FREE`), so that what the process holds is what it uses.
/// `_RJEM_MALLOC_CONF` in the environment adds to them.
#[cfg(target_os = "linux")]
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: &[u8; 60] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

fn main() -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(THREAD_STACK_BYTES)
        .build()
    {
        Ok(runtime) => runtime.block_on(cli()),
        Err(err) => {
            eprintln!("could not start the runtime: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn cli() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::PrintSchema) = cli.command {
        print!("{}", chat_server::graphql::sdl());
        return ExitCode::SUCCESS;
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    telemetry::init_logging(config.log_format);
    match run(cli.command.unwrap_or(Command::Serve), config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "exiting");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let app = startup::Application::build(config).await?;
            app.run(startup::shutdown_signal()).await
        }
        Command::Migrate => {
            db::migrate(&config.database).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Promote { username } => {
            db::migrate(&config.database).await?;
            let pools = db::connect(&config.database).await?;
            let user = service::user::Users::new(pools.writes, &RateLimits::unlimited())
                .promote(&username)
                .await?;
            tracing::info!(user = %user.username, id = %user.id, "promoted to ADMIN");
            Ok(())
        }
        Command::PrintSchema => unreachable!("handled before configuration is loaded"),
    }
}
