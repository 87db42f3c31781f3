//! Outgoing mail (verification and password-reset links), sent off the request path.
//!
//! A request queues a mail and answers; one task per instance sends the queue, through SMTP
//! (`SMTP_URL`, TLS as the URL says) or, without it, into `.eml` files in `MAIL_OUTBOX_DIR`
//! for development. A send that fails for a reason that may pass (a connection refused, a
//! 4xx answer) is tried again, after 1, 2, 4 and 8 seconds; a permanent refusal (5xx) is
//! not. The queue is in memory: a mail still queued when the process dies is lost, and the
//! user asks again (`resendVerification`, `requestPasswordReset`). Storing mails for later
//! would store their tokens, which the database otherwise never holds.
//!
//! Mails carry tokens: nothing here logs a body, and `Mail` is not `Debug`.
use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor, message::Mailbox,
    transport::smtp::Error as SmtpError,
};
use secrecy::ExposeSecret;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::MailConfig;

/// Mails waiting to be sent: beyond this, a new one is dropped (and counted).
const QUEUE: usize = 1024;
/// Tries of one mail, and the wait before the second (doubling after each).
const ATTEMPTS: u32 = 5;
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// One plain-text mail to one address.
pub struct Mail {
    /// What it is for, for logs and metrics ("verify", "reset", ...): never its content.
    pub kind: &'static str,
    pub to: String,
    pub subject: String,
    pub text: String,
}

/// Queues mails for the sending task.
pub struct Mailer {
    queue: mpsc::Sender<Mail>,
    /// Links in mails start here (`APP_URL`), if set.
    pub app_url: Option<String>,
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(PathBuf),
}

impl Mailer {
    /// Starts the sending task, which ends with `shutdown` (what is still queued then is
    /// dropped, and counted in the log).
    pub fn start(config: &MailConfig, shutdown: CancellationToken) -> anyhow::Result<Arc<Self>> {
        let from: Mailbox = config.from.parse().context("MAIL_FROM")?;
        let transport = match &config.smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                    .context("SMTP_URL")?
                    .build(),
            ),
            None => {
                tracing::info!(
                    dir = %config.outbox_dir.display(),
                    "SMTP_URL is not set: mails are written as .eml files instead of sent"
                );
                Transport::Outbox(config.outbox_dir.clone())
            }
        };
        let (queue, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(send_all(receiver, from, transport, shutdown));
        Ok(Arc::new(Self {
            queue,
            app_url: config.app_url.clone(),
        }))
    }

    /// Queues a mail; never waits. A full queue drops it: the request that asked for it
    /// answers as it would have, and the user can ask again.
    pub fn send(&self, mail: Mail) {
        let kind = mail.kind;
        if self.queue.try_send(mail).is_err() {
            metrics::counter!("mail_dropped_total", "kind" => kind).increment(1);
            tracing::warn!(kind, "mail queue full: mail dropped");
        }
    }

    /// `path` under `APP_URL` with `?token=`, or the bare token without `APP_URL`.
    pub fn link(&self, path: &str, token: &str) -> String {
        match &self.app_url {
            Some(base) => format!("{}/{path}?token={token}", base.trim_end_matches('/')),
            None => token.to_owned(),
        }
    }
}

async fn send_all(
    mut queue: mpsc::Receiver<Mail>,
    from: Mailbox,
    transport: Transport,
    shutdown: CancellationToken,
) {
    loop {
        let mail = tokio::select! {
            () = shutdown.cancelled() => break,
            mail = queue.recv() => match mail {
                Some(mail) => mail,
                None => break,
            },
        };
        let kind = mail.kind;
        let outcome = tokio::select! {
            () = shutdown.cancelled() => break,
            outcome = send_with_retries(&transport, &from, mail) => outcome,
        };
        match outcome {
            Ok(()) => {
                metrics::counter!("mail_sent_total", "kind" => kind).increment(1);
                tracing::debug!(kind, "mail sent");
            }
            Err(err) => {
                metrics::counter!("mail_failed_total", "kind" => kind).increment(1);
                tracing::error!(kind, error = %format!("{err:#}"), "mail not sent");
            }
        }
    }
    queue.close();
    let mut dropped = 0;
    while queue.try_recv().is_ok() {
        dropped += 1;
    }
    if dropped > 0 {
        tracing::warn!(dropped, "shutting down with mails not sent");
    }
}

async fn send_with_retries(
    transport: &Transport,
    from: &Mailbox,
    mail: Mail,
) -> anyhow::Result<()> {
    let to: Mailbox = mail.to.parse().context("recipient address")?;
    let message = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject)
        .body(mail.text)
        .context("build the mail")?;
    let mut delay = FIRST_RETRY;
    for attempt in 1..=ATTEMPTS {
        match deliver(transport, mail.kind, &message).await {
            Ok(()) => return Ok(()),
            Err(Failure::Permanent(err)) => return Err(err),
            Err(Failure::Transient(err)) if attempt == ATTEMPTS => return Err(err),
            Err(Failure::Transient(err)) => {
                tracing::warn!(kind = mail.kind, attempt, error = %format!("{err:#}"), "mail not sent yet: will retry");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
    unreachable!("the last attempt returns")
}

enum Failure {
    Transient(anyhow::Error),
    Permanent(anyhow::Error),
}

async fn deliver(transport: &Transport, kind: &str, message: &Message) -> Result<(), Failure> {
    match transport {
        Transport::Smtp(smtp) => smtp.send(message.clone()).await.map(drop).map_err(|err| {
            let permanent = SmtpError::is_permanent(&err);
            let err = anyhow::Error::new(err).context("SMTP");
            match permanent {
                true => Failure::Permanent(err),
                false => Failure::Transient(err),
            }
        }),
        Transport::Outbox(dir) => write_eml(dir, kind, message)
            .await
            .map_err(Failure::Transient),
    }
}

/// One `.eml` file per mail, named to sort by time, then by what it is for.
async fn write_eml(dir: &std::path::Path, kind: &str, message: &Message) -> anyhow::Result<()> {
    tokio::fs::create_dir_all(dir)
        .await
        .with_context(|| format!("create {}", dir.display()))?;
    let name = format!(
        "{}-{kind}-{}.eml",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ"),
        uuid::Uuid::new_v4().simple()
    );
    let path = dir.join(name);
    tokio::fs::write(&path, message.formatted())
        .await
        .with_context(|| format!("write {}", path.display()))
}
