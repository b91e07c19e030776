//! Files attached to messages and each organization's limits on them: the [`FileStore`]
//! trait, and linking files to the message that sends them (part of the chat transaction).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Backend, Conn, SqlStore, Transaction, Value, all, execute, one, optional};
use crate::domain::{FileSettings, StoredFile};
use crate::store::{DbResult, FileStore, from_millis, to_millis};

macro_rules! file_columns {
    () => {
        "id, organization_id, chat_id, uploader_kind, uploader_id, name, content_type, size, \
         storage_key, event_id, created_at"
    };
}

fn file_from(row: &dyn super::Columns) -> DbResult<StoredFile> {
    Ok(StoredFile {
        id: row.text("id")?,
        organization_id: row.text("organization_id")?,
        chat_id: row.text("chat_id")?,
        uploader_kind: row.text("uploader_kind")?.parse()?,
        uploader_id: row.text("uploader_id")?,
        name: row.text("name")?,
        content_type: row.text("content_type")?,
        size: row.int("size")?,
        storage_key: row.text("storage_key")?,
        event_id: row.opt_text("event_id")?,
        created_at: from_millis(row.int("created_at")?),
    })
}

/// `$first, $first+1, …` for `count` parameters.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// See [`crate::store::ChatTx::attach_files`].
pub(super) async fn attach_files(
    conn: &mut dyn Conn,
    chat_id: &str,
    uploader_id: &str,
    event_id: &str,
    file_ids: &[String],
) -> DbResult<usize> {
    if file_ids.is_empty() {
        return Ok(0);
    }
    let sql = format!(
        "UPDATE files SET event_id = $1 WHERE chat_id = $2 AND uploader_id = $3 \
         AND event_id IS NULL AND id IN ({})",
        placeholders(4, file_ids.len())
    );
    let mut params: Vec<Value<'_>> = vec![event_id.into(), chat_id.into(), uploader_id.into()];
    params.extend(file_ids.iter().map(Value::from));
    let changed = execute(conn, &sql, &params).await?;
    Ok(changed as usize)
}

#[async_trait]
impl<B: Backend> FileStore for SqlStore<B> {
    async fn insert_file(&self, f: &StoredFile) -> DbResult<()> {
        let mut tx = self.backend.write().await?;
        execute(
            &mut tx,
            concat!(
                "INSERT INTO files (",
                file_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            ),
            params![
                &f.id,
                &f.organization_id,
                &f.chat_id,
                f.uploader_kind.as_str(),
                &f.uploader_id,
                &f.name,
                &f.content_type,
                f.size,
                &f.storage_key,
                &f.event_id,
                to_millis(f.created_at),
            ],
        )
        .await?;
        tx.commit().await
    }

    async fn file(&self, id: &str) -> DbResult<StoredFile> {
        let mut conn = self.backend.read().await?;
        one(
            &mut conn,
            concat!("SELECT ", file_columns!(), " FROM files WHERE id = $1"),
            params![id],
            file_from,
        )
        .await
    }

    async fn chat_files(&self, chat_id: &str, ids: &[String]) -> DbResult<Vec<StoredFile>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            concat!(
                "SELECT ",
                file_columns!(),
                " FROM files WHERE chat_id = $1 AND id IN ({})"
            ),
            placeholders(2, ids.len())
        );
        let mut params: Vec<Value<'_>> = vec![chat_id.into()];
        params.extend(ids.iter().map(Value::from));
        let mut conn = self.backend.read().await?;
        all(&mut conn, &sql, &params, file_from).await
    }

    async fn event_files(&self, event_ids: &[String]) -> DbResult<Vec<StoredFile>> {
        if event_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            concat!(
                "SELECT ",
                file_columns!(),
                " FROM files WHERE event_id IN ({}) ORDER BY created_at, id"
            ),
            placeholders(1, event_ids.len())
        );
        let params: Vec<Value<'_>> = event_ids.iter().map(Value::from).collect();
        let mut conn = self.backend.read().await?;
        all(&mut conn, &sql, &params, file_from).await
    }

    async fn unsent_file_count(&self, chat_id: &str, uploader_id: &str) -> DbResult<i64> {
        let mut conn = self.backend.read().await?;
        super::scalar(
            &mut conn,
            "SELECT COUNT(*) FROM files WHERE chat_id = $1 AND uploader_id = $2 \
             AND event_id IS NULL",
            params![chat_id, uploader_id],
        )
        .await
    }

    async fn unsent_files_before(
        &self,
        before: DateTime<Utc>,
        limit: i64,
    ) -> DbResult<Vec<StoredFile>> {
        let mut conn = self.backend.read().await?;
        all(
            &mut conn,
            concat!(
                "SELECT ",
                file_columns!(),
                " FROM files WHERE event_id IS NULL AND created_at < $1 \
                 ORDER BY created_at LIMIT $2"
            ),
            params![to_millis(before), limit],
            file_from,
        )
        .await
    }

    async fn delete_unsent_file(&self, id: &str) -> DbResult<bool> {
        let mut tx = self.backend.write().await?;
        let deleted = execute(
            &mut tx,
            "DELETE FROM files WHERE id = $1 AND event_id IS NULL",
            params![id],
        )
        .await?;
        tx.commit().await?;
        Ok(deleted > 0)
    }

    async fn file_settings(&self, organization_id: &str) -> DbResult<FileSettings> {
        let mut conn = self.backend.read().await?;
        let stored = optional(
            &mut conn,
            "SELECT max_file_bytes, allowed_types FROM file_settings WHERE organization_id = $1",
            params![organization_id],
            |row| {
                Ok(FileSettings {
                    max_file_bytes: row.int("max_file_bytes")?,
                    allowed_types: row
                        .text("allowed_types")?
                        .split_whitespace()
                        .map(str::to_owned)
                        .collect(),
                })
            },
        )
        .await?;
        Ok(stored.unwrap_or_default())
    }

    async fn set_file_settings(
        &self,
        organization_id: &str,
        settings: &FileSettings,
        at: DateTime<Utc>,
    ) -> DbResult<()> {
        let types = settings.allowed_types.join(" ");
        let mut tx = self.backend.write().await?;
        execute(
            &mut tx,
            "INSERT INTO file_settings (organization_id, max_file_bytes, allowed_types, updated_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (organization_id) DO UPDATE SET max_file_bytes = excluded.max_file_bytes, \
             allowed_types = excluded.allowed_types, updated_at = excluded.updated_at",
            params![organization_id, settings.max_file_bytes, &types, to_millis(at)],
        )
        .await?;
        tx.commit().await
    }
}
