//! The `momentline` command line: serve, and manage artists and their keys.

use chrono::Utc;
use clap::{Parser, Subcommand};

use crate::config::Settings;
use crate::db::{self, artists};
use crate::domain::api_key::{ApiKey, DISPLAY_PREFIX_LEN};
use crate::startup::Application;
use crate::store::{Store, WriteError};

#[derive(Debug, Parser)]
#[command(
    name = "momentline",
    version,
    about = "Post Moments on In Process by text message",
    after_help = ENVIRONMENT
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

/// Every variable the commands read, for `--help`; README.md's Configuration says more.
const ENVIRONMENT: &str = "\
Environment (every variable optional; README.md has the details):
  MOMENTLINE_ADDR                 listen address [127.0.0.1:8080]
  MOMENTLINE_DB                   SQLite file [momentline.db]
  MOMENTLINE_PUBLIC_URL           public base URL for links and Twilio signatures [http://127.0.0.1:8080]
  MOMENTLINE_MANAGE_URL           where unknown numbers are sent [https://inprocess.world/manage]
  MOMENTLINE_SMS_PROVIDER         console, telnyx, twilio, vonage, textflow or phonify [console]
  MOMENTLINE_PENDING_TTL_SECS     how long a connect request waits for its yes [86400]
  MOMENTLINE_ALLOWED_COUNTRIES    ISO regions that may be connected, * for all [US,CA]
  MOMENTLINE_MEDIA_DIR            where Moment media is kept [media/ beside the database]
  MOMENTLINE_MERGE_SECS           how long a photo alone and a caption alone wait to be one Moment; 0 off [20]
  MOMENTLINE_RETRY_SCHEDULE       seconds before each retry of a failed job [5,30,120,600,3600]
  MOMENTLINE_SEND_RATE            texts a second at most [no limit]
  MOMENTLINE_JOB_CONCURRENCY      jobs running at once [64]
  MOMENTLINE_WRITE_QUEUE          writes that may wait for the writer [1024]
  MOMENTLINE_SHUTDOWN_GRACE_SECS  on SIGTERM, how long running jobs may finish [10]
  MOMENTLINE_DISPATCH             embedded or webhook [embedded]
  MOMENTLINE_DISPATCH_URL         webhook: the host's endpoint for new Moments
  MOMENTLINE_DISPATCH_SECRET      webhook: the Standard Webhooks secret (whsec_...)
  MOMENTLINE_MEDIA_ALLOW_PRIVATE  1 lets media come from private addresses (tests only) [0]
  TELNYX_API_KEY, TELNYX_FROM_NUMBER or TELNYX_MESSAGING_PROFILE_ID, TELNYX_PUBLIC_KEY,
    TELNYX_API_BASE
  TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID,
    TWILIO_API_BASE
  VONAGE_API_KEY, VONAGE_API_SECRET, VONAGE_FROM, VONAGE_SIGNATURE_SECRET,
    VONAGE_SIGNATURE_METHOD, VONAGE_API_BASE
  TEXTFLOW_API_KEY, TEXTFLOW_API_BASE
  PHONIFY_API_KEY, PHONIFY_APP, PHONIFY_API_BASE
  RUST_LOG                        log filter [info]";

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
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_names_every_variable_the_settings_read() {
        let config = include_str!("config.rs");
        let name = regex::Regex::new(
            r#""((?:MOMENTLINE|TELNYX|TWILIO|VONAGE|TEXTFLOW|PHONIFY)_[A-Z_]+)""#,
        )
        .expect("regex");
        let read: Vec<&str> = name
            .captures_iter(config)
            .filter_map(|c| c.get(1).map(|m| m.as_str()))
            .collect();
        assert!(read.contains(&"MOMENTLINE_MERGE_SECS"), "{read:?}");
        for name in read {
            assert!(ENVIRONMENT.contains(name), "--help does not name {name}");
        }
    }
}
