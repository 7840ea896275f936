//! SASL credentials from the secret a spec references (`spec.kafka.security.sasl.credentials`):
//! an AWS Secrets Manager secret (by ARN) or an SSM parameter (name or ARN, decrypted).
//!
//! # Accepted secret shapes
//! - **A JSON object** (the text starts with `{`): `{"username": "...", "password": "..."}`, the
//!   shape MSK's SCRAM secrets use. `password` is required; `username` is required unless
//!   `spec.kafka.security.sasl.username` is set, which then wins. Other keys are ignored.
//! - **Anything else is the password itself** (a plain SecureString or a plain-text secret);
//!   then `spec.kafka.security.sasl.username` is required. Trailing line breaks are removed.
//!
//! The password never reaches a log or an error message: [`SaslCredentials`]' `Debug`
//! redacts it, and errors name only the reference and the rule that failed.
//!
//! The AWS SDK is configured from the environment (region, credentials chain and
//! `AWS_ENDPOINT_URL` for an emulator); an ARN's region wins over the default region.
//! Throttling and transient failures are retried with a bounded exponential backoff.

use std::time::Duration;

use aws_config::{Region, SdkConfig};
use backon::Retryable;
use barrage_crds::backoff::Backoff;
use barrage_crds::spec::{KafkaSpec, SaslSpec, SecretRef};
use tracing::{debug, info};

use crate::config::SaslCredentials;
use crate::msk_iam::{self, MskIamError};

/// What every client needs before it connects, for `spec.kafka`: the SASL credentials the
/// spec references (fetched), and for AWS_MSK_IAM the process's token refresher (started,
/// first token minted). `None` when the spec has no SASL.
pub async fn prepare_security(
    kafka: &KafkaSpec,
) -> Result<Option<SaslCredentials>, CredentialsError> {
    msk_iam::start_for(kafka).await?;
    match &kafka.security.sasl {
        Some(sasl) => resolve(sasl).await.map(Some),
        None => Ok(None),
    }
}

/// Where the credentials are kept, parsed once from the spec's [`SecretRef`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    SecretsManager(String),
    Ssm(String),
}

impl Reference {
    /// Exactly one of the two fields must be set (validation already checked it).
    pub fn from_spec(r: &SecretRef) -> Result<Self, CredentialsError> {
        match (&r.secrets_manager_arn, &r.ssm_parameter) {
            (Some(arn), None) => Ok(Reference::SecretsManager(arn.clone())),
            (None, Some(p)) => Ok(Reference::Ssm(p.clone())),
            _ => Err(CredentialsError::Reference),
        }
    }

    /// The region in an ARN (`arn:aws:<service>:<region>:...`), if this is an ARN with one.
    pub fn region(&self) -> Option<&str> {
        let (Reference::SecretsManager(s) | Reference::Ssm(s)) = self;
        let mut parts = s.split(':');
        (parts.next() == Some("arn"))
            .then(|| parts.nth(2))
            .flatten()
            .filter(|r| !r.is_empty())
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reference::SecretsManager(arn) => write!(f, "Secrets Manager secret {arn}"),
            Reference::Ssm(name) => write!(f, "SSM parameter {name}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error(
        "spec.kafka.security.sasl.credentials: exactly one of secretsManagerArn or ssmParameter must be set"
    )]
    Reference,
    #[error("{reference} was not found (check the ARN or name, and the region)")]
    NotFound { reference: Reference },
    #[error("access to {reference} was denied ({code}); the agent's role needs {action}")]
    AccessDenied {
        reference: Reference,
        code: String,
        action: &'static str,
    },
    #[error("{reference} could not be read: {detail}")]
    Read {
        reference: Reference,
        detail: String,
    },
    #[error(
        "{reference} is not valid JSON ({detail}); a secret starting with '{{' must be a JSON object {{\"username\", \"password\"}}"
    )]
    NotJson {
        reference: Reference,
        detail: String,
    },
    #[error("{reference}: the JSON object has no string \"{key}\"{hint}")]
    MissingKey {
        reference: Reference,
        key: &'static str,
        hint: &'static str,
    },
    #[error(
        "{reference} holds a plain password, so spec.kafka.security.sasl.username must be set (or store a JSON object {{\"username\", \"password\"}})"
    )]
    NoUsername { reference: Reference },
    #[error("{reference} is empty")]
    Empty { reference: Reference },
    #[error(transparent)]
    MskIam(#[from] MskIamError),
}

impl CredentialsError {
    /// Worth retrying: throttling and transient service or network failures.
    fn is_transient(&self) -> bool {
        matches!(self, CredentialsError::Read { detail, .. } if detail.starts_with(TRANSIENT))
    }
}

/// Prefix of the detail of errors that a retry may fix.
const TRANSIENT: &str = "transient: ";

/// The bounded backoff for throttling and transient failures: 200 ms doubling to 3 s, jittered,
/// five retries (about 10 s at most).
const BACKOFF: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(3));
const RETRIES: u32 = 5;

/// Fetches and parses the credentials `sasl` references, with the SDK configured from the
/// environment.
pub async fn resolve(sasl: &SaslSpec) -> Result<SaslCredentials, CredentialsError> {
    let sdk = barrage_store::aws::sdk_config().await;
    resolve_with(&sdk, sasl).await
}

/// [`resolve`] with a given SDK configuration.
pub async fn resolve_with(
    sdk: &SdkConfig,
    sasl: &SaslSpec,
) -> Result<SaslCredentials, CredentialsError> {
    let reference = Reference::from_spec(&sasl.credentials)?;
    let mut config = sdk.to_builder();
    if let Some(region) = reference.region() {
        config = config.region(Region::new(region.to_string()));
    }
    let config = config.build();
    let fetch = || fetch(&config, &reference);
    let text = fetch
        .retry(BACKOFF.delays(RETRIES, barrage_store::aws::jitter_seed()))
        .when(CredentialsError::is_transient)
        .notify(|e, delay| debug!(error = %e, ?delay, "Reading the SASL secret failed; retrying."))
        .await?;
    let creds = parse_secret(&reference, &text, sasl.username.as_deref())?;
    info!(reference = %reference, username = %creds.username, "Resolved the SASL credentials.");
    Ok(creds)
}

async fn fetch(config: &SdkConfig, reference: &Reference) -> Result<String, CredentialsError> {
    match reference {
        Reference::SecretsManager(arn) => {
            let client = aws_sdk_secretsmanager::Client::new(config);
            let out = client
                .get_secret_value()
                .secret_id(arn)
                .send()
                .await
                .map_err(|e| classify(reference, &e, "secretsmanager:GetSecretValue"))?;
            if let Some(s) = out.secret_string() {
                Ok(s.to_string())
            } else if let Some(b) = out.secret_binary() {
                String::from_utf8(b.clone().into_inner()).map_err(|_| CredentialsError::Read {
                    reference: reference.clone(),
                    detail: "the binary secret is not UTF-8 text".into(),
                })
            } else {
                Err(CredentialsError::Empty {
                    reference: reference.clone(),
                })
            }
        }
        Reference::Ssm(name) => {
            let client = aws_sdk_ssm::Client::new(config);
            let out = client
                .get_parameter()
                .name(name)
                .with_decryption(true)
                .send()
                .await
                .map_err(|e| classify(reference, &e, "ssm:GetParameter (and kms:Decrypt)"))?;
            out.parameter()
                .and_then(|p| p.value())
                .map(str::to_string)
                .ok_or_else(|| CredentialsError::Empty {
                    reference: reference.clone(),
                })
        }
    }
}

/// Maps an SDK error to a rule the user can act on, by its error code.
fn classify<E, R>(
    reference: &Reference,
    error: &aws_sdk_secretsmanager::error::SdkError<E, R>,
    action: &'static str,
) -> CredentialsError
where
    E: aws_sdk_secretsmanager::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_secretsmanager::error::SdkError;
    let reference = reference.clone();
    match error {
        SdkError::ServiceError(e) => {
            let code = e.err().code().unwrap_or("Unknown").to_string();
            let message = e.err().message().unwrap_or("").to_string();
            classify_code(reference, &code, &message, action)
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            CredentialsError::Read {
                reference,
                detail: format!(
                    "{TRANSIENT}{}",
                    aws_smithy_error_text(error as &dyn std::error::Error)
                ),
            }
        }
        other => CredentialsError::Read {
            reference,
            detail: aws_smithy_error_text(other as &dyn std::error::Error),
        },
    }
}

/// The pure part of [`classify`]: what an AWS error code means here.
fn classify_code(
    reference: Reference,
    code: &str,
    message: &str,
    action: &'static str,
) -> CredentialsError {
    match code {
        "ResourceNotFoundException" | "ParameterNotFound" | "ParameterVersionNotFound" => {
            CredentialsError::NotFound { reference }
        }
        "AccessDeniedException" | "AccessDenied" | "UnrecognizedClientException" => {
            CredentialsError::AccessDenied {
                reference,
                code: code.to_string(),
                action,
            }
        }
        "ThrottlingException"
        | "Throttling"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "InternalServiceError"
        | "InternalServerError"
        | "InternalFailure"
        | "ServiceUnavailable" => CredentialsError::Read {
            reference,
            detail: format!("{TRANSIENT}{code}: {message}"),
        },
        _ => CredentialsError::Read {
            reference,
            detail: format!("{code}: {message}"),
        },
    }
}

/// An error and its sources on one line.
fn aws_smithy_error_text(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Turns the secret's text into credentials, following the shapes in the module docs.
pub fn parse_secret(
    reference: &Reference,
    text: &str,
    spec_username: Option<&str>,
) -> Result<SaslCredentials, CredentialsError> {
    let text = text.trim_end_matches(['\r', '\n']);
    if text.is_empty() {
        return Err(CredentialsError::Empty {
            reference: reference.clone(),
        });
    }
    if text.trim_start().starts_with('{') {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| CredentialsError::NotJson {
                reference: reference.clone(),
                // Line and column only: serde's message never quotes the input, but be sure.
                detail: format!("line {} column {}", e.line(), e.column()),
            })?;
        let field = |key| value.get(key).and_then(serde_json::Value::as_str);
        let password = field("password").ok_or(CredentialsError::MissingKey {
            reference: reference.clone(),
            key: "password",
            hint: "",
        })?;
        let username = match spec_username {
            Some(u) => u,
            None => field("username").ok_or(CredentialsError::MissingKey {
                reference: reference.clone(),
                key: "username",
                hint: " and spec.kafka.security.sasl.username is not set",
            })?,
        };
        if password.is_empty() {
            return Err(CredentialsError::Empty {
                reference: reference.clone(),
            });
        }
        return Ok(SaslCredentials {
            username: username.to_string(),
            password: password.to_string(),
        });
    }
    let username = spec_username.ok_or_else(|| CredentialsError::NoUsername {
        reference: reference.clone(),
    })?;
    Ok(SaslCredentials {
        username: username.to_string(),
        password: text.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arn() -> Reference {
        Reference::SecretsManager(
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:AmazonMSK_load-AbCdEf".into(),
        )
    }

    #[test]
    fn an_msk_style_json_secret_gives_username_and_password() {
        let c = parse_secret(&arn(), r#"{"username":"svc","password":"s3cr3t"}"#, None)
            .expect("test value");
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("svc", "s3cr3t")
        );
    }

    #[test]
    fn the_spec_username_wins_over_the_secrets() {
        let c = parse_secret(
            &arn(),
            r#"{"username":"svc","password":"p","extra":1}"#,
            Some("other"),
        )
        .expect("test value");
        assert_eq!(c.username, "other");
        assert_eq!(c.password, "p");
    }

    #[test]
    fn a_plain_secret_is_the_password_and_needs_the_spec_username() {
        let c = parse_secret(&arn(), "pl41n pass\n", Some("svc")).expect("test value");
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("svc", "pl41n pass")
        );
        let e = parse_secret(&arn(), "pl41n pass", None).expect_err("an error");
        assert!(matches!(e, CredentialsError::NoUsername { .. }));
        let text = e.to_string();
        assert!(text.contains("spec.kafka.security.sasl.username"), "{text}");
        assert!(!text.contains("pl41n"), "{text}");
    }

    #[test]
    fn broken_json_is_an_error_that_names_the_reference_and_hides_the_text() {
        let e = parse_secret(&arn(), r#"{"username":"svc","password":"hunter2""#, None)
            .expect_err("an error");
        assert!(matches!(e, CredentialsError::NotJson { .. }));
        let text = e.to_string();
        assert!(text.contains("AmazonMSK_load-AbCdEf"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn missing_keys_name_the_key() {
        let e = parse_secret(&arn(), r#"{"username":"svc"}"#, None).expect_err("an error");
        assert!(e.to_string().contains("\"password\""), "{e}");
        let e = parse_secret(&arn(), r#"{"password":"p"}"#, None).expect_err("an error");
        let text = e.to_string();
        assert!(text.contains("\"username\""), "{text}");
        assert!(text.contains("sasl.username is not set"), "{text}");
        let e = parse_secret(&arn(), r#"{"username":"svc","password":42}"#, None)
            .expect_err("an error");
        assert!(matches!(
            e,
            CredentialsError::MissingKey {
                key: "password",
                ..
            }
        ));
    }

    #[test]
    fn empty_secrets_are_refused() {
        assert!(matches!(
            parse_secret(&arn(), "\n", Some("u")),
            Err(CredentialsError::Empty { .. })
        ));
        assert!(matches!(
            parse_secret(&arn(), r#"{"username":"u","password":""}"#, None),
            Err(CredentialsError::Empty { .. })
        ));
    }

    #[test]
    fn the_reference_is_exactly_one_of_the_two() {
        let both = SecretRef {
            secrets_manager_arn: Some("a".into()),
            ssm_parameter: Some("b".into()),
        };
        assert!(matches!(
            Reference::from_spec(&both),
            Err(CredentialsError::Reference)
        ));
        let ssm = SecretRef {
            secrets_manager_arn: None,
            ssm_parameter: Some("/barrage/pw".into()),
        };
        assert_eq!(
            Reference::from_spec(&ssm).expect("test value"),
            Reference::Ssm("/barrage/pw".into())
        );
    }

    #[test]
    fn an_arns_region_is_used_and_a_name_has_none() {
        assert_eq!(arn().region(), Some("eu-west-1"));
        assert_eq!(Reference::Ssm("/barrage/pw".into()).region(), None);
        assert_eq!(
            Reference::Ssm("arn:aws:ssm:us-west-2:1:parameter/x".into()).region(),
            Some("us-west-2")
        );
    }

    #[test]
    fn error_codes_map_to_rules_and_only_transient_ones_are_retried() {
        let r = arn();
        let nf = classify_code(r.clone(), "ResourceNotFoundException", "", "x");
        assert!(matches!(nf, CredentialsError::NotFound { .. }));
        assert!(nf.to_string().contains("was not found"));
        assert!(!nf.is_transient());
        let denied = classify_code(r.clone(), "AccessDeniedException", "no", "ssm:GetParameter");
        assert!(denied.to_string().contains("ssm:GetParameter"), "{denied}");
        assert!(!denied.is_transient());
        assert!(classify_code(r.clone(), "ThrottlingException", "slow down", "x").is_transient());
        assert!(classify_code(r.clone(), "InternalServiceError", "", "x").is_transient());
        assert!(!classify_code(r, "ValidationException", "", "x").is_transient());
    }
}
