//! What a host's HTTP answer says, read the same way for every host: its `Retry-After`, and
//! the start of its body.

use std::time::Duration;

/// The most of an answer's body that is read: enough for an id, a URL or a reason.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The wait an answer asks for, in seconds (`Retry-After`); a date or nonsense is none.
pub fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// The start of an answer's body, at most `MAX_ANSWER_BYTES`: a body cut off reads as what
/// it is (a 2xx whose JSON is cut off has no URL), and a body that stops coming ends it.
pub async fn read_capped(response: reqwest::Response) -> String {
    read_at_most(response, MAX_ANSWER_BYTES).await
}

/// The start of an answer's body, at most `most` bytes (a list is longer than an answer).
pub async fn read_at_most(mut response: reqwest::Response, most: usize) -> String {
    let mut bytes: Vec<u8> = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = most - bytes.len();
        bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if bytes.len() >= most {
            break;
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}
