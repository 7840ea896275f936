//! Finding the AWS emulator (moto server) for the adapter tests.
//!
//! The endpoint is `AWS_ENDPOINT_URL` or `http://127.0.0.1:5000` (what `scripts/services.sh up`
//! starts). Without an emulator a test prints "skipped: …" and passes, unless
//! `BARRAGE_REQUIRE_SERVICES=1`, where it fails loudly (CI sets it).

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:5000";

fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| DEFAULT_ENDPOINT.to_string())
}

fn reachable(endpoint: &str) -> bool {
    let host_port = endpoint
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let Ok(mut addrs) = host_port.to_socket_addrs() else {
        return false;
    };
    addrs.any(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok())
}

/// The SDK configuration for the emulator, or `None` (after saying so) when there is none.
pub async fn moto_config() -> Option<SdkConfig> {
    let endpoint = endpoint();
    if !reachable(&endpoint) {
        if std::env::var("BARRAGE_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!(
                "BARRAGE_REQUIRE_SERVICES=1 but no AWS emulator answers at {endpoint}: \
                 start it with scripts/services.sh up"
            );
        }
        eprintln!("skipped: no AWS emulator at {endpoint} (start it with scripts/services.sh up)");
        return None;
    }
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_string());
    let key = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "testing".to_string());
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| "testing".to_string());
    Some(
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(Region::new(region))
            .credentials_provider(Credentials::new(key, secret, None, None, "barrage-tests"))
            .load()
            .await,
    )
}
