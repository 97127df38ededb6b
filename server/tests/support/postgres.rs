//! A real PostgreSQL for tests: each call of [`fresh_database`] creates an empty database and
//! returns its URL.
//!
//! The server is `STREAMBOARD_TEST_POSTGRES` when set (a URL of a role that may create
//! databases, e.g. the one `scripts/test-postgres.sh` starts for `make test`); otherwise the
//! test process starts its own from Debian's `postgresql` package: `initdb` into a temporary
//! directory, `postgres` on a free loopback port with fsync off, as the unprivileged `postgres`
//! user when the tests run as root. That server gets SIGQUIT (immediate shutdown) when the test
//! process exits, and its directory is removed by the next test process that starts one.
//!
//! Shared by the unit tests (`#[path]`-included by `storage`) and the integration tests.

#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        OnceLock,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

/// A URL of an empty database of its own on the test server.
pub async fn fresh_database() -> String {
    let server = server();
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "sb_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let admin = format!("{server}/postgres");
    let mut conn = connect_retrying(&admin).await;
    sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap_or_else(|error| panic!("creating test database {name}: {error}"));
    format!("{server}/{name}")
}

async fn connect_retrying(url: &str) -> sqlx::PgConnection {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match <sqlx::PgConnection as sqlx::Connection>::connect(url).await {
            Ok(conn) => return conn,
            Err(error) if Instant::now() < deadline => {
                tracing_or_eprint(&format!("waiting for the test PostgreSQL: {error}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("the test PostgreSQL at {url} does not answer: {error}"),
        }
    }
}

fn tracing_or_eprint(message: &str) {
    static SAID: OnceLock<()> = OnceLock::new();
    SAID.get_or_init(|| eprintln!("{message}"));
}

/// `postgres://USER@HOST:PORT` of the test server (no database part).
fn server() -> &'static str {
    static SERVER: OnceLock<String> = OnceLock::new();
    SERVER.get_or_init(|| match std::env::var("STREAMBOARD_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => url.trim_end_matches('/').to_string(),
        _ => start_own(),
    })
}

/// The directory of Debian's PostgreSQL programs.
fn bin_dir() -> PathBuf {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return dir;
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| entries.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    versions.sort();
    versions
        .pop()
        .filter(|dir| dir.join("initdb").exists())
        .expect("PostgreSQL is not installed (scripts/setup.sh --test installs Debian's package)")
}

/// The uid and gid the server runs as: the `postgres` user when we are root (PostgreSQL
/// refuses to run as root), else ourselves.
fn run_as() -> Option<(u32, u32)> {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        return None;
    }
    let out = Command::new("id").args(["-u", "postgres"]).output().ok()?;
    let uid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    let out = Command::new("id").args(["-g", "postgres"]).output().ok()?;
    let gid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    Some((uid, gid))
}

fn command_as(program: PathBuf, user: Option<(u32, u32)>, die_with_parent: bool) -> Command {
    let mut command = Command::new(program);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, move || {
            if let Some((uid, gid)) = user
                && (libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(gid) != 0
                    || libc::setuid(uid) != 0)
            {
                return Err(std::io::Error::last_os_error());
            }
            // After the uid change, which would clear it.
            if die_with_parent && libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Removes the directories of earlier test servers whose process is gone.
fn remove_stale(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = name
            .strip_prefix("streamboard-test-pg-")
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn start_own() -> String {
    let bin = bin_dir();
    let user = run_as();
    let root = std::env::temp_dir();
    remove_stale(&root);
    let dir = root.join(format!("streamboard-test-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
    }
    let data = dir.join("data");
    let status = command_as(bin.join("initdb"), user, false)
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("running initdb");
    assert!(
        status.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let port = free_port();
    let log = std::fs::File::create(dir.join("postgres.log")).unwrap();
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(dir.join("postgres.log"), Some(uid), Some(gid)).unwrap();
    }
    // Started from a thread that lives as long as the process: the parent-death signal is
    // sent when the thread that forked the server ends.
    let (started, wait) = std::sync::mpsc::channel();
    let data_for_thread = data.clone();
    let socket_dir = dir.clone();
    std::thread::spawn(move || {
        let child = command_as(bin.join("postgres"), user, true)
            .arg("-D")
            .arg(&data_for_thread)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", socket_dir.display()))
            .args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=400",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn();
        let _ = started.send(child.map(|c| c.id()));
        loop {
            std::thread::park();
        }
    });
    wait.recv()
        .unwrap()
        .unwrap_or_else(|error| panic!("starting postgres: {error}"));
    format!("postgres://postgres@127.0.0.1:{port}")
}
