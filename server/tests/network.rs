//! A server on a network: HTTPS with `--tls-cert/--tls-key` (HSTS, `Secure` session cookie),
//! slow and huge request heads cut off (`--header-read-timeout`, 431), and open WebSockets
//! closed as soon as the session or token they were opened with ends. Real servers on
//! loopback ports, a real TLS client (rustls) with a certificate made for the test.

mod support;

use contract::{
    auth::Role,
    protocol::{CLOSE_POLICY_VIOLATION, ClientMessage, PROTOCOL_VERSION},
};
use futures_util::StreamExt;
use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};
use streamboard::{
    Server, ServerError,
    auth::{Auth, AuthMode},
    config::ServeConfig,
    storage::Database,
};
use support::{WsOptions, WsSocket, ws_connect, ws_send};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

const PASSWORD: &str = "a long enough password";

/// A self-signed certificate for `localhost` and 127.0.0.1, written as PEM files into `dir`.
fn certificate(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, Vec<u8>) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    (cert, key, certified.cert.der().to_vec())
}

/// A TLS client that trusts only `cert_der`.
fn tls_client(cert_der: Vec<u8>) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from(cert_der))
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// One HTTP/1.1 exchange (Connection: close) over `stream`; returns the whole response.
async fn exchange<S>(mut stream: S, request: &str) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .expect("the server answers in time")
        .unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next().unwrap_or("");
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then_some(value.trim())
    })
}

fn status(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn https_serves_pages_with_hsts_and_a_secure_session_cookie() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, der) = certificate(dir.path());
    {
        let database = Database::open(dir.path()).await.unwrap();
        let mut settings = ServeConfig::for_data_dir(dir.path()).server;
        settings.auth = Some(AuthMode::Password);
        Auth::new(database.clone(), settings.auth_config())
            .create_user("ada", Role::Viewer, PASSWORD)
            .await
            .unwrap();
        database.close().await;
    }
    let mut config = ServeConfig::for_data_dir(dir.path());
    config.server.auth = Some(AuthMode::Password);
    config.server.tls_cert = Some(cert);
    config.server.tls_key = Some(key);
    let server = Server::start(config, CancellationToken::new())
        .await
        .unwrap();
    let addr = server.local_addr();
    let connector = tls_client(der);
    let connect = || async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        connector.connect(name, tcp).await.unwrap()
    };

    let health = exchange(
        connect().await,
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status(&health), 200, "{health}");
    assert_eq!(
        header(&health, "strict-transport-security"),
        Some("max-age=31536000"),
        "{health}"
    );

    let form = format!("name=ada&password={}&next=%2F", PASSWORD.replace(' ', "+"));
    let login = exchange(
        connect().await,
        &format!(
            "POST /login HTTP/1.1\r\nHost: localhost\r\nOrigin: https://localhost\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{form}",
            form.len()
        ),
    )
    .await;
    assert_eq!(status(&login), 303, "{login}");
    let cookie = header(&login, "set-cookie").expect("a session cookie");
    assert!(cookie.contains("; Secure"), "{cookie}");
    let session = cookie.split(';').next().unwrap();
    let page = exchange(
        connect().await,
        &format!("GET /streams HTTP/1.1\r\nHost: localhost\r\nCookie: {session}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(status(&page), 200, "{}", &page[..page.len().min(300)]);

    // Plain HTTP to the TLS port gets no page.
    let plain = exchange(
        tokio::net::TcpStream::connect(addr).await.unwrap(),
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_ne!(status(&plain), 200, "{plain}");
    server.shutdown();
    server.wait().await.unwrap();
}

#[tokio::test]
async fn a_certificate_that_cannot_be_read_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _, _) = certificate(dir.path());
    let garbage = dir.path().join("not-a-key.pem");
    std::fs::write(&garbage, "hello").unwrap();
    let mut config = ServeConfig::for_data_dir(dir.path());
    config.server.tls_cert = Some(cert);
    config.server.tls_key = Some(garbage.clone());
    let Err(error) = Server::start(config, CancellationToken::new()).await else {
        panic!("a server started with a key file that holds no key");
    };
    assert!(matches!(error, ServerError::Tls(_)), "{error:?}");
    let text = error.to_string();
    assert!(text.contains(&garbage.display().to_string()), "{text}");
}

/// Sends `head` a few bytes at a time, one piece every 100 ms, never finishing it; returns how
/// long after the first byte the server closed the connection (None: still open after 10 s).
async fn dribble(
    mut stream: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
) -> Option<Duration> {
    let head =
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ".to_string() + &"a".repeat(10_000);
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    for piece in head.as_bytes().chunks(4) {
        if stream.write_all(piece).await.is_err() {
            return Some(started.elapsed());
        }
        match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {} // an answer (408); the close follows
            Err(_) => {}
        }
        if started.elapsed() > Duration::from_secs(10) {
            return None;
        }
    }
    None
}

#[tokio::test]
async fn slow_request_heads_are_cut_off_and_huge_ones_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = certificate(dir.path());
    let mut config = ServeConfig::for_data_dir(dir.path());
    config.server.header_read_timeout = Duration::from_secs(1);
    let server = Server::start(config, CancellationToken::new())
        .await
        .unwrap();
    let addr = server.local_addr();

    let closed = dribble(tokio::net::TcpStream::connect(addr).await.unwrap()).await;
    let closed = closed.expect("a request head sent slowly is cut off");
    assert!(
        closed >= Duration::from_millis(900) && closed < Duration::from_secs(5),
        "cut off after {closed:?}, at a 1 s header read timeout"
    );
    // An idle connection that never sends a byte is closed too.
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 64];
    match tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf)).await {
        Ok(Ok(0) | Err(_)) => {}
        Ok(Ok(n)) => assert!(
            String::from_utf8_lossy(&buf[..n]).contains(" 408 "),
            "an idle connection gets 408 or a close"
        ),
        Err(_) => panic!("an idle connection is still open after 5 s"),
    }

    // A 100 KiB header: 431 before more is buffered.
    let huge = exchange(
        tokio::net::TcpStream::connect(addr).await.unwrap(),
        &format!(
            "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
            "b".repeat(100 * 1024)
        ),
    )
    .await;
    assert_eq!(status(&huge), 431, "{}", &huge[..huge.len().min(200)]);
    // And the server still answers others at once.
    let ok = exchange(
        tokio::net::TcpStream::connect(addr).await.unwrap(),
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status(&ok), 200);
    server.shutdown();
    server.wait().await.unwrap();

    // Over TLS, a client that connects and never completes the handshake is cut off too.
    let mut config = ServeConfig::for_data_dir(dir.path());
    config.server.header_read_timeout = Duration::from_secs(1);
    config.server.tls_cert = Some(cert);
    config.server.tls_key = Some(key);
    let server = Server::start(config, CancellationToken::new())
        .await
        .unwrap();
    let started = Instant::now();
    let mut silent = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let read = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0) | Err(_))),
        "a silent TLS client is disconnected: {read:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
    server.shutdown();
    server.wait().await.unwrap();
}

/// Says hello and reads the server's hello.
async fn hello(socket: &mut WsSocket) {
    ws_send(
        socket,
        ClientMessage::Hello {
            protocol: PROTOCOL_VERSION,
        },
    )
    .await;
    let greeting = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .expect("the server greets in time")
        .expect("a frame")
        .expect("no error");
    assert!(
        greeting.to_text().unwrap().contains("hello"),
        "{greeting:?}"
    );
}

/// Waits for the server to close `socket`; returns the close code and how long it took.
async fn closed(socket: &mut WsSocket) -> (u16, Duration) {
    let started = Instant::now();
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("the server closes the socket in time");
        match frame {
            Some(Ok(Message::Close(Some(frame)))) => {
                return (u16::from(frame.code), started.elapsed());
            }
            Some(Ok(Message::Close(None))) | None | Some(Err(_)) => {
                panic!("closed without a close frame")
            }
            Some(Ok(_)) => {} // heartbeats
        }
    }
}

/// An authenticated HTTP request to the real server; returns the status.
async fn authed(addr: SocketAddr, method: &str, path: &str, token: &str) -> u16 {
    status(
        &exchange(
            tokio::net::TcpStream::connect(addr).await.unwrap(),
            &format!(
                "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n"
            ),
        )
        .await,
    )
}

#[tokio::test]
async fn open_websockets_close_when_their_token_or_session_ends() {
    let dir = tempfile::tempdir().unwrap();
    let (admin_token, viewer_token, viewer_token_id, session, viewer_id) = {
        let database = Database::open(dir.path()).await.unwrap();
        let mut settings = ServeConfig::for_data_dir(dir.path()).server;
        settings.auth = Some(AuthMode::Password);
        let auth = Auth::new(database.clone(), settings.auth_config());
        auth.create_user("root", Role::Admin, PASSWORD)
            .await
            .unwrap();
        let viewer_id = auth
            .create_user("ada", Role::Viewer, PASSWORD)
            .await
            .unwrap();
        let (_, admin) = auth.create_token("ops", Role::Admin, "root").await.unwrap();
        let (info, viewer) = auth
            .create_token("script", Role::Viewer, "root")
            .await
            .unwrap();
        let session = auth
            .login("ada", PASSWORD, IpAddr::V4(Ipv4Addr::LOCALHOST))
            .await
            .unwrap();
        database.close().await;
        (admin, viewer, info.id, session.secret, viewer_id)
    };
    let mut config = ServeConfig::for_data_dir(dir.path());
    config.server.auth = Some(AuthMode::Password);
    let server = Server::start(config, CancellationToken::new())
        .await
        .unwrap();
    let addr = server.local_addr();

    // A socket opened with a token closes, with 1008, when the token is revoked.
    let bearer = format!("Bearer {viewer_token}");
    let mut by_token = ws_connect(
        addr,
        WsOptions {
            authorization: Some(&bearer),
            ..WsOptions::default()
        },
    )
    .await;
    hello(&mut by_token).await;
    // A socket of another credential stays open throughout.
    let admin_bearer = format!("Bearer {admin_token}");
    let mut bystander = ws_connect(
        addr,
        WsOptions {
            authorization: Some(&admin_bearer),
            ..WsOptions::default()
        },
    )
    .await;
    hello(&mut bystander).await;
    assert_eq!(
        authed(
            addr,
            "DELETE",
            &format!("/api/v1/tokens/{viewer_token_id}"),
            &admin_token
        )
        .await,
        204
    );
    let (code, after) = closed(&mut by_token).await;
    assert_eq!(code, CLOSE_POLICY_VIOLATION);
    assert!(
        after < Duration::from_secs(2),
        "closed {after:?} after the revocation"
    );

    // A socket opened with a session cookie closes when an admin ends the user's sessions.
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "ws://{addr}/ws"
        ))
        .unwrap();
    request.headers_mut().insert(
        "cookie",
        format!("streamboard_session={session}").parse().unwrap(),
    );
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut by_session, _) = tokio_tungstenite::client_async(request, tcp).await.unwrap();
    hello(&mut by_session).await;
    assert_eq!(
        authed(
            addr,
            "DELETE",
            &format!("/api/v1/users/{viewer_id}/sessions"),
            &admin_token
        )
        .await,
        204
    );
    let (code, after) = closed(&mut by_session).await;
    assert_eq!(code, CLOSE_POLICY_VIOLATION);
    assert!(
        after < Duration::from_secs(2),
        "closed {after:?} after the sessions ended"
    );

    // The bystander is still served: it answers a ping.
    ws_send(&mut bystander, ClientMessage::Ping { nonce: 7 }).await;
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), bystander.next())
            .await
            .expect("the bystander is still served")
            .expect("a frame")
            .expect("no error");
        if frame.to_text().unwrap_or("").contains("pong") {
            break;
        }
    }
    server.shutdown();
    server.wait().await.unwrap();
}
