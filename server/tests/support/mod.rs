//! Test support: a Kinesis-compatible peer started on free loopback ports and stopped by pid.
//!
//! [`Peer`] hides which server it is, so the same tests can run against kinesis-local (npm)
//! now and the embedded endpoint later: add a variant and choose it with
//! `STREAMBOARD_TEST_PEER` (default `kinesis-local`).
#![allow(dead_code)]

use aws_sdk_kinesis::Client;
use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use streamboard::kinesis::client::{KinesisTarget, build_client};

/// Upper bound for a peer to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running Kinesis-compatible server, stopped on drop.
pub enum Peer {
    KinesisLocal(KinesisLocal),
}

impl Peer {
    /// Starts the peer named by `STREAMBOARD_TEST_PEER` (only `kinesis-local` for now).
    pub async fn start() -> Self {
        let which =
            std::env::var("STREAMBOARD_TEST_PEER").unwrap_or_else(|_| "kinesis-local".into());
        match which.as_str() {
            "kinesis-local" => Peer::KinesisLocal(KinesisLocal::start().await),
            other => panic!("unknown STREAMBOARD_TEST_PEER `{other}` (known: kinesis-local)"),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Peer::KinesisLocal(_) => "kinesis-local",
        }
    }

    pub fn endpoint_url(&self) -> String {
        match self {
            Peer::KinesisLocal(peer) => format!("http://127.0.0.1:{}", peer.port),
        }
    }

    pub fn target(&self) -> KinesisTarget {
        KinesisTarget::Local {
            endpoint_url: self.endpoint_url(),
        }
    }

    pub async fn client(&self) -> Client {
        build_client(&self.target()).await
    }
}

/// kinesis-local (kinesis-mock) from the workspace's node_modules.
pub struct KinesisLocal {
    child: Child,
    port: u16,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

impl KinesisLocal {
    pub async fn start() -> Self {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let package = root.join("node_modules/kinesis-local");
        let main = package.join("main.js");
        assert!(
            main.exists(),
            "{} is missing: run `npm ci` at the workspace root",
            main.display()
        );
        let port = free_port();
        let tls_port = free_port();
        let mut command = Command::new("node");
        command
            .arg(&main)
            .env("KINESIS_MOCK_CERT_PATH", package.join("server.json"))
            .env("KINESIS_MOCK_PLAIN_PORT", port.to_string())
            .env("KINESIS_MOCK_TLS_PORT", tls_port.to_string())
            .env("SHARD_LIMIT", "1000")
            .env("LOG_LEVEL", "ERROR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for variable in [
            "CREATE_STREAM_DURATION",
            "DELETE_STREAM_DURATION",
            "SPLIT_SHARD_DURATION",
            "MERGE_SHARDS_DURATION",
            "UPDATE_SHARD_COUNT_DURATION",
            "REGISTER_STREAM_CONSUMER_DURATION",
            "DEREGISTER_STREAM_CONSUMER_DURATION",
        ] {
            command.env(variable, "0ms");
        }
        let child = command.spawn().expect("node starts kinesis-local");
        let peer = Self { child, port };
        let client = build_client(&KinesisTarget::Local {
            endpoint_url: format!("http://127.0.0.1:{port}"),
        })
        .await;
        let started = Instant::now();
        loop {
            if client.list_streams().send().await.is_ok() {
                return peer;
            }
            assert!(
                started.elapsed() < READY_TIMEOUT,
                "kinesis-local did not answer on port {port} within {READY_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for KinesisLocal {
    fn drop(&mut self) {
        // Kill exactly the process we started, by its pid, and reap it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A stream name unique to this process and call.
pub fn unique_stream(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
