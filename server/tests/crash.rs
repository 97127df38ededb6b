//! Crash test of the whole data path in the real binary: while a producer puts records, the
//! `streamboard serve` process is killed with SIGKILL and restarted, again and again: at random
//! moments (start-up, catch-up, steady ingest) and in the seconds a closed minute is rolled up
//! (5 s of data time past its end). The summaries stored in SQLite at the end must equal the
//! ground truth of what was put: nothing lost, nothing counted twice (the engine's buckets, the
//! roll-up marks and the consumer's checkpoints commit in one transaction).
//!
//! It runs once on SQLite (the default file in the data directory) and once on PostgreSQL
//! (`--database postgres://…`, a real server started by the tests).
//!
//! `make test` kills 6 times (one aimed at a roll-up); `STREAMBOARD_SOAK=1` (`make soak`) 20
//! times, half of them at roll-ups. `STREAMBOARD_CRASH_KILLS=N` sets the count.

mod support;

#[path = "support/postgres.rs"]
mod test_postgres;

use rand::{Rng, SeedableRng, rngs::StdRng};
use std::time::Duration;
use streamboard::{
    kinesis::StreamName,
    producer::Producer,
    storage::{Database, DatabaseUrl},
};
use support::{
    Peer, create_stream, eventually_within,
    serve::{Serve, Truth, soak, stored_count, write_config},
    unique_stream,
};
use tokio_util::sync::CancellationToken;

/// When the next kill falls.
#[derive(Debug, Clone, Copy)]
enum Moment {
    /// 300-2,000 ms after the start.
    Random,
    /// Just after a minute closed, while its roll-up is written.
    RollUp,
}

/// Waits until the wall clock is 5.0-6.5 s past a minute (the roll-up of the minute before is
/// written by the first flush 5 s of data time after its end; records carry their arrival
/// time, so data time is the wall clock), and at least `started + 1 s`.
async fn until_roll_up(rng: &mut StdRng) {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let now_ms = streamboard::clock::now_ms();
    let into_minute = now_ms.rem_euclid(60_000);
    let target = 5_000 + rng.random_range(0..1_500);
    let wait = (target - into_minute).rem_euclid(60_000);
    tokio::time::sleep(Duration::from_millis(wait as u64)).await;
}

#[tokio::test]
async fn summaries_equal_the_ground_truth_after_repeated_kill_9() {
    crash_test(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summaries_on_postgres_equal_the_ground_truth_after_repeated_kill_9() {
    let url: DatabaseUrl = test_postgres::fresh_database().await.parse().unwrap();
    crash_test(Some(url)).await;
}

/// Kills and restarts `serve` (on SQLite, or on the PostgreSQL database `url`) during ingest,
/// then checks the stored summaries against the truth.
async fn crash_test(url: Option<DatabaseUrl>) {
    let extra: Vec<String> = match &url {
        Some(url) => vec!["--database".into(), url.expose()],
        None => Vec::new(),
    };
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let kills: usize = std::env::var("STREAMBOARD_CRASH_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if soak() { 20 } else { 6 });
    let roll_up_kills = if soak() { kills / 2 } else { 1.min(kills) };
    let mut rng = StdRng::seed_from_u64(7);
    let mut moments: Vec<Moment> = (0..kills)
        .map(|i| {
            if i < roll_up_kills {
                Moment::RollUp
            } else {
                Moment::Random
            }
        })
        .collect();
    // Shuffle, so roll-up kills fall among the others.
    for i in (1..moments.len()).rev() {
        moments.swap(i, rng.random_range(0..=i));
    }

    let peer = Peer::start().await;
    let client = peer.client().await;
    let stream = unique_stream("crash");
    create_stream(&client, &stream, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &stream);
    let data_dir = dir.path().join("data");

    // A steady producer: 100 records every 100 ms until the kills are done.
    let truth = Truth::default();
    let stop = CancellationToken::new();
    let putting = {
        let producer = Producer::new(client.clone(), StreamName::from(stream.as_str()));
        let truth = truth.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(11);
            while !stop.is_cancelled() {
                truth.put(&producer, &mut rng, 100).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    for (i, moment) in moments.iter().enumerate() {
        let serve = Serve::spawn(&config, &data_dir, &peer.url, &extra);
        match moment {
            Moment::Random => {
                tokio::time::sleep(Duration::from_millis(rng.random_range(300..2_000))).await
            }
            Moment::RollUp => until_roll_up(&mut rng).await,
        }
        drop(serve); // SIGKILL
        eprintln!(
            "crash test: kill {} of {kills} ({moment:?}) at {} ms past the minute",
            i + 1,
            streamboard::clock::now_ms().rem_euclid(60_000)
        );
    }
    stop.cancel();
    putting.await.unwrap();

    let serve = Serve::spawn(&config, &data_dir, &peer.url, &extra);
    let database = Database::connect(url.as_ref(), &data_dir).await.unwrap();
    let total = truth.len();
    eventually_within("every record stored", Duration::from_secs(180), || async {
        stored_count(&database).await >= total
    })
    .await;
    drop(serve); // one more kill -9, after everything was stored

    truth.check_stored(&database).await;
    eprintln!(
        "crash test on {}: {kills} kill -9 ({roll_up_kills} at a roll-up), {total} records, \
         summaries exact",
        if database.is_postgres() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    database.close().await;
}
