//! One compatibility suite, run against the embedded endpoint and against kinesis-local (a peer
//! nobody here wrote), through aws-sdk-kinesis. Where kinesis-local departs from AWS's
//! documentation the assertion is skipped for it, with the reason beside it.

mod support;

use aws_sdk_kinesis::{
    Client,
    error::DisplayErrorContext,
    primitives::{Blob, DateTime},
    types::{
        ConsumerStatus, PutRecordsRequestEntry, ScalingType, Shard, ShardFilter, ShardFilterType,
        ShardIteratorType, StartingPosition, StreamMode, StreamModeDetails, SubscribeToShardEvent,
        SubscribeToShardEventStream,
    },
};
use std::collections::{BTreeMap, HashMap};
use streamboard::kinesis::SequenceNumber;
use support::{Peer, PeerKind, create_stream, raw_post, start, unique_name, wait_active};

macro_rules! for_both_peers {
    ($($scenario:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let peer = super::start(super::PeerKind::Embedded).await;
                super::$scenario(&peer).await;
            })*
        }
        mod kinesis_local {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let peer = super::start(super::PeerKind::KinesisLocal).await;
                super::$scenario(&peer).await;
            })*
        }
    };
}

for_both_peers!(
    stream_lifecycle,
    put_get_and_every_iterator_type,
    resharding_during_writes,
    list_shards_paging_and_filters,
    error_shapes,
    stream_consumers,
    subscribe_to_shard_in_order_and_resume_after_continuation,
    second_subscription_is_refused,
    subscription_ends_with_child_shards_after_resharding,
);

fn seq(text: &str) -> SequenceNumber {
    SequenceNumber::parse(text).expect("a decimal sequence number")
}

async fn all_shards(client: &Client, name: &str) -> Vec<Shard> {
    client
        .list_shards()
        .stream_name(name)
        .send()
        .await
        .expect("ListShards")
        .shards
        .unwrap_or_default()
}

/// Reads a shard from TRIM_HORIZON until the end of a closed shard (null iterator) or an
/// empty page on an open one. Returns the records and the child shard ids seen.
async fn drain(
    client: &Client,
    name: &str,
    shard_id: &str,
) -> (Vec<aws_sdk_kinesis::types::Record>, Vec<String>) {
    let mut iterator = client
        .get_shard_iterator()
        .stream_name(name)
        .shard_id(shard_id)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("GetShardIterator")
        .shard_iterator;
    let mut records = Vec::new();
    let mut children = Vec::new();
    let mut empty_pages = 0;
    while let Some(it) = iterator {
        let out = client
            .get_records()
            .shard_iterator(it)
            .send()
            .await
            .expect("GetRecords");
        if out.records.is_empty() {
            empty_pages += 1;
        } else {
            empty_pages = 0;
        }
        records.extend(out.records);
        if let Some(kids) = out.child_shards {
            children.extend(kids.into_iter().map(|c| c.shard_id));
        }
        iterator = out.next_shard_iterator;
        // An open shard never ends; two empty pages in a row mean we are at its tip.
        if empty_pages >= 2 {
            break;
        }
    }
    (records, children)
}

async fn stream_lifecycle(peer: &Peer) {
    let c = &peer.client;
    let a = unique_name("life-a");
    let b = unique_name("life-b");
    create_stream(c, &a, 3).await;
    c.create_stream()
        .stream_name(&b)
        .stream_mode_details(
            StreamModeDetails::builder()
                .stream_mode(StreamMode::OnDemand)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("CreateStream ON_DEMAND");
    wait_active(c, &b).await;

    // ListStreams pages with Limit and ExclusiveStartStreamName.
    let mut names = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let out = c
            .list_streams()
            .limit(1)
            .set_exclusive_start_stream_name(start.clone())
            .send()
            .await
            .expect("ListStreams");
        assert!(out.stream_names.len() <= 1);
        names.extend(out.stream_names.clone());
        if !out.has_more_streams {
            break;
        }
        start = out.stream_names.last().cloned();
    }
    assert!(names.contains(&a) && names.contains(&b), "{names:?}");

    let description = c
        .describe_stream()
        .stream_name(&a)
        .send()
        .await
        .expect("DescribeStream")
        .stream_description
        .unwrap();
    assert_eq!(description.shards.len(), 3);
    assert_eq!(description.retention_period_hours, 24);
    assert!(!description.has_more_shards);
    let ranges: Vec<(u128, u128)> = description
        .shards
        .iter()
        .map(|s| {
            let r = s.hash_key_range.as_ref().unwrap();
            (
                r.starting_hash_key.parse().unwrap(),
                r.ending_hash_key.parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(ranges[0].0, 0);
    assert_eq!(ranges[2].1, u128::MAX);
    assert_eq!(ranges[0].1 + 1, ranges[1].0);
    assert_eq!(ranges[1].1 + 1, ranges[2].0);
    let arn = description.stream_arn.clone();

    // StreamARN is accepted wherever StreamName is.
    let summary = c
        .describe_stream_summary()
        .stream_arn(&arn)
        .send()
        .await
        .expect("DescribeStreamSummary by ARN")
        .stream_description_summary
        .unwrap();
    assert_eq!(summary.stream_name, a);
    assert_eq!(summary.open_shard_count, 3);
    let on_demand = c
        .describe_stream_summary()
        .stream_name(&b)
        .send()
        .await
        .unwrap()
        .stream_description_summary
        .unwrap();
    assert_eq!(
        on_demand.stream_mode_details.unwrap().stream_mode,
        StreamMode::OnDemand
    );
    // DescribeStream pages shards with Limit.
    let page = c
        .describe_stream()
        .stream_name(&a)
        .limit(2)
        .send()
        .await
        .unwrap()
        .stream_description
        .unwrap();
    assert_eq!(page.shards.len(), 2);
    assert!(page.has_more_shards);

    c.increase_stream_retention_period()
        .stream_arn(&arn)
        .retention_period_hours(48)
        .send()
        .await
        .expect("IncreaseStreamRetentionPeriod");
    wait_active(c, &a).await;
    let hours = |c: Client, a: String| async move {
        c.describe_stream_summary()
            .stream_name(a)
            .send()
            .await
            .unwrap()
            .stream_description_summary
            .unwrap()
            .retention_period_hours
    };
    assert_eq!(hours(c.clone(), a.clone()).await, 48);
    c.decrease_stream_retention_period()
        .stream_name(&a)
        .retention_period_hours(24)
        .send()
        .await
        .expect("DecreaseStreamRetentionPeriod");
    wait_active(c, &a).await;
    assert_eq!(hours(c.clone(), a.clone()).await, 24);

    let duplicate = c
        .create_stream()
        .stream_name(&a)
        .shard_count(1)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(duplicate.is_resource_in_use_exception(), "{duplicate:?}");

    c.delete_stream()
        .stream_name(&a)
        .send()
        .await
        .expect("DeleteStream");
    c.delete_stream()
        .stream_arn(arn.replace(&a, &b))
        .send()
        .await
        .expect("DeleteStream by ARN");
    support::eventually("streams deleted", || async {
        let out = c.list_streams().send().await.unwrap();
        !out.stream_names.contains(&a) && !out.stream_names.contains(&b)
    })
    .await;
    let gone = c
        .describe_stream()
        .stream_name(&a)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(gone.is_resource_not_found_exception(), "{gone:?}");
}

fn md5_hash(key: &str) -> u128 {
    use md5::{Digest, Md5};
    u128::from_be_bytes(Md5::digest(key.as_bytes()).into())
}

fn shard_for(shards: &[Shard], hash: u128) -> String {
    shards
        .iter()
        .find(|s| {
            let r = s.hash_key_range.as_ref().unwrap();
            r.starting_hash_key.parse::<u128>().unwrap() <= hash
                && hash <= r.ending_hash_key.parse::<u128>().unwrap()
        })
        .map(|s| s.shard_id.clone())
        .unwrap()
}

async fn put_get_and_every_iterator_type(peer: &Peer) {
    let c = &peer.client;
    let name = unique_name("rw");
    create_stream(c, &name, 2).await;
    let shards = all_shards(c, &name).await;

    // PutRecord: MD5 of the partition key picks the shard.
    let first = c
        .put_record()
        .stream_name(&name)
        .partition_key("alpha")
        .data(Blob::new(b"first".to_vec()))
        .send()
        .await
        .expect("PutRecord");
    assert_eq!(first.shard_id, shard_for(&shards, md5_hash("alpha")));

    // ExplicitHashKey overrides the partition key's hash.
    let explicit = c
        .put_record()
        .stream_name(&name)
        .partition_key("alpha")
        .explicit_hash_key(((1u128 << 127) + 5).to_string())
        .data(Blob::new(b"explicit".to_vec()))
        .send()
        .await
        .expect("PutRecord with ExplicitHashKey");
    assert_eq!(explicit.shard_id, shard_for(&shards, (1u128 << 127) + 5));

    // PutRecords: 200 records, every one stored, shard chosen by MD5.
    let entries: Vec<_> = (0..200)
        .map(|i| {
            PutRecordsRequestEntry::builder()
                .partition_key(format!("key-{i}"))
                .data(Blob::new(format!("record-{i}").into_bytes()))
                .build()
                .unwrap()
        })
        .collect();
    let out = c
        .put_records()
        .stream_name(&name)
        .set_records(Some(entries))
        .send()
        .await
        .expect("PutRecords");
    assert_eq!(out.failed_record_count, Some(0));
    assert_eq!(out.records.len(), 200);
    let mut expected: BTreeMap<String, Vec<(SequenceNumber, String)>> = BTreeMap::new();
    expected
        .entry(first.shard_id.clone())
        .or_default()
        .push((seq(&first.sequence_number), "first".into()));
    expected
        .entry(explicit.shard_id.clone())
        .or_default()
        .push((seq(&explicit.sequence_number), "explicit".into()));
    for (i, r) in out.records.iter().enumerate() {
        let shard = r.shard_id.clone().unwrap();
        assert_eq!(shard, shard_for(&shards, md5_hash(&format!("key-{i}"))));
        expected.entry(shard).or_default().push((
            seq(r.sequence_number.as_deref().unwrap()),
            format!("record-{i}"),
        ));
    }
    for list in expected.values() {
        assert!(
            list.windows(2).all(|w| w[0].0 < w[1].0),
            "sequence numbers strictly increase per shard"
        );
    }

    // TRIM_HORIZON returns everything, in order, with arrival timestamps.
    for (shard, want) in &expected {
        let (records, _) = drain(c, &name, shard).await;
        let got: Vec<(SequenceNumber, String)> = records
            .iter()
            .map(|r| {
                (
                    seq(&r.sequence_number),
                    String::from_utf8(r.data.as_ref().to_vec()).unwrap(),
                )
            })
            .collect();
        assert_eq!(&got, want, "shard {shard}");
        assert!(
            records
                .iter()
                .all(|r| r.approximate_arrival_timestamp.is_some())
        );
    }

    let shard = first.shard_id.clone();
    let list = &expected[&shard];
    let iterator = |kind: ShardIteratorType, seq: Option<&str>, ts: Option<DateTime>| {
        let c = c.clone();
        let name = name.clone();
        let shard = shard.clone();
        let seq = seq.map(str::to_string);
        async move {
            c.get_shard_iterator()
                .stream_name(&name)
                .shard_id(&shard)
                .shard_iterator_type(kind)
                .set_starting_sequence_number(seq)
                .set_timestamp(ts)
                .send()
                .await
                .expect("GetShardIterator")
                .shard_iterator
                .unwrap()
        }
    };
    let read = |it: String, limit: Option<i32>| {
        let c = c.clone();
        async move {
            c.get_records()
                .shard_iterator(it)
                .set_limit(limit)
                .send()
                .await
                .expect("GetRecords")
        }
    };
    let data =
        |r: &aws_sdk_kinesis::types::Record| String::from_utf8(r.data.as_ref().to_vec()).unwrap();

    // AT_SEQUENCE_NUMBER / AFTER_SEQUENCE_NUMBER.
    let at = read(
        iterator(
            ShardIteratorType::AtSequenceNumber,
            Some(list[0].0.as_str()),
            None,
        )
        .await,
        Some(1),
    )
    .await;
    assert_eq!(at.records.len(), 1);
    assert_eq!(data(&at.records[0]), list[0].1);
    assert!(at.millis_behind_latest.is_some());
    let next = read(at.next_shard_iterator.unwrap(), Some(1)).await;
    assert_eq!(
        data(&next.records[0]),
        list[1].1,
        "NextShardIterator continues"
    );
    let after = read(
        iterator(
            ShardIteratorType::AfterSequenceNumber,
            Some(list[0].0.as_str()),
            None,
        )
        .await,
        Some(1),
    )
    .await;
    assert_eq!(data(&after.records[0]), list[1].1);

    // AT_TIMESTAMP: before the first record gives everything.
    let before = DateTime::from_secs(first_arrival(c, &name, &shard).await - 60);
    let all = read(
        iterator(ShardIteratorType::AtTimestamp, None, Some(before)).await,
        None,
    )
    .await;
    assert_eq!(all.records.len(), list.len());

    // LATEST sees only what arrives afterwards.
    let latest = iterator(ShardIteratorType::Latest, None, None).await;
    let empty = read(latest.clone(), None).await;
    assert!(empty.records.is_empty());
    assert_eq!(empty.millis_behind_latest, Some(0));
    c.put_record()
        .stream_name(&name)
        .partition_key("alpha")
        .data(Blob::new(b"late".to_vec()))
        .send()
        .await
        .unwrap();
    let late = read(latest, None).await;
    assert_eq!(late.records.len(), 1);
    assert_eq!(data(&late.records[0]), "late");
}

async fn first_arrival(c: &Client, name: &str, shard: &str) -> i64 {
    let (records, _) = drain(c, name, shard).await;
    records[0].approximate_arrival_timestamp.unwrap().secs()
}

async fn resharding_during_writes(peer: &Peer) {
    let c = &peer.client;
    let name = unique_name("reshard");
    create_stream(c, &name, 1).await;
    let stop = tokio_util::sync::CancellationToken::new();
    let acked_count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // A writer puts batches of 10 while the stream is resharded; it keeps every acknowledged
    // record. kinesis-local refuses writes while UPDATING (ResourceInUse); those are not
    // acknowledged and so not expected back.
    let writer = tokio::spawn({
        let c = c.clone();
        let name = name.clone();
        let stop = stop.clone();
        let acked_count = acked_count.clone();
        async move {
            let mut acked: HashMap<String, String> = HashMap::new();
            let mut n = 0u32;
            while !stop.is_cancelled() {
                let entries: Vec<_> = (n..n + 10)
                    .map(|i| {
                        PutRecordsRequestEntry::builder()
                            .partition_key(format!("p{i}"))
                            .data(Blob::new(format!("w{i}").into_bytes()))
                            .build()
                            .unwrap()
                    })
                    .collect();
                if let Ok(out) = c
                    .put_records()
                    .stream_name(&name)
                    .set_records(Some(entries))
                    .send()
                    .await
                {
                    for (i, r) in (n..).zip(out.records) {
                        if let Some(s) = r.sequence_number {
                            acked.insert(format!("w{i}"), s);
                        }
                    }
                    acked_count.store(acked.len(), std::sync::atomic::Ordering::SeqCst);
                }
                n += 10;
            }
            acked
        }
    });
    // Waits until the writer has had `more` further records acknowledged.
    let wait_for_writes = |more: usize| {
        let acked_count = acked_count.clone();
        async move {
            let target = acked_count.load(std::sync::atomic::Ordering::SeqCst) + more;
            support::eventually("acknowledged writes", || {
                let acked_count = acked_count.clone();
                async move { acked_count.load(std::sync::atomic::Ordering::SeqCst) >= target }
            })
            .await;
        }
    };
    wait_for_writes(20).await;
    c.split_shard()
        .stream_name(&name)
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key((1u128 << 127).to_string())
        .send()
        .await
        .expect("SplitShard");
    wait_active(c, &name).await;
    wait_for_writes(20).await;
    let open: Vec<String> = all_shards(c, &name)
        .await
        .into_iter()
        .filter(|s| {
            s.sequence_number_range
                .as_ref()
                .unwrap()
                .ending_sequence_number
                .is_none()
        })
        .map(|s| s.shard_id)
        .collect();
    assert_eq!(open.len(), 2);
    c.merge_shards()
        .stream_name(&name)
        .shard_to_merge(&open[0])
        .adjacent_shard_to_merge(&open[1])
        .send()
        .await
        .expect("MergeShards");
    wait_active(c, &name).await;
    wait_for_writes(20).await;
    let update = c
        .update_shard_count()
        .stream_name(&name)
        .target_shard_count(2)
        .scaling_type(ScalingType::UniformScaling)
        .send()
        .await
        .expect("UpdateShardCount");
    assert_eq!(update.current_shard_count, Some(1));
    assert_eq!(update.target_shard_count, Some(2));
    wait_active(c, &name).await;
    wait_for_writes(20).await;
    stop.cancel();
    let acked = writer.await.unwrap();
    assert!(
        acked.len() >= 40,
        "the writer got records through ({})",
        acked.len()
    );

    let shards = all_shards(c, &name).await;
    let open_count = shards
        .iter()
        .filter(|s| {
            s.sequence_number_range
                .as_ref()
                .unwrap()
                .ending_sequence_number
                .is_none()
        })
        .count();
    assert_eq!(open_count, 2);
    // The split's children name shard 0 as parent; the merge's child names both.
    let by_id: HashMap<&str, &Shard> = shards.iter().map(|s| (s.shard_id.as_str(), s)).collect();
    let split_children: Vec<&&Shard> = by_id
        .values()
        .filter(|s| s.parent_shard_id.as_deref() == Some("shardId-000000000000"))
        .collect();
    assert_eq!(split_children.len(), 2, "{shards:#?}");
    assert!(
        shards.iter().any(|s| s.adjacent_parent_shard_id.is_some()),
        "the merged shard has an adjacent parent"
    );

    let mut seen: HashMap<String, String> = HashMap::new();
    for shard in &shards {
        let closed = shard
            .sequence_number_range
            .as_ref()
            .unwrap()
            .ending_sequence_number
            .is_some();
        let (records, children) = drain(c, &name, &shard.shard_id).await;
        if closed {
            assert!(
                !children.is_empty(),
                "closed shard {} lists ChildShards",
                shard.shard_id
            );
        }
        let seqs: Vec<SequenceNumber> = records.iter().map(|r| seq(&r.sequence_number)).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]));
        if !peer.is_local_mock() {
            // kinesis-local: a closed shard's EndingSequenceNumber is i64::MAX, not a real
            // sequence number (TOOLCHAIN quirk), so this AWS property is checked only here.
            if let Some(end) = &shard
                .sequence_number_range
                .as_ref()
                .unwrap()
                .ending_sequence_number
            {
                assert!(seqs.iter().all(|s| s <= &seq(end)));
            }
        }
        for r in records {
            let data = String::from_utf8(r.data.as_ref().to_vec()).unwrap();
            assert!(
                seen.insert(data, r.sequence_number).is_none(),
                "no duplicates"
            );
        }
    }
    for (id, s) in &acked {
        assert_eq!(
            seen.get(id),
            Some(s),
            "acknowledged record {id} is readable with its sequence number"
        );
    }
}

async fn list_shards_paging_and_filters(peer: &Peer) {
    let c = &peer.client;
    let name = unique_name("list");
    create_stream(c, &name, 4).await;
    c.split_shard()
        .stream_name(&name)
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key("1000")
        .send()
        .await
        .expect("SplitShard");
    wait_active(c, &name).await;

    // MaxResults + NextToken pages through all six shards.
    let mut ids = Vec::new();
    let mut out = c
        .list_shards()
        .stream_name(&name)
        .max_results(2)
        .send()
        .await
        .unwrap();
    loop {
        ids.extend(
            out.shards
                .unwrap_or_default()
                .into_iter()
                .map(|s| s.shard_id),
        );
        match out.next_token {
            Some(token) => {
                out = c
                    .list_shards()
                    .next_token(token)
                    .max_results(2)
                    .send()
                    .await
                    .unwrap()
            }
            None => break,
        }
    }
    assert_eq!(ids.len(), 6, "{ids:?}");

    let filtered = |kind: ShardFilterType, shard: Option<&str>| {
        let c = c.clone();
        let name = name.clone();
        let shard = shard.map(str::to_string);
        async move {
            c.list_shards()
                .stream_name(&name)
                .shard_filter(
                    ShardFilter::builder()
                        .r#type(kind)
                        .set_shard_id(shard)
                        .build()
                        .unwrap(),
                )
                .send()
                .await
                .expect("ListShards with filter")
                .shards
                .unwrap_or_default()
                .into_iter()
                .map(|s| s.shard_id)
                .collect::<Vec<_>>()
        }
    };
    let latest = filtered(ShardFilterType::AtLatest, None).await;
    assert_eq!(latest.len(), 5);
    assert!(!latest.contains(&"shardId-000000000000".to_string()));
    let after = filtered(ShardFilterType::AfterShardId, Some("shardId-000000000003")).await;
    assert_eq!(after, vec!["shardId-000000000004", "shardId-000000000005"]);
    let from_horizon = filtered(ShardFilterType::FromTrimHorizon, None).await;
    assert_eq!(from_horizon.len(), 6);

    // ExclusiveStartShardId.
    let rest = c
        .list_shards()
        .stream_name(&name)
        .exclusive_start_shard_id("shardId-000000000002")
        .send()
        .await
        .unwrap()
        .shards
        .unwrap_or_default();
    assert_eq!(rest.len(), 3);
}

async fn error_shapes(peer: &Peer) {
    let c = &peer.client;
    let name = unique_name("errors");
    create_stream(c, &name, 1).await;
    let stored = c
        .put_record()
        .stream_name(&name)
        .partition_key("k")
        .data(Blob::new(b"kept".to_vec()))
        .send()
        .await
        .unwrap();

    let missing = c
        .describe_stream()
        .stream_name(unique_name("nope"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(missing.is_resource_not_found_exception(), "{missing:?}");
    let missing = c
        .put_record()
        .stream_name(unique_name("nope"))
        .partition_key("k")
        .data(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(missing.is_resource_not_found_exception(), "{missing:?}");

    // Oversized batch: 501 records.
    let entries: Vec<_> = (0..501)
        .map(|i| {
            PutRecordsRequestEntry::builder()
                .partition_key(format!("k{i}"))
                .data(Blob::new(b"x".to_vec()))
                .build()
                .unwrap()
        })
        .collect();
    let result = c
        .put_records()
        .stream_name(&name)
        .set_records(Some(entries))
        .send()
        .await;
    if !peer.is_local_mock() {
        // kinesis-local accepts 501 records in one PutRecords; AWS refuses more than 500.
        let Err(error) = result else {
            panic!("a 501-record PutRecords is refused")
        };
        let code = error
            .as_service_error()
            .and_then(|e| aws_sdk_kinesis::error::ProvideErrorMetadata::code(e))
            .map(str::to_string);
        assert_eq!(code.as_deref(), Some("ValidationException"), "{error:?}");
    }

    // Oversized record: 1 MiB of data plus a key.
    let error = c
        .put_record()
        .stream_name(&name)
        .partition_key("k")
        .data(Blob::new(vec![0u8; 1024 * 1024 + 1]))
        .send()
        .await
        .unwrap_err();
    let code = error
        .as_service_error()
        .and_then(|e| aws_sdk_kinesis::error::ProvideErrorMetadata::code(e))
        .map(str::to_string);
    assert!(
        matches!(
            code.as_deref(),
            Some("ValidationException") | Some("InvalidArgumentException")
        ),
        "{error:?}"
    );

    // Partition key too long.
    let error = c
        .put_record()
        .stream_name(&name)
        .partition_key("k".repeat(257))
        .data(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap_err();
    let code = error
        .as_service_error()
        .and_then(|e| aws_sdk_kinesis::error::ProvideErrorMetadata::code(e))
        .map(str::to_string);
    // AWS enforces the API model's 1-256 length with ValidationException; kinesis-local
    // answers InvalidArgumentException, which is accepted for it only.
    let expected = if peer.is_local_mock() {
        "InvalidArgumentException"
    } else {
        "ValidationException"
    };
    assert_eq!(code.as_deref(), Some(expected), "{error:?}");

    // A sequence number that is not from this shard.
    let error = c
        .get_shard_iterator()
        .stream_name(&name)
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
        .starting_sequence_number("1")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    if peer.is_local_mock() {
        // kinesis-local answers ResourceNotFoundException ("Unable to find record"); AWS says
        // InvalidArgumentException ("did not come from this stream").
        assert!(error.is_resource_not_found_exception(), "{error:?}");
    } else {
        assert!(error.is_invalid_argument_exception(), "{error:?}");
    }

    // Unknown shard.
    let error = c
        .get_shard_iterator()
        .stream_name(&name)
        .shard_id("shardId-000000000099")
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(error.is_resource_not_found_exception(), "{error:?}");

    // Splitting at the shard's own start; merging with a shard that does not exist.
    if !peer.is_local_mock() {
        // kinesis-local accepts a split at the shard's own starting hash key (leaving an empty
        // child); AWS refuses it with InvalidArgumentException.
        let error = c
            .split_shard()
            .stream_name(&name)
            .shard_to_split("shardId-000000000000")
            .new_starting_hash_key("0")
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert!(error.is_invalid_argument_exception(), "{error:?}");
    }
    let error = c
        .merge_shards()
        .stream_name(&name)
        .shard_to_merge("shardId-000000000000")
        .adjacent_shard_to_merge("shardId-000000000042")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(error.is_resource_not_found_exception(), "{error:?}");

    if !peer.is_local_mock() {
        // kinesis-local answers a garbage iterator with HTTP 500 and an empty body (TOOLCHAIN
        // quirk); AWS answers InvalidArgumentException.
        let error = c
            .get_records()
            .shard_iterator("not-an-iterator")
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert!(error.is_invalid_argument_exception(), "{error:?}");
    }

    // Raw protocol errors: no Authorization, malformed JSON, unknown operation.
    let (status, body) = raw_post(
        peer.addr,
        Some("Kinesis_20131202.ListStreams"),
        false,
        b"{}",
    )
    .await;
    assert!(
        body.contains("MissingAuthenticationToken"),
        "{status} {body}"
    );
    assert!(status == 400 || status == 403, "{status}");
    let (status, body) = raw_post(
        peer.addr,
        Some("Kinesis_20131202.PutRecord"),
        true,
        b"{\"StreamName\": ",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("SerializationException"), "{body}");
    let (status, body) =
        raw_post(peer.addr, Some("Kinesis_20131202.Frobnicate"), true, b"{}").await;
    assert_eq!(status, 400, "{body}");
    if !peer.is_local_mock() {
        // kinesis-local answers AccessDeniedException ("Unable to determine service/operation
        // name"); AWS answers UnknownOperationException.
        assert!(body.contains("UnknownOperationException"), "{body}");
    }

    // Nothing stored was affected.
    let (records, _) = drain(c, &name, &stored.shard_id).await;
    assert_eq!(records[0].sequence_number, stored.sequence_number);
    assert_eq!(records[0].data.as_ref(), b"kept");
    if !peer.is_local_mock() {
        // kinesis-local stored the 501-record batch it should have refused (see above).
        assert_eq!(records.len(), 1, "no refused request stored anything");
    }
}

// ---- enhanced fan-out ----

async fn stream_arn(c: &Client, name: &str) -> String {
    c.describe_stream_summary()
        .stream_name(name)
        .send()
        .await
        .expect("DescribeStreamSummary")
        .stream_description_summary
        .expect("a summary")
        .stream_arn
}

/// Registers `consumer` on the stream and waits until it is ACTIVE (kinesis-local passes
/// through CREATING); returns its ARN.
async fn register_consumer(c: &Client, stream_arn: &str, consumer: &str) -> String {
    let registered = c
        .register_stream_consumer()
        .stream_arn(stream_arn)
        .consumer_name(consumer)
        .send()
        .await
        .unwrap_or_else(|e| panic!("RegisterStreamConsumer: {}", DisplayErrorContext(e)))
        .consumer
        .expect("a consumer");
    let arn = registered.consumer_arn;
    support::eventually(&format!("consumer {consumer} ACTIVE"), || {
        let arn = arn.clone();
        async move {
            c.describe_stream_consumer()
                .consumer_arn(arn)
                .send()
                .await
                .ok()
                .and_then(|out| out.consumer_description)
                .is_some_and(|d| d.consumer_status == ConsumerStatus::Active)
        }
    })
    .await;
    arn
}

async fn stream_consumers(peer: &Peer) {
    let c = &peer.client;
    let name = unique_name("efo");
    create_stream(c, &name, 1).await;
    let arn = stream_arn(c, &name).await;
    let registered = c
        .register_stream_consumer()
        .stream_arn(&arn)
        .consumer_name("dash")
        .send()
        .await
        .expect("RegisterStreamConsumer")
        .consumer
        .unwrap();
    assert_eq!(registered.consumer_name, "dash");
    // arn:aws:kinesis:<region>:<account>:stream/<stream>/consumer/<name>:<creation seconds>
    let prefix = format!("{arn}/consumer/dash:");
    let seconds = registered
        .consumer_arn
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{} starts with {prefix}", registered.consumer_arn));
    assert!(seconds.parse::<i64>().is_ok(), "{seconds}");
    assert!(
        (registered.consumer_creation_timestamp.secs() - seconds.parse::<i64>().unwrap()).abs()
            <= 1
    );
    let consumer_arn = register_consumer_wait(c, &registered.consumer_arn).await;

    let by_name = c
        .describe_stream_consumer()
        .stream_arn(&arn)
        .consumer_name("dash")
        .send()
        .await
        .expect("DescribeStreamConsumer by name")
        .consumer_description
        .unwrap();
    assert_eq!(by_name.consumer_arn, consumer_arn);
    assert_eq!(by_name.stream_arn, arn);
    assert_eq!(by_name.consumer_status, ConsumerStatus::Active);

    let duplicate = c
        .register_stream_consumer()
        .stream_arn(&arn)
        .consumer_name("dash")
        .send()
        .await
        .expect_err("a second consumer of the same name");
    assert!(
        duplicate
            .as_service_error()
            .is_some_and(|e| e.is_resource_in_use_exception()),
        "{}",
        DisplayErrorContext(&duplicate)
    );

    let other = register_consumer(c, &arn, "other").await;
    let listed = c
        .list_stream_consumers()
        .stream_arn(&arn)
        .send()
        .await
        .expect("ListStreamConsumers")
        .consumers
        .unwrap_or_default();
    let mut names: Vec<_> = listed.iter().map(|c| c.consumer_name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["dash", "other"]);
    // Paging with MaxResults. kinesis-local cuts the page to MaxResults but gives no
    // NextToken for the rest, so the second page is checked only on the embedded endpoint.
    let first = c
        .list_stream_consumers()
        .stream_arn(&arn)
        .max_results(1)
        .send()
        .await
        .expect("ListStreamConsumers page 1");
    assert_eq!(first.consumers.as_ref().map(Vec::len), Some(1));
    let second = c
        .list_stream_consumers()
        .stream_arn(&arn)
        .set_next_token(first.next_token.clone())
        .max_results(1)
        .send()
        .await
        .expect("ListStreamConsumers page 2");
    if !peer.is_local_mock() {
        assert!(first.next_token.is_some());
        assert_eq!(second.consumers.as_ref().map(Vec::len), Some(1));
        assert!(second.next_token.is_none());
        assert_ne!(
            first.consumers.unwrap()[0].consumer_name,
            second.consumers.unwrap()[0].consumer_name
        );
    }

    c.deregister_stream_consumer()
        .consumer_arn(&other)
        .send()
        .await
        .expect("DeregisterStreamConsumer by ARN");
    c.deregister_stream_consumer()
        .stream_arn(&arn)
        .consumer_name("dash")
        .send()
        .await
        .expect("DeregisterStreamConsumer by name");
    // kinesis-local keeps a deregistered consumer as DELETING for a moment.
    support::eventually("both consumers gone", || async {
        c.describe_stream_consumer()
            .consumer_arn(&consumer_arn)
            .send()
            .await
            .err()
            .is_some_and(|e| {
                e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception())
            })
            && c.list_stream_consumers()
                .stream_arn(&arn)
                .send()
                .await
                .is_ok_and(|out| out.consumers.unwrap_or_default().is_empty())
    })
    .await;

    // At most 20 consumers per stream.
    if peer.kind == PeerKind::Embedded {
        for i in 0..20 {
            c.register_stream_consumer()
                .stream_arn(&arn)
                .consumer_name(format!("c{i}"))
                .send()
                .await
                .expect("RegisterStreamConsumer within the limit");
        }
        let over = c
            .register_stream_consumer()
            .stream_arn(&arn)
            .consumer_name("c20")
            .send()
            .await
            .expect_err("a 21st consumer");
        assert!(
            over.as_service_error()
                .is_some_and(|e| e.is_limit_exceeded_exception()),
            "{}",
            DisplayErrorContext(&over)
        );
    }
}

/// Waits until the consumer is ACTIVE; returns its ARN.
async fn register_consumer_wait(c: &Client, consumer_arn: &str) -> String {
    support::eventually("consumer ACTIVE", || async {
        c.describe_stream_consumer()
            .consumer_arn(consumer_arn)
            .send()
            .await
            .ok()
            .and_then(|out| out.consumer_description)
            .is_some_and(|d| d.consumer_status == ConsumerStatus::Active)
    })
    .await;
    consumer_arn.to_string()
}

type Events = aws_sdk_kinesis::primitives::event_stream::EventReceiver<
    SubscribeToShardEventStream,
    aws_sdk_kinesis::types::error::SubscribeToShardEventStreamError,
>;

/// An open subscription; the first event may already have been read (to see whether the
/// subscription was refused inside the stream).
struct Subscription {
    events: Events,
    first: Option<Option<SubscribeToShardEvent>>,
}

fn is_in_use<E: std::fmt::Debug, R>(
    error: &aws_sdk_kinesis::error::SdkError<E, R>,
    check: impl Fn(&E) -> bool,
) -> bool {
    error.as_service_error().is_some_and(check)
}

/// Opens a subscription, retrying while the previous one of the same consumer and shard is
/// still being released (AWS also answers ResourceInUseException then). The embedded
/// endpoint refuses with an HTTP error; kinesis-local with an exception message first in the
/// stream, so the first event is read here.
async fn subscribe(
    c: &Client,
    consumer_arn: &str,
    shard: &str,
    start: StartingPosition,
) -> Subscription {
    let deadline = std::time::Instant::now() + support::WAIT;
    loop {
        let retry = std::time::Instant::now() < deadline;
        let sent = tokio::time::timeout(
            support::WAIT,
            c.subscribe_to_shard()
                .consumer_arn(consumer_arn)
                .shard_id(shard)
                .starting_position(start.clone())
                .send(),
        )
        .await
        .expect("SubscribeToShard answers");
        let mut events = match sent {
            Ok(out) => out.event_stream,
            Err(e) if retry && is_in_use(&e, |e| e.is_resource_in_use_exception()) => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
            Err(e) => panic!("SubscribeToShard: {}", DisplayErrorContext(e)),
        };
        let first = tokio::time::timeout(support::WAIT, events.recv())
            .await
            .expect("a first event (or the end) within the wait");
        match first {
            Ok(first) => {
                return Subscription {
                    events,
                    first: Some(first.map(|event| match event {
                        SubscribeToShardEventStream::SubscribeToShardEvent(event) => event,
                        other => panic!("unexpected event {other:?}"),
                    })),
                };
            }
            Err(e) if retry && is_in_use(&e, |e| e.is_resource_in_use_exception()) => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("first event: {}", DisplayErrorContext(e)),
        }
    }
}

/// The next event, or `None` when the subscription ended.
async fn next_event(sub: &mut Subscription) -> Option<SubscribeToShardEvent> {
    if let Some(first) = sub.first.take() {
        return first;
    }
    let received = tokio::time::timeout(support::WAIT, sub.events.recv())
        .await
        .expect("an event (or the end) within the wait")
        .unwrap_or_else(|e| panic!("event stream: {}", DisplayErrorContext(e)));
    match received? {
        SubscribeToShardEventStream::SubscribeToShardEvent(event) => Some(event),
        other => panic!("unexpected event {other:?}"),
    }
}

/// Receives events until `count` records arrived; returns them and the last event.
async fn receive_records(
    events: &mut Subscription,
    count: usize,
) -> (Vec<aws_sdk_kinesis::types::Record>, SubscribeToShardEvent) {
    let mut records = Vec::new();
    loop {
        let event = next_event(events)
            .await
            .expect("the subscription stays open");
        records.extend(event.records.iter().cloned());
        assert!(records.len() <= count, "more records than put: {records:?}");
        if records.len() == count {
            return (records, event);
        }
    }
}

async fn put_keys(c: &Client, name: &str, data: &[&str]) -> Vec<String> {
    let mut seqs = Vec::new();
    for d in data {
        let out = c
            .put_record()
            .stream_name(name)
            .partition_key(format!("k-{d}"))
            .data(Blob::new(d.as_bytes().to_vec()))
            .send()
            .await
            .expect("PutRecord");
        seqs.push(out.sequence_number);
    }
    seqs
}

fn position(kind: ShardIteratorType, seq: Option<&str>) -> StartingPosition {
    StartingPosition::builder()
        .r#type(kind)
        .set_sequence_number(seq.map(str::to_string))
        .build()
        .expect("a starting position")
}

async fn subscribe_to_shard_in_order_and_resume_after_continuation(peer: &Peer) {
    let c = &peer.client;
    let name = unique_name("sub");
    create_stream(c, &name, 1).await;
    let arn = stream_arn(c, &name).await;
    let consumer = register_consumer(c, &arn, "reader").await;
    let shard = "shardId-000000000000";
    let mut expected = put_keys(c, &name, &["a", "b", "c"]).await;

    let mut events = subscribe(
        c,
        &consumer,
        shard,
        position(ShardIteratorType::TrimHorizon, None),
    )
    .await;
    let (before, _) = receive_records(&mut events, 3).await;
    let writing = std::time::Instant::now();
    expected.extend(put_keys(c, &name, &["d", "e", "f"]).await);
    let (after, last) = receive_records(&mut events, 3).await;
    if !peer.is_local_mock() {
        // Pushed as they become durable, not on the next 5 s heartbeat.
        assert!(
            writing.elapsed() < std::time::Duration::from_secs(3),
            "records took {:?} to arrive",
            writing.elapsed()
        );
    }
    let records: Vec<_> = before.into_iter().chain(after).collect();
    let data: Vec<_> = records.iter().map(|r| r.data.as_ref().to_vec()).collect();
    assert_eq!(
        data,
        ["a", "b", "c", "d", "e", "f"].map(|d| d.as_bytes().to_vec())
    );
    let seqs: Vec<_> = records.iter().map(|r| r.sequence_number.clone()).collect();
    assert_eq!(
        seqs, expected,
        "the sequence numbers PutRecord answered, in order"
    );
    assert_eq!(records[3].partition_key.as_deref(), Some("k-d"));
    assert!(records[0].approximate_arrival_timestamp.is_some());
    // The continuation is the last record delivered.
    assert_eq!(last.continuation_sequence_number, expected[5]);
    assert!(last.child_shards.as_ref().is_none_or(Vec::is_empty));
    drop(events);

    // Resuming after the continuation: only what came later, no duplicates.
    let mut events = subscribe(
        c,
        &consumer,
        shard,
        position(
            ShardIteratorType::AfterSequenceNumber,
            Some(&last.continuation_sequence_number),
        ),
    )
    .await;
    let later = put_keys(c, &name, &["g"]).await;
    let (resumed, event) = receive_records(&mut events, 1).await;
    assert_eq!(resumed[0].sequence_number, later[0]);
    assert_eq!(event.continuation_sequence_number, later[0]);
    drop(events);

    // AT_SEQUENCE_NUMBER starts with that record.
    let mut events = subscribe(
        c,
        &consumer,
        shard,
        position(ShardIteratorType::AtSequenceNumber, Some(&expected[4])),
    )
    .await;
    let (at, _) = receive_records(&mut events, 3).await;
    let at: Vec<_> = at.into_iter().map(|r| r.sequence_number).collect();
    assert_eq!(
        at,
        [expected[4].clone(), expected[5].clone(), later[0].clone()]
    );
}

async fn second_subscription_is_refused(peer: &Peer) {
    let c = &peer.client;
    let name = unique_name("dup");
    create_stream(c, &name, 1).await;
    let arn = stream_arn(c, &name).await;
    let consumer = register_consumer(c, &arn, "only-once").await;
    let shard = "shardId-000000000000";
    let mut open = subscribe(
        c,
        &consumer,
        shard,
        position(ShardIteratorType::Latest, None),
    )
    .await;
    // The first subscription has started (its first event is in), so it holds the shard.
    // The embedded endpoint refuses with an HTTP 400 ResourceInUseException, as AWS answers a
    // SubscribeToShard it will not serve (so `send()` fails); kinesis-local answers 200 and
    // sends the exception as the stream's first message (so the first `recv()` fails).
    let refused = c
        .subscribe_to_shard()
        .consumer_arn(&consumer)
        .shard_id(shard)
        .starting_position(position(ShardIteratorType::Latest, None))
        .send()
        .await;
    let in_use = match refused {
        Err(e) => e
            .as_service_error()
            .is_some_and(|e| e.is_resource_in_use_exception()),
        Ok(mut second) => {
            assert!(
                peer.is_local_mock(),
                "the embedded endpoint refuses before the stream starts"
            );
            let first = tokio::time::timeout(support::WAIT, second.event_stream.recv())
                .await
                .expect("the refusal arrives");
            first.is_err_and(|e| {
                e.as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception())
            })
        }
    };
    assert!(in_use, "a second subscription gets ResourceInUseException");
    // The first one still works.
    put_keys(c, &name, &["x"]).await;
    let (records, _) = receive_records(&mut open, 1).await;
    assert_eq!(records[0].data.as_ref(), b"x");
}

/// Receives events until one carries ChildShards; returns their ids (sorted) and checks that
/// the subscription then ends.
async fn children_at_end(events: &mut Subscription) -> Vec<String> {
    let deadline = std::time::Instant::now() + support::WAIT;
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no ChildShards within {:?}",
            support::WAIT
        );
        let event = next_event(events)
            .await
            .expect("the subscription ends only after ChildShards");
        if let Some(children) = event.child_shards.filter(|c| !c.is_empty()) {
            let mut ids: Vec<_> = children.into_iter().map(|c| c.shard_id).collect();
            ids.sort();
            assert!(
                next_event(events).await.is_none(),
                "the subscription ends after the ChildShards event"
            );
            return ids;
        }
    }
}

async fn subscription_ends_with_child_shards_after_resharding(peer: &Peer) {
    let c = &peer.client;
    let name = unique_name("efo-reshard");
    create_stream(c, &name, 1).await;
    let arn = stream_arn(c, &name).await;
    let consumer = register_consumer(c, &arn, "follower").await;
    put_keys(c, &name, &["before-split"]).await;
    let mut parent = subscribe(
        c,
        &consumer,
        "shardId-000000000000",
        position(ShardIteratorType::TrimHorizon, None),
    )
    .await;
    let (records, _) = receive_records(&mut parent, 1).await;
    assert_eq!(records[0].data.as_ref(), b"before-split");
    c.split_shard()
        .stream_name(&name)
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key((1u128 << 127).to_string())
        .send()
        .await
        .expect("SplitShard");
    wait_active(c, &name).await;
    if peer.is_local_mock() {
        // kinesis-local keeps a closed shard's subscription open with empty events and never
        // sends ChildShards; AWS ends it with a last event that carries them.
        return;
    }
    let children = children_at_end(&mut parent).await;
    assert_eq!(children, ["shardId-000000000001", "shardId-000000000002"]);

    let mut left = subscribe(
        c,
        &consumer,
        &children[0],
        position(ShardIteratorType::TrimHorizon, None),
    )
    .await;
    let mut right = subscribe(
        c,
        &consumer,
        &children[1],
        position(ShardIteratorType::TrimHorizon, None),
    )
    .await;
    c.merge_shards()
        .stream_name(&name)
        .shard_to_merge(&children[0])
        .adjacent_shard_to_merge(&children[1])
        .send()
        .await
        .expect("MergeShards");
    wait_active(c, &name).await;
    assert_eq!(children_at_end(&mut left).await, ["shardId-000000000003"]);
    assert_eq!(children_at_end(&mut right).await, ["shardId-000000000003"]);
}

// ---- the embedded endpoint's own subscription behaviour (its configuration and storage) ----

mod embedded_subscriptions {
    use super::*;
    use std::time::{Duration, Instant};
    use streamboard::kinesis::client::{KinesisTarget, build_client};
    use streamboard_endpoint::{Endpoint, EndpointConfig, faults::FaultConfig, wire::Operation};
    use tokio_util::sync::CancellationToken;

    async fn client_for(endpoint: &Endpoint) -> Client {
        build_client(&KinesisTarget::Local {
            endpoint_url: endpoint.url(),
        })
        .await
    }

    /// Empty events keep coming while nothing is written (each carrying MillisBehindLatest
    /// and a continuation), and the subscription ends after its configured lifetime.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn heartbeats_then_the_end_of_the_subscription_lifetime() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = EndpointConfig::for_data_dir(dir.path());
        config.subscription_duration = Duration::from_millis(1500);
        config.subscription_heartbeat = Duration::from_millis(200);
        let peer = support::start_embedded_with(config, dir).await;
        let c = &peer.client;
        let name = unique_name("beat");
        create_stream(c, &name, 1).await;
        let arn = stream_arn(c, &name).await;
        let consumer = register_consumer(c, &arn, "pulse").await;
        let started = Instant::now();
        let mut sub = subscribe(
            c,
            &consumer,
            "shardId-000000000000",
            position(ShardIteratorType::Latest, None),
        )
        .await;
        let mut empty_events = 0;
        while let Some(event) = next_event(&mut sub).await {
            assert!(event.records.is_empty());
            assert!(!event.continuation_sequence_number.is_empty());
            assert_eq!(event.millis_behind_latest, 0);
            empty_events += 1;
        }
        let lasted = started.elapsed();
        assert!(
            lasted >= Duration::from_millis(1400),
            "ended after {lasted:?}, before its 1.5 s lifetime"
        );
        // 1.5 s at one event per 200 ms: about 8; fewer than 4 means no heartbeat.
        assert!(empty_events >= 4, "{empty_events} events in {lasted:?}");
    }

    /// Deregistering the consumer ends its open subscription with ResourceNotFoundException.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deregistering_ends_the_subscription() {
        let peer = start(PeerKind::Embedded).await;
        let c = &peer.client;
        let name = unique_name("gone");
        create_stream(c, &name, 1).await;
        let arn = stream_arn(c, &name).await;
        let consumer = register_consumer(c, &arn, "leaving").await;
        let mut sub = subscribe(
            c,
            &consumer,
            "shardId-000000000000",
            position(ShardIteratorType::Latest, None),
        )
        .await;
        assert!(next_event(&mut sub).await.is_some());
        c.deregister_stream_consumer()
            .consumer_arn(&consumer)
            .send()
            .await
            .expect("DeregisterStreamConsumer");
        let ended = tokio::time::timeout(support::WAIT, sub.events.recv())
            .await
            .expect("the subscription ends");
        let error = ended.expect_err("a ResourceNotFoundException message");
        assert!(
            error
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()),
            "{}",
            DisplayErrorContext(&error)
        );
        let after = tokio::time::timeout(support::WAIT, sub.events.recv())
            .await
            .expect("then the end");
        assert!(matches!(after, Ok(None) | Err(_)), "{after:?}");
    }

    /// Consumers are kept in the topology file across a restart; shutting the endpoint down
    /// ends an open subscription at once; SubscribeToShard honours fault injection.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn consumers_survive_a_restart_and_shutdown_ends_subscriptions() {
        let dir = tempfile::tempdir().unwrap();
        let config = EndpointConfig::for_data_dir(dir.path());
        let shutdown = CancellationToken::new();
        let endpoint = Endpoint::start(config.clone(), shutdown.clone())
            .await
            .expect("the endpoint starts");
        let c = client_for(&endpoint).await;
        let name = unique_name("restart");
        create_stream(&c, &name, 1).await;
        let arn = stream_arn(&c, &name).await;
        let consumer = register_consumer(&c, &arn, "durable").await;

        endpoint.set_faults(FaultConfig {
            error_rate: 1.0,
            operations: vec![Operation::SubscribeToShard],
            ..FaultConfig::default()
        });
        let refused = c
            .subscribe_to_shard()
            .consumer_arn(&consumer)
            .shard_id("shardId-000000000000")
            .starting_position(position(ShardIteratorType::Latest, None))
            .send()
            .await
            .expect_err("an injected fault");
        assert_eq!(
            refused.as_service_error().and_then(|e| e.meta().code()),
            Some("InternalFailure"),
            "{}",
            DisplayErrorContext(&refused)
        );
        endpoint.set_faults(FaultConfig::default());

        let mut sub = subscribe(
            &c,
            &consumer,
            "shardId-000000000000",
            position(ShardIteratorType::Latest, None),
        )
        .await;
        assert!(next_event(&mut sub).await.is_some());
        let stopping = Instant::now();
        shutdown.cancel();
        let ended = tokio::time::timeout(support::WAIT, async {
            // Events already on their way may still arrive; then the end (or a cut).
            while let Ok(Some(_)) = sub.events.recv().await {}
        })
        .await;
        assert!(ended.is_ok(), "the subscription ends on shutdown");
        tokio::time::timeout(Duration::from_secs(5), endpoint.wait())
            .await
            .expect("shutdown does not wait for the subscription's 5 minutes")
            .expect("a clean stop");
        assert!(stopping.elapsed() < Duration::from_secs(5));

        let shutdown = CancellationToken::new();
        let endpoint = Endpoint::start(config, shutdown.clone())
            .await
            .expect("the endpoint restarts");
        let c = client_for(&endpoint).await;
        let described = c
            .describe_stream_consumer()
            .consumer_arn(&consumer)
            .send()
            .await
            .expect("the consumer survived the restart")
            .consumer_description
            .unwrap();
        assert_eq!(described.consumer_name, "durable");
        assert_eq!(described.consumer_arn, consumer);
        shutdown.cancel();
        endpoint.wait().await.expect("a clean stop");
    }
}
