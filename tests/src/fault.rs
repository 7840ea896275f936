//! A small HTTP proxy in front of the AWS emulator that can be switched to refuse S3 writes
//! of interval blobs (`PUT …/agents/…`) with `503 SlowDown`, as S3 does when it throttles.
//!
//! One request per connection: the proxy reads the request, answers the refusal itself or
//! forwards it with `Connection: close` and relays the answer until the emulator closes.
//! Everything else passes untouched. Stops listening when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The proxy; [`FaultProxy::url`] is its endpoint.
pub struct FaultProxy {
    port: u16,
    refusing: Arc<AtomicBool>,
    refused: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    /// Listens on `127.0.0.1:0`, forwarding to `upstream` (`http://127.0.0.1:5000`).
    pub fn start(upstream: &str) -> FaultProxy {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fault proxy");
        let port = listener.local_addr().expect("its address").port();
        let proxy = FaultProxy {
            port,
            refusing: Arc::new(AtomicBool::new(false)),
            refused: Arc::new(AtomicU64::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (refusing, refused, stop) = (
            proxy.refusing.clone(),
            proxy.refused.clone(),
            proxy.stop.clone(),
        );
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let (upstream, refusing, refused) =
                    (upstream.clone(), refusing.clone(), refused.clone());
                std::thread::spawn(move || {
                    let _ = serve(client, &upstream, &refusing, &refused);
                });
            }
        });
        proxy
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts or stops refusing interval writes.
    pub fn refuse(&self, on: bool) {
        self.refusing.store(on, Ordering::SeqCst);
    }

    /// Interval writes refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(
    client: TcpStream,
    upstream: &str,
    refusing: &AtomicBool,
    refused: &AtomicU64,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    let mut head = Vec::new();
    let mut request_line = String::new();
    let mut content_length = 0usize;
    let mut chunked = false;
    let mut expect_continue = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if request_line.is_empty() {
            request_line = line.clone();
            head.extend_from_slice(line.as_bytes());
            continue;
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            content_length = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
        if lower.starts_with("expect:") && lower.contains("100-continue") {
            expect_continue = true;
            continue;
        }
        if lower.starts_with("connection:") {
            continue;
        }
        head.extend_from_slice(line.as_bytes());
    }
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    if expect_continue {
        client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let body = if chunked {
        read_chunked(&mut reader)?
    } else {
        let mut b = vec![0; content_length];
        reader.read_exact(&mut b)?;
        b
    };
    let mut words = request_line.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    if refusing.load(Ordering::SeqCst) && method == "PUT" && path.contains("/agents/") {
        refused.fetch_add(1, Ordering::SeqCst);
        let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
        let answer = format!(
            "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
            xml.len()
        );
        client.write_all(answer.as_bytes())?;
        return client.shutdown(Shutdown::Both);
    }
    let mut up = TcpStream::connect(upstream)?;
    up.write_all(&head)?;
    up.write_all(&body)?;
    std::io::copy(&mut up, &mut client)?;
    client.shutdown(Shutdown::Both)
}

/// A chunked body, as sent (sizes, chunks and trailers).
fn read_chunked(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let mut size_line = String::new();
        reader.read_line(&mut size_line)?;
        out.extend_from_slice(size_line.as_bytes());
        let hex = size_line.trim().split(';').next().unwrap_or("0");
        let size = usize::from_str_radix(hex, 16).unwrap_or(0);
        if size == 0 {
            // Trailers up to the empty line.
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line)? == 0 || line == "\r\n" {
                    out.extend_from_slice(b"\r\n");
                    return Ok(out);
                }
                out.extend_from_slice(line.as_bytes());
            }
        }
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk)?;
        out.extend_from_slice(&chunk);
    }
}

/// A TCP relay in front of a Kafka bootstrap address that can be closed: while closed, every new
/// connection is dropped as soon as it is accepted (and counted). A Kafka client learns the
/// broker's own address from the metadata, so only bootstrap connections go through the gate:
/// clients already connected keep working, and a client created while it is closed cannot reach
/// the cluster at all. Stops listening when dropped.
pub struct TcpGate {
    port: u16,
    closed: Arc<AtomicBool>,
    dropped: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl TcpGate {
    /// Listens on `127.0.0.1:0`, relaying to `upstream` (`127.0.0.1:9092`).
    pub fn start(upstream: &str) -> TcpGate {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the gate");
        let port = listener.local_addr().expect("its address").port();
        let gate = TcpGate {
            port,
            closed: Arc::new(AtomicBool::new(false)),
            dropped: Arc::new(AtomicU64::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (closed, dropped, stop) =
            (gate.closed.clone(), gate.dropped.clone(), gate.stop.clone());
        let upstream = upstream.to_string();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                if closed.load(Ordering::SeqCst) {
                    dropped.fetch_add(1, Ordering::SeqCst);
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                relay(client, server);
            }
        });
        gate
    }

    /// `127.0.0.1:PORT`, for `bootstrapServers`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Closes (drops new connections) or opens the gate.
    pub fn close(&self, closed: bool) {
        self.closed.store(closed, Ordering::SeqCst);
    }

    /// Connections dropped while closed.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::SeqCst)
    }
}

/// Copies bytes both ways until either side closes.
fn relay(client: TcpStream, server: TcpStream) {
    let pairs = [
        (client.try_clone(), server.try_clone()),
        (server.try_clone(), client.try_clone()),
    ];
    for pair in pairs {
        if let (Ok(mut from), Ok(mut to)) = pair {
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut from, &mut to);
                let _ = to.shutdown(Shutdown::Write);
            });
        }
    }
}

impl Drop for TcpGate {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}
