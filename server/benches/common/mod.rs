//! Bench helpers: the embedded endpoint in a child process (this same bench binary,
//! re-executed), so that the CPU time of the client side and of the endpoint can be measured
//! apart, and the CPU time and load average of this process (and of its threads by name).

// Each bench uses some of these helpers.
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader, Write},
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    time::{Duration, Instant},
};
use streamboard_endpoint::{Endpoint, EndpointConfig};
use tokio_util::sync::CancellationToken;

/// Set in the child process: run the embedded endpoint with its data under this directory.
/// A bench's `main` calls [`endpoint_child`] first when it is set.
pub const CHILD_ENV: &str = "STREAMBOARD_BENCH_ENDPOINT_DIR";

/// CPU time (user + system) of this process so far.
pub fn process_cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a `rusage` into the pointer it is given, which is valid and
    // properly aligned; RUSAGE_SELF cannot fail.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

/// The child: serve the endpoint, print its URL, answer `cpu` with this process's CPU
/// microseconds, stop at end of input.
pub fn endpoint_child(dir: String) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let endpoint = Endpoint::start(EndpointConfig::for_data_dir(dir), shutdown.clone())
            .await
            .expect("the endpoint starts");
        println!("{}", endpoint.url());
        let lines = tokio::task::spawn_blocking(|| {
            for line in std::io::stdin().lock().lines() {
                match line.as_deref() {
                    Ok("cpu") => println!("{}", process_cpu().as_micros()),
                    _ => return,
                }
            }
        });
        let _ = lines.await;
        shutdown.cancel();
        endpoint.wait().await.expect("the endpoint stops");
    });
}

/// The endpoint in a child process (this binary again), stopped when dropped.
pub struct ChildEndpoint {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl ChildEndpoint {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut child = Command::new(std::env::current_exe().expect("this bench's path"))
            .env(CHILD_ENV, dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the endpoint process starts");
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut url = String::new();
        stdout.read_line(&mut url).expect("the endpoint's URL");
        Self {
            child,
            stdin,
            stdout,
            url: url.trim().to_string(),
            _dir: dir,
        }
    }

    /// CPU time (user + system) of the endpoint process so far.
    pub fn cpu(&mut self) -> Duration {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "cpu").expect("asking the endpoint");
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("the endpoint's answer");
        Duration::from_micros(line.trim().parse().expect("microseconds"))
    }
}

impl Drop for ChildEndpoint {
    fn drop(&mut self) {
        drop(self.stdin.take());
        // It stops at end of input; by pid if it does not.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The 1-minute load average (`/proc/loadavg`), to judge how shared the cores were.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

/// Clock ticks (utime + stime) of this process's threads whose name starts with `prefix`.
pub fn thread_ticks(prefix: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("stat")).ok())
        .filter_map(|stat| {
            // `pid (comm) state ...`: comm may hold spaces, so split at the last ')'.
            let (head, rest) = stat.rsplit_once(')')?;
            let comm = head.split_once('(')?.1;
            if !comm.starts_with(prefix) {
                return None;
            }
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // After the comm: state is field 0, utime field 11, stime field 12.
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .sum()
}
