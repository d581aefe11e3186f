//! The dev phone (`/dev/phone`, development only): a browser page playing an artist's phone.
//! Its texts arrive as this provider's, through the same inbound path as a webhook's.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::Deserialize;

use crate::domain::moment::MediaKind;

pub const NAME: &str = "dev";

/// The largest image the page may attach.
pub const MAX_IMAGE_BYTES: usize = 5 * 1024 * 1024;
/// The largest request: the image as base64 (4/3 of its size) and the rest of the JSON.
pub const MAX_BODY_BYTES: usize = MAX_IMAGE_BYTES.div_ceil(3) * 4 + 64 * 1024;
/// The longest text the page may send (a long MMS is about this).
const MAX_TEXT_CHARS: usize = 5000;

/// A text the page sends, as it sends it.
#[derive(Debug, Deserialize)]
struct Request {
    /// The page's own id for this message: a double submit has one effect.
    id: String,
    /// The number the page plays.
    from: String,
    #[serde(default)]
    text: String,
    image: Option<ImageRequest>,
}

#[derive(Debug, Deserialize)]
struct ImageRequest {
    content_type: String,
    /// The file, base64.
    data: String,
}

/// A text from the dev phone, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevText {
    pub id: String,
    pub from: String,
    pub text: String,
    pub image: Option<Image>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// Why the page's request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DevTextError {
    #[error("{0}")]
    Malformed(String),
    #[error("The image is larger than {} MB", MAX_IMAGE_BYTES / 1024 / 1024)]
    ImageTooLarge,
}

/// Parses the page's JSON: an id of 8 to 64 letters, digits, `-` or `_`; a text or an image
/// (PNG, JPEG, GIF, WebP, HEIC or BMP, base64, at most `MAX_IMAGE_BYTES`).
pub fn parse(body: &[u8]) -> Result<DevText, DevTextError> {
    let malformed = |m: &str| DevTextError::Malformed(m.to_owned());
    let request: Request = serde_json::from_slice(body)
        .map_err(|e| DevTextError::Malformed(format!("Invalid request body: {e}")))?;
    let id_ok = (8..=64).contains(&request.id.len())
        && request
            .id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !id_ok {
        return Err(malformed(
            "id must be 8 to 64 letters, digits, '-' or '_', new for each message",
        ));
    }
    if request.text.chars().count() > MAX_TEXT_CHARS {
        return Err(DevTextError::Malformed(format!(
            "The text is longer than {MAX_TEXT_CHARS} characters"
        )));
    }
    let image = request.image.map(decode_image).transpose()?;
    if request.text.trim().is_empty() && image.is_none() {
        return Err(malformed("Type a text or attach an image"));
    }
    Ok(DevText {
        id: request.id,
        from: request.from,
        text: request.text,
        image,
    })
}

fn decode_image(image: ImageRequest) -> Result<Image, DevTextError> {
    let content_type = image.content_type.trim().to_ascii_lowercase();
    if MediaKind::of(&content_type) != MediaKind::Image
        || !crate::domain::media_type::keeps_type(&content_type)
    {
        return Err(DevTextError::Malformed(format!(
            "'{content_type}' is not an image type a Moment can carry (PNG, JPEG, GIF, WebP)"
        )));
    }
    // Checked before decoding, so an oversized upload costs no decoding.
    if image.data.len() > MAX_IMAGE_BYTES.div_ceil(3) * 4 {
        return Err(DevTextError::ImageTooLarge);
    }
    let bytes = BASE64
        .decode(image.data.trim())
        .map_err(|e| DevTextError::Malformed(format!("The image is not valid base64: {e}")))?;
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(DevTextError::ImageTooLarge);
    }
    if bytes.is_empty() {
        return Err(DevTextError::Malformed("The image is empty".into()));
    }
    Ok(Image {
        content_type,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_json(value: serde_json::Value) -> Result<DevText, DevTextError> {
        parse(value.to_string().as_bytes())
    }

    #[test]
    fn a_text_with_an_image_is_read() {
        let text = parse_json(json!({
            "id": "abcdef0123456789",
            "from": "+14155552671",
            "text": "Sunset",
            "image": { "content_type": "image/PNG", "data": BASE64.encode(b"\x89PNG") },
        }))
        .expect("valid");
        assert_eq!(text.text, "Sunset");
        let image = text.image.expect("image");
        assert_eq!(image.content_type, "image/png");
        assert_eq!(image.bytes, b"\x89PNG");
    }

    #[test]
    fn bad_ids_empty_messages_and_non_images_are_refused() {
        let refused = |value: serde_json::Value| {
            assert!(
                matches!(parse_json(value.clone()), Err(DevTextError::Malformed(_))),
                "{value}"
            );
        };
        refused(json!({ "id": "short", "from": "+14155552671", "text": "hi" }));
        refused(json!({ "id": "has spaces in it", "from": "+14155552671", "text": "hi" }));
        refused(json!({ "id": "abcdef0123456789", "from": "+14155552671", "text": "  " }));
        refused(json!({ "id": "abcdef0123456789", "from": "+14155552671",
            "image": { "content_type": "video/mp4", "data": "AAAA" } }));
        refused(json!({ "id": "abcdef0123456789", "from": "+14155552671",
            "image": { "content_type": "image/svg+xml", "data": "AAAA" } }));
        refused(json!({ "id": "abcdef0123456789", "from": "+14155552671",
            "image": { "content_type": "image/png", "data": "not base64!" } }));
        refused(json!({ "from": "+14155552671", "text": "hi" }));
    }

    #[test]
    fn an_image_over_the_limit_is_too_large() {
        let data = BASE64.encode(vec![0u8; MAX_IMAGE_BYTES + 1]);
        let too_large = parse_json(json!({ "id": "abcdef0123456789", "from": "+14155552671",
            "image": { "content_type": "image/png", "data": data } }));
        assert_eq!(too_large, Err(DevTextError::ImageTooLarge));
        let data = BASE64.encode(vec![0u8; MAX_IMAGE_BYTES]);
        let at_limit = parse_json(json!({ "id": "abcdef0123456789", "from": "+14155552671",
            "image": { "content_type": "image/png", "data": data } }));
        assert!(at_limit.is_ok());
    }
}
