//! # barrage-exposition — the `/metrics` and `/healthz` server both binaries run
//!
//! HTTP/1.1 `GET`s answered on a tokio `TcpListener`, one short response per connection: two
//! endpoints do not justify an HTTP stack. What is served is any [`Exposition`] (the agent's
//! metrics, the controller's); rendering must not block the runtime or hold a lock across an
//! await.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// Escapes a Prometheus label value.
pub fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Longest request head read.
const MAX_HEAD: usize = 8 * 1024;
/// A client gets this long to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// What a metrics endpoint serves: the Prometheus text exposition of some metrics (the
/// agent's, the controller's; both use this one small server).
pub trait Exposition: Send + Sync + 'static {
    /// The whole exposition, in the Prometheus text format.
    fn render(&self) -> String;
}

/// Serves `/metrics` and `/healthz` on `listener` until `shutdown` completes.
pub async fn serve<M: Exposition>(
    listener: TcpListener,
    metrics: Arc<M>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let metrics = metrics.clone();
                    tokio::spawn(async move {
                        if let Err(e) = answer(stream, metrics.as_ref()).await {
                            tracing::debug!("A metrics request failed: {e}");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!("Accepting a metrics connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

/// The status line, content type and body for a request line.
pub fn respond<M: Exposition + ?Sized>(
    request_line: &str,
    metrics: &M,
) -> (&'static str, &'static str, String) {
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("");
    let path = target.split('?').next().unwrap_or("");
    if method != "GET" && method != "HEAD" {
        return (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET\n".into(),
        );
    }
    match path {
        "/metrics" => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(),
        ),
        "/healthz" => ("200 OK", "text/plain; charset=utf-8", "ok\n".into()),
        _ => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "try /metrics or /healthz\n".into(),
        ),
    }
}

async fn answer<M: Exposition + ?Sized>(
    mut stream: tokio::net::TcpStream,
    metrics: &M,
) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let read = async {
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
            if head.windows(4).any(|w| w == b"\r\n\r\n") || head.len() > MAX_HEAD {
                break;
            }
        }
        Ok::<_, std::io::Error>(())
    };
    match tokio::time::timeout(READ_TIMEOUT, read).await {
        Ok(r) => r?,
        Err(_) => return Ok(()),
    }
    let text = String::from_utf8_lossy(&head);
    let line = text.lines().next().unwrap_or("");
    let (status, content_type, body) = respond(line, metrics);
    let body = if line.starts_with("HEAD ") {
        String::new()
    } else {
        body
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;

    impl Exposition for Fixed {
        fn render(&self) -> String {
            "# TYPE up gauge\nup 1\n".into()
        }
    }

    #[test]
    fn metrics_and_healthz_are_served_and_everything_else_is_refused() {
        assert_eq!(
            respond("GET /metrics HTTP/1.1", &Fixed).2,
            "# TYPE up gauge\nup 1\n"
        );
        assert_eq!(respond("GET /metrics?x=1 HTTP/1.1", &Fixed).0, "200 OK");
        assert_eq!(respond("HEAD /healthz HTTP/1.1", &Fixed).2, "ok\n");
        assert_eq!(respond("GET /other HTTP/1.1", &Fixed).0, "404 Not Found");
        assert_eq!(
            respond("POST /metrics HTTP/1.1", &Fixed).0,
            "405 Method Not Allowed"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
