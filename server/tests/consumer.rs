//! The consumer against a real Kinesis-compatible peer (the embedded endpoint, or kinesis-local
//! with `STREAMBOARD_TEST_PEER=kinesis-local`; `make test` runs both; see `support::Peer`) and a
//! real SQLite file: exactly-once in-order reading across a split and a merge done while a
//! producer writes, restarts from checkpoints, KPL de-aggregation (with a
//! corrupt record), start positions, and independent applications.

mod support;

use aws_sdk_kinesis::primitives::Blob;
use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use streamboard::{
    config::StartPosition, consumer::ConsumerConfig, kinesis::kpl, producer::Producer,
    storage::Database,
};
use support::{Peer, wait_active};

use support::consumer_harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_once_in_order_across_split_and_merge_while_producing() {
    let peer = Peer::start().await;
    let client = peer.client().await;
    let stream = create_stream(&client, "reshard", 1).await;
    let dir = tempfile::tempdir().unwrap();
    let database = Database::open(dir.path()).await.unwrap();
    let mut consumer = Running::start(
        &client,
        &database,
        config("app", vec![spec(&stream, StartPosition::TrimHorizon)]),
    );

    const KEYS: usize = 20;
    const PER_KEY: u64 = 60;
    let sent = Arc::new(AtomicU64::new(0));
    let writer = tokio::spawn({
        let producer = Producer::new(client.clone(), stream.clone());
        let sent = sent.clone();
        async move {
            // Rounds of one record per key, sequential: order per key is the put order.
            for n in 0..PER_KEY {
                let round = (0..KEYS).map(|k| keyed(&format!("k{k}"), n)).collect();
                put_all(&producer, round).await;
                sent.fetch_add(KEYS as u64, Ordering::SeqCst);
            }
        }
    });
    let total = KEYS as u64 * PER_KEY;
    let wait_sent = |at_least: u64| {
        let sent = sent.clone();
        async move {
            let deadline = Instant::now() + WAIT;
            while sent.load(Ordering::SeqCst) < at_least {
                assert!(Instant::now() < deadline, "producer stalled");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    wait_sent(total / 3).await;
    client
        .split_shard()
        .stream_name(stream.as_str())
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key((1u128 << 127).to_string())
        .send()
        .await
        .unwrap();
    wait_active(&client, stream.as_str()).await;
    wait_sent(2 * total / 3).await;
    client
        .merge_shards()
        .stream_name(stream.as_str())
        .shard_to_merge("shardId-000000000001")
        .adjacent_shard_to_merge("shardId-000000000002")
        .send()
        .await
        .unwrap();
    wait_active(&client, stream.as_str()).await;
    writer.await.unwrap();

    consumer
        .collect_until("all records", |records| records.len() as u64 >= total)
        .await;
    let health = consumer.health.borrow().clone();
    let records = consumer.stop().await;
    assert_exactly_once_in_order(&records, KEYS, PER_KEY);
    let shards: HashSet<&str> = records.iter().map(|(s, _)| s.as_str()).collect();
    assert!(
        shards.len() >= 3,
        "records came from parent, children and merged shard: {shards:?}"
    );
    assert!(
        health.count(streamboard::consumer::ShardState::Finished) >= 3,
        "{health:#?}"
    );

    // A second application starting after the resharding sees all five shards at once and
    // must still read parents before children; small batches make the readers interleave.
    let mut late = Running::start(
        &client,
        &database,
        ConsumerConfig {
            records_per_call: 50,
            ..config("late", vec![spec(&stream, StartPosition::TrimHorizon)])
        },
    );
    late.collect_until("all records", |records| records.len() as u64 >= total)
        .await;
    let late = late.stop().await;
    assert_exactly_once_in_order(&late, KEYS, PER_KEY);
    database.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_after_the_checkpoint_and_applications_are_independent() {
    let peer = Peer::start().await;
    let client = peer.client().await;
    let stream = create_stream(&client, "restart", 2).await;
    let dir = tempfile::tempdir().unwrap();
    let database = Database::open(dir.path()).await.unwrap();
    let producer = Producer::new(client.clone(), stream.clone());
    const KEYS: usize = 10;
    let round = |n: u64| {
        (0..KEYS)
            .map(move |k| keyed(&format!("k{k}"), n))
            .collect::<Vec<_>>()
    };
    for n in 0..40 {
        put_all(&producer, round(n)).await;
    }

    let streams = vec![spec(&stream, StartPosition::TrimHorizon)];
    let mut first = Running::start(&client, &database, config("a", streams.clone()));
    first
        .collect_until("some records", |r| r.len() >= 100)
        .await;
    let first = first.stop().await;
    assert!(first.len() >= 100 && first.len() <= 400, "{}", first.len());

    for n in 40..60 {
        put_all(&producer, round(n)).await;
    }
    let mut second = Running::start(&client, &database, config("a", streams.clone()));
    let expected = 600 - first.len();
    second
        .collect_until("the rest", |r| r.len() >= expected)
        .await;
    let second = second.stop().await;
    let mut all = first.clone();
    all.extend(second);
    // Nothing committed was read again, nothing was skipped.
    assert_exactly_once_in_order(&all, KEYS, 60);

    // Another application reads the whole stream on its own checkpoints.
    let mut other = Running::start(&client, &database, config("b", streams));
    other.collect_until("everything", |r| r.len() >= 600).await;
    let other = other.stop().await;
    assert_exactly_once_in_order(&other, KEYS, 60);
    database.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpl_aggregated_records_are_deaggregated_and_a_corrupt_one_is_plain() {
    let peer = Peer::start().await;
    let client = peer.client().await;
    let stream = create_stream(&client, "kpl", 1).await;
    let dir = tempfile::tempdir().unwrap();
    let database = Database::open(dir.path()).await.unwrap();

    let producer = Producer::new(client.clone(), stream.clone()).with_aggregation(true);
    const KEYS: usize = 25;
    const PER_KEY: u64 = 40;
    for n in 0..PER_KEY {
        let report = producer
            .put((0..KEYS).map(|k| keyed(&format!("k{k}"), n)).collect())
            .await;
        assert_eq!(report.sent, KEYS as u64);
        assert_eq!(report.kinesis_records, 1, "one aggregated record per put");
    }
    let mut corrupt = kpl::aggregate(&[kpl::UserRecord {
        partition_key: "hidden".into(),
        explicit_hash_key: None,
        data: b"never seen".to_vec(),
    }]);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xFF;
    client
        .put_record()
        .stream_name(stream.as_str())
        .partition_key("corrupt")
        .data(Blob::new(corrupt.clone()))
        .send()
        .await
        .unwrap();

    let mut consumer = Running::start(
        &client,
        &database,
        config("app", vec![spec(&stream, StartPosition::TrimHorizon)]),
    );
    let total = KEYS * PER_KEY as usize + 1;
    consumer
        .collect_until("all user records", |r| r.len() >= total)
        .await;
    let records = consumer.stop().await;
    assert_eq!(records.len(), total);
    let (plain, user): (Vec<_>, Vec<_>) = records
        .into_iter()
        .partition(|(_, r)| r.partition_key == "corrupt");
    assert_eq!(plain.len(), 1);
    assert_eq!(plain[0].1.sub_sequence, None);
    assert_eq!(plain[0].1.data.as_ref(), corrupt.as_slice());
    assert!(user.iter().all(|(_, r)| r.sub_sequence.is_some()));
    assert_eq!(user[1].1.sub_sequence, Some(1));
    assert_exactly_once_in_order(&user, KEYS, PER_KEY);
    database.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_positions_latest_trim_horizon_and_at_timestamp() {
    let peer = Peer::start().await;
    let client = peer.client().await;
    let stream = create_stream(&client, "start", 1).await;
    let dir = tempfile::tempdir().unwrap();
    let database = Database::open(dir.path()).await.unwrap();
    let producer = Producer::new(client.clone(), stream.clone());
    put_all(&producer, (0..50).map(|n| keyed("before", n)).collect()).await;

    // LATEST: nothing already in the stream, everything put after the first poll.
    let mut latest = Running::start(
        &client,
        &database,
        config("latest", vec![spec(&stream, StartPosition::Latest)]),
    );
    let deadline = Instant::now() + WAIT;
    loop {
        let polled = latest
            .health
            .borrow()
            .shards
            .values()
            .any(|shard| shard.get_records_latency.is_some());
        if polled {
            break;
        }
        assert!(Instant::now() < deadline, "the LATEST reader never polled");
        tokio::time::timeout(WAIT, latest.health.changed())
            .await
            .unwrap()
            .unwrap();
    }
    // Make sure the arrival times of the two groups differ by a margin larger than the
    // endpoint's timestamp rounding, for the AT_TIMESTAMP part below.
    let boundary_wall = std::time::SystemTime::now() + Duration::from_millis(20);
    while std::time::SystemTime::now() < boundary_wall {
        tokio::task::yield_now().await;
    }
    put_all(&producer, (0..30).map(|n| keyed("after", n)).collect()).await;
    latest
        .collect_until("the new records", |r| r.len() >= 30)
        .await;
    let latest = latest.stop().await;
    assert!(
        latest.iter().all(|(_, r)| r.partition_key == "after"),
        "LATEST read only new records"
    );
    assert_eq!(latest.len(), 30);

    // TRIM_HORIZON: everything.
    let mut horizon = Running::start(
        &client,
        &database,
        config("horizon", vec![spec(&stream, StartPosition::TrimHorizon)]),
    );
    horizon.collect_until("everything", |r| r.len() >= 80).await;
    let horizon = horizon.stop().await;
    assert_eq!(horizon.len(), 80);

    // AT_TIMESTAMP between the two groups: only the second.
    let last_before = horizon
        .iter()
        .filter(|(_, r)| r.partition_key == "before")
        .map(|(_, r)| r.arrival_time_ms)
        .max()
        .unwrap();
    let first_after = horizon
        .iter()
        .filter(|(_, r)| r.partition_key == "after")
        .map(|(_, r)| r.arrival_time_ms)
        .min()
        .unwrap();
    assert!(
        first_after - last_before >= 10,
        "{last_before} {first_after}"
    );
    let at = StartPosition::AtTimestamp {
        epoch_millis: (last_before + first_after) / 2,
    };
    let mut timed = Running::start(&client, &database, config("timed", vec![spec(&stream, at)]));
    timed
        .collect_until("records after the time", |r| r.len() >= 30)
        .await;
    let timed = timed.stop().await;
    assert_eq!(timed.len(), 30);
    assert!(timed.iter().all(|(_, r)| r.partition_key == "after"));
    database.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enhanced_fan_out_reads_every_record_once_across_a_split_and_a_restart() {
    let peer = Peer::start().await;
    let client = peer.client().await;
    let stream = create_stream(&client, "efo", 2).await;
    let dir = tempfile::tempdir().unwrap();
    let database = Database::open(dir.path()).await.unwrap();
    let producer = Producer::new(client.clone(), stream.clone());
    const KEYS: usize = 10;
    let round = |n: u64| {
        (0..KEYS)
            .map(move |k| keyed(&format!("k{k}"), n))
            .collect::<Vec<_>>()
    };
    for n in 0..20 {
        put_all(&producer, round(n)).await;
    }
    let efo = |start| streamboard::config::StreamSpec {
        efo: true,
        ..spec(&stream, start)
    };
    let mut first = Running::start(
        &client,
        &database,
        config("fan-out-app", vec![efo(StartPosition::TrimHorizon)]),
    );
    first
        .collect_until("the records put before subscribing", |r| r.len() >= 200)
        .await;
    // Records put while subscribed are pushed; a split closes a subscribed shard, whose last
    // event names its children. (kinesis-local never sends ChildShards, so its subscription
    // to a closed shard never ends; the split is left out there.)
    for n in 20..40 {
        put_all(&producer, round(n)).await;
    }
    let split = !peer.is_local_mock();
    if split {
        client
            .split_shard()
            .stream_name(stream.as_str())
            .shard_to_split("shardId-000000000000")
            .new_starting_hash_key((1u128 << 126).to_string())
            .send()
            .await
            .unwrap();
        wait_active(&client, stream.as_str()).await;
    }
    for n in 40..60 {
        put_all(&producer, round(n)).await;
    }
    first
        .collect_until("the records put while subscribed", |r| r.len() >= 600)
        .await;
    let health = first.health.borrow().clone();
    let first = first.stop().await;
    assert_exactly_once_in_order(&first, KEYS, 60);
    assert!(
        !split || health.count(streamboard::consumer::ShardState::Finished) >= 1,
        "the split parent was read to its end: {health:#?}"
    );
    assert!(
        health
            .shards
            .values()
            .all(|shard| shard.get_records_latency.is_none()),
        "no shard was polled with GetRecords: {health:#?}"
    );
    let arn = client
        .describe_stream_summary()
        .stream_name(stream.as_str())
        .send()
        .await
        .unwrap()
        .stream_description_summary()
        .unwrap()
        .stream_arn()
        .to_string();
    let consumers = client
        .list_stream_consumers()
        .stream_arn(&arn)
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = consumers
        .consumers()
        .iter()
        .map(|c| c.consumer_name())
        .collect();
    assert_eq!(
        names,
        ["fan-out-app"],
        "one consumer, named after the application"
    );

    // A restart reuses the consumer and resumes after the checkpoints.
    for n in 60..80 {
        put_all(&producer, round(n)).await;
    }
    let mut second = Running::start(
        &client,
        &database,
        config("fan-out-app", vec![efo(StartPosition::TrimHorizon)]),
    );
    second
        .collect_until("the records put while stopped", |r| r.len() >= 200)
        .await;
    let second = second.stop().await;
    let mut all = first;
    all.extend(second);
    assert_exactly_once_in_order(&all, KEYS, 80);
    database.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enhanced_fan_out_resubscribes_without_a_gap_or_a_repeat() {
    // The embedded endpoint only: its subscriptions end after 200 ms instead of 5 minutes, so
    // the reader resubscribes dozens of times while records keep coming.
    let dir = tempfile::tempdir().unwrap();
    let mut endpoint = streamboard_endpoint::EndpointConfig::for_data_dir(dir.path());
    endpoint.subscription_duration = Duration::from_millis(200);
    let peer = support::start_embedded_with(endpoint, dir).await;
    let client = peer.client().await;
    let stream = create_stream(&client, "resubscribe", 2).await;
    let data = tempfile::tempdir().unwrap();
    let database = Database::open(data.path()).await.unwrap();
    let mut consumer = Running::start(
        &client,
        &database,
        config(
            "resubscriber",
            vec![streamboard::config::StreamSpec {
                efo: true,
                ..spec(&stream, StartPosition::Latest)
            }],
        ),
    );
    // LATEST: wait until both shards are subscribed before putting anything.
    let subscribed = Instant::now();
    while consumer
        .health
        .borrow()
        .shards
        .values()
        .filter(|s| s.millis_behind_latest.is_some())
        .count()
        < 2
    {
        assert!(subscribed.elapsed() < WAIT, "both shards subscribed");
        consumer.health.changed().await.unwrap();
    }
    let producer = Producer::new(client.clone(), stream.clone());
    const KEYS: usize = 8;
    const ROUNDS: u64 = 60;
    let started = Instant::now();
    for n in 0..ROUNDS {
        let round = (0..KEYS).map(|k| keyed(&format!("k{k}"), n)).collect();
        put_all(&producer, round).await;
        // Spread the puts over several subscription lifetimes.
        if n % 10 == 9 {
            let target = started + Duration::from_millis(250 * (n + 1) / 10);
            tokio::time::sleep_until(target.into()).await;
        }
    }
    consumer
        .collect_until("every record", |r| r.len() >= KEYS * ROUNDS as usize)
        .await;
    let records = consumer.stop().await;
    assert_exactly_once_in_order(&records, KEYS, ROUNDS);
    database.close().await;
}
