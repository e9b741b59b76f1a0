//! The stylesheet and script, compiled into the binary so the pages work
//! without a network connection or a separate front-end server.
//!
//! Each URL carries a hash of the file's content, so browsers may cache it
//! for good and still see a new version at once.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const FILES: [(&str, &str, &str); 2] = [
    ("app.css", "text/css; charset=utf-8", include_str!("assets/app.css")),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    ),
];

static VERSIONS: LazyLock<Vec<String>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|(_, _, body)| {
            let mut h = DefaultHasher::new();
            body.hash(&mut h);
            format!("{:012x}", h.finish() & 0xffff_ffff_ffff)
        })
        .collect()
});

/// The URL of an embedded file, with its version.
pub fn href(name: &str) -> String {
    let v = FILES
        .iter()
        .position(|(n, _, _)| *n == name)
        .map(|i| VERSIONS[i].as_str())
        .unwrap_or("0");
    format!("/assets/{name}?v={v}")
}

pub async fn serve(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=31536000, immutable"),
                ),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
