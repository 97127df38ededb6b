//! Delivery of one notification body to one external target, and a test send that reports
//! what the target answered.

use contract::api::AlertTarget;
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use std::time::Duration;

type HttpsClient = Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<bytes::Bytes>,
>;

/// What is sent: the JSON payload, or a template's rendering (sent as JSON when it is JSON,
/// as plain text otherwise).
#[derive(Debug, Clone, PartialEq)]
pub struct Body {
    pub text: String,
    pub content_type: &'static str,
}

impl Body {
    pub fn json(text: String) -> Self {
        Self {
            text,
            content_type: "application/json",
        }
    }

    pub fn rendered(text: String) -> Self {
        let is_json = serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok();
        Self {
            text,
            content_type: if is_json {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            },
        }
    }
}

/// What a target answered a test send: the webhook's status and the start of its body, or
/// the record's shard and sequence number.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: Option<u16>,
    pub excerpt: String,
}

/// Longest excerpt of a receiver's answer kept for a test send.
pub const ANSWER_EXCERPT_BYTES: usize = 2048;

/// Delivers notifications; cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    http: HttpsClient,
    kinesis: Option<aws_sdk_kinesis::Client>,
    timeout: Duration,
}

/// Why a delivery failed (kept in the outbox row and retried).
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("webhook answered HTTP {0}")]
    Status(u16),
    #[error("webhook request failed: {0}")]
    Http(String),
    #[error("bad webhook url: {0}")]
    Url(String),
    #[error("no Kinesis endpoint is configured for alert records")]
    NoKinesis,
    #[error("PutRecord failed: {0}")]
    Kinesis(String),
    #[error("in-app notifications are pushed, not delivered")]
    InApp,
}

impl Notifier {
    pub fn new(kinesis: Option<aws_sdk_kinesis::Client>, timeout: Duration) -> Self {
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider)
            .map(|b| b.https_or_http().enable_http1().build())
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "no TLS roots: https webhooks will fail");
                hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(
                        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
                            rustls::crypto::aws_lc_rs::default_provider(),
                        ))
                        .with_safe_default_protocol_versions()
                        .expect("default protocol versions")
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth(),
                    )
                    .https_or_http()
                    .enable_http1()
                    .build()
            });
        Self {
            http: Client::builder(TokioExecutor::new()).build(https),
            kinesis,
            timeout,
        }
    }

    /// Delivers `body` for transition `transition_id` to `target`; a webhook must answer 2xx.
    pub async fn deliver(
        &self,
        target: &AlertTarget,
        transition_id: i64,
        partition_key: &str,
        body: &Body,
    ) -> Result<(), DeliveryError> {
        let answer = self
            .send(
                target,
                &format!("streamboard-alert-{transition_id}"),
                partition_key,
                body,
            )
            .await?;
        match answer.status {
            Some(status) if !(200..300).contains(&status) => Err(DeliveryError::Status(status)),
            _ => Ok(()),
        }
    }

    /// Sends `body` to `target` now, whatever it answers, and reports the answer (a test send).
    pub async fn send(
        &self,
        target: &AlertTarget,
        idempotency_key: &str,
        partition_key: &str,
        body: &Body,
    ) -> Result<Answer, DeliveryError> {
        let attempt = async {
            match target {
                AlertTarget::InApp => Err(DeliveryError::InApp),
                AlertTarget::Webhook { url } => self.webhook(url, idempotency_key, body).await,
                AlertTarget::Kinesis { stream } => {
                    let client = self.kinesis.as_ref().ok_or(DeliveryError::NoKinesis)?;
                    let put = client
                        .put_record()
                        .stream_name(stream)
                        .partition_key(partition_key)
                        .data(aws_sdk_kinesis::primitives::Blob::new(body.text.as_bytes()))
                        .send()
                        .await
                        .map_err(|e| {
                            DeliveryError::Kinesis(
                                aws_sdk_kinesis::error::DisplayErrorContext(e).to_string(),
                            )
                        })?;
                    Ok(Answer {
                        status: None,
                        excerpt: format!(
                            "shard {}, sequence number {}",
                            put.shard_id(),
                            put.sequence_number()
                        ),
                    })
                }
            }
        };
        tokio::time::timeout(self.timeout, attempt)
            .await
            .map_err(|_| DeliveryError::Timeout(self.timeout))?
    }

    async fn webhook(
        &self,
        url: &str,
        idempotency_key: &str,
        body: &Body,
    ) -> Result<Answer, DeliveryError> {
        let request = hyper::Request::post(url)
            .header("content-type", body.content_type)
            .header(
                "user-agent",
                concat!("streamboard/", env!("CARGO_PKG_VERSION")),
            )
            .header("idempotency-key", idempotency_key)
            .body(Full::new(bytes::Bytes::copy_from_slice(
                body.text.as_bytes(),
            )))
            .map_err(|e| DeliveryError::Url(e.to_string()))?;
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| DeliveryError::Http(error_chain(&e)))?;
        let status = response.status();
        // Read (so the connection can be reused) at most 64 KiB; keep the start.
        let answer = http_body_util::Limited::new(response.into_body(), 64 * 1024)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Ok(Answer {
            status: Some(status.as_u16()),
            excerpt: excerpt(&answer),
        })
    }
}

/// The start of a receiver's answer as text (at most [`ANSWER_EXCERPT_BYTES`], cut at a
/// character boundary).
fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(ANSWER_EXCERPT_BYTES)]);
    let mut text = text.into_owned();
    if bytes.len() > ANSWER_EXCERPT_BYTES {
        text.push('…');
    }
    text
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// Back-off before retry `attempt` (1-based): 1 s doubling, capped at `max`, no jitter needed
/// (one worker per server).
pub fn retry_delay(attempt: u32, max: Duration) -> Duration {
    Duration::from_secs(1u64 << attempt.saturating_sub(1).min(20)).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_say_their_type_and_answers_are_cut() {
        assert_eq!(
            Body::rendered("{\"a\": 1}".into()).content_type,
            "application/json"
        );
        assert_eq!(
            Body::rendered("slow is firing".into()).content_type,
            "text/plain; charset=utf-8"
        );
        let long = "é".repeat(2000);
        let cut = excerpt(long.as_bytes());
        assert!(
            cut.ends_with('…') && cut.len() <= ANSWER_EXCERPT_BYTES + 3,
            "{}",
            cut.len()
        );
        assert_eq!(excerpt(b"ok"), "ok");
    }

    #[test]
    fn retry_delay_doubles_and_caps() {
        let max = Duration::from_secs(300);
        assert_eq!(retry_delay(1, max), Duration::from_secs(1));
        assert_eq!(retry_delay(2, max), Duration::from_secs(2));
        assert_eq!(retry_delay(5, max), Duration::from_secs(16));
        assert_eq!(retry_delay(30, max), max);
    }
}
