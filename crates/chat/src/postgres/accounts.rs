//! Accounts, sanctions and rooms in PostgreSQL, as SQLite keeps them.

use tokio_postgres::error::SqlState;

use super::{Postgres, failed};
use crate::name::Username;
use crate::store::{
    Account, AccountStore, Sanction, SanctionKind, Standing, StoreError, StoredRoom, unix_now,
};

fn key(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// Unix seconds as stored (BIGINT).
fn stored(time: u64) -> i64 {
    i64::try_from(time).unwrap_or(i64::MAX)
}

fn unix(time: i64) -> u64 {
    u64::try_from(time).unwrap_or_default()
}

impl AccountStore for Postgres {
    fn lookup(&self, name: &str) -> Result<Option<(String, String)>, StoreError> {
        let rows = self.rows(
            "SELECT name, hash FROM accounts WHERE key = $1",
            &[&key(name)],
        )?;
        Ok(rows.first().map(|row| (row.get(0), row.get(1))))
    }

    fn insert(&self, name: &Username, hash: &str) -> Result<(), StoreError> {
        let now = stored(unix_now());
        self.block(async {
            let client = self.client().await?;
            let inserted = client
                .execute(
                    "INSERT INTO accounts (key, name, hash, created, updated)
                     VALUES ($1, $2, $3, $4, $4)",
                    &[&key(name.as_str()), &name.as_str(), &hash, &now],
                )
                .await;
            match inserted {
                Ok(_) => Ok(()),
                Err(err) if err.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                    Err(StoreError::NameTaken(name.to_string()))
                }
                Err(err) => Err(failed(err)),
            }
        })
    }

    fn set_hash(&self, name: &str, hash: &str) -> Result<bool, StoreError> {
        self.change(
            "UPDATE accounts SET hash = $2, updated = $3 WHERE key = $1",
            &[&key(name), &hash, &stored(unix_now())],
        )
    }

    fn list(&self) -> Result<Vec<Account>, StoreError> {
        let rows = self.rows(
            "SELECT name, created, updated, disabled, admin FROM accounts ORDER BY key",
            &[],
        )?;
        Ok(rows
            .iter()
            .map(|row| Account {
                name: row.get(0),
                created: unix(row.get(1)),
                updated: unix(row.get(2)),
                standing: Standing {
                    disabled: row.get(3),
                    admin: row.get(4),
                },
            })
            .collect())
    }

    fn standing(&self, name: &str) -> Result<Option<(String, Standing)>, StoreError> {
        let rows = self.rows(
            "SELECT name, disabled, admin FROM accounts WHERE key = $1",
            &[&key(name)],
        )?;
        Ok(rows.first().map(|row| {
            let standing = Standing {
                disabled: row.get(1),
                admin: row.get(2),
            };
            (row.get(0), standing)
        }))
    }

    fn set_disabled(&self, name: &str, disabled: bool) -> Result<bool, StoreError> {
        self.change(
            "UPDATE accounts SET disabled = $2 WHERE key = $1",
            &[&key(name), &disabled],
        )
    }

    fn set_admin(&self, name: &str, admin: bool) -> Result<bool, StoreError> {
        self.change(
            "UPDATE accounts SET admin = $2 WHERE key = $1",
            &[&key(name), &admin],
        )
    }

    fn delete(&self, name: &str) -> Result<bool, StoreError> {
        let key = key(name);
        self.block(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(failed)?;
            tx.execute("DELETE FROM sanctions WHERE account_key = $1", &[&key])
                .await
                .map_err(failed)?;
            tx.execute("DELETE FROM room_operators WHERE account_key = $1", &[&key])
                .await
                .map_err(failed)?;
            let deleted = tx
                .execute("DELETE FROM accounts WHERE key = $1", &[&key])
                .await
                .map_err(failed)?;
            tx.commit().await.map_err(failed)?;
            Ok(deleted > 0)
        })
    }

    fn add_sanction(&self, sanction: &Sanction) -> Result<(), StoreError> {
        self.change(
            "INSERT INTO sanctions
                 (kind, room_key, room, account_key, account, moderator, reason, time)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (kind, room_key, account_key) DO UPDATE SET
                 room = EXCLUDED.room, account = EXCLUDED.account,
                 moderator = EXCLUDED.moderator, reason = EXCLUDED.reason,
                 time = EXCLUDED.time",
            &[
                &sanction.kind.as_str(),
                &key(&sanction.room),
                &sanction.room,
                &key(&sanction.account),
                &sanction.account,
                &sanction.moderator,
                &sanction.reason,
                &stored(sanction.time),
            ],
        )
        .map(drop)
    }

    fn remove_sanction(
        &self,
        kind: SanctionKind,
        room: &str,
        account: &str,
    ) -> Result<bool, StoreError> {
        self.change(
            "DELETE FROM sanctions WHERE kind = $1 AND room_key = $2 AND account_key = $3",
            &[&kind.as_str(), &key(room), &key(account)],
        )
    }

    fn sanctions(
        &self,
        kind: SanctionKind,
        room: Option<&str>,
    ) -> Result<Vec<Sanction>, StoreError> {
        let room = room.map(key);
        let rows = self.rows(
            "SELECT room, account, moderator, reason, time FROM sanctions
             WHERE kind = $1 AND ($2::TEXT IS NULL OR room_key = $2)
             ORDER BY room_key, account_key",
            &[&kind.as_str(), &room],
        )?;
        Ok(rows
            .iter()
            .map(|row| Sanction {
                kind,
                room: row.get(0),
                account: row.get(1),
                moderator: row.get(2),
                reason: row.get(3),
                time: unix(row.get(4)),
            })
            .collect())
    }

    fn save_room(&self, room: &StoredRoom) -> Result<(), StoreError> {
        let room_key = key(&room.name);
        self.block(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(failed)?;
            tx.execute(
                "INSERT INTO rooms (key, name, topic, created, used)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (key) DO UPDATE SET
                     name = EXCLUDED.name, topic = EXCLUDED.topic, used = EXCLUDED.used",
                &[
                    &room_key,
                    &room.name,
                    &room.topic,
                    &stored(room.created),
                    &stored(room.used),
                ],
            )
            .await
            .map_err(failed)?;
            tx.execute(
                "DELETE FROM room_operators WHERE room_key = $1",
                &[&room_key],
            )
            .await
            .map_err(failed)?;
            for operator in &room.operators {
                tx.execute(
                    "INSERT INTO room_operators (room_key, account_key) VALUES ($1, $2)
                     ON CONFLICT DO NOTHING",
                    &[&room_key, &key(operator)],
                )
                .await
                .map_err(failed)?;
            }
            tx.commit().await.map_err(failed)
        })
    }

    fn forget_room(&self, room: &str) -> Result<bool, StoreError> {
        // The operators go with it (ON DELETE CASCADE).
        self.change("DELETE FROM rooms WHERE key = $1", &[&key(room)])
    }

    fn rooms(&self) -> Result<Vec<StoredRoom>, StoreError> {
        let rows = self.rows(
            "SELECT name, topic, created, used,
                    ARRAY(SELECT account_key FROM room_operators
                          WHERE room_key = rooms.key ORDER BY account_key)
             FROM rooms ORDER BY used DESC, key",
            &[],
        )?;
        Ok(rows
            .iter()
            .map(|row| StoredRoom {
                name: row.get(0),
                topic: row.get(1),
                operators: row.get(4),
                created: unix(row.get(2)),
                used: unix(row.get(3)),
            })
            .collect())
    }
}
