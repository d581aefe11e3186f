//! The `momentline` command line: serve, and manage artists and their keys.

use std::sync::Arc;

use chrono::Utc;
use clap::builder::TypedValueParser as _;
use clap::{Parser, Subcommand};

use crate::config::Settings;
use crate::db::broadcasts::{self, BroadcastId};
use crate::db::{self, artists, jobs};
use crate::domain::api_key::{ApiKey, DISPLAY_PREFIX_LEN};
use crate::domain::broadcast::BroadcastText;
use crate::domain::secret::Secret;
use crate::startup::Application;
use crate::store::{Store, WriteError};

#[derive(Debug, Parser)]
#[command(
    name = "momentline",
    version,
    about = "Post Moments on In Process by text message",
    after_help = crate::config::variables_help()
)]
pub struct Cli {
    /// The SQLite database file (overrides MOMENTLINE_DB).
    #[arg(long, global = true, value_name = "PATH")]
    db: Option<String>,
    /// `momentline` alone serves: these are `serve`'s flags.
    #[command(flatten)]
    serve: ServeArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

/// What only a server has: where it listens.
#[derive(Debug, Clone, Default, clap::Args)]
struct ServeArgs {
    /// The address `serve` listens on, e.g. 127.0.0.1:8080 or :8080 (overrides
    /// MOMENTLINE_ADDR).
    #[arg(long, value_name = "ADDR")]
    addr: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: API, webhooks and the jobs runner (the default).
    Serve(ServeArgs),
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
    /// Copy the database, safely while the server runs (SQLite's online backup).
    Backup {
        /// Where to write the copy; an existing file is not overwritten.
        path: std::path::PathBuf,
    },
    /// Tools for playing with momentline on this machine.
    Dev {
        #[command(subcommand)]
        command: DevCommand,
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
    Status {
        /// The id `momentline broadcast` printed.
        #[arg(value_parser = clap::value_parser!(i64).map(BroadcastId))]
        id: BroadcastId,
    },
}

#[derive(Debug, Subcommand)]
enum DevCommand {
    /// Text the running server as a phone would: signs and posts the provider's webhook with
    /// the secret the server is configured with (same environment), then prints the answers.
    Text {
        /// The phone number texting, in E.164 (+14155552671).
        #[arg(long)]
        from: String,
        /// What the phone texts: words, a link, or the caption of --media. A line such as
        /// `price: 5` sets the Moment's price in USDC; without one it is 1 USDC.
        text: String,
        /// A photo, audio or PDF file to attach (served on loopback for the server to fetch;
        /// the server needs MOMENTLINE_MEDIA_ALLOW_PRIVATE=1 to fetch it).
        #[arg(long, value_name = "FILE")]
        media: Option<std::path::PathBuf>,
        /// Whose webhook to play.
        #[arg(long, value_enum, default_value = "twilio")]
        provider: crate::dev::DevProvider,
        /// Our number the phone texts.
        #[arg(long, default_value = "+18445550001")]
        to: String,
        /// The running server's base URL, e.g. http://127.0.0.1:8080 (default: the loopback
        /// address of MOMENTLINE_ADDR).
        #[arg(long)]
        url: Option<String>,
        /// Seconds to wait at most for momentline's answers, saying meanwhile what they wait
        /// for; it stops as soon as the outcome is known (0: do not wait).
        #[arg(long, default_value_t = 30)]
        wait: u64,
    },
}

#[derive(Debug, Subcommand)]
enum ArtistsCommand {
    /// Create an artist and print its first API key.
    Add {
        /// The artist's name (1 to 100 characters, unique).
        #[arg(long)]
        name: String,
        /// The artist's wallet address (0x and 40 hex characters).
        #[arg(long)]
        address: Option<String>,
    },
    /// List artists, with their live keys and verified numbers.
    List,
    /// Keep an artist's In Process API key, read from standard input (never an argument), sealed
    /// with MOMENTLINE_SECRET_KEY; and, optionally, its wallet address and the collection its
    /// Moments go to. Moments that waited for a key are posted then.
    InprocessKey {
        /// The artist's name, as given to `artists add`.
        #[arg(long)]
        artist: String,
        /// The artist's wallet address (0x and 40 hex characters), the account its Moments are
        /// created by and paid out to; replaces the one given to `artists add`.
        #[arg(long)]
        address: Option<String>,
        /// The In Process collection the artist's Moments go to (0x and 40 hex characters);
        /// without it, the first Moment makes one.
        #[arg(long)]
        collection: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create another API key for an artist and print it.
    Create {
        /// The artist's name, as given to `artists add`.
        #[arg(long)]
        artist: String,
    },
    /// Revoke a key: give the whole key, or its first 15 characters (e.g. art_sk_1a2b3c4d).
    Revoke {
        /// The whole key, or its first 15 characters as `keys list` shows them.
        prefix: String,
    },
    /// List keys by their first characters (never the keys themselves).
    List {
        /// Only this artist's keys.
        #[arg(long)]
        artist: Option<String>,
    },
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
    #[error(transparent)]
    Dev(#[from] crate::dev::DevError),
    #[error("could not back up the database")]
    Backup(#[source] rusqlite::Error),
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    let command = command_of(cli.command, cli.serve)?;
    let addr = match &command {
        Command::Serve(serve) => serve.addr.clone(),
        _ => None,
    };
    // A flag wins over its variable.
    let lookup = |name: &str| match name {
        "MOMENTLINE_DB" if cli.db.is_some() => cli.db.clone(),
        "MOMENTLINE_ADDR" if addr.is_some() => addr.clone(),
        _ => std::env::var(name).ok(),
    };
    let settings = Settings::from_lookup(lookup).map_err(|e| with_path_problems(e, &lookup))?;
    let sqlite = settings.database_url.is_none();
    // Every command but `serve` (which checks more) and `dev` opens the database directly.
    if sqlite && !matches!(command, Command::Serve(_) | Command::Dev { .. }) {
        let problems = crate::startup::database_problems(&settings.db_path);
        if !problems.is_empty() {
            return Err(CliError::Usage(problems.join("\n")));
        }
    }
    // Commands that only read never make a database: a wrong path is said, not answered
    // with an empty list.
    let reads_only = matches!(
        command,
        Command::Artists {
            command: ArtistsCommand::List
        } | Command::Keys {
            command: KeysCommand::List { .. }
        } | Command::Broadcast(BroadcastArgs {
            command: Some(BroadcastCommand::Status { .. }),
            ..
        })
    );
    if sqlite && reads_only && !settings.db_path.exists() {
        return Err(CliError::Usage(format!(
            "no database at {} (set MOMENTLINE_DB or --db)",
            settings.db_path.display()
        )));
    }
    match command {
        Command::Serve(_) => {
            let app = Application::build(settings).await?;
            app.run_until_stopped().await?;
        }
        Command::Artists {
            command: ArtistsCommand::Add { name, address },
        } => {
            let name = artist_name(&name)?;
            let address = address.as_deref().map(wallet_address).transpose()?;
            let store = open_store(&settings)?;
            let key = Arc::new(ApiKey::generate()?);
            let (wanted, stored) = (name.clone(), Arc::clone(&key));
            let artist = store
                .write_waiting(move |tx| {
                    artists::create(tx, &wanted, address.as_deref(), &stored, Utc::now())
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
            let store = open_store(&settings)?;
            let key = Arc::new(ApiKey::generate()?);
            let (wanted, stored) = (artist.clone(), Arc::clone(&key));
            let found = store
                .write_waiting(move |tx| artists::add_key(tx, &wanted, &stored, Utc::now()))
                .await?;
            let artist =
                found.ok_or_else(|| CliError::Usage(format!("no artist named '{artist}'")))?;
            eprintln!("New API key for '{}', shown only now:", artist.name);
            println!("{}", key.expose());
        }
        Command::Keys {
            command: KeysCommand::Revoke { prefix },
        } => {
            let store = open_store(&settings)?;
            let shown = match ApiKey::parse(&prefix) {
                Some(key) => key.display_prefix().to_owned(),
                None => prefix.clone(),
            };
            let revoked = match ApiKey::parse(&prefix) {
                // The whole key names exactly one key.
                Some(key) => {
                    store
                        .write_waiting(move |tx| artists::revoke_key(tx, &key, Utc::now()))
                        .await?
                }
                None => revoke_by_prefix(&store, &prefix).await?,
            };
            if !revoked {
                let named = shown.clone();
                let before = store.read(move |c| artists::revoked_at(c, &named)).await?;
                // Named by its shown prefix: a whole key is never said back.
                return Err(CliError::Usage(match before {
                    Some(at) => format!("{shown} was already revoked, at {at}: nothing to do"),
                    None => format!("no key matches {shown} (`keys list` shows the live ones)"),
                }));
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
            let store = open_store(&settings)?;
            let status = store
                .read(move |c| broadcasts::status(c, id))
                .await?
                .ok_or_else(|| CliError::Usage(format!("no broadcast {id}")))?;
            let running = status.batches.is_some_and(|b| b[1] > 0);
            let (status, waiting) = if running {
                ask_bulk_waiting(&settings, &store, status).await?
            } else {
                (status, None)
            };
            print!("{}", status_report(&status));
            if let Some(waiting) = waiting {
                println!("{waiting}");
            }
        }
        Command::Broadcast(BroadcastArgs {
            command: None,
            text,
        }) => {
            let text = BroadcastText::parse(text.as_deref().unwrap_or_default())?;
            let store = open_store(&settings)?;
            let body = text.as_str().to_owned();
            let (id, verified) = store
                .write_waiting(move |tx| broadcasts::create(tx, &body, Utc::now()))
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
        Command::Artists {
            command:
                ArtistsCommand::InprocessKey {
                    artist,
                    address,
                    collection,
                },
        } => {
            let sealing = settings.secret_key.clone().ok_or_else(|| {
                CliError::Usage(
                    "MOMENTLINE_SECRET_KEY is not set: it seals the key at rest. Make one with \
                     `openssl rand -base64 32`, and give the server the same"
                        .into(),
                )
            })?;
            let collection = collection
                .as_deref()
                .map(|c| address_of("--collection", c))
                .transpose()?;
            let address = address.as_deref().map(wallet_address).transpose()?;
            // Typed or pasted at a terminal, the key is not echoed (nor kept in scrollback).
            let key = if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                let typed = rpassword::prompt_password(
                    "The artist's In Process API key (art_sk_…, not shown as typed): ",
                )
                .map_err(|e| CliError::Usage(format!("could not read the key: {e}")))?;
                inprocess_key_from(typed.as_bytes())?
            } else {
                inprocess_key_from(std::io::stdin().lock())?
            };
            let store = open_store(&settings)?;
            let wanted = artist.clone();
            let found = store
                .read(move |c| artists::find_by_name(c, &wanted))
                .await?
                .ok_or_else(|| CliError::Usage(format!("no artist named '{artist}'")))?;
            let sealed = sealing
                .seal(&key, format!("artist:{}", found.id).as_bytes())
                .map_err(|e| CliError::Usage(e.to_string()))?;
            let id = found.id;
            let woken = store
                .write_waiting(move |tx| {
                    artists::set_inprocess(
                        tx,
                        id,
                        &sealed,
                        address.as_deref(),
                        collection.as_deref(),
                    )?;
                    // Moments that waited for a key go now.
                    jobs::queue_due_now(tx, &crate::host::inprocess::queue(id), Utc::now())
                })
                .await?;
            eprintln!(
                "Kept the In Process key of '{}', sealed; `artists list` shows it is set.{}",
                found.name,
                if woken > 0 {
                    format!(" {woken} waiting job(s) of the artist's go now.")
                } else {
                    String::new()
                }
            );
        }
        Command::Artists {
            command: ArtistsCommand::List,
        } => {
            let store = open_store(&settings)?;
            let listed = store.read(artists::list).await?;
            println!(
                "id\tname\tlive keys\tverified numbers\taddress\tcreated\tin process key\tcollection"
            );
            for a in listed {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    a.id,
                    a.name,
                    a.live_keys,
                    a.verified_numbers,
                    a.address.as_deref().unwrap_or("-"),
                    a.created_at,
                    if a.inprocess_key { "set" } else { "-" },
                    a.collection.as_deref().unwrap_or("-"),
                );
            }
        }
        Command::Keys {
            command: KeysCommand::List { artist },
        } => {
            let store = open_store(&settings)?;
            let wanted = artist.clone();
            let keys = store
                .read(move |c| artists::list_keys(c, wanted.as_deref()))
                .await?;
            if let (Some(name), true) = (&artist, keys.is_empty()) {
                let known = store
                    .read({
                        let name = name.clone();
                        move |c| artists::find_by_name(c, &name)
                    })
                    .await?;
                if known.is_none() {
                    return Err(CliError::Usage(format!("no artist named '{name}'")));
                }
            }
            println!("key\tartist\tcreated\trevoked");
            for k in keys {
                println!(
                    "{}\t{}\t{}\t{}",
                    k.prefix,
                    k.artist,
                    k.created_at,
                    k.revoked_at.as_deref().unwrap_or("-")
                );
            }
        }
        Command::Backup { path } => {
            if !sqlite {
                return Err(CliError::Usage(
                    "backup copies a SQLite database; back PostgreSQL up with its own tools \
                     (pg_dump)"
                        .into(),
                ));
            }
            backup(&settings.db_path, &path)?;
            println!(
                "Backed up {} to {}",
                settings.db_path.display(),
                path.display()
            );
        }
        Command::Dev {
            command:
                DevCommand::Text {
                    from,
                    text,
                    media,
                    provider,
                    to,
                    url,
                    wait,
                },
        } => {
            crate::dev::text(
                &settings,
                crate::dev::DevText {
                    from,
                    text,
                    media,
                    provider,
                    to: Some(to),
                    url,
                    wait: std::time::Duration::from_secs(wait),
                },
            )
            .await?;
        }
    }
    Ok(())
}

/// The command to run: `serve` when none is named, with the `--addr` given before it.
/// `--addr` means something to `serve` only: given before another command, it is refused by
/// name rather than ignored.
fn command_of(command: Option<Command>, bare: ServeArgs) -> Result<Command, CliError> {
    match (command, bare.addr) {
        (None, addr) => Ok(Command::Serve(ServeArgs { addr })),
        (Some(Command::Serve(own)), addr) => Ok(Command::Serve(ServeArgs {
            addr: own.addr.or(addr),
        })),
        (Some(other), None) => Ok(other),
        (Some(other), Some(_)) => Err(CliError::Usage(format!(
            "--addr is the address `serve` listens on; `{}` listens on nothing{}",
            other.name(),
            match other {
                Command::Dev { .. } => " (give `dev text` the server's address with --url)",
                _ => "",
            }
        ))),
    }
}

impl Command {
    /// The command's word on the command line.
    fn name(&self) -> &'static str {
        match self {
            Self::Serve(_) => "serve",
            Self::Artists { .. } => "artists",
            Self::Keys { .. } => "keys",
            Self::Backup { .. } => "backup",
            Self::Dev { .. } => "dev",
            Self::Broadcast(_) => "broadcast",
        }
    }
}

/// The database the settings name: the SQLite file, or PostgreSQL when a URL is set.
fn open_store(settings: &Settings) -> Result<Store, db::DbError> {
    Store::open_database(&settings.database(), settings.writer)
}

/// Copies the live database to `to` with SQLite's online backup, in one step: a read
/// transaction sees one consistent state, which the server's writes (WAL) do not disturb or
/// restart. The copy is made beside `to` and renamed into place once whole, readable by its
/// owner only, like the database; an interrupted backup leaves no file at `to`.
fn backup(from: &std::path::Path, to: &std::path::Path) -> Result<(), CliError> {
    if !from.exists() {
        return Err(CliError::Usage(format!(
            "no database at {} (set MOMENTLINE_DB or --db)",
            from.display()
        )));
    }
    if to.exists() {
        return Err(CliError::Usage(format!(
            "{} exists already; give a new path",
            to.display()
        )));
    }
    let partial = to.with_file_name(format!(
        ".{}.partial",
        to.file_name().and_then(|n| n.to_str()).unwrap_or("backup")
    ));
    let _ = std::fs::remove_file(&partial);
    crate::files::owner_only_file()
        .open(&partial)
        .map_err(|e| CliError::Usage(format!("cannot create {}: {e}", partial.display())))?;
    let copied = (|| -> Result<(), rusqlite::Error> {
        let source = rusqlite::Connection::open_with_flags(
            from,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        source.busy_timeout(std::time::Duration::from_secs(5))?;
        let mut copy = rusqlite::Connection::open(&partial)?;
        let backup = rusqlite::backup::Backup::new(&source, &mut copy)?;
        // Every page in one step (-1); a writer holding the lock only delays it.
        for _ in 0..100 {
            match backup.step(-1)? {
                rusqlite::backup::StepResult::Done => return Ok(()),
                _ => std::thread::sleep(std::time::Duration::from_millis(50)),
            }
        }
        Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            Some("the database stayed locked for 5 s".into()),
        ))
    })();
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&partial);
        return Err(CliError::Backup(e));
    }
    std::fs::rename(&partial, to).map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        CliError::Usage(format!("cannot move the copy to {}: {e}", to.display()))
    })
}

/// Asks the provider's bulk path how many recipients it has still to send to, while batches
/// of the broadcast are with it; when none, every running batch is finished and its texts
/// sent, in one write, and the status is read again. Answers the status and the line that
/// shows the provider's count (or why there is none).
async fn ask_bulk_waiting(
    settings: &Settings,
    store: &Store,
    status: broadcasts::Status,
) -> Result<(broadcasts::Status, Option<String>), CliError> {
    let http = reqwest::Client::builder()
        .timeout(settings.provider_timeout)
        .build()
        .map_err(|e| CliError::Usage(format!("cannot make an HTTP client: {e}")))?;
    let sender = crate::providers::Sender::new(&settings.provider, http);
    let Some(bulk) = sender.bulk_service() else {
        return Ok((
            status,
            Some(format!(
                "provider waiting: unknown ({} has no bulk path; MOMENTLINE_SMS_PROVIDER changed?)",
                sender.name()
            )),
        ));
    };
    let name = sender.name();
    let waiting = match bulk.bulk_waiting().await {
        Ok(waiting) => waiting,
        Err(e) => return Ok((status, Some(format!("{name} waiting: unknown ({e})")))),
    };
    let line = Some(format!("{name} waiting: {waiting}"));
    if waiting > 0 {
        return Ok((status, line));
    }
    let id = status.id;
    store
        .write_waiting(move |tx| db::batches::finish_running(tx, name, Utc::now()))
        .await?;
    let status = store
        .read(move |c| broadcasts::status(c, id))
        .await?
        .ok_or_else(|| CliError::Usage(format!("no broadcast {id}")))?;
    Ok((status, line))
}

/// `broadcast status`: one `name: value` line each.
fn status_report(s: &broadcasts::Status) -> String {
    let queuing = match (&s.queued_at, &s.queuing_failed) {
        (Some(at), _) => format!("finished {at}"),
        (None, Some(reason)) => format!("stopped: {reason}"),
        (None, None) => "in progress".to_owned(),
    };
    let mut report = format!(
        "broadcast: {}\ncreated: {}\nnumbers: {}\nqueuing: {queuing}\nsent: {}\nwaiting: {}\n\
         failed: {}\nwithheld (opted out after queuing): {}\n",
        s.id, s.created_at, s.numbers, s.sent, s.waiting, s.failed, s.withheld
    );
    if let Some([queued, running, finished, failed]) = s.batches {
        report.push_str(&format!(
            "bulk batches: {} (queued {queued}, running {running}, finished {finished}, failed {failed})\n",
            queued + running + finished + failed
        ));
    }
    report
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
    address_of("--address", input)
}

/// The settings' problems, and the database's and media directory's with them, so that every
/// problem is said at once (the paths are otherwise checked once the settings read).
fn with_path_problems(
    e: crate::config::ConfigError,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> CliError {
    let set = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
    let db =
        std::path::PathBuf::from(set("MOMENTLINE_DB").unwrap_or_else(|| "momentline.db".into()));
    let mut problems = vec![e.to_string()];
    if set("MOMENTLINE_DATABASE_URL").is_none() {
        problems.extend(crate::startup::database_problems(&db));
    }
    if let Some(media) = set("MOMENTLINE_MEDIA_DIR") {
        problems.extend(crate::startup::media_problems(std::path::Path::new(&media)));
    }
    CliError::Usage(problems.join("\n"))
}

/// An address on chain, as `flag` gives it: 0x and 40 hex characters.
fn address_of(flag: &str, input: &str) -> Result<String, CliError> {
    if !crate::host::inprocess_api::is_address(input) {
        return Err(CliError::Usage(format!(
            "{flag} must be 0x followed by 40 hex characters"
        )));
    }
    Ok(input.to_owned())
}

/// The In Process API key on the first line of `input`: `art_sk_` and letters, digits, `-`
/// or `_`, as In Process's API-keys page shows it.
fn inprocess_key_from(mut input: impl std::io::BufRead) -> Result<Secret, CliError> {
    let mut line = String::new();
    input
        .read_line(&mut line)
        .map_err(|e| CliError::Usage(format!("could not read the key from standard input: {e}")))?;
    let key = line.trim();
    let sane = key.starts_with("art_sk_")
        && (8..=200).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !sane {
        return Err(CliError::Usage(
            "give the artist's In Process API key (art_sk_…) on standard input, e.g. \
             `momentline artists inprocess-key --artist NAME < key.txt`"
                .into(),
        ));
    }
    Ok(Secret::from(key))
}
