//! Pure shard planning: given the shards of a stream (with their parents), the stored
//! checkpoints and what has been read in this run, decide which shards to start, from where,
//! which to skip and which must wait for their parents. A child is read only after all its
//! parents have been read to their end, which keeps per-partition-key order across a split or
//! a merge.

use crate::{
    kinesis::StartPosition,
    kinesis::{Checkpoint, SequenceNumber, ShardId},
};
use std::collections::BTreeMap;

/// Where a reader gets its first iterator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IteratorStart {
    Latest,
    TrimHorizon,
    AtTimestamp {
        epoch_millis: i64,
    },
    /// AT_SEQUENCE_NUMBER: this record and what follows (a tail seeking to a record).
    At(SequenceNumber),
    /// AFTER_SEQUENCE_NUMBER: the record was fully processed.
    After(SequenceNumber),
    /// AT_SEQUENCE_NUMBER, skipping user records up to this KPL sub-sequence (an aggregated
    /// record was processed up to and including it).
    AtSubSequence(SequenceNumber, u64),
}

impl IteratorStart {
    /// Resuming after a processed position.
    pub fn resume(sequence_number: SequenceNumber, sub_sequence: Option<u64>) -> Self {
        match sub_sequence {
            None => Self::After(sequence_number),
            Some(sub) => Self::AtSubSequence(sequence_number, sub),
        }
    }
}

/// What the planner knows about one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardEntry {
    pub parents: Vec<ShardId>,
    /// The shard has an ending sequence number (it was split or merged).
    pub closed: bool,
    pub checkpoint: Option<Checkpoint>,
    pub status: ShardStatus,
}

/// A shard's place in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardStatus {
    /// Not started: waiting for its parents, or not yet planned.
    Pending,
    /// A reader is running.
    Running,
    /// Read to its end (`read` = its records went to the sink, now or in an earlier run).
    Done { read: bool },
    /// Its reader stopped on an error it cannot recover from.
    Failed,
}

/// One decision of [`plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Start(ShardId, IteratorStart),
    /// Nothing to read (closed shard with a `latest` first start, or finished in the
    /// checkpoints): mark done without a reader.
    Skip {
        shard: ShardId,
        read: bool,
    },
    /// Still waiting for these parents.
    Wait(ShardId, Vec<ShardId>),
}

/// Decides about every pending shard. Parents missing from `shards` (past the retention
/// period) count as finished. Shards are visited in id order, and a decision to skip is seen
/// by later children within the same call.
pub fn plan(shards: &mut BTreeMap<ShardId, ShardEntry>, start: StartPosition) -> Vec<Action> {
    let mut actions = Vec::new();
    // Skipping a shard can unblock its children; repeat until nothing changes.
    loop {
        let mut changed = false;
        let ids: Vec<ShardId> = shards
            .iter()
            .filter(|(_, entry)| entry.status == ShardStatus::Pending)
            .map(|(id, _)| id.clone())
            .collect();
        actions.retain(|action| !matches!(action, Action::Wait(..)));
        for id in ids {
            let Some(entry) = shards.get(&id) else {
                continue;
            };
            if entry.checkpoint.as_ref().is_some_and(|c| c.shard_finished) {
                set_status(shards, &id, ShardStatus::Done { read: true });
                actions.push(Action::Skip {
                    shard: id,
                    read: true,
                });
                changed = true;
                continue;
            }
            let waiting: Vec<ShardId> = entry
                .parents
                .iter()
                .filter(|parent| {
                    shards
                        .get(*parent)
                        .is_some_and(|p| !matches!(p.status, ShardStatus::Done { .. }))
                })
                .cloned()
                .collect();
            if !waiting.is_empty() {
                actions.push(Action::Wait(id, waiting));
                continue;
            }
            let parent_read = entry.parents.iter().any(|parent| {
                shards.get(parent).is_some_and(|p| {
                    p.status == ShardStatus::Done { read: true } || p.checkpoint.is_some()
                })
            });
            let resume = entry
                .checkpoint
                .as_ref()
                .and_then(|c| c.sequence_number.clone().map(|s| (s, c.sub_sequence)));
            let action = match resume {
                Some((sequence_number, sub)) => {
                    Action::Start(id.clone(), IteratorStart::resume(sequence_number, sub))
                }
                None if parent_read => Action::Start(id.clone(), IteratorStart::TrimHorizon),
                None => match start {
                    StartPosition::Latest if entry.closed => Action::Skip {
                        shard: id.clone(),
                        read: false,
                    },
                    StartPosition::Latest => Action::Start(id.clone(), IteratorStart::Latest),
                    StartPosition::TrimHorizon => {
                        Action::Start(id.clone(), IteratorStart::TrimHorizon)
                    }
                    StartPosition::AtTimestamp { epoch_millis } => {
                        Action::Start(id.clone(), IteratorStart::AtTimestamp { epoch_millis })
                    }
                },
            };
            match &action {
                Action::Start(..) => set_status(shards, &id, ShardStatus::Running),
                Action::Skip { read, .. } => {
                    set_status(shards, &id, ShardStatus::Done { read: *read })
                }
                Action::Wait(..) => {}
            }
            changed = true;
            actions.push(action);
        }
        if !changed {
            return actions;
        }
    }
}

fn set_status(shards: &mut BTreeMap<ShardId, ShardEntry>, id: &ShardId, status: ShardStatus) {
    if let Some(entry) = shards.get_mut(id) {
        entry.status = status;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> ShardId {
        ShardId::new(format!("shardId-{n:012}"))
    }

    fn entry(parents: &[u32], closed: bool) -> ShardEntry {
        ShardEntry {
            parents: parents.iter().map(|p| id(*p)).collect(),
            closed,
            checkpoint: None,
            status: ShardStatus::Pending,
        }
    }

    /// Shard 0 split into 1 and 2; 1 and 2 merged into 3.
    fn resharded() -> BTreeMap<ShardId, ShardEntry> {
        BTreeMap::from([
            (id(0), entry(&[], true)),
            (id(1), entry(&[0], true)),
            (id(2), entry(&[0], true)),
            (id(3), entry(&[1, 2], false)),
        ])
    }

    fn starts(actions: &[Action]) -> Vec<(ShardId, IteratorStart)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Start(shard, start) => Some((shard.clone(), start.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn trim_horizon_reads_parents_before_children() {
        let mut shards = resharded();
        let actions = plan(&mut shards, StartPosition::TrimHorizon);
        assert_eq!(starts(&actions), vec![(id(0), IteratorStart::TrimHorizon)]);
        assert!(actions.contains(&Action::Wait(id(1), vec![id(0)])));
        assert!(actions.contains(&Action::Wait(id(3), vec![id(1), id(2)])));

        shards.get_mut(&id(0)).unwrap().status = ShardStatus::Done { read: true };
        let actions = plan(&mut shards, StartPosition::TrimHorizon);
        assert_eq!(
            starts(&actions),
            vec![
                (id(1), IteratorStart::TrimHorizon),
                (id(2), IteratorStart::TrimHorizon)
            ]
        );
        shards.get_mut(&id(1)).unwrap().status = ShardStatus::Done { read: true };
        assert!(starts(&plan(&mut shards, StartPosition::TrimHorizon)).is_empty());
        shards.get_mut(&id(2)).unwrap().status = ShardStatus::Done { read: true };
        assert_eq!(
            starts(&plan(&mut shards, StartPosition::TrimHorizon)),
            vec![(id(3), IteratorStart::TrimHorizon)]
        );
    }

    #[test]
    fn latest_skips_closed_history_and_starts_open_shards_at_latest() {
        let mut shards = resharded();
        let actions = plan(&mut shards, StartPosition::Latest);
        assert_eq!(starts(&actions), vec![(id(3), IteratorStart::Latest)]);
        assert!(actions.contains(&Action::Skip {
            shard: id(0),
            read: false
        }));
    }

    #[test]
    fn children_of_a_parent_we_read_start_at_trim_horizon_even_with_latest() {
        let mut shards = BTreeMap::from([(id(0), entry(&[], false))]);
        assert_eq!(
            starts(&plan(&mut shards, StartPosition::Latest)),
            vec![(id(0), IteratorStart::Latest)]
        );
        // Split discovered later.
        shards.get_mut(&id(0)).unwrap().closed = true;
        shards.insert(id(1), entry(&[0], false));
        shards.insert(id(2), entry(&[0], false));
        assert!(starts(&plan(&mut shards, StartPosition::Latest)).is_empty());
        shards.get_mut(&id(0)).unwrap().status = ShardStatus::Done { read: true };
        assert_eq!(
            starts(&plan(&mut shards, StartPosition::Latest)),
            vec![
                (id(1), IteratorStart::TrimHorizon),
                (id(2), IteratorStart::TrimHorizon)
            ]
        );
    }

    #[test]
    fn checkpoints_win_and_finished_parents_are_never_reread() {
        let mut shards = resharded();
        let finished = Checkpoint {
            sequence_number: SequenceNumber::parse("5"),
            sub_sequence: None,
            shard_finished: true,
        };
        shards.get_mut(&id(0)).unwrap().checkpoint = Some(finished);
        shards.get_mut(&id(1)).unwrap().checkpoint = Some(Checkpoint {
            sequence_number: SequenceNumber::parse("17"),
            sub_sequence: Some(2),
            shard_finished: false,
        });
        let actions = plan(&mut shards, StartPosition::Latest);
        assert_eq!(
            starts(&actions),
            vec![
                (
                    id(1),
                    IteratorStart::AtSubSequence(SequenceNumber::parse("17").unwrap(), 2)
                ),
                (id(2), IteratorStart::TrimHorizon),
            ]
        );
        assert!(actions.contains(&Action::Skip {
            shard: id(0),
            read: true
        }));
    }

    #[test]
    fn parents_past_retention_count_as_finished() {
        let mut shards = BTreeMap::from([(id(7), entry(&[3, 4], false))]);
        assert_eq!(
            starts(&plan(
                &mut shards,
                StartPosition::AtTimestamp { epoch_millis: 9 }
            )),
            vec![(id(7), IteratorStart::AtTimestamp { epoch_millis: 9 })]
        );
    }

    #[test]
    fn failed_parents_block_children() {
        let mut shards = resharded();
        shards.get_mut(&id(0)).unwrap().status = ShardStatus::Failed;
        let actions = plan(&mut shards, StartPosition::TrimHorizon);
        assert!(starts(&actions).is_empty());
    }
}
