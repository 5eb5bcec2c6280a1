//! Reading request bodies (SPEC §14): the content type a route reads (else 415), the size
//! bound (else 413, before the whole body is read), the body timeout (else 408) and gzip
//! `Content-Encoding` where the route takes it (the decompressed size counts against the
//! same bound, so a bomb is a 413 too).

use std::io::Read;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use serde_json::json;

use crate::error::ApiError;

/// The body formats a route reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/json` (also assumed when no `Content-Type` is sent).
    Json,
    /// `application/x-ndjson` (or `application/ndjson`): one JSON value per line.
    Ndjson,
}

const JSON_TYPES: [&str; 1] = ["application/json"];
const JSON_AND_NDJSON: [&str; 2] = ["application/json", "application/x-ndjson"];

/// The format of the request's body from its `Content-Type`; 415 for any other type.
pub fn format(req: &HttpRequest, ndjson_allowed: bool) -> Result<BodyFormat, ApiError> {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return Ok(BodyFormat::Json);
    };
    let essence = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => Ok(BodyFormat::Json),
        "application/x-ndjson" | "application/ndjson" if ndjson_allowed => Ok(BodyFormat::Ndjson),
        _ => {
            let allowed: &[&str] = if ndjson_allowed {
                &JSON_AND_NDJSON
            } else {
                &JSON_TYPES
            };
            Err(ApiError::UnsupportedMediaType {
                message: format!(
                    "Content-Type {essence:?} is not accepted here; send {}",
                    allowed.join(" or ")
                ),
                details: json!({ "field": "content-type", "allowed_values": allowed }),
            })
        }
    }
}

/// Whether the body is gzip-compressed; 415 for any other `Content-Encoding` (or gzip where
/// the route does not take it).
fn is_gzip(req: &HttpRequest, gzip_allowed: bool) -> Result<bool, ApiError> {
    let Some(value) = req.headers().get(header::CONTENT_ENCODING) else {
        return Ok(false);
    };
    let encoding = value.to_str().unwrap_or("").trim().to_ascii_lowercase();
    match encoding.as_str() {
        "" | "identity" => Ok(false),
        "gzip" | "x-gzip" if gzip_allowed => Ok(true),
        _ => {
            let allowed: &[&str] = if gzip_allowed {
                &["gzip", "identity"]
            } else {
                &["identity"]
            };
            Err(ApiError::UnsupportedMediaType {
                message: format!(
                    "Content-Encoding {encoding:?} is not accepted here; send {}",
                    allowed.join(" or ")
                ),
                details: json!({ "field": "content-encoding", "allowed_values": allowed }),
            })
        }
    }
}

/// How a route reads its body.
#[derive(Debug, Clone, Copy)]
pub struct BodyRules {
    /// Largest body in bytes, after decompression.
    pub max_bytes: usize,
    /// The whole body must arrive within this (`FLOWMETER_HTTP_BODY_TIMEOUT_MS`).
    pub timeout: Duration,
    /// Whether `Content-Encoding: gzip` is taken.
    pub gzip: bool,
}

fn too_large(limit: usize) -> ApiError {
    ApiError::PayloadTooLarge {
        message: format!("the request body is larger than {limit} bytes"),
        details: json!({ "max_bytes": limit }),
    }
}

/// Reads the whole body under `rules`: 413 as soon as it passes the bound (a declared
/// `Content-Length` over it is refused before reading), 408 when it does not arrive in
/// time, 415 for an encoding the route does not take, 400 for a corrupt gzip stream.
pub async fn read(
    req: &HttpRequest,
    mut payload: web::Payload,
    rules: BodyRules,
) -> Result<web::Bytes, ApiError> {
    let gzip = is_gzip(req, rules.gzip)?;
    let limit = rules.max_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    // A body somewhat over the limit is read and discarded before the 413, so the client
    // (still sending) sees the answer rather than a reset connection; a larger one is
    // refused at once.
    let drain_cap = limit.saturating_mul(2);
    if declared.is_some_and(|n| n > drain_cap) {
        return Err(too_large(limit));
    }
    let receive = async {
        let mut body = web::BytesMut::with_capacity(declared.unwrap_or(8 * 1024).min(limit));
        let mut received = 0usize;
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::bad_field("body", format!("reading the body failed: {e}"))
            })?;
            received = received.saturating_add(chunk.len());
            if received > drain_cap {
                return Err(too_large(limit));
            }
            if received <= limit {
                body.extend_from_slice(&chunk);
            }
        }
        if received > limit {
            return Err(too_large(limit));
        }
        Ok(body.freeze())
    };
    let body = tokio::time::timeout(rules.timeout, receive)
        .await
        .map_err(|_| {
            ApiError::RequestTimeout(format!(
                "the request body did not arrive within {} ms",
                rules.timeout.as_millis()
            ))
        })??;
    if gzip {
        return gunzip(&body, limit);
    }
    Ok(body)
}

/// Decompresses a gzip body, refusing output past `limit` without producing it.
fn gunzip(compressed: &[u8], limit: usize) -> Result<web::Bytes, ApiError> {
    let mut decoder = flate2::read::MultiGzDecoder::new(compressed).take(limit as u64 + 1);
    let mut out = Vec::with_capacity((compressed.len() * 4).min(limit));
    decoder.read_to_end(&mut out).map_err(|e| {
        ApiError::bad_field("body", format!("the gzip body cannot be decompressed: {e}"))
    })?;
    if out.len() > limit {
        return Err(too_large(limit));
    }
    Ok(out.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn gunzip_returns_the_original_and_refuses_output_past_the_limit() {
        let data = b"[{\"a\": 1}]".repeat(100);
        assert_eq!(&gunzip(&gzip(&data), data.len()).unwrap()[..], &data[..]);
        let bomb = gzip(&vec![b' '; 10 * 1024 * 1024]);
        assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
        assert!(matches!(
            gunzip(&bomb, 1024 * 1024),
            Err(ApiError::PayloadTooLarge { .. })
        ));
        assert!(matches!(
            gunzip(b"not gzip", 1024),
            Err(ApiError::BadRequest { .. })
        ));
    }
}
