//! The baseline for `scripts/webhook_load.sh`: an axum server, on the same runtime as
//! `sparky serve`, whose webhook handler only parses the JSON body and answers 202. The load
//! script compares the CPU each costs per webhook.
//!
//! `cargo run --release --example parse_only_server -- 127.0.0.1:18081`

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;

async fn parse_only(body: Bytes) -> StatusCode {
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(v) => {
            std::hint::black_box(v);
            StatusCode::ACCEPTED
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18081".into());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    runtime.block_on(async {
        let app = Router::new().route("/webhooks/{source}", post(parse_only));
        let listener = tokio::net::TcpListener::bind(&addr).await.expect("the address is free");
        eprintln!("parse-only server listening on {addr}");
        axum::serve(listener, app).await.expect("the server runs");
    });
}
