//! The `momentline` command line: serve, and manage artists and their keys.

use chrono::Utc;
use clap::{Parser, Subcommand};

use crate::config::Settings;
use crate::db::broadcasts::{self, BroadcastId};
use crate::db::{self, artists};
use crate::domain::api_key::{ApiKey, DISPLAY_PREFIX_LEN};
use crate::domain::broadcast::BroadcastText;
use crate::startup::Application;
use crate::store::{Store, WriteError};

#[derive(Debug, Parser)]
#[command(
    name = "momentline",
    version,
    about = "Post Moments on In Process by text message"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: API, webhooks and the jobs runner (the default).
    Serve,
    /// Manage artists.
    Artists {
        #[command(subcommand)]
        command: ArtistsCommand,
    },
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Text every verified number that has not opted out, at MOMENTLINE_SEND_RATE; prints
    /// the broadcast's id. `broadcast status ID` shows how far it has got.
    Broadcast(BroadcastArgs),
}

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct BroadcastArgs {
    #[command(subcommand)]
    command: Option<BroadcastCommand>,
    /// The text, at most 10 SMS segments (1,530 GSM-7 characters, 670 otherwise). A text
    /// that is exactly "status" goes after `--`.
    #[arg(required = true)]
    text: Option<String>,
}

#[derive(Debug, Subcommand)]
enum BroadcastCommand {
    /// Print a broadcast's numbers and its texts sent, waiting and failed.
    Status { id: BroadcastId },
}

#[derive(Debug, Subcommand)]
enum ArtistsCommand {
    /// Create an artist and print its first API key.
    Add {
        #[arg(long)]
        name: String,
        /// The artist's wallet address (0x and 40 hex characters).
        #[arg(long)]
        address: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create another API key for an artist and print it.
    Create {
        #[arg(long)]
        artist: String,
    },
    /// Revoke a key: give the whole key, or its first 15 characters (e.g. art_sk_1a2b3c4d).
    Revoke { prefix: String },
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Startup(#[from] crate::startup::StartupError),
    #[error(transparent)]
    Database(#[from] db::DbError),
    #[error(transparent)]
    Serve(#[from] crate::startup::RunError),
    #[error("could not write to the database")]
    Write(#[from] WriteError),
    #[error("could not generate a key")]
    Random(#[from] getrandom::Error),
    #[error(transparent)]
    BroadcastText(#[from] crate::domain::broadcast::BroadcastTextError),
    #[error("{0}")]
    Usage(String),
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    let settings = Settings::from_env()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(settings).await?;
            app.run_until_stopped().await?;
        }
        Command::Artists {
            command: ArtistsCommand::Add { name, address },
        } => {
            let name = artist_name(&name)?;
            let address = address.as_deref().map(wallet_address).transpose()?;
            let store = Store::open(&settings.db_path, settings.writer)?;
            let key = ApiKey::generate()?;
            let wanted = name.clone();
            let (artist, key) = store
                .write_waiting(move |tx| {
                    let artist =
                        artists::create(tx, &wanted, address.as_deref(), &key, Utc::now())?;
                    Ok((artist, key))
                })
                .await?;
            let artist = artist.ok_or_else(|| {
                CliError::Usage(format!("an artist named '{name}' exists already"))
            })?;
            eprintln!(
                "Created artist '{}' (id {}). Its API key, shown only now:",
                artist.name, artist.id
            );
            println!("{}", key.expose());
        }
        Command::Keys {
            command: KeysCommand::Create { artist },
        } => {
            let store = Store::open(&settings.db_path, settings.writer)?;
            let key = ApiKey::generate()?;
            let wanted = artist.clone();
            let (found, key) = store
                .write_waiting(move |tx| {
                    let found = artists::add_key(tx, &wanted, &key, Utc::now())?;
                    Ok((found, key))
                })
                .await?;
            let artist =
                found.ok_or_else(|| CliError::Usage(format!("no artist named '{artist}'")))?;
            eprintln!("New API key for '{}', shown only now:", artist.name);
            println!("{}", key.expose());
        }
        Command::Keys {
            command: KeysCommand::Revoke { prefix },
        } => {
            let store = Store::open(&settings.db_path, settings.writer)?;
            let revoked = match ApiKey::parse(&prefix) {
                // The whole key names exactly one key.
                Some(key) => {
                    store
                        .write_waiting(move |tx| Ok(artists::revoke_key(tx, &key, Utc::now())?))
                        .await?
                }
                None => revoke_by_prefix(&store, &prefix).await?,
            };
            if !revoked {
                return Err(CliError::Usage(format!("no live key matches {prefix}")));
            }
            println!(
                "Revoked {}",
                &prefix[..DISPLAY_PREFIX_LEN.min(prefix.len())]
            );
        }
        Command::Broadcast(BroadcastArgs {
            command: Some(BroadcastCommand::Status { id }),
            ..
        }) => {
            let store = Store::open(&settings.db_path, settings.writer)?;
            let status = store
                .read(move |c| Ok(broadcasts::status(c, id)?))
                .await?
                .ok_or_else(|| CliError::Usage(format!("no broadcast {id}")))?;
            print!("{}", status_report(&status));
        }
        Command::Broadcast(BroadcastArgs {
            command: None,
            text,
        }) => {
            let text = BroadcastText::parse(text.as_deref().unwrap_or_default())?;
            let store = Store::open(&settings.db_path, settings.writer)?;
            let body = text.as_str().to_owned();
            let (id, verified) = store
                .write_waiting(move |tx| Ok(broadcasts::create(tx, &body, Utc::now())?))
                .await?;
            let segments = text.segments();
            eprintln!(
                "Broadcast {id} queued: {} SMS segment{} ({}) to each verified number that has \
                 not opted out ({verified} now), sent by the server's jobs runner. \
                 `momentline broadcast status {id}` shows how far it has got.",
                segments.count,
                if segments.count == 1 { "" } else { "s" },
                segments.encoding,
            );
            println!("{id}");
        }
    }
    Ok(())
}

/// `broadcast status`: one `name: value` line each.
fn status_report(s: &broadcasts::Status) -> String {
    let queuing = match (&s.queued_at, &s.queuing_failed) {
        (Some(at), _) => format!("finished {at}"),
        (None, Some(reason)) => format!("stopped: {reason}"),
        (None, None) => "in progress".to_owned(),
    };
    format!(
        "broadcast: {}\ncreated: {}\nnumbers: {}\nqueuing: {queuing}\nsent: {}\nwaiting: {}\n\
         failed: {}\nwithheld (opted out after queuing): {}\n",
        s.id, s.created_at, s.numbers, s.sent, s.waiting, s.failed, s.withheld
    )
}

/// Revokes the one live key whose shown prefix (`art_sk_` and 8 hex characters) is `prefix`.
async fn revoke_by_prefix(store: &Store, prefix: &str) -> Result<bool, CliError> {
    let shaped = prefix.len() == DISPLAY_PREFIX_LEN
        && prefix.starts_with("art_sk_")
        && prefix[7..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !shaped {
        return Err(CliError::Usage(format!(
            "give the whole key, or its first {DISPLAY_PREFIX_LEN} characters as printed (art_sk_ and 8 hex characters)"
        )));
    }
    // Counted and revoked in one write, so a key made in between cannot be revoked unseen.
    let owned = prefix.to_owned();
    let revoked = store
        .write_waiting(move |tx| {
            let live = artists::live_keys_matching(tx, &owned)?.len();
            if live == 1 {
                artists::revoke(tx, &owned, Utc::now())?;
            }
            Ok(live)
        })
        .await?;
    match revoked {
        0 => Ok(false),
        1 => Ok(true),
        n => Err(CliError::Usage(format!(
            "{n} live keys start with {prefix}; give the whole key to revoke one"
        ))),
    }
}

fn artist_name(input: &str) -> Result<String, CliError> {
    let name = input.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(CliError::Usage(
            "--name must be 1 to 100 printable characters".into(),
        ));
    }
    Ok(name.to_owned())
}

fn wallet_address(input: &str) -> Result<String, CliError> {
    let hex = input.strip_prefix("0x").unwrap_or_default();
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CliError::Usage(
            "--address must be 0x followed by 40 hex characters".into(),
        ));
    }
    Ok(input.to_owned())
}
