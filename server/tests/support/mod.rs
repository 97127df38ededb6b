//! Shared test helpers: start a Kinesis-compatible peer (the embedded endpoint or
//! kinesis-local) on a free loopback port, with an aws-sdk-kinesis client for it; stop it when
//! dropped (the embedded one by cancelling its token, kinesis-local by killing its pid). Also
//! stream set-up and waits, raw HTTP exchanges, and WebSocket clients of a server's `/ws`.

#![allow(dead_code)]

pub mod checkpoint_sink;
pub mod consumer_harness;
pub mod serve;

use aws_sdk_kinesis::Client;
use contract::protocol::ClientMessage;
use futures_util::SinkExt;
use std::{
    net::{SocketAddr, TcpListener},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use streamboard::kinesis::client::{KinesisTarget, build_client};
use streamboard_endpoint::{Endpoint, EndpointConfig};
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};
use tokio_util::sync::CancellationToken;

/// Upper bound for any single wait; healthy peers answer in milliseconds.
pub const WAIT: Duration = Duration::from_secs(20);

/// Which peer a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerKind {
    Embedded,
    KinesisLocal,
}

enum Running {
    Embedded {
        endpoint: Option<Endpoint>,
        shutdown: CancellationToken,
        _dir: tempfile::TempDir,
    },
    KinesisLocal {
        child: Child,
    },
}

/// A running peer and a client for it.
pub struct Peer {
    pub kind: PeerKind,
    pub url: String,
    pub addr: SocketAddr,
    pub client: Client,
    running: Running,
}

impl Peer {
    pub fn is_local_mock(&self) -> bool {
        self.kind == PeerKind::KinesisLocal
    }

    /// Starts the peer named by `STREAMBOARD_TEST_PEER`: `embedded` (default) or
    /// `kinesis-local`.
    pub async fn start() -> Self {
        start(PeerKind::from_env()).await
    }

    pub fn name(&self) -> &'static str {
        match self.kind {
            PeerKind::Embedded => "embedded",
            PeerKind::KinesisLocal => "kinesis-local",
        }
    }

    pub fn endpoint_url(&self) -> String {
        self.url.clone()
    }

    pub fn target(&self) -> KinesisTarget {
        KinesisTarget::Local {
            endpoint_url: self.url.clone(),
        }
    }

    pub async fn client(&self) -> Client {
        self.client.clone()
    }

    /// Replaces the embedded endpoint's fault injection while it runs.
    pub fn set_faults(&self, faults: streamboard_endpoint::faults::FaultConfig) {
        match &self.running {
            Running::Embedded {
                endpoint: Some(endpoint),
                ..
            } => endpoint.set_faults(faults),
            _ => panic!("fault injection needs the embedded endpoint"),
        }
    }

    /// Errors and delays the embedded endpoint injected so far.
    pub fn injected_faults(&self) -> u64 {
        match &self.running {
            Running::Embedded {
                endpoint: Some(endpoint),
                ..
            } => endpoint.injected_faults(),
            _ => 0,
        }
    }
}

impl PeerKind {
    /// `STREAMBOARD_TEST_PEER`: `embedded` (default) or `kinesis-local`.
    pub fn from_env() -> Self {
        match std::env::var("STREAMBOARD_TEST_PEER").as_deref() {
            Ok("kinesis-local") => PeerKind::KinesisLocal,
            Ok("embedded") | Err(_) => PeerKind::Embedded,
            Ok(other) => {
                panic!("unknown STREAMBOARD_TEST_PEER `{other}` (embedded, kinesis-local)")
            }
        }
    }
}

/// A stream name unique to this test run.
pub fn unique_stream(prefix: &str) -> String {
    unique_name(prefix)
}

impl Drop for Peer {
    fn drop(&mut self) {
        match &mut self.running {
            Running::Embedded {
                endpoint, shutdown, ..
            } => {
                shutdown.cancel();
                drop(endpoint.take());
            }
            Running::KinesisLocal { child } => {
                // Stop by pid: this child only, never by name.
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Workspace root (where package.json and node_modules live).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("server/ has a parent")
        .to_path_buf()
}

/// A port free right now on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A stream name unique to this test run.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::random::<u32>())
}

fn set_aws_env() {
    // SAFETY: tests set the same constant values; nothing reads them concurrently in a way
    // that depends on the old value.
    unsafe {
        std::env::set_var("AWS_REGION", "us-east-1");
        std::env::set_var("AWS_ACCESS_KEY_ID", "local");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "local");
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    }
}

/// Starts the embedded endpoint with `config` (its listen address is replaced by port 0).
pub async fn start_embedded_with(mut config: EndpointConfig, dir: tempfile::TempDir) -> Peer {
    set_aws_env();
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    let shutdown = CancellationToken::new();
    let endpoint = Endpoint::start(config, shutdown.clone())
        .await
        .expect("the embedded endpoint starts");
    let url = endpoint.url();
    let addr = endpoint.local_addr();
    let client = build_client(&KinesisTarget::Local {
        endpoint_url: url.clone(),
    })
    .await;
    Peer {
        kind: PeerKind::Embedded,
        url,
        addr,
        client,
        running: Running::Embedded {
            endpoint: Some(endpoint),
            shutdown,
            _dir: dir,
        },
    }
}

pub async fn start(kind: PeerKind) -> Peer {
    match kind {
        PeerKind::Embedded => {
            let dir = tempfile::tempdir().expect("a temp dir");
            let config = EndpointConfig::for_data_dir(dir.path());
            start_embedded_with(config, dir).await
        }
        PeerKind::KinesisLocal => start_kinesis_local().await,
    }
}

async fn start_kinesis_local() -> Peer {
    set_aws_env();
    let root = workspace_root();
    let package = root.join("node_modules/kinesis-local");
    assert!(
        package.join("main.js").exists(),
        "node_modules/kinesis-local is missing: run `npm ci` in {} first",
        root.display()
    );
    let plain = free_port();
    let tls = free_port();
    let mut command = Command::new("node");
    command
        .arg(package.join("main.js"))
        .current_dir(&root)
        .env("KINESIS_MOCK_CERT_PATH", package.join("server.json"))
        .env("KINESIS_MOCK_PLAIN_PORT", plain.to_string())
        .env("KINESIS_MOCK_TLS_PORT", tls.to_string())
        .env("SHARD_LIMIT", "1000")
        .env("LOG_LEVEL", "WARN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for var in [
        "CREATE_STREAM_DURATION",
        "DELETE_STREAM_DURATION",
        "SPLIT_SHARD_DURATION",
        "MERGE_SHARDS_DURATION",
        "UPDATE_SHARD_COUNT_DURATION",
        "REGISTER_STREAM_CONSUMER_DURATION",
        "DEREGISTER_STREAM_CONSUMER_DURATION",
    ] {
        command.env(var, "0ms");
    }
    let mut child = command
        .spawn()
        .expect("node starts (is Node.js installed?)");
    let url = format!("http://127.0.0.1:{plain}");
    let addr: SocketAddr = ([127, 0, 0, 1], plain).into();
    let client = build_client(&KinesisTarget::Local {
        endpoint_url: url.clone(),
    })
    .await;
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("kinesis-local exited at start-up: {status}");
        }
        if tokio::net::TcpStream::connect(addr).await.is_ok()
            && client.list_streams().send().await.is_ok()
        {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kinesis-local did not become ready within {WAIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Peer {
        kind: PeerKind::KinesisLocal,
        url,
        addr,
        client,
        running: Running::KinesisLocal { child },
    }
}

/// Polls `condition` until it holds or [`WAIT`] passes.
pub async fn eventually<F, Fut>(what: &str, condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    eventually_within(what, WAIT, condition).await
}

/// Polls `condition` until it holds or `limit` passes.
pub async fn eventually_within<F, Fut>(what: &str, limit: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Creates a provisioned stream of `shards` shards and waits until it is ACTIVE.
pub async fn create_stream(client: &Client, name: &str, shards: i32) {
    client
        .create_stream()
        .stream_name(name)
        .shard_count(shards)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "CreateStream {name}: {}",
                aws_sdk_kinesis::error::DisplayErrorContext(e)
            )
        });
    wait_active(client, name).await;
}

/// Waits until the stream is ACTIVE (kinesis-local passes through CREATING/UPDATING).
pub async fn wait_active(client: &Client, name: &str) {
    eventually(&format!("stream {name} ACTIVE"), || async {
        client
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .ok()
            .and_then(|o| o.stream_description_summary)
            .is_some_and(|s| s.stream_status == aws_sdk_kinesis::types::StreamStatus::Active)
    })
    .await;
}

/// A raw HTTP/1.1 POST to the peer, for what the SDK cannot send (no Authorization header,
/// malformed JSON, unknown operations). Returns status and body.
pub async fn raw_post(
    addr: SocketAddr,
    target: Option<&str>,
    authorization: bool,
    body: &[u8],
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut request = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(target) = target {
        request.push_str(&format!("X-Amz-Target: {target}\r\n"));
    }
    if authorization {
        request.push_str("X-Amz-Date: 20260101T000000Z\r\n");
        request.push_str("Authorization: AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=00\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    stream.write_all(body).await.expect("write body");
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut response))
        .await
        .expect("the peer answers in time")
        .expect("read");
    let text = String::from_utf8_lossy(&response).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A minimal HTTP/1.1 request to a server (Connection: close); returns the status and the
/// JSON body (`Null` when empty).
pub async fn http_json(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let (status, text) = http_text(addr, method, path, body).await;
    let json = if text.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    };
    (status, json)
}

/// As [`http_json`], with the body as text (a chunked body is returned with its framing).
pub async fn http_text(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        let text = String::from_utf8(response).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, body.to_string())
    };
    tokio::time::timeout(WAIT, exchange)
        .await
        .expect("the server answers in time")
}

/// Feeds one batch of `stream` straight into a running server's engine (as the consumer
/// would) and waits until its flush has committed.
pub async fn ingest(
    server: &streamboard::Server,
    stream: &str,
    records: Vec<streamboard::kinesis::ConsumedRecord>,
) {
    server
        .engine_batches()
        .send(streamboard::kinesis::RecordBatch {
            stream: stream.into(),
            shard: "shardId-000000000000".into(),
            records,
            millis_behind_latest: Some(0),
            position: streamboard::kinesis::Checkpoint::default(),
        })
        .await
        .unwrap();
    server.engine().flush().await.unwrap().unwrap();
}

/// A WebSocket client of a server's `/ws`.
pub type WsSocket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// How [`ws_upgrade`] connects.
#[derive(Debug, Clone, Copy, Default)]
pub struct WsOptions<'a> {
    /// The Origin header to send, if any.
    pub origin: Option<&'a str>,
    /// The client socket's receive buffer in bytes: a small one makes a client that stops
    /// reading stall the server's sends quickly.
    pub recv_buffer: Option<u32>,
    /// The Authorization header to send, if any (`Bearer sbt_…`).
    pub authorization: Option<&'a str>,
}

/// Opens a WebSocket to `ws://{addr}/ws`; a refused upgrade (e.g. a 403) is returned as the
/// handshake's error.
pub async fn ws_upgrade(
    addr: SocketAddr,
    options: WsOptions<'_>,
) -> Result<WsSocket, tungstenite::Error> {
    let mut request = format!("ws://{addr}/ws").into_client_request()?;
    if let Some(origin) = options.origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().expect("a valid Origin header"));
    }
    if let Some(authorization) = options.authorization {
        request.headers_mut().insert(
            "authorization",
            authorization.parse().expect("a valid Authorization header"),
        );
    }
    let socket = tokio::net::TcpSocket::new_v4()?;
    if let Some(bytes) = options.recv_buffer {
        socket.set_recv_buffer_size(bytes)?;
    }
    let tcp = socket.connect(addr).await?;
    let (ws, _) = tokio_tungstenite::client_async(request, tcp).await?;
    Ok(ws)
}

/// As [`ws_upgrade`], for a test that expects the upgrade to be accepted.
pub async fn ws_connect(addr: SocketAddr, options: WsOptions<'_>) -> WsSocket {
    ws_upgrade(addr, options)
        .await
        .unwrap_or_else(|error| panic!("WebSocket upgrade at {addr} refused: {error}"))
}

/// Sends one client message as a text frame.
pub async fn ws_send(socket: &mut WsSocket, message: ClientMessage) {
    socket
        .send(Message::text(message.to_json()))
        .await
        .expect("the WebSocket accepts the frame");
}
