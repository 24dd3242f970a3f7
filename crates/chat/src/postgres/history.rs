//! Room history in PostgreSQL, behind the same trait as SQLite's: a batch
//! is one transaction, its inserts pipelined on one connection.

use futures_util::future::try_join_all;
use tokio_postgres::types::ToSql;

use super::{Postgres, failed};
use crate::history::{HistoryStore, Retention, Stored, now_millis};
use crate::store::StoreError;

fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl HistoryStore for Postgres {
    fn append(&mut self, batch: &[Stored], retention: Retention) -> Result<(), StoreError> {
        let Some(last) = batch.iter().map(|message| message.id).max() else {
            return Ok(());
        };
        let mut rooms: Vec<String> = batch
            .iter()
            .map(|message| message.room.to_ascii_lowercase())
            .collect();
        rooms.sort_unstable();
        rooms.dedup();
        let oldest = signed(now_millis().saturating_sub(retention.max_age.as_millis() as u64));
        let keep = signed(retention.per_room as u64);
        self.block(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(failed)?;
            let insert = tx
                .prepare(
                    "INSERT INTO history (id, room, room_key, sender, text, time)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .await
                .map_err(failed)?;
            let rows: Vec<_> = batch
                .iter()
                .map(|message| {
                    (
                        signed(message.id),
                        message.room.to_ascii_lowercase(),
                        signed(message.time),
                    )
                })
                .collect();
            let params: Vec<[&(dyn ToSql + Sync); 6]> = batch
                .iter()
                .zip(&rows)
                .map(|(message, (id, key, time))| {
                    [
                        id as &(dyn ToSql + Sync),
                        &message.room,
                        key,
                        &message.from,
                        &message.text,
                        time,
                    ]
                })
                .collect();
            try_join_all(params.iter().map(|params| tx.execute(&insert, params)))
                .await
                .map_err(failed)?;
            tx.execute(
                "UPDATE history_ids SET last = GREATEST(last, $1)",
                &[&signed(last)],
            )
            .await
            .map_err(failed)?;
            for room in &rooms {
                tx.execute(
                    "DELETE FROM history WHERE room_key = $1 AND (time < $2 OR id <= (
                         SELECT id FROM history WHERE room_key = $1
                         ORDER BY id DESC LIMIT 1 OFFSET $3))",
                    &[room, &oldest, &keep],
                )
                .await
                .map_err(failed)?;
            }
            tx.commit().await.map_err(failed)
        })
    }

    fn page(
        &mut self,
        room: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Stored>, StoreError> {
        let before = before.map_or(i64::MAX, signed);
        let rows = self.rows(
            "SELECT id, room, sender, text, time FROM history
             WHERE room_key = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
            &[&room.to_ascii_lowercase(), &before, &signed(limit as u64)],
        )?;
        let mut page: Vec<Stored> = rows
            .iter()
            .map(|row| Stored {
                id: row.get::<_, i64>(0) as u64,
                room: row.get(1),
                from: row.get(2),
                text: row.get(3),
                time: row.get::<_, i64>(4) as u64,
            })
            .collect();
        page.reverse();
        Ok(page)
    }

    fn last_id(&mut self) -> Result<u64, StoreError> {
        let rows = self.rows(
            "SELECT GREATEST(last, (SELECT COALESCE(MAX(id), 0) FROM history)) FROM history_ids",
            &[],
        )?;
        let last: i64 = rows.first().map_or(0, |row| row.get(0));
        Ok(u64::try_from(last).unwrap_or_default())
    }
}
