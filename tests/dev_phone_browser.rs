//! The dev phone in a real headless browser (Chromium driven over WebDriver): connect a
//! number, confirm it, post a photo, and see each answer arrive as a bubble; and at a
//! phone's size, open a long conversation at its newest text with the compose bar in view.
//!
//! Without Debian's `chromium` and `chromium-driver` the test is skipped with a message,
//! except under `CI`, where it fails.

use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
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
/// A number no artist asked for: its texts are recorded, and answered once a day at most.
const STRANGER: &str = "+14155550123";
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

/// Stops chromedriver and the browser it started when the test ends, however it ends: they
/// share a process group of their own, so a test that fails before closing its session
/// leaves no browser behind.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Chromium and chromedriver, if installed. Without them `test` is skipped with a message,
/// except under `CI`, where it fails.
fn browser_programs(test: &str) -> Option<(PathBuf, PathBuf)> {
    let found = (
        program(&["chromium", "chromium-browser"]),
        program(&["chromedriver"]),
    );
    if let (Some(chromium), Some(chromedriver)) = found {
        return Some((chromium, chromedriver));
    }
    let why = "chromium and chromedriver are not installed (Debian: apt-get install chromium chromium-driver)";
    assert!(
        std::env::var_os("CI").is_none(),
        "the dev phone browser test cannot be skipped under CI: {why}"
    );
    eprintln!("SKIPPED {test}: {why}");
    None
}

/// The screen a session shows pages on.
enum Screen {
    /// A desktop window of this size, the browser's own bars included.
    Window(u32, u32),
    /// A phone whose page is exactly this wide and high (CSS pixels).
    Phone(u32, u32),
}

/// Starts chromedriver and opens a headless Chromium session through it, on `screen`.
async fn browser(chromium: &Path, chromedriver: &Path, screen: Screen) -> (Driver, Client) {
    let port = free_port();
    let driver = Driver(
        Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    let mut options = json!({
        "binary": chromium,
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    });
    match screen {
        Screen::Window(width, height) => {
            options["args"]
                .as_array_mut()
                .expect("args")
                .push(json!(format!("--window-size={width},{height}")));
        }
        Screen::Phone(width, height) => {
            options["mobileEmulation"] = json!({
                "deviceMetrics": { "width": width, "height": height, "pixelRatio": 1 }
            });
        }
    }
    let capabilities = json!({ "goog:chromeOptions": options });
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
    let Some((chromium, chromedriver)) =
        browser_programs("the_dev_phone_plays_the_whole_story_in_a_browser")
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let (address, key) = serve(dir.path()).await;
    let (_driver, client) = browser(&chromium, &chromedriver, Screen::Window(600, 900)).await;

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

/// Where the page's parts are on screen, as the browser lays them out.
const LAYOUT: &str = "\
    const rect = (e) => e.getBoundingClientRect(); \
    const chat = document.getElementById('chat'); \
    const bubbles = chat.querySelectorAll('.bubble'); \
    const [first, last] = [bubbles[0], bubbles[bubbles.length - 1]]; \
    const compose = rect(document.getElementById('compose')); \
    return { height: window.innerHeight, width: window.innerWidth, \
             composeTop: compose.top, composeBottom: compose.bottom, \
             chatTop: rect(chat).top, chatBottom: rect(chat).bottom, \
             firstBottom: rect(first).bottom, lastTop: rect(last).top, \
             lastBottom: rect(last).bottom, last: last.textContent, \
             scrolls: chat.scrollHeight > chat.clientHeight, \
             number: document.getElementById('number').value };";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_a_phones_size_the_page_opens_at_the_newest_text_with_the_compose_bar_in_view() {
    let Some((chromium, chromedriver)) = browser_programs(
        "at_a_phones_size_the_page_opens_at_the_newest_text_with_the_compose_bar_in_view",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let (address, _) = serve(dir.path()).await;
    // A conversation longer than a phone's screen.
    let http = reqwest::Client::new();
    for n in 1..=30 {
        let text = json!({ "id": format!("long-talk-{n:04}"), "from": STRANGER, "text": format!("Text number {n}") });
        let sent = http
            .post(format!("{address}/dev/phone/messages"))
            .json(&text)
            .send()
            .await
            .expect("sent");
        assert_eq!(sent.status(), 200, "text {n}");
    }
    let (_driver, client) = browser(&chromium, &chromedriver, Screen::Phone(420, 900)).await;
    // The number's `+` as a person types it in the address bar, not escaped.
    client
        .goto(&format!("{address}/dev/phone?number={STRANGER}"))
        .await
        .expect("the page opens");
    bubble(&client, "me", "Text number 30").await;
    let layout = client.execute(LAYOUT, vec![]).await.expect("script runs");
    let at = |name: &str| {
        layout[name]
            .as_f64()
            .unwrap_or_else(|| panic!("{name}: {layout}"))
    };
    assert_eq!(layout["number"], STRANGER, "{layout}");
    assert!(at("width") == 420.0 && at("height") == 900.0, "{layout}");
    assert!(
        layout["scrolls"] == json!(true),
        "the conversation fits: {layout}"
    );
    assert!(
        at("composeTop") >= 0.0 && at("composeBottom") <= at("height"),
        "the compose bar is off screen: {layout}"
    );
    assert!(
        layout["last"]
            .as_str()
            .is_some_and(|t| t.contains("Text number 30")),
        "{layout}"
    );
    assert!(
        at("lastTop") >= at("chatTop") && at("lastBottom") <= at("chatBottom") + 1.0,
        "the newest text is not in view: {layout}"
    );
    assert!(
        at("firstBottom") <= at("chatTop"),
        "the page opened at the oldest text: {layout}"
    );
    client.close().await.expect("session closes");
}
