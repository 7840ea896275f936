//! The `barrage-agent` process: environment contract in, exit code out.
//!
//! Exit 0 when the agent completed its share (or was stopped and flushed), 1 when it failed
//! (the reason is in its status item and the log), 2 when the environment is invalid.
//!
//! Everything comes from the environment contract (`barrage_crds::env`); two flags override
//! it for a person at a terminal: `--log-format json|text` (`BARRAGE_LOG_FORMAT`; unset: JSON
//! when stderr is not a terminal, text when it is) and `--metrics-addr IP:PORT|off`
//! (`BARRAGE_METRICS_ADDR`).

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use barrage_crds::env::{Assignment, BARRAGE_LOG_FORMAT, BARRAGE_METRICS_ADDR, LogFormat};
use tracing::{error, info, warn};
use tracing_subscriber::EnvFilter;

use crate::metrics::{self, AgentMetrics, Identity};
use crate::protocol;
use crate::spool::DeliveryConfig;

const USAGE: &str = "usage: barrage-agent [--log-format json|text] [--metrics-addr IP:PORT|off]

Runs one agent of a LoadTest's fleet. The controller starts it with the environment contract
(BARRAGE_LOADTEST, BARRAGE_RUN_ID, BARRAGE_SLOT, BARRAGE_INCARNATION, BARRAGE_STORE,
BARRAGE_BLOBS, BARRAGE_METRICS_ADDR, BARRAGE_LOG_FORMAT, BARRAGE_HEARTBEAT) and, optionally,
BARRAGE_SPOOL_DIR, BARRAGE_SPOOL_MAX_BYTES and BARRAGE_UPLOAD_DRAIN (where undelivered
intervals are spooled and for how long they are retried); the flags override the two
variables of the same name.";

/// Flags that override variables of the environment contract.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Flags {
    /// `(variable, value)` pairs, in the order given.
    pub overrides: Vec<(&'static str, String)>,
}

/// Why the arguments were refused (the usage is printed after the message).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FlagsError {
    /// Neither a known flag nor `--help`.
    #[error("unknown argument {arg:?}")]
    Unknown { arg: String },
    /// A flag last on the line, without its value.
    #[error("{flag} needs a value")]
    MissingValue { flag: String },
}

impl Flags {
    /// Parses the arguments after the program name (`Ok(None)`: help was asked for).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Flags>, FlagsError> {
        let mut flags = Flags::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (arg.clone(), None),
            };
            let var = match name.as_str() {
                "-h" | "--help" => return Ok(None),
                "--log-format" => BARRAGE_LOG_FORMAT,
                "--metrics-addr" => BARRAGE_METRICS_ADDR,
                _ => return Err(FlagsError::Unknown { arg }),
            };
            let value = match inline.or_else(|| args.next()) {
                Some(v) => v,
                None => return Err(FlagsError::MissingValue { flag: name }),
            };
            flags.overrides.push((var, value));
        }
        Ok(Some(flags))
    }

    fn get(&self, name: &str) -> Option<String> {
        self.overrides
            .iter()
            .rev()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    }
}

/// The log format: the flag or `BARRAGE_LOG_FORMAT` when given (already parsed into
/// `given`), otherwise JSON unless stderr is a terminal.
pub fn log_format(given: Option<LogFormat>, stderr_is_terminal: bool) -> LogFormat {
    given.unwrap_or(if stderr_is_terminal {
        LogFormat::Compact
    } else {
        LogFormat::Json
    })
}

pub fn main() -> ExitCode {
    let flags = match Flags::parse(std::env::args().skip(1)) {
        Ok(Some(f)) => f,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("barrage-agent: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let lookup = |name: &str| flags.get(name).or_else(|| std::env::var(name).ok());
    let assignment = match Assignment::from_lookup(lookup) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("barrage-agent: invalid environment:\n{e}");
            return ExitCode::from(2);
        }
    };
    let delivery = match DeliveryConfig::from_lookup(&protocol::agent_name(&assignment), lookup) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("barrage-agent: invalid environment:\n{e}");
            return ExitCode::from(2);
        }
    };
    let given = lookup(BARRAGE_LOG_FORMAT)
        .filter(|v| !v.is_empty())
        .map(|_| assignment.log_format);
    init_tracing(log_format(given, std::io::stderr().is_terminal()));
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            error!(error = %e, "Could not start the async runtime.");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        let store = match barrage_store::open_store(&assignment.store).await {
            Ok(s) => s,
            Err(e) => {
                error!(error = %e, "Could not open the store.");
                return ExitCode::from(1);
            }
        };
        let blobs = match barrage_store::open_blobs(&assignment.blobs).await {
            Ok(b) => b,
            Err(e) => {
                error!(error = %e, "Could not open the blob store.");
                return ExitCode::from(1);
            }
        };
        info!(
            load_test = %assignment.load_test,
            run_id = %assignment.run_id,
            slot = assignment.slot,
            incarnation = assignment.incarnation,
            "Agent starting."
        );
        let metrics = Arc::new(AgentMetrics::new(Identity {
            load_test: assignment.load_test.clone(),
            run_id: assignment.run_id.clone(),
            slot: assignment.slot,
            incarnation: assignment.incarnation,
        }));
        let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
        let server = start_metrics(assignment.metrics_addr.as_deref(), &metrics, async move {
            let _ = server_stopped.await;
        })
        .await;
        let code = match protocol::run_observed(
            assignment,
            store,
            blobs,
            shutdown_signal(),
            metrics,
            delivery,
        )
        .await
        {
            Ok(exit) => {
                info!(?exit, "Agent done.");
                ExitCode::SUCCESS
            }
            Err(e) => {
                error!(error = %e, "Agent failed.");
                ExitCode::from(1)
            }
        };
        let _ = stop_server.send(());
        if let Some(s) = server {
            let _ = s.await;
        }
        code
    })
}

/// Binds the metrics endpoint and serves it in the background. An address that cannot be
/// bound is logged: the agent runs without the endpoint rather than not at all.
async fn start_metrics(
    addr: Option<&str>,
    metrics: &Arc<AgentMetrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Option<tokio::task::JoinHandle<()>> {
    let addr: SocketAddr = match addr?.parse() {
        Ok(a) => a,
        Err(e) => {
            warn!(error = %e, "Invalid metrics address; serving no metrics.");
            return None;
        }
    };
    match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => {
            let bound = listener.local_addr().unwrap_or(addr);
            metrics.set_addr(bound);
            info!(addr = %bound, "Serving /metrics and /healthz.");
            Some(tokio::spawn(metrics::serve(
                listener,
                metrics.clone(),
                shutdown,
            )))
        }
        Err(e) => {
            warn!(
                addr = %addr,
                error = %e,
                "Cannot listen for metrics; running without them (set BARRAGE_METRICS_ADDR to a free IP:PORT, port 0 for any, or off)."
            );
            None
        }
    }
}

/// Resolves on SIGTERM (ECS StopTask) or Ctrl-C.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,barrage_agent=info,barrage_store=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Compact => builder
            .compact()
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_override_the_two_variables_and_anything_else_is_refused() {
        let f = Flags::parse(args(&[
            "--log-format",
            "text",
            "--metrics-addr=127.0.0.1:0",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(f.get(BARRAGE_LOG_FORMAT).as_deref(), Some("text"));
        assert_eq!(f.get(BARRAGE_METRICS_ADDR).as_deref(), Some("127.0.0.1:0"));
        assert_eq!(Flags::parse(args(&["--help"])).unwrap(), None);
        assert_eq!(
            Flags::parse(args(&["--log-format"])),
            Err(FlagsError::MissingValue {
                flag: "--log-format".into()
            })
        );
        assert_eq!(
            Flags::parse(args(&["--verbose"])),
            Err(FlagsError::Unknown {
                arg: "--verbose".into()
            })
        );
    }

    #[test]
    fn logs_are_json_unless_stderr_is_a_terminal_or_a_format_is_given() {
        assert_eq!(log_format(None, false), LogFormat::Json);
        assert_eq!(log_format(None, true), LogFormat::Compact);
        assert_eq!(log_format(Some(LogFormat::Json), true), LogFormat::Json);
        assert_eq!(
            log_format(Some(LogFormat::Compact), false),
            LogFormat::Compact
        );
    }
}
