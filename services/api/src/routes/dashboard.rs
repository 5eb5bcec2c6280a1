//! The built-in dashboard: `GET /` serves the single-page app's `index.html` and
//! `GET /ui/assets/{file}` its scripts, styles and icons, all embedded in the binary at build
//! time (`build.rs`, from `services/dashboard/dist`). Every answer carries a strict
//! `Content-Security-Policy` (nothing from another origin, no inline script or style); a
//! client that accepts gzip gets the copy compressed at build time.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::{ApiError, ErrorBody};
use crate::startup::resource;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/dashboard_assets.rs"));
}

/// The policy of every dashboard response.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// Mounts the page and its assets.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/").route(web::get().to(get_index)))
        .service(resource("/ui/assets/{file}").route(web::get().to(get_asset)));
}

fn find(path: &str) -> Option<&'static (&'static str, &'static str, &'static [u8], &'static [u8])> {
    embedded::ASSETS.iter().find(|(name, ..)| *name == path)
}

fn accepts_gzip(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|e| e.split(';').next().is_some_and(|e| e.trim() == "gzip"))
        })
}

fn serve(
    req: &HttpRequest,
    asset: &(&str, &str, &'static [u8], &'static [u8]),
    cache: &str,
) -> HttpResponse {
    let (_, content_type, bytes, gzip) = *asset;
    let mut response = HttpResponse::Ok();
    response
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, cache.to_owned()))
        .insert_header((header::VARY, "Accept-Encoding"));
    if accepts_gzip(req) {
        response
            .insert_header((header::CONTENT_ENCODING, "gzip"))
            .body(gzip)
    } else {
        response.body(bytes)
    }
}

/// The dashboard page.
#[utoipa::path(
    get,
    path = "/",
    tag = "dashboard",
    responses(
        (status = 200, description = "The dashboard (HTML; no key needed to load it, it asks for one).", content_type = "text/html"),
        (status = 503, description = "This binary was built without the dashboard (`scripts/build-dashboard`, then rebuild).", content_type = "text/html"),
    )
)]
pub async fn get_index(req: HttpRequest) -> HttpResponse {
    match find("index.html") {
        Some(asset) => serve(&req, asset, "no-cache"),
        None => HttpResponse::ServiceUnavailable()
            .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
            .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
            .body(
                "<!doctype html><title>Flowmeter</title><h1>The dashboard is not built into this binary</h1>\
                 <p>Run <code>scripts/build-dashboard</code> (make run and make test do it), then build flowmeter-api again. \
                 The API itself works: see <a href=\"/v1/openapi.json\">/v1/openapi.json</a>.</p>",
            ),
    }
}

/// One asset of the dashboard (names carry a content hash, so they are cached for good).
#[utoipa::path(
    get,
    path = "/ui/assets/{file}",
    tag = "dashboard",
    params(("file" = String, Path, description = "A file of the dashboard's build.")),
    responses(
        (status = 200, description = "The file (JavaScript, CSS or an icon)."),
        (status = 404, description = "`not_found`: no such file.", body = ErrorBody),
    )
)]
pub async fn get_asset(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let file = req.match_info().get("file").unwrap_or_default();
    find(&format!("assets/{file}"))
        .map(|asset| serve(&req, asset, "public, max-age=31536000, immutable"))
        .ok_or_else(|| ApiError::NotFound(format!("no dashboard file {file}")))
}
