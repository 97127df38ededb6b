//! Consumer checkpoints: where each (application, stream, shard) has been read to and whether
//! the shard is finished. Functions take a connection (or a transaction, which derefs to one) so
//! the metrics engine can store a batch's effect and its checkpoint in one transaction.

use super::{Conn, Database, StorageError, on_backend, per_backend};
use crate::{
    clock::now_ms,
    kinesis::{Checkpoint, SequenceNumber, ShardId, StreamName},
};
use std::collections::HashMap;

#[derive(sqlx::FromRow)]
struct CheckpointRow {
    shard: String,
    sequence_number: Option<String>,
    sub_sequence: Option<i64>,
    shard_finished: i64,
}

impl Database {
    /// Every checkpoint of `application` on `stream`, by shard.
    pub async fn load_checkpoints(
        &self,
        application: &str,
        stream: &StreamName,
    ) -> Result<HashMap<ShardId, Checkpoint>, StorageError> {
        let rows: Vec<CheckpointRow> = on_backend!(self, sql, pool => {
            sqlx::query_as(
                "SELECT shard, sequence_number, sub_sequence, shard_finished \
                 FROM consumer_checkpoints WHERE application = $1 AND stream = $2",
            )
            .bind(application)
            .bind(stream.as_str())
            .fetch_all(pool)
            .await?
        });
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
}

impl Database {
    /// Stores checkpoints in one transaction (outside a flush: tools and tests).
    pub async fn save_checkpoints(
        &self,
        application: &str,
        checkpoints: &[(StreamName, ShardId, Checkpoint)],
    ) -> Result<(), StorageError> {
        on_backend!(self, sql, pool => {
            let mut tx = sql::begin_write(pool).await?;
            for (stream, shard, checkpoint) in checkpoints {
                sql::save(&mut tx, application, stream, shard, checkpoint).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }
}

/// Stores `checkpoint` for a shard, on `conn` (the flush's transaction). Never moves backwards
/// in kind: a position-less checkpoint keeps the stored sequence number, and a finished shard
/// stays finished.
pub async fn save(
    conn: &mut Conn<'_>,
    application: &str,
    stream: &StreamName,
    shard: &ShardId,
    checkpoint: &Checkpoint,
) -> Result<(), StorageError> {
    match conn {
        Conn::Sqlite(conn) => sqlite::save(conn, application, stream, shard, checkpoint).await,
        Conn::Postgres(conn) => postgres::save(conn, application, stream, shard, checkpoint).await,
    }
}

per_backend! {
    pub(crate) async fn save(
        conn: &mut Connection,
        application: &str,
        stream: &StreamName,
        shard: &ShardId,
        checkpoint: &Checkpoint,
    ) -> Result<(), StorageError> {
        let sub_sequence = checkpoint
            .sub_sequence
            .map(|s| i64::try_from(s).unwrap_or(i64::MAX));
        sqlx::query(
            "INSERT INTO consumer_checkpoints AS c \
               (application, stream, shard, sequence_number, sub_sequence, shard_finished, \
                updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (application, stream, shard) DO UPDATE SET \
               sequence_number = COALESCE(excluded.sequence_number, c.sequence_number), \
               sub_sequence = CASE WHEN excluded.sequence_number IS NULL THEN c.sub_sequence \
                                   ELSE excluded.sub_sequence END, \
               shard_finished = CASE WHEN excluded.shard_finished > c.shard_finished \
                                     THEN excluded.shard_finished ELSE c.shard_finished END, \
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
        .bind(crate::clock::utc_text(now_ms()))
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn save_load_and_never_regress() {
        for (_dir, db) in crate::storage::test_databases().await {
            let stream = StreamName::new("s");
            let shard = ShardId::new("shardId-000000000000");
            let seq = |t: &str| SequenceNumber::parse(t);
            let save = async |checkpoint: Checkpoint| {
                db.save_checkpoints("app", &[(stream.clone(), shard.clone(), checkpoint)])
                    .await
                    .unwrap();
            };
            save(Checkpoint {
                sequence_number: seq("100"),
                sub_sequence: Some(3),
                shard_finished: false,
            })
            .await;
            let loaded = db.load_checkpoints("app", &stream).await.unwrap();
            assert_eq!(loaded[&shard].sequence_number, seq("100"));
            assert_eq!(loaded[&shard].sub_sequence, Some(3));
            assert!(
                db.load_checkpoints("other", &stream)
                    .await
                    .unwrap()
                    .is_empty()
            );

            // Shard end without new records keeps the position and marks it finished.
            save(Checkpoint {
                sequence_number: None,
                sub_sequence: None,
                shard_finished: true,
            })
            .await;
            let loaded = db.load_checkpoints("app", &stream).await.unwrap();
            assert_eq!(
                loaded[&shard],
                Checkpoint {
                    sequence_number: seq("100"),
                    sub_sequence: Some(3),
                    shard_finished: true
                }
            );
            // A later non-finished write cannot reopen it.
            save(Checkpoint {
                sequence_number: seq("101"),
                sub_sequence: None,
                shard_finished: false,
            })
            .await;
            let loaded = db.load_checkpoints("app", &stream).await.unwrap();
            assert!(loaded[&shard].shard_finished);
            assert_eq!(loaded[&shard].sub_sequence, None);
            assert_eq!(loaded[&shard].sequence_number, seq("101"));
        }
    }
}
