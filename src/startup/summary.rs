//! What start-up tells the operator: where it serves and its links, what it sends with,
//! which webhooks accept requests, the limits; and warnings for what will not work as
//! configured.

use crate::config::{DispatchSettings, Settings};
use crate::events::Events;
use crate::providers::Sender;

/// The summary's lines, the warnings among them.
pub(super) fn summary(
    settings: &Settings,
    port: u16,
    sender: &Sender,
    events: Events,
    connection: Option<(&str, bool)>,
) -> Vec<(tracing::Level, String)> {
    use tracing::Level;
    let mut lines = Vec::new();
    let mut say = |level: Level, line: String| lines.push((level, line));
    let public = &settings.public_url;
    say(
        Level::INFO,
        format!(
            "address {} (port {port}); public URL {public}",
            settings.addr
        ),
    );
    say(
        Level::INFO,
        format!("{public}/: the index, with the links below"),
    );
    for link in crate::routes::index_links(settings) {
        say(
            Level::INFO,
            format!("{public}{}: {}", link.href, link.title),
        );
    }
    say(
        Level::INFO,
        format!(
            "database {} {} (schema version {}); media in {}",
            if settings.database_url.is_some() {
                "PostgreSQL"
            } else {
                "SQLite"
            },
            settings.database_name(),
            crate::store::migrations::VERSION,
            settings.media_dir.display()
        ),
    );
    if let Some((security, warns)) = connection {
        let level = if warns { Level::WARN } else { Level::INFO };
        say(level, format!("database connection {security}"));
    }
    let provider = sender.name();
    say(
        Level::INFO,
        match provider {
            "console" => "provider console: texts are written to this log, not sent".to_owned(),
            name => format!("provider {name}: texts are sent through its API"),
        },
    );
    let webhooks = [
        (
            "telnyx",
            settings.telnyx_public_key.is_some(),
            "TELNYX_PUBLIC_KEY",
        ),
        (
            "twilio",
            settings.twilio_auth_token.is_some(),
            "TWILIO_AUTH_TOKEN",
        ),
        (
            "vonage",
            settings.vonage_signature.is_some(),
            "VONAGE_SIGNATURE_SECRET",
        ),
    ];
    for (name, on, secret) in webhooks {
        let url = format!("{public}/webhooks/{name}");
        if on {
            say(Level::INFO, format!("webhook {url}: on"));
        } else {
            // The configured provider's replies cannot arrive: worth a warning.
            let level = if name == provider {
                Level::WARN
            } else {
                Level::INFO
            };
            say(
                level,
                format!("webhook {url}: off, every request refused (401) until {secret} is set"),
            );
        }
    }
    say(
        Level::INFO,
        match &settings.dispatch {
            DispatchSettings::Embedded => "Moments are created here (embedded)".to_owned(),
            DispatchSettings::Webhook { url, .. } => {
                format!("Moments are created on the host at {url}")
            }
            DispatchSettings::InProcess(i) => format!(
                "Moments are created on In Process at {} ({:?}, links on {})",
                i.api_base, i.chain, i.site_url
            ),
        },
    );
    say(
        Level::INFO,
        match (&settings.events, events) {
            (Some(e), Events::ON) => format!("events go to {}", e.url),
            _ => "events: off".to_owned(),
        },
    );
    let c = &settings.connect_limits;
    let r = &settings.reply_limits;
    say(
        Level::INFO,
        format!(
            "limits: {} texts/s; {} jobs at once; a number gets a prompt at most every {} s and \
             {} a day; an artist causes {} an hour; {} replies and {} reminders a number an \
             hour; merge window {} s",
            settings
                .send_rate
                .map_or_else(|| "unlimited".to_owned(), |r| r.to_string()),
            settings.job_concurrency,
            c.prompt_cooldown.num_seconds(),
            c.prompts_per_day,
            c.connects_per_hour,
            r.replies_per_hour,
            r.reminders_per_hour,
            settings.merge_window.num_seconds(),
        ),
    );
    if let Some(warning) = public_port_warning(public, port) {
        say(Level::WARN, warning);
    }
    if provider != "console" && public_is_loopback(public) {
        say(
            Level::WARN,
            format!(
                "MOMENTLINE_PUBLIC_URL {public} is on this machine, but texts go through \
                 {provider}: its webhooks cannot reach that URL, Twilio's signatures are made \
                 over the public URL (401 until it matches), and Moment links will not open \
                 on phones; set MOMENTLINE_PUBLIC_URL to the address the internet reaches"
            ),
        );
    }
    if matches!(settings.dispatch, DispatchSettings::InProcess(_)) && public_is_loopback(public) {
        say(
            Level::WARN,
            format!(
                "MOMENTLINE_PUBLIC_URL {public} is on this machine, but In Process fetches each \
                 Moment's media and metadata from it: every upload will fail; set \
                 MOMENTLINE_PUBLIC_URL to the address the internet reaches"
            ),
        );
    }
    lines
}

/// Whether a URL names this machine.
fn public_is_loopback(public_url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(public_url) else {
        return false;
    };
    url.host_str().is_some_and(|host| {
        host == "localhost"
            || host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    })
}

/// A public URL on this machine whose port is not the one momentline listens on: its links
/// do not open, and Twilio's signatures (made over that URL) will not match.
fn public_port_warning(public_url: &str, port: u16) -> Option<String> {
    let url = reqwest::Url::parse(public_url).ok()?;
    let loopback = public_is_loopback(public_url);
    let named = url.port_or_known_default()?;
    (loopback && named != port).then(|| {
        format!(
            "MOMENTLINE_PUBLIC_URL {public_url} names port {named}, but momentline listens on \
             {port}: links will not open and Twilio webhooks will be refused (401, the signature \
             is made over the public URL); set MOMENTLINE_PUBLIC_URL to http://127.0.0.1:{port}"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_process_with_a_public_url_on_this_machine_is_warned_of() {
        let warnings = |public: &str| {
            let settings = Settings::from_lookup(|name| match name {
                "MOMENTLINE_DISPATCH" => Some("inprocess".into()),
                "MOMENTLINE_SECRET_KEY" => {
                    Some("BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=".into())
                }
                "MOMENTLINE_PUBLIC_URL" => Some(public.into()),
                _ => None,
            })
            .expect("settings");
            let sender = Sender::new(&settings.provider, reqwest::Client::new());
            summary(&settings, 8080, &sender, Events::OFF, None)
                .into_iter()
                .filter(|(level, _)| *level == tracing::Level::WARN)
                .map(|(_, line)| line)
                .collect::<Vec<_>>()
        };
        let local = warnings("http://127.0.0.1:8080");
        assert!(
            local.iter().any(|w| w.contains("In Process fetches")),
            "{local:?}"
        );
        assert!(warnings("https://moments.example").is_empty());
    }

    #[test]
    fn a_public_url_on_this_machine_with_another_port_is_warned_of() {
        let warned = public_port_warning("http://127.0.0.1:8080", 9000).expect("a warning");
        assert!(warned.contains("http://127.0.0.1:9000"), "{warned}");
        assert!(public_port_warning("http://localhost", 8080).is_some());
        assert!(public_port_warning("http://[::1]:8080", 8081).is_some());
        assert_eq!(public_port_warning("http://127.0.0.1:8080", 8080), None);
        assert_eq!(public_port_warning("https://moments.example", 8080), None);
    }
}
