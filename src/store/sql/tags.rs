//! Tags: the [`TagStore`] trait, and the chat transaction's part (putting a tag on a chat and
//! taking it off, in the change that tells the chat's agents).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Backend, Conn, SqlStore, Transaction, all, execute, on_unique, one};
use crate::domain::{Chat, Tag};
use crate::store::{DbError, DbResult, TagStore, from_millis, to_millis};

const TAKEN: &str = "the organization already has a tag with this name";

fn tag_from(row: &dyn super::Columns) -> DbResult<Tag> {
    Ok(Tag {
        id: row.text("id")?,
        organization_id: row.text("organization_id")?,
        name: row.text("name")?,
        color: row.opt_text("color")?,
        created_at: from_millis(row.int("created_at")?),
    })
}

/// A tag of the organization.
pub(super) async fn tag(conn: &mut dyn Conn, organization_id: &str, id: &str) -> DbResult<Tag> {
    one(
        conn,
        "SELECT id, organization_id, name, color, created_at FROM tags \
         WHERE id = $1 AND organization_id = $2",
        params![id, organization_id],
        tag_from,
    )
    .await
}

/// Puts the tag on the chat; false when it was there already.
pub(super) async fn add_chat_tag(
    conn: &mut dyn Conn,
    chat: &Chat,
    tag_id: &str,
    added_by: &str,
    at: DateTime<Utc>,
) -> DbResult<bool> {
    let added = execute(
        conn,
        "INSERT INTO chat_tags (chat_id, tag_id, organization_id, added_by, added_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (chat_id, tag_id) DO NOTHING",
        params![
            &chat.id,
            tag_id,
            &chat.organization_id,
            added_by,
            to_millis(at)
        ],
    )
    .await?;
    Ok(added == 1)
}

/// Takes the tag off the chat; false when it was not there.
pub(super) async fn remove_chat_tag(
    conn: &mut dyn Conn,
    chat_id: &str,
    tag_id: &str,
) -> DbResult<bool> {
    let removed = execute(
        conn,
        "DELETE FROM chat_tags WHERE chat_id = $1 AND tag_id = $2",
        params![chat_id, tag_id],
    )
    .await?;
    Ok(removed == 1)
}

#[async_trait]
impl<B: Backend> TagStore for SqlStore<B> {
    async fn tags(&self, organization_id: &str) -> DbResult<Vec<Tag>> {
        let mut conn = self.backend.read().await?;
        all(
            &mut conn,
            "SELECT id, organization_id, name, color, created_at FROM tags \
             WHERE organization_id = $1 ORDER BY lower(name), id",
            params![organization_id],
            tag_from,
        )
        .await
    }

    async fn chat_tags(&self, organization_id: &str, chat_id: &str) -> DbResult<Vec<Tag>> {
        let mut conn = self.backend.read().await?;
        all(
            &mut conn,
            "SELECT t.id, t.organization_id, t.name, t.color, t.created_at \
             FROM chat_tags ct JOIN tags t ON t.id = ct.tag_id \
             WHERE ct.chat_id = $1 AND ct.organization_id = $2 AND t.organization_id = $2 \
             ORDER BY lower(t.name), t.id",
            params![chat_id, organization_id],
            tag_from,
        )
        .await
    }

    async fn insert_tag(&self, tag: &Tag) -> DbResult<()> {
        let mut tx = self.backend.write().await?;
        execute(
            &mut tx,
            "INSERT INTO tags (id, organization_id, name, color, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
            params![
                &tag.id,
                &tag.organization_id,
                &tag.name,
                &tag.color,
                to_millis(tag.created_at)
            ],
        )
        .await
        .map_err(on_unique(TAKEN))?;
        tx.commit().await
    }

    async fn update_tag(&self, tag: &Tag) -> DbResult<()> {
        let mut tx = self.backend.write().await?;
        let changed = execute(
            &mut tx,
            "UPDATE tags SET name = $1, color = $2 WHERE id = $3 AND organization_id = $4",
            params![&tag.name, &tag.color, &tag.id, &tag.organization_id],
        )
        .await
        .map_err(on_unique(TAKEN))?;
        if changed == 0 {
            return Err(DbError::NotFound);
        }
        tx.commit().await
    }

    async fn delete_tag(&self, organization_id: &str, id: &str) -> DbResult<bool> {
        let mut tx = self.backend.write().await?;
        execute(
            &mut tx,
            "DELETE FROM chat_tags WHERE tag_id = $1 AND organization_id = $2",
            params![id, organization_id],
        )
        .await?;
        let deleted = execute(
            &mut tx,
            "DELETE FROM tags WHERE id = $1 AND organization_id = $2",
            params![id, organization_id],
        )
        .await?;
        tx.commit().await?;
        Ok(deleted == 1)
    }
}
