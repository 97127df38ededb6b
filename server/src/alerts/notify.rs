//! Delivery of one notification payload to one external target.

use contract::api::AlertTarget;
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use std::time::Duration;

type HttpsClient = Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<bytes::Bytes>,
>;

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

    /// Delivers `payload` (JSON text) for transition `transition_id` to `target`.
    pub async fn deliver(
        &self,
        target: &AlertTarget,
        transition_id: i64,
        partition_key: &str,
        payload: &str,
    ) -> Result<(), DeliveryError> {
        let attempt = async {
            match target {
                AlertTarget::InApp => Err(DeliveryError::InApp),
                AlertTarget::Webhook { url } => self.webhook(url, transition_id, payload).await,
                AlertTarget::Kinesis { stream } => {
                    let client = self.kinesis.as_ref().ok_or(DeliveryError::NoKinesis)?;
                    client
                        .put_record()
                        .stream_name(stream)
                        .partition_key(partition_key)
                        .data(aws_sdk_kinesis::primitives::Blob::new(payload.as_bytes()))
                        .send()
                        .await
                        .map_err(|e| {
                            DeliveryError::Kinesis(
                                aws_sdk_kinesis::error::DisplayErrorContext(e).to_string(),
                            )
                        })?;
                    Ok(())
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
        transition_id: i64,
        payload: &str,
    ) -> Result<(), DeliveryError> {
        let request = hyper::Request::post(url)
            .header("content-type", "application/json")
            .header(
                "user-agent",
                concat!("streamboard/", env!("CARGO_PKG_VERSION")),
            )
            .header(
                "idempotency-key",
                format!("streamboard-alert-{transition_id}"),
            )
            .body(Full::new(bytes::Bytes::copy_from_slice(payload.as_bytes())))
            .map_err(|e| DeliveryError::Url(e.to_string()))?;
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| DeliveryError::Http(error_chain(&e)))?;
        let status = response.status();
        // Drain the body so the connection can be reused.
        let _ = response.into_body().collect().await;
        if status.is_success() {
            Ok(())
        } else {
            Err(DeliveryError::Status(status.as_u16()))
        }
    }
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
    fn retry_delay_doubles_and_caps() {
        let max = Duration::from_secs(300);
        assert_eq!(retry_delay(1, max), Duration::from_secs(1));
        assert_eq!(retry_delay(2, max), Duration::from_secs(2));
        assert_eq!(retry_delay(5, max), Duration::from_secs(16));
        assert_eq!(retry_delay(30, max), max);
    }
}
