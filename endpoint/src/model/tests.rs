//! The model's unit tests: ranges, hashing, numbering, resharding, iterators, validation,
//! retention and limits. Each refusal is checked as the domain error and as the AWS error type
//! it travels as.

use super::*;
use crate::wire::{ApiError, ErrorKind};
use bytes::Bytes;
use std::time::Instant;

const SECRET: [u8; 16] = [7; 16];

fn model() -> Model {
    Model::new(
        SECRET,
        ModelSettings {
            shard_limit: 100,
            throughput_limits: false,
            iterator_ttl_ms: 300_000,
        },
    )
}

/// Asserts that `result` is refused with an error matching `variant`, answered on the wire as
/// `kind`.
macro_rules! assert_refused {
    ($result:expr, $variant:pat, $kind:expr) => {{
        let error = $result.unwrap_err();
        assert!(matches!(error, $variant), "{error:?}");
        assert_eq!(ApiError::from(error).kind, $kind);
    }};
}

fn rec(key: &str, data: &str) -> NewRecord {
    NewRecord::new(key, None, Bytes::from(data.to_string())).unwrap()
}

#[test]
fn uniform_ranges_match_aws() {
    assert_eq!(uniform_range(0, 1), (0, u128::MAX));
    let (s0, e0) = uniform_range(0, 2);
    let (s1, e1) = uniform_range(1, 2);
    assert_eq!(s0, 0);
    assert_eq!(e0.to_string(), "170141183460469231731687303715884105727");
    assert_eq!(s1.to_string(), "170141183460469231731687303715884105728");
    assert_eq!(e1, u128::MAX);
    for n in [3u32, 5, 7, 10] {
        let mut next = 0u128;
        for i in 0..n {
            let (s, e) = uniform_range(i, n);
            assert_eq!(s, next);
            assert!(e >= s);
            next = e.wrapping_add(1);
        }
        assert_eq!(next, 0, "ranges cover the whole key space");
    }
    assert_eq!(
        uniform_range(1, 4).0.to_string(),
        "85070591730234615865843651857942052864"
    );
}

#[test]
fn md5_picks_the_shard() {
    // MD5("a") = 0cc175b9c0f1b6a831c399e269772661, below 2^127: first of two shards.
    assert_eq!(hash_partition_key("a"), 0x0cc175b9c0f1b6a831c399e269772661);
    let mut m = model();
    m.create_stream("s", Some(2), StreamMode::Provisioned, 0)
        .unwrap();
    let outcomes = m.put("s", &[rec("a", "x")], 1, 0, Instant::now()).unwrap();
    assert!(matches!(outcomes[0], PutOutcome::Stored { shard: 0, .. }));
}

#[test]
fn sequence_numbers_increase_per_shard_and_children_start_above_parents() {
    let mut m = model();
    m.create_stream("s", Some(1), StreamMode::Provisioned, 0)
        .unwrap();
    let recs: Vec<_> = (0..10).map(|i| rec(&format!("k{i}"), "x")).collect();
    let out = m.put("s", &recs, 1, 0, Instant::now()).unwrap();
    let seqs: Vec<u128> = out
        .iter()
        .map(|o| match o {
            PutOutcome::Stored { seq, .. } => *seq,
            PutOutcome::Throttled => panic!(),
        })
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    m.split_shard(
        "s",
        "shardId-000000000000",
        "170141183460469231731687303715884105728",
        5,
    )
    .unwrap();
    let stream = m.stream("s").unwrap();
    let parent = &stream.shards[0];
    let end = parent.ending_seq.unwrap();
    assert!(end > *seqs.last().unwrap());
    assert_eq!(stream.shards[1].parents, vec![0]);
    assert!(stream.shards[1].starting_seq > end);
    assert_eq!(stream.shards[2].start_hash, 1u128 << 127);
    assert_eq!(stream.shards[1].end_hash, (1u128 << 127) - 1);
    assert_eq!(m.child_shards("s", 0).unwrap().len(), 2);
    // They leave as decimal strings of one length: text order is number order.
    let (a, b) = (seqs[0].to_string(), seqs[1].to_string());
    assert_eq!(a.len(), b.len());
    assert!(a < b);
    assert!(parse_seq(&a).unwrap() < parse_seq(&b).unwrap());
}

#[test]
fn merge_requires_adjacent_open_shards() {
    let mut m = model();
    m.create_stream("s", Some(3), StreamMode::Provisioned, 0)
        .unwrap();
    assert_refused!(
        m.merge_shards("s", "shardId-000000000000", "shardId-000000000002", 1),
        ModelError::ShardsNotAdjacent { .. },
        ErrorKind::InvalidArgument
    );
    m.merge_shards("s", "shardId-000000000001", "shardId-000000000000", 1)
        .unwrap();
    let s = m.stream("s").unwrap();
    assert_eq!(s.shards[3].parents, vec![1, 0]);
    assert_eq!(s.shards[3].start_hash, 0);
    assert_eq!(s.open_shard_count(), 2);
    assert_refused!(
        m.merge_shards("s", "shardId-000000000000", "shardId-000000000003", 1),
        ModelError::MergeOfClosedShard { .. },
        ErrorKind::ResourceInUse
    );
}

#[test]
fn update_shard_count_scales_uniformly_with_overlapping_parents() {
    let mut m = model();
    m.create_stream("s", Some(2), StreamMode::Provisioned, 0)
        .unwrap();
    assert_eq!(m.update_shard_count("s", 3, 1).unwrap(), 2);
    let s = m.stream("s").unwrap();
    assert_eq!(s.open_shard_count(), 3);
    assert_eq!(s.shards[2].parents, vec![0]);
    assert_eq!(s.shards[3].parents, vec![0, 1]);
    assert_eq!(s.shards[4].parents, vec![1]);
    assert_refused!(
        m.update_shard_count("s", 7, 1),
        ModelError::ScalingOutOfRange {
            current: 3,
            target: 7
        },
        ErrorKind::LimitExceeded
    );
}

#[test]
fn iterators_are_sealed_and_expire() {
    let mut m = model();
    m.create_stream("s", Some(1), StreamMode::Provisioned, 0)
        .unwrap();
    m.put("s", &[rec("a", "1"), rec("b", "2")], 1, 10, Instant::now())
        .unwrap();
    let it = m
        .shard_iterator("s", "shardId-000000000000", IteratorStart::TrimHorizon, 100)
        .unwrap();
    let batch = m.get_records(&it, 1, 0, 200, Instant::now()).unwrap();
    assert!(
        batch.records.is_empty(),
        "records of a write not yet durable are hidden"
    );
    let batch = m.get_records(&it, 1, 1, 200, Instant::now()).unwrap();
    assert_eq!(batch.records.len(), 1);
    assert!(batch.millis_behind_latest > 0);
    let next = m.seal(&batch.next.unwrap());
    let batch = m.get_records(&next, 10, 1, 200, Instant::now()).unwrap();
    assert_eq!(&batch.records[0].data[..], b"2");
    assert_eq!(batch.millis_behind_latest, 0);

    assert_refused!(
        m.get_records(&it, 1, 1, 100 + 300_001, Instant::now()),
        ModelError::ExpiredIterator { .. },
        ErrorKind::ExpiredIterator
    );
    let mut tampered = it.clone().into_bytes();
    tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_refused!(
        m.get_records(&tampered, 1, 1, 200, Instant::now()),
        ModelError::InvalidIterator { .. },
        ErrorKind::InvalidArgument
    );
    assert_refused!(
        m.get_records("garbage!", 1, 1, 200, Instant::now()),
        ModelError::InvalidIterator { .. },
        ErrorKind::InvalidArgument
    );
}

#[test]
fn closed_shard_end_gives_children_and_no_next_iterator() {
    let mut m = model();
    m.create_stream("s", Some(2), StreamMode::Provisioned, 0)
        .unwrap();
    m.put("s", &[rec("a", "1")], 1, 0, Instant::now()).unwrap();
    m.merge_shards("s", "shardId-000000000000", "shardId-000000000001", 1)
        .unwrap();
    let it = m
        .shard_iterator("s", "shardId-000000000000", IteratorStart::TrimHorizon, 2)
        .unwrap();
    let batch = m.get_records(&it, 100, 1, 2, Instant::now()).unwrap();
    assert_eq!(batch.records.len(), 1);
    assert!(batch.next.is_none());
    let children = batch.child_shards.unwrap();
    assert_eq!(children[0].shard_id, "shardId-000000000002");
    assert_eq!(children[0].parent_shards.len(), 2);
}

#[test]
fn sequence_and_timestamp_iterators() {
    let mut m = model();
    m.create_stream("s", Some(1), StreamMode::Provisioned, 0)
        .unwrap();
    m.put("s", &[rec("a", "1")], 1, 1000, Instant::now())
        .unwrap();
    m.put("s", &[rec("a", "2")], 1, 2000, Instant::now())
        .unwrap();
    let seq = m.stream("s").unwrap().shards[0].records[0].seq;
    let read = |m: &mut Model, start| {
        let it = m
            .shard_iterator("s", "shardId-000000000000", start, 3000)
            .unwrap();
        m.get_records(&it, 100, 1, 3000, Instant::now())
            .unwrap()
            .records
            .iter()
            .map(|r| r.data.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(read(&mut m, IteratorStart::AtSequence(seq)).len(), 2);
    assert_eq!(read(&mut m, IteratorStart::AfterSequence(seq)).len(), 1);
    assert_eq!(read(&mut m, IteratorStart::AtTimestamp(1500)).len(), 1);
    assert_eq!(read(&mut m, IteratorStart::Latest).len(), 0);
    assert_refused!(
        m.shard_iterator("s", "shardId-000000000000", IteratorStart::AtSequence(5), 0),
        ModelError::SequenceNumberNotInShard { seq: 5, .. },
        ErrorKind::InvalidArgument
    );
}

#[test]
fn validation_errors() {
    let mut m = model();
    assert_refused!(
        m.create_stream("bad name", Some(1), StreamMode::Provisioned, 0),
        ModelError::InvalidStreamName { .. },
        ErrorKind::Validation
    );
    m.create_stream("s", Some(1), StreamMode::Provisioned, 0)
        .unwrap();
    assert_refused!(
        m.create_stream("s", Some(1), StreamMode::Provisioned, 0),
        ModelError::StreamExists { .. },
        ErrorKind::ResourceInUse
    );
    assert_refused!(
        m.create_stream("big", Some(200), StreamMode::Provisioned, 0),
        ModelError::ShardLimit {
            open: 1,
            requested: 200,
            limit: 100
        },
        ErrorKind::LimitExceeded
    );
    assert!(NewRecord::new("", None, Bytes::new()).is_err());
    assert!(NewRecord::new(&"k".repeat(257), None, Bytes::new()).is_err());
    assert!(NewRecord::new("k", None, Bytes::from(vec![0u8; MAX_RECORD_BYTES])).is_err());
    assert!(NewRecord::new("k", Some("12x"), Bytes::new()).is_err());
    assert_refused!(
        m.set_retention("s", 12, false),
        ModelError::RetentionOutOfRange { hours: 12 },
        ErrorKind::InvalidArgument
    );
    m.set_retention("s", 48, true).unwrap();
    assert_refused!(
        m.set_retention("s", 72, false),
        ModelError::RetentionDecreaseTooLong { .. },
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        Model::resolve_name(None, Some(&format!("{ARN_PREFIX}s"))).unwrap(),
        "s"
    );
}

#[test]
fn retention_trims_old_records() {
    let mut m = model();
    m.create_stream("s", Some(1), StreamMode::Provisioned, 0)
        .unwrap();
    m.put("s", &[rec("a", "1")], 1, 0, Instant::now()).unwrap();
    m.put("s", &[rec("a", "2")], 1, 3_600_000, Instant::now())
        .unwrap();
    assert_eq!(m.trim(24 * 3_600_000 + 1), 1);
    assert_eq!(m.stream("s").unwrap().shards[0].records.len(), 1);
}

#[test]
fn throughput_limits_throttle_per_record() {
    let mut m = model();
    m.settings.throughput_limits = true;
    m.create_stream("s", Some(1), StreamMode::Provisioned, 0)
        .unwrap();
    let recs: Vec<_> = (0..1200).map(|i| rec(&format!("k{i}"), "x")).collect();
    let out = m.put("s", &recs, 1, 0, Instant::now()).unwrap();
    let throttled = out.iter().filter(|o| **o == PutOutcome::Throttled).count();
    assert_eq!(throttled, 200);
}

#[test]
fn consumers_register_once_up_to_the_limit_and_are_found_by_arn_or_name() {
    let mut m = model();
    m.create_stream("s", Some(1), StreamMode::Provisioned, 0)
        .unwrap();
    let view = m.register_consumer("s", "app", 1_700_000_000_123).unwrap();
    assert_eq!(
        view.arn,
        "arn:aws:kinesis:us-east-1:000000000000:stream/s/consumer/app:1700000000"
    );
    assert_eq!(
        parse_consumer_arn(&view.arn).unwrap(),
        ConsumerArn {
            stream: "s".into(),
            consumer: "app".into(),
            created_secs: 1_700_000_000,
        }
    );
    assert_eq!(
        m.consumer(&ConsumerRef::Arn(view.arn.clone())).unwrap(),
        view
    );
    let named = ConsumerRef::Named {
        stream: "s".into(),
        consumer: "app".into(),
    };
    assert_eq!(m.consumer(&named).unwrap(), view);
    assert_refused!(
        m.register_consumer("s", "app", 5),
        ModelError::ConsumerExists { .. },
        ErrorKind::ResourceInUse
    );
    assert_refused!(
        m.register_consumer("s", "bad name", 5),
        ModelError::InvalidConsumerName { .. },
        ErrorKind::Validation
    );
    assert_refused!(
        m.register_consumer("nope", "app", 5),
        ModelError::StreamNotFound { .. },
        ErrorKind::ResourceNotFound
    );
    for i in 1..MAX_CONSUMERS {
        m.register_consumer("s", &format!("c{i}"), 5).unwrap();
    }
    assert_refused!(
        m.register_consumer("s", "one-too-many", 5),
        ModelError::ConsumerLimit { limit: 20, .. },
        ErrorKind::LimitExceeded
    );
    assert_eq!(m.list_consumers("s").unwrap().len(), MAX_CONSUMERS);

    // A consumer registered again under the same name is a different consumer.
    m.deregister_consumer(&named).unwrap();
    assert_refused!(
        m.consumer(&ConsumerRef::Arn(view.arn.clone())),
        ModelError::ConsumerNotFound { .. },
        ErrorKind::ResourceNotFound
    );
    m.register_consumer("s", "app", 1_800_000_000_000).unwrap();
    assert!(!m.consumer_exists(&view.arn));
    assert_refused!(
        m.consumer(&ConsumerRef::Arn(
            "arn:aws:kinesis:us-east-1:0:stream/s".into()
        )),
        ModelError::InvalidConsumerArn { .. },
        ErrorKind::InvalidArgument
    );
}

#[test]
fn topology_files_without_consumers_still_load_and_consumers_round_trip() {
    let mut m = model();
    m.create_stream("s", Some(1), StreamMode::Provisioned, 0)
        .unwrap();
    let old = m.topology_json().unwrap();
    assert!(
        !String::from_utf8_lossy(&old).contains("consumers"),
        "no consumers: the file is as before"
    );
    m.register_consumer("s", "app", 7_000).unwrap();
    let bytes = m.topology_json().unwrap();
    let topology: Topology = serde_json::from_slice(&bytes).unwrap();
    let loaded = Model::from_topology(topology, m.settings.clone());
    assert_eq!(loaded.list_consumers("s").unwrap()[0].consumer.name, "app");
    let topology: Topology = serde_json::from_slice(&old).unwrap();
    let loaded = Model::from_topology(topology, m.settings.clone());
    assert!(loaded.list_consumers("s").unwrap().is_empty());
}

#[test]
fn subscription_reads_continue_after_their_continuation_and_end_with_children() {
    let mut m = model();
    m.create_stream("s", Some(1), StreamMode::Provisioned, 0)
        .unwrap();
    let arn = m.register_consumer("s", "app", 0).unwrap().arn;
    let start = m
        .subscription_start(&arn, "shardId-000000000000", IteratorStart::TrimHorizon)
        .unwrap();
    // An empty shard: the continuation resumes before any record it will hold.
    let empty = m
        .read_subscription(start.stream_id, start.shard, start.position, 0, 10)
        .unwrap();
    assert!(empty.records.is_empty());
    let resume = empty.continuation.unwrap();
    m.put("s", &[rec("a", "1"), rec("b", "2")], 1, 10, Instant::now())
        .unwrap();
    // Not durable yet: nothing to send.
    let hidden = m
        .read_subscription(start.stream_id, start.shard, start.position, 0, 10)
        .unwrap();
    assert!(hidden.records.is_empty());
    let after = m
        .subscription_start(
            &arn,
            "shardId-000000000000",
            IteratorStart::AfterSequence(resume),
        )
        .unwrap();
    let read = m
        .read_subscription(after.stream_id, after.shard, after.position, 1, 10)
        .unwrap();
    assert_eq!(
        read.records.len(),
        2,
        "AFTER the empty continuation loses nothing"
    );
    assert_eq!(read.continuation, Some(read.records[1].seq));
    let again = m
        .subscription_start(
            &arn,
            "shardId-000000000000",
            IteratorStart::AfterSequence(read.continuation.unwrap()),
        )
        .unwrap();
    let tail = m
        .read_subscription(again.stream_id, again.shard, again.position, 1, 10)
        .unwrap();
    assert!(
        tail.records.is_empty(),
        "no duplicates after the continuation"
    );
    assert!(tail.child_shards.is_none());

    m.split_shard("s", "shardId-000000000000", "1000", 20)
        .unwrap();
    let end = m
        .read_subscription(again.stream_id, again.shard, again.position, 1, 30)
        .unwrap();
    assert_eq!(end.child_shards.as_ref().map(Vec::len), Some(2));
    assert_eq!(end.continuation, None);
    assert_refused!(
        m.subscription_start(&arn, "shardId-000000000009", IteratorStart::Latest),
        ModelError::ShardNotFound { .. },
        ErrorKind::ResourceNotFound
    );
}
