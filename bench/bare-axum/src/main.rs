//! The baseline Ward's HTTP get is measured against (bench/http-ratio.sh): axum on tokio's
//! default runtime answering every GET, whatever its path, with the bytes of one record as
//! Ward returned it, as `application/json`. No authentication, no storage, no audit: what
//! the same stack costs when the handler does nothing.
//!
//! Usage: `bare-axum ADDRESS RESPONSE.json`

use axum::Router;
use axum::http::header;
use axum::routing::get;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(address), Some(body_file)) = (args.next(), args.next()) else {
        eprintln!("usage: bare-axum ADDRESS RESPONSE.json");
        std::process::exit(2);
    };
    let body: &'static [u8] = std::fs::read(body_file)?.leak();
    let answer = move || async move { ([(header::CONTENT_TYPE, "application/json")], body) };
    let app = Router::new()
        .route("/", get(answer))
        .route("/{*path}", get(answer));
    let listener = tokio::net::TcpListener::bind(address).await?;
    axum::serve(listener, app).await
}
