//! The dev phone in a real headless browser (Chromium driven over WebDriver): connect a
//! number, confirm it, post a photo, and see each answer arrive as a bubble.
//!
//! Without Debian's `chromium` and `chromium-driver` the test is skipped with a message,
//! except under `CI`, where it fails.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chrono::Utc;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use momentline::config::Settings;
use momentline::db;
use momentline::domain::api_key::ApiKey;
use momentline::startup::Application;

const PHONE: &str = "+14155552671";
/// Links name this; the page is opened at the server's own address.
const PUBLIC_URL: &str = "https://moments.example";
/// A 1×1 PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
/// How long one answer may take to show: the runner sends it, the page polls every second.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// A program on `PATH` or in `/usr/bin`.
fn program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .chain([PathBuf::from("/usr/bin")])
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Stops chromedriver (and the browser it started) when the test ends, however it ends.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts chromedriver and opens a headless Chromium session through it.
async fn browser(chromium: &Path, chromedriver: &Path) -> (Driver, Client) {
    let port = free_port();
    let driver = Driver(
        Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    let capabilities = json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=600,900"],
        }
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!("an object literal")
    };
    let url = format!("http://127.0.0.1:{port}");
    let mut last_error = String::new();
    for _ in 0..100 {
        // chromedriver is on loopback: plain HTTP, no TLS stack.
        match ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities.clone())
            .connect(&url)
            .await
        {
            Ok(client) => return (driver, client),
            Err(e) => last_error = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no WebDriver session from chromedriver on port {port}: {last_error}");
}

/// The real server: a fresh database, the console provider, the dev phone on, and the jobs
/// runner running so answers arrive by themselves. Answers its address and an artist's key.
async fn serve(dir: &Path) -> (String, String) {
    let db = dir.join("momentline.db");
    let media = dir.join("media");
    let env = [
        ("MOMENTLINE_ADDR", "127.0.0.1:0".to_owned()),
        ("MOMENTLINE_DB", db.display().to_string()),
        ("MOMENTLINE_MEDIA_DIR", media.display().to_string()),
        ("MOMENTLINE_SMS_PROVIDER", "console".to_owned()),
        ("MOMENTLINE_PUBLIC_URL", PUBLIC_URL.to_owned()),
        ("MOMENTLINE_DEV_PHONE", "1".to_owned()),
        ("MOMENTLINE_RETRY_SCHEDULE", "0,0".to_owned()),
    ];
    let settings =
        Settings::from_lookup(|name| env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone()))
            .expect("settings");
    assert!(settings.run_workers);
    let app = Application::build(settings).await.expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let store = app.store();
    tokio::spawn(app.run_until_stopped());
    let key = ApiKey::generate().expect("randomness");
    store
        .reads()
        .with(|conn| db::artists::create(conn, "Sweetman", None, &key, Utc::now()))
        .expect("insert")
        .expect("new artist");
    (address, key.expose().to_owned())
}

/// A bubble of `side` (`me`: the phone's; `them`: momentline's) holding `text`.
fn bubble_xpath(side: &str, text: &str) -> String {
    format!(
        "//div[contains(concat(' ', @class, ' '), ' bubble ') and \
         contains(concat(' ', @class, ' '), ' {side} ') and contains(., \"{text}\")]"
    )
}

/// An attribute of the element at `xpath`, once it is there. The page redraws the chat when
/// it changes, so an element found may be gone by the time it is read: found again then.
async fn attr_of(client: &Client, xpath: &str, name: &str) -> String {
    for _ in 0..100 {
        if let Ok(element) = client.find(Locator::XPath(xpath)).await {
            if let Ok(Some(value)) = element.attr(name).await {
                return value;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no {name} at {xpath}");
}

/// Waits for a bubble of `side` holding `text`.
async fn bubble(client: &Client, side: &str, text: &str) {
    let xpath = bubble_xpath(side, text);
    match client
        .wait()
        .at_most(ANSWER_WITHIN)
        .every(Duration::from_millis(200))
        .for_element(Locator::XPath(&xpath))
        .await
    {
        Ok(_) => {}
        Err(e) => {
            let chat = match client.find(Locator::Id("chat")).await {
                Ok(chat) => chat.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            let status = match client.find(Locator::Id("status")).await {
                Ok(status) => status.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            panic!("no '{side}' bubble with {text:?} ({e}); status {status:?}; chat:\n{chat}");
        }
    }
}

async fn type_into(client: &Client, id: &str, text: &str) {
    let field = client.find(Locator::Id(id)).await.expect(id);
    field.send_keys(text).await.expect(id);
}

async fn click(client: &Client, id: &str) {
    client
        .find(Locator::Id(id))
        .await
        .expect(id)
        .click()
        .await
        .expect(id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dev_phone_plays_the_whole_story_in_a_browser() {
    let (Some(chromium), Some(chromedriver)) = (
        program(&["chromium", "chromium-browser"]),
        program(&["chromedriver"]),
    ) else {
        let why = "chromium and chromedriver are not installed (Debian: apt-get install chromium chromium-driver)";
        assert!(
            std::env::var_os("CI").is_none(),
            "the dev phone browser test cannot be skipped under CI: {why}"
        );
        eprintln!("SKIPPED the_dev_phone_plays_the_whole_story_in_a_browser: {why}");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let (address, key) = serve(dir.path()).await;
    let (_driver, client) = browser(&chromium, &chromedriver).await;

    client
        .goto(&format!("{address}/dev/phone"))
        .await
        .expect("the page opens");
    type_into(&client, "number", PHONE).await;
    type_into(&client, "key", &key).await;
    click(&client, "connect").await;
    bubble(&client, "them", "please reply 'yes'").await;

    type_into(&client, "text", "yes").await;
    click(&client, "send").await;
    bubble(&client, "me", "yes").await;
    bubble(&client, "them", "Connected to Sweetman on In Process").await;

    let png = dir.path().join("sunrise.png");
    std::fs::write(&png, BASE64.decode(PNG).expect("PNG")).expect("PNG written");
    type_into(&client, "image", &png.display().to_string()).await;
    type_into(&client, "text", "Sunrise").await;
    click(&client, "send").await;
    bubble(&client, "me", "Sunrise").await;
    // The photo shows in its bubble, served from momentline's kept copy.
    let photo = format!("{}//img", bubble_xpath("me", "Sunrise"));
    let src = attr_of(&client, &photo, "src").await;
    assert!(src.contains("/media/") && src.ends_with(".png"), "{src}");
    let loaded = format!(
        "const img = document.evaluate({photo:?}, document, null, \
         XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue; \
         return img && img.complete ? img.naturalWidth : 0;"
    );
    let mut width = json!(0);
    for _ in 0..50 {
        width = client.execute(&loaded, vec![]).await.expect("script runs");
        if width != json!(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(width, json!(1), "the 1×1 photo loads");

    bubble(&client, "them", "Moment posted: ").await;
    let link = format!("{}//a", bubble_xpath("them", "Moment posted: "));
    let href = attr_of(&client, &link, "href").await;
    let id = href
        .strip_prefix(&format!("{PUBLIC_URL}/moments/"))
        .unwrap_or_else(|| panic!("a link to the Moment: {href}"));
    // It is the Moment's page, with the photo.
    let page = reqwest::get(format!("{address}/moments/{id}"))
        .await
        .expect("moment page");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("html").contains("Sunrise"));

    client.close().await.expect("session closes");
}
