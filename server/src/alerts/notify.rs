//! Delivery of one notification body to one external target, and a test send that reports
//! what the target answered.
//!
//! Webhooks are guarded against server-side request forgery ([`WebhookGuard`]): a webhook
//! may not reach a loopback, private, link-local or otherwise internal address unless
//! `--alerts-webhook-allow` names it. The rule API checks a URL when a rule is saved; delivery
//! checks again on every connection, on the addresses the host name resolves to at that
//! moment (the connector resolves through the guard and connects only to the addresses it
//! checked), so a name re-pointed at an internal address later (DNS rebinding) is refused.
//! Error texts name the host, never the URL's credentials.

use contract::api::AlertTarget;
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{
        Client,
        connect::{HttpConnector, dns::Name},
    },
    rt::TokioExecutor,
};
use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

type HttpsClient =
    Client<hyper_rustls::HttpsConnector<HttpConnector<GuardedResolver>>, Full<bytes::Bytes>>;

/// One `--alerts-webhook-allow` entry: an address, a CIDR range or a host name.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allowed {
    Range(IpAddr, u8),
    Host(String),
}

/// Which webhook destinations are refused (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookGuard {
    allowed: Vec<Allowed>,
}

/// Why an address is internal, or `None` for a public one.
pub fn internal_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                Some("loopback")
            } else if v4.is_private() {
                Some("private")
            } else if v4.is_link_local() {
                Some("link-local")
            } else if v4.is_unspecified() || a == 0 {
                Some("unspecified")
            } else if a == 100 && (64..128).contains(&b) {
                Some("shared (carrier-grade NAT)")
            } else if v4.is_broadcast() || v4.is_multicast() || a >= 240 {
                Some("broadcast, multicast or reserved")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return internal_kind(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if first & 0xfe00 == 0xfc00 {
                Some("private (unique local)")
            } else if first & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if v6.is_multicast() {
                Some("multicast")
            } else {
                None
            }
        }
    }
}

fn in_range(ip: IpAddr, base: IpAddr, bits: u8) -> bool {
    match (ip, base) {
        (IpAddr::V4(ip), IpAddr::V4(base)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(base) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(base)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(base) & mask
        }
        _ => false,
    }
}

/// The host of a URL without brackets, lower case; `None` when the URL does not parse.
fn url_host(url: &str) -> Option<String> {
    let uri: hyper::Uri = url.parse().ok()?;
    let host = uri.host()?;
    Some(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase(),
    )
}

impl WebhookGuard {
    /// Reads `--alerts-webhook-allow` entries (`10.0.0.5`, `10.1.0.0/16`, `hooks.internal`).
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let mut allowed = Vec::new();
        for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            let parsed = match entry.split_once('/') {
                Some((base, bits)) => {
                    let base: IpAddr = base
                        .parse()
                        .map_err(|_| format!("{entry:?}: not an address range"))?;
                    let max = if base.is_ipv4() { 32 } else { 128 };
                    let bits: u8 = bits.parse().ok().filter(|b| *b <= max).ok_or_else(|| {
                        format!("{entry:?}: the prefix length must be 0 to {max}")
                    })?;
                    Allowed::Range(base, bits)
                }
                None => match entry.parse::<IpAddr>() {
                    Ok(ip) => Allowed::Range(ip, if ip.is_ipv4() { 32 } else { 128 }),
                    Err(_) => Allowed::Host(entry.trim_end_matches('.').to_ascii_lowercase()),
                },
            };
            allowed.push(parsed);
        }
        Ok(Self { allowed })
    }

    fn host_allowed(&self, host: &str) -> bool {
        self.allowed
            .iter()
            .any(|a| matches!(a, Allowed::Host(h) if h == host.trim_end_matches('.')))
    }

    /// Refuses `ip` (reached for `host`) when it is internal and not allowed.
    pub fn check_address(&self, host: &str, ip: IpAddr) -> Result<(), String> {
        let Some(kind) = internal_kind(ip) else {
            return Ok(());
        };
        let allowed = self.host_allowed(host)
            || self
                .allowed
                .iter()
                .any(|a| matches!(a, Allowed::Range(base, bits) if in_range(ip, *base, *bits)));
        if allowed {
            Ok(())
        } else {
            Err(format!(
                "webhook host {host} is {ip}, a {kind} address; internal receivers must be \
                 allowed with --alerts-webhook-allow"
            ))
        }
    }

    /// Checks a webhook URL when a rule is saved: an address in the URL, or the addresses its
    /// host name resolves to now (a name that does not resolve yet is checked at delivery).
    pub async fn check_url(&self, url: &str) -> Result<(), String> {
        let Some(host) = url_host(url) else {
            return Err("the webhook url does not parse".to_string());
        };
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self.check_address(&host, ip);
        }
        if host == "localhost" || host.ends_with(".localhost") {
            return self.check_address(&host, IpAddr::from([127, 0, 0, 1]));
        }
        if self.host_allowed(&host) {
            return Ok(());
        }
        if let Ok(addresses) = tokio::net::lookup_host((host.as_str(), 0)).await {
            for address in addresses {
                self.check_address(&host, address.ip())?;
            }
        }
        Ok(())
    }
}

/// Resolves webhook host names and drops the connection unless every address passes the
/// guard: the connector then connects only to addresses that were checked.
#[derive(Clone)]
pub struct GuardedResolver {
    guard: Arc<WebhookGuard>,
}

impl tower::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let guard = self.guard.clone();
        Box::pin(async move {
            let host = name.as_str().to_ascii_lowercase();
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            for address in &addresses {
                guard
                    .check_address(&host, address.ip())
                    .map_err(|message| {
                        std::io::Error::new(std::io::ErrorKind::PermissionDenied, message)
                    })?;
            }
            Ok(addresses.into_iter())
        })
    }
}

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
    guard: Arc<WebhookGuard>,
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
    #[error("{0}")]
    Refused(String),
    #[error("no Kinesis endpoint is configured for alert records")]
    NoKinesis,
    #[error("PutRecord failed: {0}")]
    Kinesis(String),
    #[error("in-app notifications are pushed, not delivered")]
    InApp,
}

impl Notifier {
    pub fn new(kinesis: Option<aws_sdk_kinesis::Client>, timeout: Duration) -> Self {
        Self::guarded(kinesis, timeout, WebhookGuard::default())
    }

    /// A notifier whose webhooks pass `guard` (see the module documentation).
    pub fn guarded(
        kinesis: Option<aws_sdk_kinesis::Client>,
        timeout: Duration,
        guard: WebhookGuard,
    ) -> Self {
        let guard = Arc::new(guard);
        let connector = || {
            let mut http = HttpConnector::new_with_resolver(GuardedResolver {
                guard: guard.clone(),
            });
            http.enforce_http(false);
            http.set_connect_timeout(Some(timeout));
            http
        };
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider)
            .map(|b| b.https_or_http().enable_http1().wrap_connector(connector()))
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
                    .wrap_connector(connector())
            });
        Self {
            http: Client::builder(TokioExecutor::new()).build(https),
            kinesis,
            timeout,
            guard,
        }
    }

    /// The guard webhooks pass.
    pub fn guard(&self) -> &WebhookGuard {
        &self.guard
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
        // An address in the URL is not resolved, so the resolver never sees it: check here.
        if let Some(host) = url_host(url)
            && let Ok(ip) = host.parse::<IpAddr>()
        {
            self.guard
                .check_address(&host, ip)
                .map_err(DeliveryError::Refused)?;
        }
        // Credentials in the URL go in the Authorization header, never on the request line.
        let (url, authorization) = super::redact::take_credentials(url);
        let mut request = hyper::Request::post(url.as_str());
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        let request = request
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
    fn internal_addresses_are_named_and_the_allow_list_opens_them() {
        for (ip, kind) in [
            ("127.0.0.1", "loopback"),
            ("10.2.3.4", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("0.0.0.0", "unspecified"),
            ("100.64.0.1", "shared (carrier-grade NAT)"),
            ("::1", "loopback"),
            ("fd00::1", "private (unique local)"),
            ("fe80::1", "link-local"),
            ("::ffff:127.0.0.1", "loopback"),
        ] {
            assert_eq!(internal_kind(ip.parse().unwrap()), Some(kind), "{ip}");
        }
        assert_eq!(internal_kind("93.184.216.34".parse().unwrap()), None);
        let none = WebhookGuard::default();
        let refused = none
            .check_address("hooks.example", "10.0.0.5".parse().unwrap())
            .unwrap_err();
        assert!(
            refused.contains("a private address") && refused.contains("--alerts-webhook-allow")
        );
        let guard = WebhookGuard::parse(&["10.0.0.0/8".into(), "hooks.internal".into()]).unwrap();
        assert!(
            guard
                .check_address("x", "10.9.9.9".parse().unwrap())
                .is_ok()
        );
        assert!(
            guard
                .check_address("x", "192.168.0.1".parse().unwrap())
                .is_err()
        );
        assert!(
            guard
                .check_address("hooks.internal", "192.168.0.1".parse().unwrap())
                .is_ok()
        );
        assert!(WebhookGuard::parse(&["10.0.0.0/40".into()]).is_err());
    }

    /// A real receiver on loopback; returns its port and how many requests it got.
    async fn receiver() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let counted = hits.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async { "ok" }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        (port, hits)
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_at_delivery_unless_allowed() {
        let (port, hits) = receiver().await;
        let body = Body::json("{}".into());
        let target = |host: &str| AlertTarget::Webhook {
            url: format!("http://user:s3cret@{host}:{port}/hook"),
        };
        let timeout = Duration::from_secs(5);
        let guarded = Notifier::new(None, timeout);
        // `localhost` resolves to 127.0.0.1 only at delivery, in the connector.
        for host in ["localhost", "127.0.0.1"] {
            let error = guarded
                .deliver(&target(host), 1, "k", &body)
                .await
                .unwrap_err();
            let text = error.to_string();
            assert!(text.contains("loopback address"), "{text}");
            assert!(
                !text.contains("s3cret"),
                "credentials never in errors: {text}"
            );
        }
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);
        assert!(
            guarded
                .guard()
                .check_url(&format!("http://127.0.0.1:{port}/"))
                .await
                .is_err()
        );

        let allowed = Notifier::guarded(
            None,
            timeout,
            WebhookGuard::parse(&["127.0.0.1".into(), "::1".into()]).unwrap(),
        );
        allowed
            .deliver(&target("localhost"), 2, "k", &body)
            .await
            .unwrap();
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
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
