//! The console's files (`actors/assets/console/`), compiled into the binary
//! so nothing is fetched at run time, and the bookmarkable page paths that
//! all answer `index.html` (the page routes itself from its location).
//! Every answer carries `Content-Security-Policy: default-src 'self'` and
//! `X-Content-Type-Options: nosniff`.

use actix_web::{web, HttpResponse};

const INDEX: &str = include_str!("../../assets/console/index.html");
const APP_JS: &str = include_str!("../../assets/console/app.js");
const STYLE: &str = include_str!("../../assets/console/style.css");
const FAVICON: &str = include_str!("../../assets/console/favicon.svg");

/// The content security policy: the console needs no inline script or
/// style, no other origin and no eval.
pub const CSP: &str = "default-src 'self'";

fn file(body: &'static str, content_type: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Content-Security-Policy", CSP))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Cache-Control", "no-cache"))
        .body(body)
}

async fn index() -> HttpResponse {
    file(INDEX, "text/html; charset=utf-8")
}

async fn asset(name: web::Path<String>) -> HttpResponse {
    match name.as_str() {
        "app.js" => file(APP_JS, "text/javascript; charset=utf-8"),
        "style.css" => file(STYLE, "text/css; charset=utf-8"),
        "favicon.svg" => file(FAVICON, "image/svg+xml"),
        _ => super::error(actix_web::http::StatusCode::NOT_FOUND, "no such asset"),
    }
}

/// Answers what no route matched: `{"error"}` 404 under `/api/`, and for
/// any other path too (only the page paths below serve the console).
pub async fn not_found() -> HttpResponse {
    super::error(actix_web::http::StatusCode::NOT_FOUND, "not found")
}

/// The console's routes: `/`, its page paths, `/assets/*`, and the 404
/// fallback (registered last).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(index))
        .route("/search", web::get().to(index))
        .route("/campaigns/{uuid}", web::get().to(index))
        .route("/identities/{uuid}", web::get().to(index))
        .route("/observations/{uuid}", web::get().to(index))
        .route(
            "/favicon.ico",
            web::get().to(|| async { file(FAVICON, "image/svg+xml") }),
        )
        .route("/assets/{name}", web::get().to(asset))
        .default_service(web::to(not_found));
}
