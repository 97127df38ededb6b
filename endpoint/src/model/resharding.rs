//! Resharding: SplitShard, MergeShards and UpdateShardCount (UNIFORM_SCALING). Each checks
//! its shards and the account's shard limit, closes the parents (their EndingSequenceNumber is
//! a fresh number above every record they hold) and opens the children with the parents
//! recorded, so readers can follow a closed shard to its children.

use super::{Model, ModelError, StreamMode, parse_hash_key, uniform_range};

impl Model {
    pub fn split_shard(
        &mut self,
        name: &str,
        shard: &str,
        new_starting_hash_key: &str,
        now_ms: i64,
    ) -> Result<(), ModelError> {
        self.check_shard_budget(1)?;
        let stream = self.stream_mut(name)?;
        let parent = stream.shard_by_id(shard)?;
        if !parent.is_open() {
            return Err(ModelError::SplitOfClosedShard {
                stream: name.to_string(),
                shard: shard.to_string(),
            });
        }
        let key = parse_hash_key(new_starting_hash_key).ok_or_else(|| {
            ModelError::InvalidNewStartingHashKey {
                text: new_starting_hash_key.to_string(),
            }
        })?;
        if key <= parent.start_hash || key > parent.end_hash {
            return Err(ModelError::SplitKeyOutsideShard {
                key,
                start: parent.start_hash,
                end: parent.end_hash,
            });
        }
        let (index, start, end) = (parent.index, parent.start_hash, parent.end_hash);
        stream.close_shard(index, now_ms);
        stream.add_shard(vec![index], start, key - 1, now_ms);
        stream.add_shard(vec![index], key, end, now_ms);
        Ok(())
    }

    pub fn merge_shards(
        &mut self,
        name: &str,
        shard: &str,
        adjacent: &str,
        now_ms: i64,
    ) -> Result<(), ModelError> {
        let stream = self.stream_mut(name)?;
        let a = stream.shard_by_id(shard)?;
        let b = stream.shard_by_id(adjacent)?;
        let names = || (name.to_string(), shard.to_string(), adjacent.to_string());
        if !a.is_open() || !b.is_open() {
            let (stream, shard, adjacent) = names();
            return Err(ModelError::MergeOfClosedShard {
                stream,
                shard,
                adjacent,
            });
        }
        let adjacent_ranges = a.end_hash.checked_add(1) == Some(b.start_hash)
            || b.end_hash.checked_add(1) == Some(a.start_hash);
        if !adjacent_ranges {
            let (stream, shard, adjacent) = names();
            return Err(ModelError::ShardsNotAdjacent {
                stream,
                shard,
                adjacent,
            });
        }
        let (ai, bi) = (a.index, b.index);
        let (start, end) = (a.start_hash.min(b.start_hash), a.end_hash.max(b.end_hash));
        stream.close_shard(ai, now_ms);
        stream.close_shard(bi, now_ms);
        stream.add_shard(vec![ai, bi], start, end, now_ms);
        Ok(())
    }

    /// UNIFORM_SCALING: closes every open shard and opens `target` shards of equal ranges;
    /// each child's parents are the closed shards its range overlaps. Returns the previous
    /// open shard count.
    pub fn update_shard_count(
        &mut self,
        name: &str,
        target: i64,
        now_ms: i64,
    ) -> Result<u32, ModelError> {
        let current = self.stream(name)?.open_shard_count() as i64;
        if self.stream(name)?.mode == StreamMode::OnDemand {
            return Err(ModelError::ScalingOnDemand);
        }
        if !(1..=100_000).contains(&target) {
            return Err(ModelError::TargetShardCountOutOfRange { target });
        }
        if target > current * 2 || target * 2 < current {
            return Err(ModelError::ScalingOutOfRange { current, target });
        }
        self.check_shard_budget((target - current).max(0) as usize)?;
        let stream = self.stream_mut(name)?;
        let mut parents: Vec<(u32, u128, u128)> = stream
            .open_shards()
            .map(|s| (s.index, s.start_hash, s.end_hash))
            .collect();
        parents.sort_by_key(|p| p.1);
        let target = target as u32;
        let already_uniform = parents.len() == target as usize
            && parents
                .iter()
                .enumerate()
                .all(|(i, p)| (p.1, p.2) == uniform_range(i as u32, target));
        if already_uniform {
            return Ok(current as u32);
        }
        for (index, _, _) in &parents {
            stream.close_shard(*index, now_ms);
        }
        for i in 0..target {
            let (start, end) = uniform_range(i, target);
            let overlapping = parents
                .iter()
                .filter(|p| p.1 <= end && start <= p.2)
                .map(|p| p.0)
                .collect();
            stream.add_shard(overlapping, start, end, now_ms);
        }
        Ok(current as u32)
    }
}
