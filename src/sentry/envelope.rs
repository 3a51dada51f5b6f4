//! One Sentry envelope carrying one event, as POSTed to a tracker: a header
//! line (`event_id`, `dsn`, `sent_at`), an item header (`type: event`,
//! `length`) and the event's JSON, gzip-compressed, with the request
//! headers that go with it.
//!
//! `sent_at` is the time of sending, not of the failure, so an envelope is
//! made when it is sent; a kept event is stored as its JSON payload and
//! wrapped again by [`request_for_payload`]. Pure.

use std::io::Write;
use std::time::SystemTime;

use serde::Serialize;

use super::dsn::Dsn;
use super::event::{Event, EventId};

pub const CONTENT_TYPE: &str = "application/x-sentry-envelope";

/// A request ready to send: POST `body` to `url` with `headers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

#[derive(Serialize)]
struct EnvelopeHeader<'a> {
    event_id: EventId,
    dsn: &'a str,
    sent_at: String,
}

#[derive(Serialize)]
struct ItemHeader {
    #[serde(rename = "type")]
    ty: &'static str,
    length: usize,
}

/// The envelope, uncompressed: what is gzipped and sent. Its header holds
/// the whole DSN, key included: show [`shown`] instead.
pub fn envelope(dsn: &Dsn, event_id: EventId, payload: &[u8], sent_at: SystemTime) -> Vec<u8> {
    with_dsn(&dsn.expose(), event_id, payload, sent_at)
}

/// The envelope as `--dry-run` shows it: the DSN's key masked.
pub fn shown(dsn: &Dsn, event_id: EventId, payload: &[u8], sent_at: SystemTime) -> String {
    String::from_utf8_lossy(&with_dsn(&dsn.to_string(), event_id, payload, sent_at)).into_owned()
}

fn with_dsn(dsn: &str, event_id: EventId, payload: &[u8], sent_at: SystemTime) -> Vec<u8> {
    let header = EnvelopeHeader {
        event_id,
        dsn,
        sent_at: humantime::format_rfc3339_micros(sent_at).to_string(),
    };
    let item = ItemHeader {
        ty: "event",
        length: payload.len(),
    };
    let mut out = Vec::with_capacity(payload.len() + 256);
    // Serializing these plain structs cannot fail.
    out.extend(serde_json::to_vec(&header).unwrap_or_default());
    out.push(b'\n');
    out.extend(serde_json::to_vec(&item).unwrap_or_default());
    out.push(b'\n');
    out.extend_from_slice(payload);
    out.push(b'\n');
    out
}

/// The request for an event.
pub fn request(dsn: &Dsn, event: &Event, sent_at: SystemTime) -> Request {
    request_for_payload(dsn, event.event_id, &event.to_json(), sent_at)
}

/// The request for an event's JSON payload (a kept one, say).
pub fn request_for_payload(
    dsn: &Dsn,
    event_id: EventId,
    payload: &[u8],
    sent_at: SystemTime,
) -> Request {
    let version = env!("CARGO_PKG_VERSION");
    let plain = envelope(dsn, event_id, payload, sent_at);
    let mut headers = vec![
        ("Content-Type", CONTENT_TYPE.to_string()),
        ("X-Sentry-Auth", dsn.auth_header(version)),
        ("User-Agent", format!("ect-run/{version}")),
    ];
    let body = match gzip(&plain) {
        Some(z) => {
            headers.push(("Content-Encoding", "gzip".to_string()));
            z
        }
        // Compressing into memory does not fail; were it to, plain is
        // as good to the tracker.
        None => plain,
    };
    Request {
        url: dsn.envelope_url(),
        headers,
        body,
    }
}

fn gzip(data: &[u8]) -> Option<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4 + 64),
        flate2::Compression::default(),
    );
    enc.write_all(data).ok()?;
    enc.finish().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::time::Duration;

    #[test]
    fn envelope_lines_and_headers() {
        let dsn =
            Dsn::parse("https://0123456789abcdef0123456789abcdef@tracker.example/sub/9").unwrap();
        let id = EventId::parse("b1f0c1a4a2e94c3f8f9a0d4c2b1e3f5a").unwrap();
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000);
        let payload = br#"{"event_id":"b1f0c1a4a2e94c3f8f9a0d4c2b1e3f5a","message":"\u00e9"}"#;
        let req = request_for_payload(&dsn, id, payload, at);
        assert_eq!(req.url, "https://tracker.example/sub/api/9/envelope/");
        let header = |name: &str| {
            req.headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            header("Content-Type"),
            Some("application/x-sentry-envelope")
        );
        assert_eq!(header("Content-Encoding"), Some("gzip"));
        assert_eq!(
            header("X-Sentry-Auth"),
            Some(concat!(
                "Sentry sentry_version=7, sentry_key=0123456789abcdef0123456789abcdef, sentry_client=ect-run/",
                env!("CARGO_PKG_VERSION")
            ))
        );
        assert_eq!(
            header("User-Agent"),
            Some(concat!("ect-run/", env!("CARGO_PKG_VERSION")))
        );

        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&req.body[..])
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, envelope(&dsn, id, payload, at));
        let text = String::from_utf8(plain).unwrap();
        let lines: Vec<&str> = text.split('\n').collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert_eq!(
            lines[0],
            r#"{"event_id":"b1f0c1a4a2e94c3f8f9a0d4c2b1e3f5a","dsn":"https://0123456789abcdef0123456789abcdef@tracker.example/sub/9","sent_at":"2025-11-24T16:00:00.000000Z"}"#
        );
        assert_eq!(
            lines[1],
            format!(r#"{{"type":"event","length":{}}}"#, payload.len())
        );
        assert_eq!(lines[2].as_bytes(), payload);
        assert_eq!(lines[3], "");

        let shown = shown(&dsn, id, payload, at);
        assert!(
            !shown.contains("0123456789abcdef0123456789abcdef"),
            "{shown}"
        );
        assert!(
            shown.contains(r#""dsn":"https://0123***@tracker.example/sub/9""#),
            "{shown}"
        );
        assert_eq!(shown.lines().nth(2).unwrap().as_bytes(), payload);
    }
}
