//! Fault injection in front of the real parts:
//! - [`FaultProxy`], a small HTTP proxy in front of the AWS emulator that can refuse S3 writes
//!   of interval blobs (`PUT …/agents/…`) with `503 SlowDown`, as S3 does when it throttles,
//!   and *hold* the requests a [`Hold`] matches (an endpoint that accepts and never answers)
//!   until [`FaultProxy::release`] forwards them late, as a paused or partitioned client's
//!   writes arrive;
//! - [`TcpGate`], a TCP relay in front of a Kafka bootstrap address that can be closed.
//!
//! The proxy serves one request per connection: it reads the request, answers the refusal
//! itself, holds it, or forwards it with `Connection: close` and relays the answer. Every
//! forwarded request is logged with the emulator's answer ([`FaultProxy::log`]), so a test
//! can count from the store's side what was accepted. Stops listening when dropped (held
//! requests are then released).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Which requests to hold: those whose `X-Amz-Target` header (DynamoDB, Streams, ECS…) or
/// request line (S3) contains `target`, and whose body contains `body` when set.
#[derive(Debug, Clone)]
pub struct Hold {
    target: String,
    body: Option<String>,
}

impl Hold {
    /// Requests naming `target`, e.g. `TransactWriteItems` or `DynamoDBStreams`.
    pub fn target(target: &str) -> Hold {
        Hold {
            target: target.to_string(),
            body: None,
        }
    }

    /// Every request: the endpoint accepts connections and never answers.
    pub fn everything() -> Hold {
        Hold::target("")
    }

    /// Only those whose body also contains `text` (e.g. a LoadTest's key `loadtest#NAME`).
    pub fn with_body(mut self, text: &str) -> Hold {
        self.body = Some(text.to_string());
        self
    }

    fn matches(&self, request: &Request) -> bool {
        request.target.contains(&self.target)
            && self
                .body
                .as_ref()
                .is_none_or(|t| String::from_utf8_lossy(&request.body).contains(t.as_str()))
    }
}

/// One forwarded request and the emulator's answer.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// `X-Amz-Target` (e.g. `DynamoDB_20120810.TransactWriteItems`), or `METHOD PATH`.
    pub target: String,
    /// The request body.
    pub request: String,
    /// Whether it was held and forwarded on a release.
    pub held: bool,
    /// The answer's status code (0: the emulator could not be reached).
    pub status: u16,
    /// The answer's body (its first 2 000 bytes).
    pub answer: String,
    /// When the answer came.
    pub at: Instant,
}

/// The proxy; [`FaultProxy::url`] is its endpoint.
pub struct FaultProxy {
    port: u16,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    refusing: AtomicBool,
    refused: AtomicU64,
    stop: AtomicBool,
    state: Mutex<HoldState>,
    changed: Condvar,
}

#[derive(Default)]
struct HoldState {
    rule: Option<Hold>,
    /// Bumped by every release; a held request waits for a newer one.
    release: u64,
    waiting: usize,
    held_total: u64,
    log: Vec<Exchange>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, HoldState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
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
            shared: Arc::new(Shared::default()),
        };
        let shared = proxy.shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let (upstream, shared) = (upstream.clone(), shared.clone());
                std::thread::spawn(move || {
                    let _ = serve(client, &upstream, &shared);
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
        self.shared.refusing.store(on, Ordering::SeqCst);
    }

    /// Interval writes refused so far.
    pub fn refused(&self) -> u64 {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// From now on, holds the requests `rule` matches (unanswered) until [`FaultProxy::release`].
    pub fn hold(&self, rule: Hold) {
        self.shared.state().rule = Some(rule);
    }

    /// Requests held since the proxy started (released or not).
    pub fn held(&self) -> u64 {
        self.shared.state().held_total
    }

    /// Stops holding, forwards every request still held (their clients may have given up by
    /// now: the write arrives late, as a paused client's would) and, once all are answered
    /// (bounded at 30 s), returns the exchanges of every request held so far.
    pub fn release(&self) -> Vec<Exchange> {
        {
            let mut state = self.shared.state();
            state.rule = None;
            state.release += 1;
        }
        self.shared.changed.notify_all();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut state = self.shared.state();
        while state.waiting > 0 && Instant::now() < deadline {
            state = self
                .shared
                .changed
                .wait_timeout(state, Duration::from_millis(100))
                .map(|(s, _)| s)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        state.log.iter().filter(|e| e.held).cloned().collect()
    }

    /// Every request forwarded so far, in the order answered.
    pub fn log(&self) -> Vec<Exchange> {
        self.shared.state().log.clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        {
            let mut state = self.shared.state();
            state.rule = None;
            state.release += 1;
        }
        self.shared.changed.notify_all();
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// A request as read from the client, rewritten to close the connection after the answer.
struct Request {
    method: String,
    path: String,
    /// `X-Amz-Target`, or `METHOD PATH` when there is none.
    target: String,
    head: Vec<u8>,
    body: Vec<u8>,
}

fn serve(client: TcpStream, upstream: &str, shared: &Shared) -> std::io::Result<()> {
    let mut client = client;
    let Some(request) = read_request(&mut client)? else {
        return Ok(());
    };
    if shared.refusing.load(Ordering::SeqCst)
        && request.method == "PUT"
        && request.path.contains("/agents/")
    {
        shared.refused.fetch_add(1, Ordering::SeqCst);
        return refuse_slow_down(&mut client);
    }
    let held = wait_while_held(shared, &request);
    let (status, answer) = forward(upstream, &request);
    let text = String::from_utf8_lossy(&answer[..answer.len().min(2_000)]).to_string();
    {
        let mut state = shared.state();
        state.log.push(Exchange {
            target: request.target.clone(),
            request: String::from_utf8_lossy(&request.body).to_string(),
            held,
            status,
            answer: text.split("\r\n\r\n").nth(1).unwrap_or("").to_string(),
            at: Instant::now(),
        });
        if held {
            // Released and answered: a release waiting for it may return.
            state.waiting -= 1;
        }
    }
    shared.changed.notify_all();
    // The client may have given up on a held request long ago.
    let _ = client.write_all(&answer);
    let _ = client.shutdown(Shutdown::Both);
    Ok(())
}

/// Blocks while the hold rule matches `request`, until a release; whether it was held (it
/// then still counts as waiting until its answer is logged).
fn wait_while_held(shared: &Shared, request: &Request) -> bool {
    let mut state = shared.state();
    if !state.rule.as_ref().is_some_and(|r| r.matches(request)) {
        return false;
    }
    let seen = state.release;
    state.held_total += 1;
    state.waiting += 1;
    while state.release == seen {
        state = shared
            .changed
            .wait(state)
            .unwrap_or_else(|e| e.into_inner());
    }
    true
}

/// Sends `request` to the emulator; the answer's status code and its bytes, as received.
fn forward(upstream: &str, request: &Request) -> (u16, Vec<u8>) {
    let mut answer = Vec::new();
    let sent = TcpStream::connect(upstream).and_then(|mut up| {
        up.write_all(&request.head)?;
        up.write_all(&request.body)?;
        up.read_to_end(&mut answer)
    });
    if sent.is_err() && answer.is_empty() {
        return (0, answer);
    }
    let status = String::from_utf8_lossy(&answer[..answer.len().min(64)])
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

fn refuse_slow_down(client: &mut TcpStream) -> std::io::Result<()> {
    let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
    let answer = format!(
        "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
        xml.len()
    );
    client.write_all(answer.as_bytes())?;
    client.shutdown(Shutdown::Both)
}

/// Reads one request (head and body, plain or chunked); `None` when the client closed first.
fn read_request(client: &mut TcpStream) -> std::io::Result<Option<Request>> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = Vec::new();
    let mut request_line = String::new();
    let mut amz_target = None;
    let mut content_length = 0usize;
    let mut chunked = false;
    let mut expect_continue = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
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
        if lower.starts_with("x-amz-target:") {
            amz_target = line.split_once(':').map(|(_, v)| v.trim().to_string());
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
    let method = words.next().unwrap_or("").to_string();
    let path = words.next().unwrap_or("").to_string();
    let target = amz_target.unwrap_or_else(|| format!("{method} {path}"));
    Ok(Some(Request {
        method,
        path,
        target,
        head,
        body,
    }))
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
