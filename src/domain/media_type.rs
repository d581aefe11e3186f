//! The media types a Moment may carry: which are kept, under which file extension, and
//! which type a kept file is served with.

/// Content types kept, and the file extension each is kept under.
const TYPES: &[(&str, &str)] = &[
    ("image/jpeg", "jpg"),
    ("image/png", "png"),
    ("image/gif", "gif"),
    ("image/webp", "webp"),
    ("image/heic", "heic"),
    ("image/heif", "heif"),
    ("image/bmp", "bmp"),
    ("audio/mpeg", "mp3"),
    ("audio/mp4", "m4a"),
    ("audio/aac", "aac"),
    ("audio/amr", "amr"),
    ("audio/ogg", "ogg"),
    ("audio/wav", "wav"),
    ("audio/x-wav", "wav"),
    ("application/pdf", "pdf"),
];

fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

pub fn extension_for(content_type: &str) -> &'static str {
    let essence = essence(content_type);
    TYPES
        .iter()
        .find(|(t, _)| *t == essence)
        .map_or("bin", |(_, ext)| ext)
}

/// Whether files of this type are kept (with an extension of their own).
pub fn keeps_type(content_type: &str) -> bool {
    extension_for(content_type) != "bin"
}

/// The content type a kept file is served with.
pub fn content_type_for(file: &str) -> &'static str {
    let ext = file.rsplit_once('.').map_or("", |(_, ext)| ext);
    TYPES
        .iter()
        .find(|(_, e)| *e == ext)
        .map_or("application/octet-stream", |(t, _)| t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_and_content_types_round_trip() {
        assert_eq!(extension_for("image/jpeg; charset=binary"), "jpg");
        assert_eq!(content_type_for("x.jpg"), "image/jpeg");
        assert_eq!(extension_for("image/x-unknown"), "bin");
        assert_eq!(content_type_for("x.bin"), "application/octet-stream");
    }
}
