//! # barrage-kafka — the Kafka code both binaries need
//!
//! librdkafka settings from a spec ([`config`]), SASL credentials fetched from Secrets Manager
//! or SSM ([`credentials`]), MSK IAM tokens ([`msk_iam`]), topic administration and the
//! connection probe ([`admin`]), and the TLS diagnosis that names why a handshake failed
//! ([`tls`]). It knows no engine: the producer and consumer adapters that record into the
//! agent's recorder stay with the agent.

pub mod admin;
pub mod config;
pub mod credentials;
pub mod msk_iam;
pub mod tls;

/// The items of a `ClientContext` impl that hand librdkafka this process's MSK IAM tokens
/// (librdkafka asks only when the protocol is OAUTHBEARER): every client context of Barrage
/// uses it, so none can forget the token.
#[macro_export]
macro_rules! msk_iam_tokens {
    () => {
        const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

        fn generate_oauth_token(
            &self,
            _oauthbearer_config: Option<&str>,
        ) -> Result<::rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
            $crate::msk_iam::oauth_token()
        }
    };
}
