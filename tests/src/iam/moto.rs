//! A private moto server for one test: its own port on 127.0.0.1, its own state, its own request
//! recording, and IAM enforcement switched on and off through moto's own API
//! (`/moto-api/reset-auth`, `/moto-api/recorder/…`), so the shared emulator other tests use
//! stays unauthenticated. It runs from the virtualenv `scripts/services.sh` keeps (the
//! `moto_server` beside `BARRAGE_AWS_PYTHON`) and is stopped (by its pid) when dropped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The running server.
pub struct PrivateMoto {
    child: Child,
    port: u16,
    recording: PathBuf,
    log: PathBuf,
}

impl PrivateMoto {
    /// Starts moto server with `python` (the emulator's, which has moto) as
    /// `scripts/services.sh` does, through `scripts/moto_server.py` (DynamoDB requests one at a
    /// time), on a free port, recording to `dir/recording.jsonl` once [`PrivateMoto::record`]
    /// is called, logging to `dir/moto.log`; waits until it answers.
    pub fn start(python: &Path, dir: &Path) -> PrivateMoto {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/moto_server.py");
        assert!(
            python.with_file_name("moto_server").exists(),
            "no moto beside {} (scripts/services.sh up)",
            python.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let recording = dir.join("recording.jsonl");
        let log = dir.join("moto.log");
        let out = std::fs::File::create(&log).expect("the moto log");
        let child = Command::new(python)
            .arg(&script)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_RECORDER_FILEPATH", &recording)
            .env_remove("MOTO_ENABLE_RECORDING")
            .env_remove("INITIAL_NO_AUTH_ACTION_COUNT")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("the moto log"))
            .stderr(out)
            .spawn()
            .expect("moto_server starts");
        let mut moto = PrivateMoto {
            child,
            port,
            recording,
            log,
        };
        moto.wait_ready(Duration::from_secs(60));
        moto
    }

    fn wait_ready(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if self.request("GET", "/moto-api/data.json", "").is_some() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("moto_server exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer on 127.0.0.1:{} within {limit:?}:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One HTTP/1.0 request to the server: its status code and body, `None` if unreachable.
    fn request(&self, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
        let head = format!(
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\n\r\n",
            self.port,
            body.len()
        );
        s.write_all(head.as_bytes()).ok()?;
        s.write_all(body.as_bytes()).ok()?;
        let mut answer = String::new();
        s.read_to_string(&mut answer).ok()?;
        let status = answer.split_whitespace().nth(1)?.parse().ok()?;
        let body = answer
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Some((status, body))
    }

    fn post(&self, path: &str, body: &str) {
        match self.request("POST", path, body) {
            Some((200, _)) => {}
            other => panic!("POST {path} to the private moto: {other:?}"),
        }
    }

    /// IAM enforcement on every request from now on (`true`), or none (`false`).
    pub fn enforce_iam(&self, on: bool) {
        self.post("/moto-api/reset-auth", if on { "0" } else { "inf" });
    }

    /// Starts recording every request from now on (an earlier recording is erased).
    pub fn record(&self) {
        self.post("/moto-api/recorder/reset-recording", "");
        self.post("/moto-api/recorder/start-recording", "");
    }

    /// Stops recording; the recording (one JSON object per request).
    pub fn stop_recording(&self) -> String {
        self.post("/moto-api/recorder/stop-recording", "");
        std::fs::read_to_string(&self.recording).unwrap_or_default()
    }

    /// The server's log (one line per request with its status).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The request lines of the log answered with `status`.
    pub fn answered(&self, status: u16) -> Vec<String> {
        let marker = format!("\" {status} ");
        self.log()
            .lines()
            .filter(|l| l.contains(&marker))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for PrivateMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
