//! Files attached to messages: what an organization accepts (size and types), the checks an
//! upload passes (declared type allowed, content not disguised), and which files a browser may
//! show inline.

use chrono::{DateTime, Utc};

use super::{AuthorKind, ValidationError};

/// The largest file an organization accepts unless its admins say otherwise: 10 MB.
pub const DEFAULT_MAX_FILE_BYTES: i64 = 10 * 1024 * 1024;

/// The most an organization may set: larger files belong in a file-sharing service.
pub const MAX_FILE_BYTES_CEILING: i64 = 100 * 1024 * 1024;

/// Most files one message may carry.
pub const MAX_FILES_PER_MESSAGE: usize = 10;

/// Most files one person may have uploaded into a chat without sending them: uploads are
/// for sending, not storage.
pub const MAX_UNSENT_FILES: i64 = 20;

/// How long an uploaded file waits to be sent before it is deleted.
pub const UNSENT_FILE_LIFETIME_HOURS: i64 = 24;

/// Longest file name kept, in characters.
pub const MAX_FILE_NAME_CHARS: usize = 200;

/// The types an organization accepts unless its admins say otherwise: images, PDF, plain text
/// and CSV, and office documents.
pub const DEFAULT_ALLOWED_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
    "text/csv",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
];

/// Types a browser runs as a document or script: never accepted, whatever an admin allows,
/// since a download link to one on our origin could act as our origin.
const ACTIVE_TYPES: &[&str] = &[
    "text/html",
    "application/xhtml+xml",
    "image/svg+xml",
    "text/javascript",
    "application/javascript",
    "application/ecmascript",
    "text/xml",
    "application/xml",
];

/// The image types shown inline: raster formats whose magic bytes are checked on upload.
const INLINE_IMAGES: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp"];

/// A file uploaded into a chat.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFile {
    pub id: String,
    pub organization_id: String,
    pub chat_id: String,
    pub uploader_kind: AuthorKind,
    pub uploader_id: String,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub storage_key: String,
    /// The message it was sent with, once sent.
    pub event_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl StoredFile {
    /// Whether browsers show it inline (a raster image) rather than download it.
    pub fn is_image(&self) -> bool {
        is_inline_image(&self.content_type)
    }
}

/// What an organization accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSettings {
    pub max_file_bytes: i64,
    /// Lower case, without parameters, in the order the admin gave them.
    pub allowed_types: Vec<String>,
}

impl Default for FileSettings {
    fn default() -> Self {
        FileSettings {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            allowed_types: DEFAULT_ALLOWED_TYPES
                .iter()
                .map(|t| (*t).to_owned())
                .collect(),
        }
    }
}

impl FileSettings {
    /// Checks and normalizes settings an admin wrote.
    pub fn new(max_file_bytes: i64, allowed_types: &[String]) -> Result<Self, ValidationError> {
        if !(1..=MAX_FILE_BYTES_CEILING).contains(&max_file_bytes) {
            return Err(ValidationError(format!(
                "maxFileBytes must be 1 to {MAX_FILE_BYTES_CEILING}"
            )));
        }
        let mut types: Vec<String> = Vec::new();
        for raw in allowed_types {
            let t = normalize_content_type(raw).ok_or_else(|| {
                ValidationError(format!("\"{raw}\" is not a content type such as image/png"))
            })?;
            if ACTIVE_TYPES.contains(&t.as_str()) {
                return Err(ValidationError(format!(
                    "{t} cannot be allowed: browsers run it as a page or script"
                )));
            }
            if !types.contains(&t) {
                types.push(t);
            }
        }
        if types.len() > 100 {
            return Err(ValidationError("at most 100 allowed types".into()));
        }
        Ok(FileSettings {
            max_file_bytes,
            allowed_types: types,
        })
    }

    /// The declared type, normalized, when the organization accepts it.
    pub fn accept_type(&self, declared: &str) -> Result<String, ValidationError> {
        let t = normalize_content_type(declared).ok_or_else(|| {
            ValidationError("send the file's type as Content-Type, such as image/png".into())
        })?;
        if ACTIVE_TYPES.contains(&t.as_str()) || !self.allowed_types.contains(&t) {
            return Err(ValidationError(format!(
                "files of type {t} are not accepted here; allowed: {}",
                self.allowed_types.join(", ")
            )));
        }
        Ok(t)
    }

    /// The refusal of a file larger than the limit.
    pub fn too_large(&self) -> ValidationError {
        ValidationError(format!(
            "the file is larger than {} allowed here",
            human_size(self.max_file_bytes)
        ))
    }
}

/// `image/PNG; charset=x` → `image/png`; `None` when it is not `type/subtype`.
pub fn normalize_content_type(raw: &str) -> Option<String> {
    let essence = raw.split(';').next()?.trim().to_ascii_lowercase();
    let (kind, sub) = essence.split_once('/')?;
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 100
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    (token(kind) && token(sub)).then_some(essence)
}

/// Whether browsers may show a file of this type inline.
pub fn is_inline_image(content_type: &str) -> bool {
    INLINE_IMAGES.contains(&content_type)
}

/// Checks the first bytes of a file against its declared type: an image must be the image
/// it claims, a PDF a PDF, and nothing but text may be markup a browser would run (a page or
/// an SVG with script renamed to .png or .pdf).
pub fn check_content(content_type: &str, head: &[u8]) -> Result<(), ValidationError> {
    let claims = |ok: bool, what: &str| {
        if ok {
            Ok(())
        } else {
            Err(ValidationError(format!(
                "the file's content is not {what}, as its type {content_type} says"
            )))
        }
    };
    match content_type {
        "image/png" => claims(head.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG image"),
        "image/jpeg" => claims(head.starts_with(b"\xff\xd8\xff"), "a JPEG image"),
        "image/gif" => claims(
            head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a"),
            "a GIF image",
        ),
        "image/webp" => claims(
            head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP",
            "a WebP image",
        ),
        "application/pdf" => claims(head.starts_with(b"%PDF-"), "a PDF document"),
        t if t.starts_with("text/") => Ok(()),
        _ if looks_like_markup(head) => Err(ValidationError(format!(
            "the file's content is a web page or SVG, not {content_type}"
        ))),
        _ => Ok(()),
    }
}

/// Whether a file starts like HTML, XML or SVG (after a byte-order mark and blanks).
fn looks_like_markup(head: &[u8]) -> bool {
    let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let start = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(head.len());
    let rest: Vec<u8> = head[start..]
        .iter()
        .take(16)
        .map(u8::to_ascii_lowercase)
        .collect();
    [
        &b"<!doctype"[..],
        b"<html",
        b"<head",
        b"<body",
        b"<script",
        b"<svg",
        b"<?xml",
        b"<iframe",
        b"<!--",
    ]
    .iter()
    .any(|tag| rest.starts_with(tag))
}

/// A file name fit to store and show: the last path segment, without control characters or
/// quotes, at most [`MAX_FILE_NAME_CHARS`]; `file` when nothing is left.
pub fn clean_file_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | '\u{202e}' | '\u{202d}'))
        .take(MAX_FILE_NAME_CHARS)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    if cleaned.is_empty() {
        "file".into()
    } else {
        cleaned.to_owned()
    }
}

/// 10485760 → `10 MB`; 1536 → `1.5 KB`.
pub fn human_size(bytes: i64) -> String {
    const KB: f64 = 1024.0;
    let b = bytes as f64;
    let (value, unit) = if b >= KB * KB {
        (b / (KB * KB), "MB")
    } else if b >= KB {
        (b / KB, "KB")
    } else {
        return format!("{bytes} bytes");
    };
    let text = format!("{value:.1}");
    format!("{} {unit}", text.trim_end_matches(".0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_normalized_and_active_ones_refused() {
        assert_eq!(
            normalize_content_type(" Image/PNG; x=1").as_deref(),
            Some("image/png")
        );
        assert_eq!(normalize_content_type("png"), None);
        assert_eq!(normalize_content_type("a/b c"), None);
        let settings = FileSettings::default();
        assert_eq!(settings.accept_type("image/png").unwrap(), "image/png");
        assert!(settings.accept_type("text/html").is_err());
        assert!(settings.accept_type("application/x-msdownload").is_err());
        assert!(FileSettings::new(1024, &["image/svg+xml".into()]).is_err());
        assert!(FileSettings::new(0, &[]).is_err());
        let custom = FileSettings::new(1024, &["Image/PNG".into(), "image/png".into()]).unwrap();
        assert_eq!(custom.allowed_types, vec!["image/png".to_owned()]);
    }

    #[test]
    fn disguised_content_is_refused() {
        assert!(check_content("image/png", b"\x89PNG\r\n\x1a\n....").is_ok());
        assert!(check_content("image/png", b"<svg onload=alert(1)>").is_err());
        assert!(check_content("image/jpeg", b"GIF89a").is_err());
        assert!(check_content("application/pdf", b"<html><script>").is_err());
        assert!(check_content("application/msword", b"\xef\xbb\xbf  <!DOCTYPE html>").is_err());
        assert!(check_content("application/msword", b"\xd0\xcf\x11\xe0").is_ok());
        // Text is served as an attachment with nosniff: markup in it is only text.
        assert!(check_content("text/plain", b"<html>").is_ok());
    }

    #[test]
    fn names_lose_paths_and_controls() {
        assert_eq!(clean_file_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_file_name("C:\\x\\report.pdf"), "report.pdf");
        assert_eq!(clean_file_name("a\"b\r\n.png"), "ab.png");
        assert_eq!(clean_file_name(""), "file");
        assert_eq!(clean_file_name(".."), "file");
        assert_eq!(human_size(10 * 1024 * 1024), "10 MB");
        assert_eq!(human_size(1536), "1.5 KB");
    }
}
