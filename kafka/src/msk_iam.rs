//! MSK IAM authentication (`protocol: AWS_MSK_IAM`): SASL OAUTHBEARER whose token is a
//! SigV4-presigned URL, as AWS's `aws-msk-iam-sasl-signer` libraries make it.
//!
//! # The token
//! `base64url_nopad("https://kafka.<region>.amazonaws.com/?Action=kafka-cluster%3AConnect
//! &X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=<key>%2F<date>%2F<region>%2Fkafka-cluster%2Faws4_request
//! &X-Amz-Date=…&X-Amz-Expires=900&X-Amz-SignedHeaders=host[&X-Amz-Security-Token=…]&X-Amz-Signature=…
//! &User-Agent=barrage%2F<version>")`: a GET on that host signed for the service `kafka-cluster`,
//! valid 900 s, with the User-Agent added after signing. Credentials come from the default AWS
//! credential chain (environment, profile, ECS task role, instance role…).
//!
//! # Threads
//! librdkafka asks for a token from its own threads (the producer's poll thread, a consumer's
//! `poll`), outside any tokio runtime, and must not wait on the network there. So a dedicated
//! refresher thread ([`TokenRefresher`]) keeps the current token, minting a new one at 80 % of
//! the current one's life (retrying sooner after a failure, keeping the old token while it is
//! valid), and [`TokenRefresher::current`] — what `generate_oauth_token` calls — only reads it.

//!
//! # One refresher per process
//! A process talks to one cluster (`barrage run` runs one LoadTest, an agent one assignment), so
//! [`start_for`] starts one refresher and installs it for the whole process; every client
//! context ([`SecurityContext`], the producer's `DeliveryRecorder`) reads from it. This keeps
//! the engine's client construction unchanged.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use barrage_crds::spec::{KafkaSpec, SecurityProtocol};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rdkafka::ClientContext;
use rdkafka::client::OAuthToken;
use rdkafka::consumer::ConsumerContext;
use tracing::{debug, info, warn};

/// The process's refresher, once [`start_for`] started it.
static INSTALLED: OnceLock<Arc<TokenRefresher>> = OnceLock::new();

/// For `AWS_MSK_IAM`: mints the first token (failing early when there are no credentials or
/// no region) and starts the process's refresher. Nothing for other protocols, and nothing
/// when a refresher already runs.
pub async fn start_for(kafka: &KafkaSpec) -> Result<(), MskIamError> {
    if kafka.security.protocol != SecurityProtocol::AwsMskIam || INSTALLED.get().is_some() {
        return Ok(());
    }
    let region = kafka.security.region.clone();
    // The signer has its own runtime (it runs on the refresher thread): build and first use
    // it off the async threads.
    let refresher = tokio::task::spawn_blocking(move || {
        let signer = MskSigner::new(region.as_deref())?;
        TokenRefresher::start(signer)
    })
    .await
    .map_err(|e| MskIamError::Thread(e.to_string()))??;
    let _ = INSTALLED.set(refresher);
    Ok(())
}

/// What every client context's `generate_oauth_token` returns: the current token of the
/// process's refresher. Runs on librdkafka's threads; only reads memory.
pub fn oauth_token() -> Result<OAuthToken, Box<dyn std::error::Error>> {
    INSTALLED
        .get()
        .ok_or("AWS_MSK_IAM: no token refresher was started for this process")?
        .oauth_token()
}

/// The client context of consumers and admin clients: librdkafka's default behaviour, plus
/// MSK IAM tokens when the protocol asks for OAUTHBEARER (librdkafka never asks otherwise).
#[derive(Debug, Default, Clone, Copy)]
pub struct SecurityContext;

impl ClientContext for SecurityContext {
    crate::msk_iam_tokens!();
}

impl ConsumerContext for SecurityContext {}

/// The action MSK authorizes a connection with.
const ACTION: &str = "kafka-cluster:Connect";
/// The SigV4 service name.
const SIGNING_NAME: &str = "kafka-cluster";
/// How long a presigned token is valid.
pub const EXPIRY: Duration = Duration::from_secs(900);
/// The principal reported to librdkafka (MSK takes the identity from the signature).
const PRINCIPAL: &str = "barrage";

#[derive(Debug, thiserror::Error)]
pub enum MskIamError {
    #[error(
        "AWS_MSK_IAM needs a region: set spec.kafka.security.region or AWS_REGION for the agent"
    )]
    NoRegion,
    #[error("AWS_MSK_IAM: no AWS credentials provider is configured")]
    NoCredentialsProvider,
    #[error("AWS_MSK_IAM: could not load AWS credentials: {0}")]
    Credentials(String),
    #[error("AWS_MSK_IAM: could not sign the token: {0}")]
    Sign(String),
    #[error("AWS_MSK_IAM: the token refresher thread could not start: {0}")]
    Thread(String),
}

/// A token and when it stops being valid.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    pub value: String,
    pub expires_at: SystemTime,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a bearer credential for 15 minutes: never print it.
        f.debug_struct("Token")
            .field("value", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl Token {
    /// In the shape librdkafka takes.
    pub fn to_oauth(&self) -> OAuthToken {
        OAuthToken {
            token: self.value.clone(),
            principal_name: PRINCIPAL.to_string(),
            lifetime_ms: i64::try_from(
                self.expires_at
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis(),
            )
            .unwrap_or(i64::MAX),
        }
    }
}

/// Signs the MSK IAM token for `region` with `credentials` at `now`. Pure: the same inputs give
/// the same token.
pub fn sign_token(
    region: &str,
    credentials: &Credentials,
    now: SystemTime,
) -> Result<Token, MskIamError> {
    use aws_sigv4::http_request::{
        SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
    };
    use aws_sigv4::sign::v4;

    let base = format!(
        "https://kafka.{region}.amazonaws.com/?Action={}",
        encode(ACTION)
    );
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(EXPIRY);
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SIGNING_NAME)
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| MskIamError::Sign(e.to_string()))?;
    let request = SignableRequest::new("GET", base.as_str(), std::iter::empty(), {
        SignableBody::Bytes(&[])
    })
    .map_err(|e| MskIamError::Sign(e.to_string()))?;
    let (instructions, _) = sign(request, &params.into())
        .map_err(|e| MskIamError::Sign(e.to_string()))?
        .into_parts();
    let mut url = base;
    for (name, value) in instructions.params() {
        url.push('&');
        url.push_str(&encode(name));
        url.push('=');
        url.push_str(&encode(value));
    }
    url.push_str("&User-Agent=");
    url.push_str(&encode(&format!("barrage/{}", env!("CARGO_PKG_VERSION"))));
    Ok(Token {
        value: URL_SAFE_NO_PAD.encode(url.as_bytes()),
        expires_at: now + EXPIRY,
    })
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Something that makes a new token (the MSK signer, or a fake in tests).
pub trait Mint: Send + 'static {
    fn mint(&mut self) -> Result<Token, MskIamError>;
}

/// Mints MSK IAM tokens with credentials from the default chain. Credentials are loaded on
/// the refresher thread with its own small runtime, so expiring role credentials are renewed.
pub struct MskSigner {
    region: String,
    provider: SharedCredentialsProvider,
    runtime: tokio::runtime::Runtime,
}

impl MskSigner {
    /// The region is the spec's, else the SDK's (AWS_REGION, profile…). Blocking: call it
    /// outside async code (it has its own runtime for the credential providers).
    pub fn new(region: Option<&str>) -> Result<Self, MskIamError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| MskIamError::Thread(e.to_string()))?;
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(r) = region {
            loader = loader.region(Region::new(r.to_string()));
        }
        let sdk = runtime.block_on(loader.load());
        let region = sdk
            .region()
            .map(|r| r.as_ref().to_string())
            .ok_or(MskIamError::NoRegion)?;
        let provider = sdk
            .credentials_provider()
            .ok_or(MskIamError::NoCredentialsProvider)?;
        Ok(MskSigner {
            region,
            provider,
            runtime,
        })
    }
}

impl Mint for MskSigner {
    fn mint(&mut self) -> Result<Token, MskIamError> {
        let provider = self.provider.clone();
        let credentials = self
            .runtime
            .block_on(async move { provider.provide_credentials().await })
            .map_err(|e| MskIamError::Credentials(e.to_string()))?;
        sign_token(&self.region, &credentials, SystemTime::now())
    }
}

/// When to mint the next token: at 80 % of the current one's remaining life.
fn refresh_delay(minted_at: SystemTime, expires_at: SystemTime) -> Duration {
    expires_at
        .duration_since(minted_at)
        .unwrap_or_default()
        .mul_f64(0.8)
}

/// Keeps a fresh token for librdkafka's callbacks. Dropping it stops the thread.
pub struct TokenRefresher {
    current: Arc<Mutex<Token>>,
    // Dropping the sender wakes the thread and ends it.
    _stop: mpsc::Sender<()>,
}

impl std::fmt::Debug for TokenRefresher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRefresher").finish_non_exhaustive()
    }
}

impl TokenRefresher {
    /// Mints the first token now (so a client never starts without one, and a bad setup fails
    /// before anything connects), then refreshes on a dedicated thread.
    pub fn start(mut mint: impl Mint) -> Result<Arc<Self>, MskIamError> {
        let first = mint.mint()?;
        info!(expires_in = ?first.expires_at.duration_since(SystemTime::now()).unwrap_or_default(),
            "Minted the first MSK IAM token.");
        let current = Arc::new(Mutex::new(first));
        let (stop, stopped) = mpsc::channel::<()>();
        let shared = current.clone();
        std::thread::Builder::new()
            .name("msk-iam-token".into())
            .spawn(move || refresh_loop(&mut mint, &shared, &stopped))
            .map_err(|e| MskIamError::Thread(e.to_string()))?;
        Ok(Arc::new(TokenRefresher {
            current,
            _stop: stop,
        }))
    }

    /// The current token; never blocks on the network.
    pub fn current(&self) -> Token {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// What `ClientContext::generate_oauth_token` returns.
    pub fn oauth_token(&self) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        let token = self.current();
        if token.expires_at <= SystemTime::now() {
            return Err(
                "the MSK IAM token expired and could not be refreshed (see the logs)".into(),
            );
        }
        Ok(token.to_oauth())
    }
}

fn refresh_loop(mint: &mut impl Mint, current: &Mutex<Token>, stopped: &mpsc::Receiver<()>) {
    let mut wait = {
        let t = current.lock().unwrap_or_else(PoisonError::into_inner);
        refresh_delay(SystemTime::now(), t.expires_at)
    };
    loop {
        match stopped.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        let now = SystemTime::now();
        match mint.mint() {
            Ok(token) => {
                wait = refresh_delay(now, token.expires_at);
                *current.lock().unwrap_or_else(PoisonError::into_inner) = token;
                debug!(next_in = ?wait, "Refreshed the MSK IAM token.");
            }
            Err(e) => {
                let left = current
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .expires_at
                    .duration_since(now)
                    .unwrap_or_default();
                // Retry soon, well before the current token runs out.
                wait = (left / 4).clamp(Duration::from_millis(50), Duration::from_secs(30));
                warn!(error = %e, valid_for = ?left, retry_in = ?wait,
                    "Could not refresh the MSK IAM token; keeping the current one.");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn decode(token: &Token) -> String {
        String::from_utf8(URL_SAFE_NO_PAD.decode(&token.value).expect("test value"))
            .expect("test value")
    }

    fn query(url: &str) -> Vec<(String, String)> {
        url.split_once('?')
            .expect("test value")
            .1
            .split('&')
            .map(|kv| {
                let (k, v) = kv.split_once('=').expect("test value");
                (k.to_string(), v.to_string())
            })
            .collect()
    }

    fn fixed() -> (Credentials, SystemTime) {
        let creds = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "test",
        );
        // 2024-01-02T03:04:05Z
        (creds, UNIX_EPOCH + Duration::from_secs(1_704_164_645))
    }

    #[test]
    fn the_token_is_a_presigned_kafka_cluster_connect_url() {
        let (creds, now) = fixed();
        let token = sign_token("eu-west-1", &creds, now).expect("test value");
        assert!(
            !token.value.contains(['=', '+', '/']),
            "base64url without padding"
        );
        let url = decode(&token);
        assert!(
            url.starts_with("https://kafka.eu-west-1.amazonaws.com/?"),
            "{url}"
        );
        let q = query(&url);
        let get = |k: &str| {
            q.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("{k} missing in {url}"))
        };
        assert_eq!(q[0].0, "Action", "the action comes first");
        assert_eq!(get("Action"), "kafka-cluster%3AConnect");
        assert_eq!(get("X-Amz-Algorithm"), "AWS4-HMAC-SHA256");
        assert_eq!(
            get("X-Amz-Credential"),
            "AKIDEXAMPLE%2F20240102%2Feu-west-1%2Fkafka-cluster%2Faws4_request"
        );
        assert_eq!(get("X-Amz-Date"), "20240102T030405Z");
        assert_eq!(get("X-Amz-Expires"), "900");
        assert_eq!(get("X-Amz-SignedHeaders"), "host");
        let signature = get("X-Amz-Signature");
        assert_eq!(signature.len(), 64);
        assert!(signature.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(get("User-Agent").starts_with("barrage%2F"));
        assert_eq!(
            q.last().expect("test value").0,
            "User-Agent",
            "added after signing"
        );
        assert_eq!(token.expires_at, now + Duration::from_secs(900));
        assert!(!format!("{token:?}").contains(&token.value));
    }

    #[test]
    fn a_fixed_credential_and_time_give_a_stable_signature() {
        let (creds, now) = fixed();
        let a = sign_token("us-east-1", &creds, now).expect("test value");
        let b = sign_token("us-east-1", &creds, now).expect("test value");
        assert_eq!(a, b);
        let later =
            sign_token("us-east-1", &creds, now + Duration::from_secs(1)).expect("test value");
        assert_ne!(a.value, later.value);
        // Computed independently with botocore's SigV4QueryAuth (what AWS's Python signer
        // uses) for the same URL, credentials and time.
        let url = decode(&a);
        let (signed, _user_agent) = url.split_once("&User-Agent=").expect("test value");
        assert_eq!(signed, BOTOCORE_URL);
    }

    /// botocore `SigV4QueryAuth(Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
    /// "kafka-cluster", "us-east-1", expires=900)` on `GET https://kafka.us-east-1.amazonaws.com/`
    /// with `Action=kafka-cluster:Connect`, its clock fixed at 2024-01-02T03:04:05Z.
    const BOTOCORE_URL: &str = "https://kafka.us-east-1.amazonaws.com/?Action=kafka-cluster%3AConnect\
        &X-Amz-Algorithm=AWS4-HMAC-SHA256\
        &X-Amz-Credential=AKIDEXAMPLE%2F20240102%2Fus-east-1%2Fkafka-cluster%2Faws4_request\
        &X-Amz-Date=20240102T030405Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host\
        &X-Amz-Signature=d976a63334b2f60e682ba65032cd9e985cc525f9be809dba495984f866910124";

    #[test]
    fn a_session_token_is_signed_into_the_url() {
        let (_, now) = fixed();
        let creds = Credentials::new("AKID", "secret", Some("sess/ion+tok".into()), None, "t");
        let url = decode(&sign_token("us-east-1", &creds, now).expect("test value"));
        assert!(
            url.contains("X-Amz-Security-Token=sess%2Fion%2Btok"),
            "{url}"
        );
    }

    struct Counting {
        minted: Arc<AtomicU32>,
        life: Duration,
        fail_after: u32,
    }

    impl Mint for Counting {
        fn mint(&mut self) -> Result<Token, MskIamError> {
            let n = self.minted.fetch_add(1, Ordering::SeqCst);
            if n >= self.fail_after {
                return Err(MskIamError::Credentials("credentials unavailable".into()));
            }
            Ok(Token {
                value: format!("token-{n}"),
                expires_at: SystemTime::now() + self.life,
            })
        }
    }

    #[test]
    fn the_refresher_mints_a_new_token_before_the_current_one_expires() {
        let minted = Arc::new(AtomicU32::new(0));
        let r = TokenRefresher::start(Counting {
            minted: minted.clone(),
            life: Duration::from_millis(400),
            fail_after: u32::MAX,
        })
        .expect("test value");
        assert_eq!(r.current().value, "token-0");
        let started = std::time::Instant::now();
        let mut seen = std::collections::BTreeSet::new();
        while started.elapsed() < Duration::from_millis(1500) {
            let t = r.current();
            assert!(
                t.expires_at > SystemTime::now(),
                "the callback was handed an expired token"
            );
            assert!(r.oauth_token().is_ok());
            seen.insert(t.value);
            std::thread::sleep(Duration::from_millis(10));
        }
        // 400 ms tokens refreshed at 80 %: about one every 320 ms.
        let n = minted.load(Ordering::SeqCst);
        assert!((3..=7).contains(&n), "minted {n} tokens in 1.5 s");
        assert!(seen.len() >= 3, "{seen:?}");
        drop(r);
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(
            minted.load(Ordering::SeqCst),
            n,
            "dropping stops the thread"
        );
    }

    #[test]
    fn a_failed_refresh_keeps_the_valid_token_and_retries_sooner() {
        let minted = Arc::new(AtomicU32::new(0));
        let r = TokenRefresher::start(Counting {
            minted: minted.clone(),
            life: Duration::from_millis(800),
            fail_after: 1,
        })
        .expect("test value");
        std::thread::sleep(Duration::from_millis(750));
        assert_eq!(r.current().value, "token-0");
        assert!(r.oauth_token().is_ok());
        // First attempt at 640 ms, then retries every quarter of what is left.
        assert!(minted.load(Ordering::SeqCst) >= 2);
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            r.oauth_token().is_err(),
            "an expired token is refused, not handed out"
        );
    }

    #[test]
    fn a_first_mint_that_fails_fails_the_start() {
        let e = TokenRefresher::start(Counting {
            minted: Arc::new(AtomicU32::new(0)),
            life: Duration::from_secs(1),
            fail_after: 0,
        })
        .expect_err("an error");
        assert!(e.to_string().contains("credentials unavailable"), "{e}");
    }

    #[test]
    fn percent_encoding_keeps_only_unreserved_characters() {
        assert_eq!(encode("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(encode("k:/+= "), "k%3A%2F%2B%3D%20");
    }
}
