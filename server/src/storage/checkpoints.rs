//! Consumer checkpoints: where each (application, stream, shard) has been read to and whether
//! the shard is finished. Functions take a connection (or a transaction, which derefs to one) so
//! the metrics engine can store a batch's effect and its checkpoint in one transaction.

use super::StorageError;
use crate::kinesis::{Checkpoint, SequenceNumber, ShardId, StreamName};
use sqlx::SqliteConnection;
use std::collections::HashMap;

#[derive(sqlx::FromRow)]
struct CheckpointRow {
    shard: String,
    sequence_number: Option<String>,
    sub_sequence: Option<i64>,
    shard_finished: i64,
}

/// Every checkpoint of `application` on `stream`, by shard.
pub async fn load(
    conn: &mut SqliteConnection,
    application: &str,
    stream: &StreamName,
) -> Result<HashMap<ShardId, Checkpoint>, StorageError> {
    let rows: Vec<CheckpointRow> = sqlx::query_as(
        "SELECT shard, sequence_number, sub_sequence, shard_finished \
         FROM consumer_checkpoints WHERE application = ? AND stream = ?",
    )
    .bind(application)
    .bind(stream.as_str())
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let checkpoint = Checkpoint {
                sequence_number: row
                    .sequence_number
                    .as_deref()
                    .and_then(SequenceNumber::parse),
                sub_sequence: row.sub_sequence.and_then(|s| u64::try_from(s).ok()),
                shard_finished: row.shard_finished != 0,
            };
            (ShardId::new(row.shard), checkpoint)
        })
        .collect())
}

/// Stores `checkpoint` for a shard. Never moves backwards in kind: a position-less checkpoint
/// keeps the stored sequence number, and a finished shard stays finished.
pub async fn save(
    conn: &mut SqliteConnection,
    application: &str,
    stream: &StreamName,
    shard: &ShardId,
    checkpoint: &Checkpoint,
) -> Result<(), StorageError> {
    let sub_sequence = checkpoint
        .sub_sequence
        .map(|s| i64::try_from(s).unwrap_or(i64::MAX));
    sqlx::query(
        "INSERT INTO consumer_checkpoints \
           (application, stream, shard, sequence_number, sub_sequence, shard_finished, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) \
         ON CONFLICT (application, stream, shard) DO UPDATE SET \
           sequence_number = COALESCE(excluded.sequence_number, sequence_number), \
           sub_sequence = CASE WHEN excluded.sequence_number IS NULL THEN sub_sequence \
                               ELSE excluded.sub_sequence END, \
           shard_finished = MAX(shard_finished, excluded.shard_finished), \
           updated_at = excluded.updated_at",
    )
    .bind(application)
    .bind(stream.as_str())
    .bind(shard.as_str())
    .bind(
        checkpoint
            .sequence_number
            .as_ref()
            .map(SequenceNumber::as_str),
    )
    .bind(sub_sequence)
    .bind(i64::from(checkpoint.shard_finished))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Database;

    #[tokio::test]
    async fn save_load_and_never_regress() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path()).await.unwrap();
        let stream = StreamName::new("s");
        let shard = ShardId::new("shardId-000000000000");
        let seq = |t: &str| SequenceNumber::parse(t);
        let mut tx = db.pool().begin().await.unwrap();
        save(
            &mut tx,
            "app",
            &stream,
            &shard,
            &Checkpoint {
                sequence_number: seq("100"),
                sub_sequence: Some(3),
                shard_finished: false,
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();

        let mut conn = db.pool().acquire().await.unwrap();
        let loaded = load(&mut conn, "app", &stream).await.unwrap();
        assert_eq!(loaded[&shard].sequence_number, seq("100"));
        assert_eq!(loaded[&shard].sub_sequence, Some(3));
        assert!(load(&mut conn, "other", &stream).await.unwrap().is_empty());

        // Shard end without new records keeps the position and marks it finished.
        save(
            &mut conn,
            "app",
            &stream,
            &shard,
            &Checkpoint {
                sequence_number: None,
                sub_sequence: None,
                shard_finished: true,
            },
        )
        .await
        .unwrap();
        let loaded = load(&mut conn, "app", &stream).await.unwrap();
        assert_eq!(
            loaded[&shard],
            Checkpoint {
                sequence_number: seq("100"),
                sub_sequence: Some(3),
                shard_finished: true
            }
        );
        // A later non-finished write cannot reopen it.
        save(
            &mut conn,
            "app",
            &stream,
            &shard,
            &Checkpoint {
                sequence_number: seq("101"),
                sub_sequence: None,
                shard_finished: false,
            },
        )
        .await
        .unwrap();
        let loaded = load(&mut conn, "app", &stream).await.unwrap();
        assert!(loaded[&shard].shard_finished);
        assert_eq!(loaded[&shard].sub_sequence, None);
    }
}
