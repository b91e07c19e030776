//! Canned responses: the [`CannedStore`] trait.

use async_trait::async_trait;

use super::{Backend, SqlStore, Transaction, all, execute, on_unique, one};
use crate::domain::CannedResponse;
use crate::store::{CannedStore, DbError, DbResult, from_millis, to_millis};

macro_rules! canned_columns {
    () => {
        "id, organization_id, shortcut, title, text, scope, group_id, owner_id, usage_count, \
         created_at, updated_at"
    };
}

const TAKEN: &str = "a canned response with this shortcut already exists for the same people";

fn canned_from(row: &dyn super::Columns) -> DbResult<CannedResponse> {
    Ok(CannedResponse {
        id: row.text("id")?,
        organization_id: row.text("organization_id")?,
        shortcut: row.text("shortcut")?,
        title: row.text("title")?,
        text: row.text("text")?,
        scope: row.text("scope")?.parse()?,
        group_id: row.opt_text("group_id")?,
        owner_id: row.opt_text("owner_id")?,
        usage_count: row.int("usage_count")?,
        created_at: from_millis(row.int("created_at")?),
        updated_at: from_millis(row.int("updated_at")?),
    })
}

#[async_trait]
impl<B: Backend> CannedStore for SqlStore<B> {
    async fn canned_responses(
        &self,
        organization_id: &str,
        shortcut_prefix: Option<&str>,
    ) -> DbResult<Vec<CannedResponse>> {
        let mut conn = self.backend.read().await?;
        match shortcut_prefix {
            // Shortcuts hold only a-z 0-9 _ -, all below '~': the prefix is a range of the
            // unique index, with no LIKE and its collation rules.
            Some(prefix) => {
                let end = format!("{prefix}~");
                all(
                    &mut conn,
                    concat!(
                        "SELECT ",
                        canned_columns!(),
                        " FROM canned_responses WHERE organization_id = $1 \
                         AND shortcut >= $2 AND shortcut < $3"
                    ),
                    params![organization_id, prefix, &end],
                    canned_from,
                )
                .await
            }
            None => {
                all(
                    &mut conn,
                    concat!(
                        "SELECT ",
                        canned_columns!(),
                        " FROM canned_responses WHERE organization_id = $1"
                    ),
                    params![organization_id],
                    canned_from,
                )
                .await
            }
        }
    }

    async fn canned_response(&self, organization_id: &str, id: &str) -> DbResult<CannedResponse> {
        let mut conn = self.backend.read().await?;
        one(
            &mut conn,
            concat!(
                "SELECT ",
                canned_columns!(),
                " FROM canned_responses WHERE id = $1 AND organization_id = $2"
            ),
            params![id, organization_id],
            canned_from,
        )
        .await
    }

    async fn insert_canned_response(&self, r: &CannedResponse) -> DbResult<()> {
        let mut tx = self.backend.write().await?;
        execute(
            &mut tx,
            concat!(
                "INSERT INTO canned_responses (",
                canned_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            ),
            params![
                &r.id,
                &r.organization_id,
                &r.shortcut,
                &r.title,
                &r.text,
                r.scope.as_str(),
                &r.group_id,
                &r.owner_id,
                r.usage_count,
                to_millis(r.created_at),
                to_millis(r.updated_at),
            ],
        )
        .await
        .map_err(on_unique(TAKEN))?;
        tx.commit().await
    }

    async fn update_canned_response(&self, r: &CannedResponse) -> DbResult<()> {
        let mut tx = self.backend.write().await?;
        let changed = execute(
            &mut tx,
            "UPDATE canned_responses SET shortcut = $1, title = $2, text = $3, scope = $4, \
             group_id = $5, owner_id = $6, updated_at = $7 \
             WHERE id = $8 AND organization_id = $9",
            params![
                &r.shortcut,
                &r.title,
                &r.text,
                r.scope.as_str(),
                &r.group_id,
                &r.owner_id,
                to_millis(r.updated_at),
                &r.id,
                &r.organization_id,
            ],
        )
        .await
        .map_err(on_unique(TAKEN))?;
        if changed == 0 {
            return Err(DbError::NotFound);
        }
        tx.commit().await
    }

    async fn delete_canned_response(&self, organization_id: &str, id: &str) -> DbResult<bool> {
        let mut tx = self.backend.write().await?;
        let deleted = execute(
            &mut tx,
            "DELETE FROM canned_responses WHERE id = $1 AND organization_id = $2",
            params![id, organization_id],
        )
        .await?;
        tx.commit().await?;
        Ok(deleted == 1)
    }

    async fn count_canned_use(&self, organization_id: &str, id: &str) -> DbResult<()> {
        let mut tx = self.backend.write().await?;
        execute(
            &mut tx,
            "UPDATE canned_responses SET usage_count = usage_count + 1 \
             WHERE id = $1 AND organization_id = $2",
            params![id, organization_id],
        )
        .await?;
        tx.commit().await
    }
}
