//! Names the cause of a failed TLS handshake with the broker. librdkafka reports every
//! verification failure as "certificate verify failed"; OpenSSL knows which check failed (an
//! unknown CA, a host-name mismatch, an expired certificate). After librdkafka refused the
//! handshake, this makes one handshake of its own to the first bootstrap address with the
//! same trust settings (`ssl.ca.location`, host-name verification) and returns OpenSSL's
//! verification result.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use openssl::ssl::{HandshakeError, SslConnector, SslMethod, SslVerifyMode};
use openssl::x509::X509VerifyResult;

/// How long the diagnosis may take (connect, then handshake).
const DIAGNOSIS_TIMEOUT: Duration = Duration::from_secs(3);

/// The trust settings of a client, as in its librdkafka configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trust {
    /// `ssl.ca.location` (a PEM bundle); the system's store when absent.
    pub ca_location: Option<String>,
    /// `ssl.endpoint.identification.algorithm` is `https` (the default).
    pub verify_host: bool,
}

/// OpenSSL's verification result for the first address of `bootstrap` (`host:port,…`), e.g.
/// "certificate has expired"; `None` when the handshake succeeds or cannot be made.
pub fn diagnose(bootstrap: &str, trust: &Trust) -> Option<String> {
    let first = bootstrap.split(',').next()?.trim();
    let first = first.rsplit("://").next().unwrap_or(first);
    let (host, _) = first.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addr = first.to_socket_addrs().ok()?.next()?;
    let tcp = TcpStream::connect_timeout(&addr, DIAGNOSIS_TIMEOUT).ok()?;
    tcp.set_read_timeout(Some(DIAGNOSIS_TIMEOUT)).ok()?;
    tcp.set_write_timeout(Some(DIAGNOSIS_TIMEOUT)).ok()?;
    let mut builder = SslConnector::builder(SslMethod::tls_client()).ok()?;
    builder.set_verify(SslVerifyMode::PEER);
    if let Some(ca) = &trust.ca_location {
        builder.set_ca_file(ca).ok()?;
    }
    let mut config = builder.build().configure().ok()?;
    config.set_verify_hostname(trust.verify_host);
    match config.connect(host, tcp) {
        Ok(_) => None,
        Err(HandshakeError::Failure(mid)) => {
            let verify = mid.ssl().verify_result();
            Some(if verify == X509VerifyResult::OK {
                mid.error().to_string()
            } else {
                verify.error_string().to_string()
            })
        }
        Err(e) => Some(e.to_string()),
    }
}
