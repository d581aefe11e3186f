//! Property tests: every parser and verifier survives arbitrary input and keeps its invariants.

use std::cell::Cell;
use std::collections::BTreeSet;

use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD as B64URL};
use base64::Engine;
use chrono::NaiveDate;
use ed25519_dalek::{Signer, SigningKey};
use hmac::{Hmac, Mac};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestRunner;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use momentline::db::parts::{self, NewPart, PartStored};
use momentline::db::Conn;
use momentline::domain::keyword::Keyword;
use momentline::domain::moment::{parse_moments, MediaItem, MediaKind, Price, PriceError};
use momentline::domain::phone_number::{mask, PhoneNumber, PhoneNumberError, Region};
use momentline::domain::segments::{Encoding, Segments};
use momentline::domain::MessageState;
use momentline::providers::{telnyx, twilio, vonage, Part, WebhookEvent};
use momentline::store::{Store, WriterSettings};

/// No regression files: a failure prints its minimal input, and tests/ holds only sources.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 22).expect("a real date")
}

const MAX_MICRO_USDC: u64 = Price::MAX_USDC * 1_000_000;

/// Any string at all: proptest's own `String` leaves out control characters, and line
/// breaks, carriage returns and NULs are what text parsers most often trip on.
fn wild() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        vec(any::<char>(), 0..64).prop_map(String::from_iter),
        "[\\x00-\\x20\\x7f\u{85}\u{a0}\u{2028}\u{2029}\u{feff}]{0,10}",
    ]
}

/// Strings that are mostly `known` words (so parsers get past their first checks) and
/// sometimes anything at all.
fn known_or_any(known: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(known).prop_map(str::to_owned),
        1 => wild(),
    ]
}

/// Arbitrary JSON whose object keys and strings are often the words the providers look for.
fn json_value() -> impl Strategy<Value = Value> {
    const WORDS: &[&str] = &[
        "data",
        "event_type",
        "payload",
        "id",
        "from",
        "to",
        "phone_number",
        "status",
        "text",
        "subject",
        "media",
        "url",
        "content_type",
        "type",
        "errors",
        "code",
        "title",
        "detail",
        "message_uuid",
        "message_type",
        "image",
        "audio",
        "video",
        "file",
        "caption",
        "error",
        "message.received",
        "message.sent",
        "message.finalized",
        "delivered",
        "sending_failed",
        "40300",
        "rejected",
        "submitted",
        "https://m/a.jpg",
        "+14155552671",
        "14155552671",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        known_or_any(WORDS).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec((known_or_any(WORDS), inner), 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// A byte string with one byte replaced, one inserted or one removed.
fn edited(bytes: &[u8], at: usize, op: u8, byte: u8) -> Vec<u8> {
    let mut out = bytes.to_vec();
    match op % 3 {
        0 if !out.is_empty() => {
            let i = at % out.len();
            // Never the same byte: that would be no change at all.
            out[i] ^= byte.max(1);
        }
        1 => out.insert(at % (out.len() + 1), byte),
        _ if !out.is_empty() => {
            out.remove(at % out.len());
        }
        _ => out.push(byte),
    }
    out
}

/// What every parsed webhook keeps: it names its provider, and a failed status says why.
fn check_event(event: &WebhookEvent, provider: &str) -> Result<(), TestCaseError> {
    match event {
        WebhookEvent::Message(m) => prop_assert_eq!(m.provider, provider),
        WebhookEvent::Status(s) => {
            prop_assert_eq!(s.provider, provider);
            if s.state == MessageState::Error {
                prop_assert!(s.error.is_some(), "{:?}", s);
            }
        }
        WebhookEvent::Ignored(_) => {}
    }
    Ok(())
}

/// Mostly `plausible`, sometimes any JSON at all in its place.
fn or_any_json(plausible: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
    prop_oneof![4 => plausible, 1 => json_value()]
}

// ---------------------------------------------------------------------------------------
// The Moment grammar

fn moment_line() -> impl Strategy<Value = String> {
    prop_oneof![
        wild(),
        "[ \t]{0,2}(?i:title)[ \t]{0,2}:[ \t]{0,2}.{0,140}",
        "[ \t]{0,2}(?i:price)[ \t]{0,2}:[ \t]{0,2}\\$?[0-9]{0,14}(\\.[0-9]{0,8})?( ?(?i:usdc))?",
        "[ \t]{0,2}(?i:price|title)[ \t]{0,2}:\\PC{0,20}",
        "([a-z]{0,8} ?https?://[a-z./?=&]{1,30}[.,;!?)\\]]? ?){0,3}[a-z ]{0,20}",
        "[a-zA-Z ]{0,150}",
        "\\PC{0,200}",
        "[ \t\u{a0}\u{2003}\u{3000}]{0,5}",
    ]
}

fn moment_text() -> impl Strategy<Value = String> {
    (vec(moment_line(), 0..6), select(&["\n", "\r\n"][..])).prop_map(|(l, end)| l.join(end))
}

fn media_items() -> impl Strategy<Value = Vec<MediaItem>> {
    const TYPES: &[&str] = &[
        "image/jpeg",
        "IMAGE/PNG; name=x",
        "audio/mpeg",
        "video/mp4",
        "video/3gpp",
        "application/pdf",
        "application/smil",
        "text/plain",
        "",
        "image",
        ";image/jpeg",
    ];
    vec(
        (".{0,20}", known_or_any(TYPES))
            .prop_map(|(url, content_type)| MediaItem { url, content_type }),
        0..5,
    )
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn every_parsed_moment_has_a_short_non_blank_title_and_a_price_within_the_cap(
        text in moment_text(),
        subject in proptest::option::of(prop_oneof![wild(), "\\PC{0,150}"]),
        media in media_items(),
    ) {
        let request = parse_moments(&text, subject.as_deref(), &media, day());
        for moment in &request.moments {
            prop_assert!(!moment.title.trim().is_empty(), "blank title in {moment:?}");
            prop_assert!(moment.title.chars().count() <= 100, "long title {:?}", moment.title);
            prop_assert!(moment.price.micro_usdc() <= MAX_MICRO_USDC);
        }
        if request.price_too_high {
            prop_assert!(request.moments.is_empty());
            prop_assert_eq!(request.refused_videos, 0);
        } else {
            let kinds: Vec<MediaKind> = media.iter().map(|m| MediaKind::of(&m.content_type)).collect();
            let carried = kinds
                .iter()
                .filter(|k| matches!(k, MediaKind::Image | MediaKind::Audio | MediaKind::Pdf))
                .count();
            let videos = kinds.iter().filter(|k| **k == MediaKind::Video).count();
            prop_assert_eq!(request.refused_videos, videos);
            // With media, one Moment per image, audio or PDF; without, at most one Moment.
            if carried + videos > 0 {
                prop_assert_eq!(request.moments.len(), carried);
            } else {
                prop_assert!(request.moments.len() <= 1);
            }
        }
    }

    #[test]
    fn a_price_line_above_the_cap_posts_nothing_whatever_else_the_text_says(
        before in vec(moment_line(), 0..4),
        after in vec(moment_line(), 0..4),
        whole in (Price::MAX_USDC + 1)..=u64::MAX,
        media in media_items(),
    ) {
        let mut lines = before;
        lines.push(format!("price: {whole}"));
        lines.extend(after);
        let request = parse_moments(&lines.join("\n"), None, &media, day());
        prop_assert!(request.price_too_high);
        prop_assert!(request.moments.is_empty());
    }

    #[test]
    fn media_kinds_ignore_case_and_parameters(
        content_type in prop_oneof![wild(), "(?i:image|audio|video|application|text)/(?i:pdf|jpeg|smil|mp4)"],
        params in wild(),
    ) {
        let noisy = format!("{};{params}", content_type.to_ascii_uppercase());
        prop_assert_eq!(MediaKind::of(&content_type), MediaKind::of(&noisy));
    }
}

// ---------------------------------------------------------------------------------------
// Prices

proptest! {
    #![proptest_config(config(2048))]

    #[test]
    fn price_parsing_never_panics_and_never_goes_above_the_cap(
        input in prop_oneof![
            wild(),
            "[ ]?\\$?[0-9]{0,25}(\\.[0-9]{0,9})?( ?(?i:usdc))?[ ]?",
            "(?i:free|usdc|\\$|\\.| )*",
        ],
    ) {
        if let Ok(price) = Price::parse(&input) {
            prop_assert!(price.micro_usdc() <= MAX_MICRO_USDC);
        }
    }

    #[test]
    fn a_decimal_amount_parses_to_its_exact_value_in_millionths(
        whole in 0..=Price::MAX_USDC,
        zeros in "0{0,4}",
        fraction in "[0-9]{0,6}",
        dot in any::<bool>(),
        dollar in any::<bool>(),
        unit in select(&["", "usdc", " usdc", " USDC", "UsDc"][..]),
    ) {
        let point = if dot || !fraction.is_empty() { "." } else { "" };
        let sign = if dollar { "$" } else { "" };
        let input = format!(" {sign}{zeros}{whole}{point}{fraction}{unit} ");
        let fraction_micro: u64 = format!("{fraction:0<6}").parse().expect("six digits");
        let micro = whole * 1_000_000 + fraction_micro;
        let expected = if micro > MAX_MICRO_USDC { Err(PriceError::TooHigh) } else { Ok(micro) };
        prop_assert_eq!(Price::parse(&input).map(Price::micro_usdc), expected, "{}", input);
    }

    #[test]
    fn whole_amounts_above_the_cap_are_too_high_however_many_digits(
        digits in "[1-9][0-9]{10,40}",
        zeros in "0{0,3}",
    ) {
        prop_assert_eq!(Price::parse(&format!("{zeros}{digits}")), Err(PriceError::TooHigh));
    }

    #[test]
    fn a_printed_price_parses_back_to_itself(micro in 0..=MAX_MICRO_USDC) {
        let price = Price::from_micro_usdc(micro);
        prop_assert_eq!(Price::parse(&price.to_string()), Ok(price));
    }
}

// ---------------------------------------------------------------------------------------
// Keywords

const KEYWORDS: &[(&str, Keyword)] = &[
    ("STOP", Keyword::OptOut),
    ("STOPALL", Keyword::OptOut),
    ("UNSUBSCRIBE", Keyword::OptOut),
    ("CANCEL", Keyword::OptOut),
    ("END", Keyword::OptOut),
    ("QUIT", Keyword::OptOut),
    ("REVOKE", Keyword::OptOut),
    ("OPTOUT", Keyword::OptOut),
    ("START", Keyword::OptIn),
    ("UNSTOP", Keyword::OptIn),
    ("HELP", Keyword::Help),
    ("INFO", Keyword::Help),
    ("YES", Keyword::Affirmative),
    ("Y", Keyword::Affirmative),
    ("YEA", Keyword::Affirmative),
    ("YEAH", Keyword::Affirmative),
    ("YEP", Keyword::Affirmative),
    ("YUP", Keyword::Affirmative),
    ("YES PLEASE", Keyword::Affirmative),
];

/// Runs of characters that are neither letters nor digits.
fn separator() -> impl Strategy<Value = String> {
    "[ .,!?'\"*~\\-\t\n👍✨]{0,2}"
}

/// `text` with each character's ASCII case set by `upper` and a separator before each.
fn disguised(text: &str, upper: &[bool], seps: &[String]) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        out.push_str(&seps[i % seps.len()]);
        if upper[i % upper.len()] {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out.push_str(&seps[text.chars().count() % seps.len()]);
    out
}

proptest! {
    #![proptest_config(config(2048))]

    #[test]
    fn each_keyword_in_any_case_spacing_or_punctuation_classifies_the_same(
        (word, kind) in select(KEYWORDS),
        upper in vec(any::<bool>(), 1..12),
        seps in vec(separator(), 1..12),
    ) {
        let text = disguised(word, &upper, &seps);
        prop_assert_eq!(Keyword::classify(&text), Some(kind), "{:?}", text);
    }

    #[test]
    fn classification_of_any_text_ignores_ascii_case_and_inserted_punctuation(
        text in prop_oneof![wild(), "(?i:stop|yes|help|start|y| |!|please){0,4}"],
        upper in vec(any::<bool>(), 1..12),
        seps in vec(separator(), 1..12),
    ) {
        let plain = Keyword::classify(&text);
        prop_assert_eq!(Keyword::classify(&disguised(&text, &upper, &seps)), plain);
    }
}

// ---------------------------------------------------------------------------------------
// Phone numbers

/// Area codes the numbering plan assigns in the US and Canada.
const NANP_AREAS: &[&str] = &[
    "201", "202", "206", "212", "213", "305", "310", "312", "404", "415", "416", "503", "512",
    "604", "613", "617", "646", "702", "718", "786", "818", "917",
];

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn phone_number_parsing_never_panics_and_what_parses_is_plain_e164(
        input in prop_oneof![
            wild(),
            "\\+[0-9]{0,17}",
            "\\+[1-9][0-9 ()\\-.]{0,16}",
            "\\+(1|7|20|33|39|44|49|61|81|86|91|262|380|599|800|808|870|878|881|882|883|888|979|1242|1684)[0-9]{0,13}",
        ],
    ) {
        if let Ok(number) = PhoneNumber::parse(&input) {
            let digits = input.strip_prefix('+').unwrap_or_default();
            prop_assert!(digits.bytes().all(|b| b.is_ascii_digit()), "{}", input);
            prop_assert!((2..=15).contains(&digits.len()));
            prop_assert_eq!(number.as_str(), input.as_str());
            prop_assert_eq!(PhoneNumber::parse(number.as_str()), Ok(number));
        }
    }

    #[test]
    fn a_valid_north_american_number_re_formatted_parses_to_itself(
        area in select(NANP_AREAS),
        exchange in "[2-9][0-9]{2}",
        line in "[0-9]{4}",
    ) {
        let input = format!("+1{area}{exchange}{line}");
        let number = PhoneNumber::parse(&input).expect("a valid NANP number parses");
        prop_assert_eq!(number.as_str(), input.as_str());
        prop_assert!(matches!(number.region(), Some(Region::US | Region::CA)));
        prop_assert_eq!(PhoneNumber::parse(&number.to_string()), Ok(number.clone()));
        // Spaced or dashed forms are refused, not read as some other number.
        for spaced in [format!("+1 {area} {exchange} {line}"), format!("+1-{area}-{exchange}-{line}")] {
            prop_assert_eq!(PhoneNumber::parse(&spaced), Err(PhoneNumberError::NotE164));
        }
        let masked = number.masked().to_string();
        prop_assert_eq!(&masked, &format!("+1{area}***{line}"));
        prop_assert_eq!(masked.bytes().filter(u8::is_ascii_digit).count(), 8);
    }

    #[test]
    fn masking_any_string_never_panics_and_never_shows_more_than_nine_characters(
        raw in prop_oneof![wild(), "\\+[0-9]{0,16}"],
    ) {
        let masked = mask(&raw).to_string();
        if raw.len() > 9 && raw.is_ascii() {
            prop_assert_eq!(masked, format!("{}***{}", &raw[..5], &raw[raw.len() - 4..]));
        } else {
            prop_assert_eq!(masked, "+***");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Segments

/// Characters of the GSM-7 basic alphabet (one septet each).
fn gsm_basic() -> impl Strategy<Value = char> {
    prop_oneof![
        proptest::char::range('a', 'z'),
        proptest::char::range('A', 'Z'),
        proptest::char::range('0', '9'),
        select(&[' ', '\n', '.', ',', '!', '?', '@', '$', '£', 'é', 'Ñ', 'Ç', 'Δ', 'ß', '¿'][..]),
    ]
}

/// Characters of the GSM-7 extension table (two septets each).
fn gsm_extension() -> impl Strategy<Value = char> {
    select(&['^', '{', '}', '\\', '[', ']', '~', '|', '€'][..])
}

/// Characters outside GSM-7 altogether.
fn not_gsm() -> impl Strategy<Value = char> {
    select(&['ç', '`', '✨', '😀', '你', 'ą', 'Ж', '\u{a0}', '\t'][..])
}

fn expected_count(units: usize, single: usize, each: usize) -> u32 {
    let count = if units <= single {
        1
    } else {
        units.div_ceil(each)
    };
    u32::try_from(count).expect("small")
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn gsm7_text_counts_extension_characters_twice_and_fits_160_septets_in_one_segment(
        chars in vec(prop_oneof![4 => gsm_basic().prop_map(|c| (c, 1)), 1 => gsm_extension().prop_map(|c| (c, 2))], 0..500),
    ) {
        let text: String = chars.iter().map(|(c, _)| c).collect();
        let septets: usize = chars.iter().map(|(_, n)| n).sum();
        let segments = Segments::of(&text);
        prop_assert_eq!(segments.encoding, Encoding::Gsm7);
        prop_assert_eq!(segments.count, expected_count(septets, 160, 153));
        if septets <= 160 {
            prop_assert_eq!(segments.count, 1);
        }
    }

    #[test]
    fn one_character_outside_gsm7_makes_the_text_ucs2_counted_in_utf16_units(
        before in vec(gsm_basic(), 0..200),
        odd in not_gsm(),
        after in wild(),
    ) {
        let text: String = before.into_iter().chain([odd]).collect::<String>() + &after;
        let segments = Segments::of(&text);
        prop_assert_eq!(segments.encoding, Encoding::Ucs2);
        prop_assert_eq!(segments.count, expected_count(text.encode_utf16().count(), 70, 67));
    }

    #[test]
    fn a_longer_text_never_takes_fewer_segments(
        text in prop_oneof![wild(), vec(gsm_basic(), 0..400).prop_map(String::from_iter)],
        more in prop_oneof![wild(), vec(prop_oneof![gsm_basic(), gsm_extension(), not_gsm()], 1..100).prop_map(String::from_iter)],
    ) {
        let grown = format!("{text}{more}");
        prop_assert!(Segments::of(&grown).count >= Segments::of(&text).count);
        prop_assert!(Segments::of(&text).count >= 1);
    }
}

// ---------------------------------------------------------------------------------------
// Telnyx

/// The RFC 8032 test key (section 7.1, test 1) that tests/api signs Telnyx webhooks with.
const TELNYX_SECRET: [u8; 32] = [
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
    0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
];
const TELNYX_PUBLIC_KEY: &str = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
const NOW: i64 = 1_795_370_000;

const TELNYX_FIXTURES: &[&[u8]] = &[
    include_bytes!("../fixtures/telnyx/message.received.sms.json"),
    include_bytes!("../fixtures/telnyx/message.received.mms.json"),
    include_bytes!("../fixtures/telnyx/message.finalized.json"),
];

fn telnyx_sign(timestamp: &str, body: &[u8]) -> String {
    let mut signed = format!("{timestamp}|").into_bytes();
    signed.extend_from_slice(body);
    BASE64.encode(
        SigningKey::from_bytes(&TELNYX_SECRET)
            .sign(&signed)
            .to_bytes(),
    )
}

/// A Telnyx event shaped like the real ones, each field sometimes replaced by anything.
fn telnyx_event() -> impl Strategy<Value = Value> {
    const STATUSES: &[&str] = &[
        "queued",
        "sent",
        "delivered",
        "delivery_unconfirmed",
        "sending_failed",
        "delivery_failed",
        "expired",
    ];
    let endpoint = || {
        (wild(), proptest::option::of(known_or_any(STATUSES)))
            .prop_map(|(number, status)| json!({"phone_number": number, "status": status}))
    };
    let media = (wild(), proptest::option::of(wild()), proptest::option::of(wild()))
        .prop_map(|(url, content_type, kind)| json!({"url": url, "content_type": content_type, "type": kind}));
    let error = (
        proptest::option::of(known_or_any(&["40300", "40008"])),
        proptest::option::of(wild()),
        proptest::option::of(wild()),
    )
        .prop_map(|(code, title, detail)| json!({"code": code, "title": title, "detail": detail}));
    let payload = (
        or_any_json(wild().prop_map(Value::from)),
        or_any_json(endpoint()),
        or_any_json(vec(endpoint(), 0..3).prop_map(Value::from)),
        or_any_json(proptest::option::of(wild()).prop_map(Value::from)),
        or_any_json(vec(media, 0..3).prop_map(Value::from)),
        or_any_json(vec(error, 0..3).prop_map(Value::from)),
    )
        .prop_map(|(id, from, to, text, media, errors)| {
            json!({"id": id, "from": from, "to": to, "text": text, "media": media, "errors": errors})
        });
    (
        known_or_any(&[
            "message.received",
            "message.sent",
            "message.finalized",
            "call.hangup",
        ]),
        payload,
    )
        .prop_map(
            |(event_type, payload)| json!({"data": {"event_type": event_type, "payload": payload}}),
        )
}

fn telnyx_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..300),
        select(TELNYX_FIXTURES).prop_map(<[u8]>::to_vec),
        json_value().prop_map(|v| v.to_string().into_bytes()),
    ]
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn a_telnyx_body_signed_at_its_time_verifies_within_five_minutes(
        body in telnyx_body(),
        sent in -300i64..=300,
    ) {
        let key = telnyx::parse_public_key(TELNYX_PUBLIC_KEY).expect("the test key");
        let timestamp = (NOW + sent).to_string();
        let signature = telnyx_sign(&timestamp, &body);
        prop_assert_eq!(telnyx::verify(&key, Some(&timestamp), Some(&signature), &body, NOW), Ok(()));
    }

    #[test]
    fn a_telnyx_body_signed_more_than_five_minutes_away_is_stale(
        body in telnyx_body(),
        sent in prop_oneof![301i64..=NOW, -NOW..=-301],
    ) {
        let key = telnyx::parse_public_key(TELNYX_PUBLIC_KEY).expect("the test key");
        let timestamp = (NOW + sent).to_string();
        let signature = telnyx_sign(&timestamp, &body);
        prop_assert_eq!(
            telnyx::verify(&key, Some(&timestamp), Some(&signature), &body, NOW),
            Err(telnyx::SignatureError::Stale)
        );
    }

    #[test]
    fn any_one_byte_change_to_a_signed_telnyx_body_is_refused(
        body in telnyx_body(),
        at in any::<usize>(),
        op in any::<u8>(),
        byte in any::<u8>(),
    ) {
        let key = telnyx::parse_public_key(TELNYX_PUBLIC_KEY).expect("the test key");
        let timestamp = NOW.to_string();
        let signature = telnyx_sign(&timestamp, &body);
        let tampered = edited(&body, at, op, byte);
        prop_assert_eq!(
            telnyx::verify(&key, Some(&timestamp), Some(&signature), &tampered, NOW),
            Err(telnyx::SignatureError::Mismatch)
        );
    }

    #[test]
    fn any_one_byte_change_to_a_signed_telnyx_timestamp_is_refused(
        body in telnyx_body(),
        at in any::<usize>(),
        op in any::<u8>(),
        byte in prop_oneof![b'0'..=b'9', Just(b' '), Just(b'+'), Just(b'-'), any::<u8>()],
    ) {
        let key = telnyx::parse_public_key(TELNYX_PUBLIC_KEY).expect("the test key");
        let timestamp = NOW.to_string();
        let signature = telnyx_sign(&timestamp, &body);
        // A change that is not UTF-8 cannot arrive as a header value at all.
        if let Ok(tampered) = String::from_utf8(edited(timestamp.as_bytes(), at, op, byte)) {
            prop_assert!(telnyx::verify(&key, Some(&tampered), Some(&signature), &body, NOW).is_err(), "{:?}", tampered);
        }
    }

    #[test]
    fn telnyx_verification_never_panics_on_arbitrary_headers(
        key in prop_oneof![Just(TELNYX_PUBLIC_KEY.to_owned()), wild(), "[A-Za-z0-9+/]{43}="],
        timestamp in proptest::option::of(prop_oneof![wild(), "[ +\\-]?[0-9]{0,20}"]),
        signature in proptest::option::of(prop_oneof![wild(), "[A-Za-z0-9+/]{86}=="]),
        body in vec(any::<u8>(), 0..100),
        now in any::<i64>(),
    ) {
        if let Ok(key) = telnyx::parse_public_key(&key) {
            let _ = telnyx::verify(&key, timestamp.as_deref(), signature.as_deref(), &body, now);
        }
    }

    #[test]
    fn telnyx_event_parsing_never_panics_on_arbitrary_bytes_or_json(
        body in prop_oneof![
            vec(any::<u8>(), 0..300),
            json_value().prop_map(|v| v.to_string().into_bytes()),
            telnyx_event().prop_map(|v| v.to_string().into_bytes()),
            (select(TELNYX_FIXTURES), any::<usize>(), any::<u8>(), any::<u8>())
                .prop_map(|(fixture, at, op, byte)| edited(fixture, at, op, byte)),
        ],
    ) {
        if let Ok(event) = telnyx::parse_event(&body) {
            check_event(&event, telnyx::NAME)?;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Twilio

const TWILIO_NAMES: &[&str] = &[
    "MessageSid",
    "SmsSid",
    "From",
    "To",
    "Body",
    "NumMedia",
    "MediaUrl0",
    "MediaUrl1",
    "MediaUrl9",
    "MediaContentType0",
    "MediaContentType1",
    "MessageStatus",
    "ErrorCode",
];
const TWILIO_VALUES: &[&str] = &[
    "SM1",
    "+14155552671",
    "2",
    " 3 ",
    "101",
    "18446744073709551616",
    "-1",
    "",
    "sent",
    "delivered",
    "read",
    "undelivered",
    "failed",
    "queued",
    "21610",
    "https://api.twilio.com/m/0",
    "image/jpeg",
];

const TWILIO_SHAPES: &[&[&str]] = &[
    &["MessageSid", "From"],
    &["MessageSid", "MessageStatus", "ErrorCode"],
];

fn twilio_params() -> impl Strategy<Value = twilio::Params> {
    // An inbound post or a status callback with the fields it needs, and more.
    let shaped = (
        select(TWILIO_SHAPES),
        vec(known_or_any(TWILIO_VALUES), 3),
        proptest::option::of(known_or_any(TWILIO_VALUES)),
        vec((0..12usize, wild()), 0..4),
        vec(
            (known_or_any(TWILIO_NAMES), known_or_any(TWILIO_VALUES)),
            0..4,
        ),
    )
        .prop_map(|(names, values, num_media, media, extra)| {
            let mut params: twilio::Params = names
                .iter()
                .zip(values)
                .map(|(name, value)| ((*name).to_owned(), value))
                .collect();
            params.extend(num_media.map(|n| ("NumMedia".to_owned(), n)));
            for (n, url) in media {
                params.push((format!("MediaUrl{n}"), url));
            }
            params.extend(extra);
            params
        });
    prop_oneof![
        vec(
            (known_or_any(TWILIO_NAMES), known_or_any(TWILIO_VALUES)),
            0..10
        ),
        shaped,
        Just(
            serde_urlencoded::from_bytes(include_bytes!("../fixtures/twilio/inbound.mms.form"))
                .expect("the fixture is a form")
        ),
    ]
}

fn twilio_url() -> impl Strategy<Value = String> {
    "(https?|HTTPS?|Https?)://[a-z]{1,10}(\\.[a-z]{2,3})?(:[0-9]{1,5})?(/[a-zA-Z0-9._~%-]{0,10}){0,3}(\\?[a-z]=[a-z0-9]{0,4}(&[a-z]=[a-z0-9]{0,4}){0,2})?"
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn a_twilio_signature_verifies_for_its_params_in_any_order(
        token in prop_oneof!["[0-9a-f]{32}", wild()],
        url in twilio_url(),
        params in twilio_params(),
        shuffled in any::<proptest::sample::Index>(),
    ) {
        let signature = twilio::signature(&token, &url, &params);
        prop_assert!(twilio::verify(&token, &url, &params, Some(&signature)));
        // Twilio signs the parameters sorted, so the order they arrive in does not matter.
        let mut reordered = params.clone();
        if !reordered.is_empty() {
            let i = shuffled.index(reordered.len());
            reordered.rotate_left(i);
        }
        prop_assert!(twilio::verify(&token, &url, &reordered, Some(&signature)));
    }

    #[test]
    fn a_twilio_signature_verifies_with_or_without_the_default_port(
        scheme in select(&[("https", "443"), ("http", "80")][..]),
        host in "[a-z]{1,10}\\.[a-z]{2,3}",
        path in "(/[a-z0-9]{0,8}){0,3}(\\?[a-z]=[0-9]{1,3})?",
        params in twilio_params(),
    ) {
        let (scheme, port) = scheme;
        let bare = format!("{scheme}://{host}{path}");
        let ported = format!("{scheme}://{host}:{port}{path}");
        let token = "0123456789abcdef0123456789abcdef";
        prop_assert!(twilio::verify(token, &ported, &params, Some(&twilio::signature(token, &bare, &params))));
        prop_assert!(twilio::verify(token, &bare, &params, Some(&twilio::signature(token, &ported, &params))));
    }

    #[test]
    fn changing_any_one_twilio_param_value_is_refused(
        url in twilio_url(),
        params in twilio_params().prop_filter("a parameter to change", |p| !p.is_empty()),
        which in any::<proptest::sample::Index>(),
        value in known_or_any(TWILIO_VALUES),
    ) {
        let token = "0123456789abcdef0123456789abcdef";
        let signature = twilio::signature(token, &url, &params);
        let mut changed = params.clone();
        let i = which.index(changed.len());
        prop_assume!(changed[i].1 != value);
        changed[i].1 = value;
        prop_assert!(!twilio::verify(token, &url, &changed, Some(&signature)), "{:?}", changed);
    }

    #[test]
    fn changing_any_one_byte_of_the_twilio_url_is_refused(
        url in twilio_url(),
        params in twilio_params(),
        at in any::<proptest::sample::Index>(),
        replacement in proptest::char::range('!', '~'),
    ) {
        let token = "0123456789abcdef0123456789abcdef";
        let signature = twilio::signature(token, &url, &params);
        let i = at.index(url.len());
        let mut changed = url.clone().into_bytes();
        prop_assume!(changed[i] != replacement as u8);
        changed[i] = replacement as u8;
        let changed = String::from_utf8(changed).expect("an ASCII URL stays ASCII");
        prop_assert!(!twilio::verify(token, &changed, &params, Some(&signature)), "{}", changed);
    }

    #[test]
    fn twilio_verification_and_parsing_never_panic_on_arbitrary_params(
        token in wild(),
        url in prop_oneof![wild(), twilio_url(), "(?i:https?)://[\\[\\]:/?a-z0-9]{0,20}"],
        params in twilio_params(),
        signature in proptest::option::of(prop_oneof![wild(), "[A-Za-z0-9+/]{27}="]),
    ) {
        let _ = twilio::verify(&token, &url, &params, signature.as_deref());
        if let Ok(event) = twilio::parse_inbound(&params) {
            check_event(&event, twilio::NAME)?;
            if let WebhookEvent::Message(m) = event {
                prop_assert!(m.media.len() <= 100);
                for item in &m.media {
                    prop_assert!(params.iter().any(|(k, v)| k.starts_with("MediaUrl") && *v == item.url));
                }
            }
        }
        if let Ok(event) = twilio::parse_status(&params) {
            check_event(&event, twilio::NAME)?;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Vonage

const VONAGE_METHODS: &[vonage::SignatureMethod] = &[
    vonage::SignatureMethod::Md5Hash,
    vonage::SignatureMethod::HmacMd5,
    vonage::SignatureMethod::HmacSha1,
    vonage::SignatureMethod::HmacSha256,
    vonage::SignatureMethod::HmacSha512,
];
const VONAGE_NAMES: &[&str] = &[
    "msisdn",
    "to",
    "messageId",
    "text",
    "type",
    "status",
    "err-code",
    "concat",
    "concat-ref",
    "concat-part",
    "concat-total",
    "message-timestamp",
    "timestamp",
    "nonce",
];
const VONAGE_VALUES: &[&str] = &[
    "14155552671",
    "+14155552671",
    "0A0000001F3C8A11",
    "text",
    "binary",
    "unicode",
    "true",
    "false",
    "08B5",
    "0",
    "1",
    "3",
    "255",
    "256",
    "4294967296",
    "-1",
    "",
    "delivered",
    "accepted",
    "failed",
    "expired",
    "a&b=c",
];

const VONAGE_FIXTURES: &[&[u8]] = &[
    include_bytes!("../fixtures/vonage/messages.inbound.image.json"),
    include_bytes!("../fixtures/vonage/messages.inbound.text.json"),
];

fn vonage_secret() -> impl Strategy<Value = vonage::SignatureSecret> {
    (
        prop_oneof![Just("my_secret_key_for_testing".to_owned()), wild()],
        select(VONAGE_METHODS),
    )
        .prop_map(|(secret, method)| vonage::SignatureSecret {
            secret: secret.into(),
            method,
        })
}

const VONAGE_SHAPES: &[&[&str]] = &[
    &["msisdn", "messageId", "text"],
    &["msisdn", "messageId", "status"],
];

fn vonage_params() -> impl Strategy<Value = vonage::Params> {
    let pair = || {
        (
            known_or_any(VONAGE_NAMES).prop_filter("sig is the signature itself", |k| k != "sig"),
            known_or_any(VONAGE_VALUES),
        )
    };
    // An inbound message (often one part of several) or a receipt, with what it needs.
    let number = || prop_oneof!["[0-9]{1,3}", known_or_any(VONAGE_VALUES)];
    let shaped = (
        select(VONAGE_SHAPES),
        vec(known_or_any(VONAGE_VALUES), 3),
        proptest::option::of((known_or_any(VONAGE_VALUES), number(), number())),
        vec(pair(), 0..4),
    )
        .prop_map(|(names, values, concat, extra)| {
            let mut params: vonage::Params = names
                .iter()
                .zip(values)
                .map(|(name, value)| ((*name).to_owned(), value))
                .collect();
            if let Some((reference, part, total)) = concat {
                for (name, value) in [
                    ("concat", "true".to_owned()),
                    ("concat-ref", reference),
                    ("concat-part", part),
                    ("concat-total", total),
                ] {
                    params.push((name.to_owned(), value));
                }
            }
            params.extend(extra);
            params
        });
    prop_oneof![vec(pair(), 0..10), shaped]
}

/// The signing string writes `&` and `=` in values as `_`, so a change among those three
/// characters is one Vonage's scheme cannot see.
fn as_signed(value: &str) -> String {
    value.replace(['&', '='], "_")
}

/// A Messages API token as Vonage makes one: HS256 over the header and claims.
fn vonage_jwt(secret: &str, body: &[u8], issued: i64) -> String {
    let header = B64URL.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = B64URL.encode(
        json!({"iat": issued, "jti": "j1", "payload_hash": hex::encode(Sha256::digest(body))})
            .to_string(),
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{header}.{claims}").as_bytes());
    let signature = B64URL.encode(mac.finalize().into_bytes());
    format!("Bearer {header}.{claims}.{signature}")
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn a_vonage_signature_verifies_with_every_method_wherever_sig_is_and_in_any_case(
        secret in vonage_secret(),
        params in vonage_params(),
        at in any::<proptest::sample::Index>(),
        upper in any::<bool>(),
    ) {
        let signature = vonage::signature(&secret, &params);
        let signature = if upper { signature.to_ascii_uppercase() } else { signature };
        let mut signed = params.clone();
        signed.insert(at.index(params.len() + 1), ("sig".to_owned(), signature));
        prop_assert!(vonage::verify(&secret, &signed));
    }

    #[test]
    fn changing_any_one_vonage_param_value_is_refused(
        secret in vonage_secret(),
        params in vonage_params().prop_filter("a parameter to change", |p| !p.is_empty()),
        which in any::<proptest::sample::Index>(),
        value in known_or_any(VONAGE_VALUES),
    ) {
        let mut changed = params.clone();
        let i = which.index(changed.len());
        prop_assume!(as_signed(&changed[i].1) != as_signed(&value));
        changed[i].1 = value;
        changed.push(("sig".to_owned(), vonage::signature(&secret, &params)));
        prop_assert!(!vonage::verify(&secret, &changed), "{:?}", changed);
    }

    #[test]
    fn a_vonage_sig_that_is_not_the_signature_is_refused(
        secret in vonage_secret(),
        params in vonage_params(),
        sig in prop_oneof![wild(), "[0-9a-fA-F]{32}", "[0-9a-f]{64}"],
    ) {
        let expected = vonage::signature(&secret, &params);
        prop_assume!(!sig.trim().eq_ignore_ascii_case(&expected));
        let mut signed = params;
        signed.push(("sig".to_owned(), sig));
        prop_assert!(!vonage::verify(&secret, &signed));
    }

    #[test]
    fn vonage_parsing_never_panics_and_parts_are_always_possible(
        params in vonage_params(),
    ) {
        let parsed = vonage::parse(&params);
        if let Ok(event) = &parsed {
            check_event(event, vonage::NAME)?;
        }
        if let Ok(WebhookEvent::Message(m)) = parsed {
            prop_assert!(m.from.starts_with('+'));
            if let Some(part) = m.part {
                prop_assert!(1 <= part.number && part.number <= part.total && part.total <= 255, "{:?}", part);
                prop_assert!(!part.reference.is_empty());
            }
        }
    }

    #[test]
    fn vonage_json_bodies_never_panic_and_keep_only_non_null_fields(
        body in prop_oneof![
            vec(any::<u8>(), 0..200),
            json_value().prop_map(|v| v.to_string().into_bytes()),
            select(VONAGE_FIXTURES).prop_map(<[u8]>::to_vec),
        ],
    ) {
        if let Ok(params) = vonage::params_from_json(&body) {
            let object: serde_json::Map<String, Value> = serde_json::from_slice(&body).expect("parsed once already");
            prop_assert_eq!(params.len(), object.values().filter(|v| !v.is_null()).count());
        }
        let parsed = vonage::parse_messages(&body);
        if let Ok(event) = &parsed {
            check_event(event, vonage::NAME)?;
        }
        if let Ok(WebhookEvent::Message(m)) = parsed {
            prop_assert!(m.from.starts_with('+'));
            prop_assert!(m.media.len() <= 1);
        }
    }

    #[test]
    fn a_recent_vonage_jwt_verifies_only_the_body_it_was_made_for(
        secret in wild(),
        body in vec(any::<u8>(), 0..200),
        age in -vonage::JWT_MAX_SKEW_SECS..=vonage::JWT_MAX_AGE_SECS,
        at in any::<usize>(),
        op in any::<u8>(),
        byte in any::<u8>(),
    ) {
        let token = vonage_jwt(&secret, &body, NOW - age);
        prop_assert_eq!(vonage::verify_jwt_at(&secret, Some(&token), &body, NOW), Ok(()));
        prop_assert_eq!(
            vonage::verify_jwt_at(&secret, Some(&token), &edited(&body, at, op, byte), NOW),
            Err(vonage::JwtError::PayloadHash)
        );
    }

    #[test]
    fn a_vonage_jwt_issued_too_long_ago_or_too_far_ahead_is_stale(
        body in vec(any::<u8>(), 0..50),
        age in prop_oneof![
            (vonage::JWT_MAX_AGE_SECS + 1)..=NOW,
            (-NOW)..-vonage::JWT_MAX_SKEW_SECS,
        ],
    ) {
        let token = vonage_jwt("s3cret", &body, NOW - age);
        prop_assert_eq!(
            vonage::verify_jwt_at("s3cret", Some(&token), &body, NOW),
            Err(vonage::JwtError::Stale)
        );
    }

    #[test]
    fn any_one_character_change_to_a_vonage_jwt_is_refused(
        body in vec(any::<u8>(), 0..50),
        at in any::<proptest::sample::Index>(),
        replacement in prop_oneof![proptest::char::range('!', '~'), Just(' ')],
    ) {
        let token = vonage_jwt("s3cret", &body, NOW);
        let i = at.index(token.len());
        let mut changed = token.clone().into_bytes();
        prop_assume!(changed[i] != replacement as u8);
        changed[i] = replacement as u8;
        let changed = String::from_utf8(changed).expect("an ASCII token stays ASCII");
        prop_assert!(vonage::verify_jwt_at("s3cret", Some(&changed), &body, NOW).is_err(), "{}", changed);
    }

    #[test]
    fn vonage_jwt_checks_never_panic_on_arbitrary_tokens(
        secret in wild(),
        authorization in proptest::option::of(prop_oneof![
            wild(),
            (json_value(), json_value(), vec(any::<u8>(), 0..64)).prop_map(|(h, c, s)| format!(
                "Bearer {}.{}.{}",
                B64URL.encode(h.to_string()),
                B64URL.encode(c.to_string()),
                B64URL.encode(s)
            )),
            "Bearer [A-Za-z0-9_\\-.=]{0,60}",
        ]),
        body in vec(any::<u8>(), 0..50),
        now in any::<i64>(),
    ) {
        let _ = vonage::verify_jwt(&secret, authorization.as_deref(), &body);
        let _ = vonage::verify_jwt_at(&secret, authorization.as_deref(), &body, now);
    }
}

// ---------------------------------------------------------------------------------------
// Vonage part joining

/// One message's part bodies, and the part indices delivered again.
fn message_parts() -> impl Strategy<Value = (Vec<String>, Vec<usize>)> {
    (1usize..=5).prop_flat_map(|n| {
        (
            vec(prop_oneof![wild(), "[a-z ]{0,20}"], n),
            vec(0..n, 0..=n),
        )
    })
}

/// Up to three messages in flight at once, and the order their parts arrive in: every part
/// at least once, some again, interleaved in any order.
fn deliveries() -> impl Strategy<Value = (Vec<Vec<String>>, Vec<(usize, usize)>)> {
    vec(message_parts(), 1..=3).prop_flat_map(|messages| {
        let mut order = Vec::new();
        for (k, (bodies, repeats)) in messages.iter().enumerate() {
            order.extend(
                (0..bodies.len())
                    .chain(repeats.iter().copied())
                    .map(|i| (k, i)),
            );
        }
        let bodies: Vec<Vec<String>> = messages.into_iter().map(|(b, _)| b).collect();
        (Just(bodies), Just(order).prop_shuffle())
    })
}

#[test]
fn vonage_parts_in_any_order_with_repeats_join_once_per_message_in_part_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    // The store makes the database; parts are stored through a connection of the test's own.
    let _store =
        Store::open(&dir.path().join("p.db"), WriterSettings::default()).expect("open the store");
    let raw = rusqlite::Connection::open(dir.path().join("p.db")).expect("a connection");
    raw.execute_batch("PRAGMA foreign_keys = ON;")
        .expect("foreign keys");
    let conn = Conn::sqlite(&raw);
    let now = chrono::Utc::now();
    // Each case has references of its own, so cases never meet.
    let case = Cell::new(0u32);
    let mut runner = TestRunner::new(config(256));
    let outcome = runner.run(&deliveries(), |(messages, order)| {
        case.set(case.get() + 1);
        // Messages 0 and 1 share a reference from two senders; 0 and 2 share a sender
        // under two references: neither may take the other's parts.
        let numbers = ["+14155552671", "+14155550123"]
            .map(|n| PhoneNumber::parse(n).expect("a valid number"));
        let phone = |k: usize| &numbers[k % 2];
        let reference = |k: usize| format!("ref-{}-{}", case.get(), k / 2);
        let id = |k: usize, i: usize| format!("{}-{k}-{i}", case.get());
        let mut seen: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); messages.len()];
        let mut completes = vec![0; messages.len()];
        for &(k, i) in &order {
            let bodies = &messages[k];
            let part = Part {
                reference: reference(k),
                number: u32::try_from(i + 1).expect("few parts"),
                total: u32::try_from(bodies.len()).expect("few parts"),
            };
            let new_part = NewPart {
                provider: vonage::NAME,
                provider_message_id: &id(k, i),
                phone: phone(k),
                part: &part,
                body: &bodies[i],
            };
            let got = parts::store(&conn, &new_part, now).expect("store a part");
            let expected = if !seen[k].insert(i) {
                PartStored::Duplicate
            } else if seen[k].len() == bodies.len() {
                PartStored::Complete {
                    text: bodies.concat(),
                    first_id: id(k, 0),
                }
            } else {
                PartStored::Waiting
            };
            if matches!(got, PartStored::Complete { .. }) {
                completes[k] += 1;
            }
            prop_assert_eq!(
                got,
                expected,
                "part {} of message {} in {:?}",
                i + 1,
                k,
                order
            );
        }
        prop_assert!(completes.iter().all(|&c| c == 1), "{:?}", completes);
        Ok(())
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}
