//! Tags: the organization's labels for chats. Every agent of the organization lists them;
//! admins and owners create, rename, recolour and delete them (deleting takes a tag off every
//! chat). Putting tags on chats is a chat change: [`ChatService::add_chat_tag`].

use std::sync::Arc;

use crate::domain::{self, Chat, Tag, validate_tag_color, validate_tag_name};
use crate::error::{Error, Result};
use crate::services::Principal;
use crate::store::{Database, DbError};

/// A tag as an admin writes it.
#[derive(Debug, Clone)]
pub struct TagInput {
    /// 1 to 40 characters, unique in the organization whatever the case.
    pub name: String,
    /// `#rrggbb` or `#rgb`; `None` or empty for the default.
    pub color: Option<String>,
}

/// The use cases of tags.
pub struct TagService {
    store: Arc<dyn Database>,
}

impl TagService {
    pub fn new(store: Arc<dyn Database>) -> Self {
        TagService { store }
    }

    /// The organization's tags, by name.
    pub async fn list(&self, principal: &Principal) -> Result<Vec<Tag>> {
        Ok(self.store.tags(principal.organization_id()).await?)
    }

    /// The tags on a chat the caller was already allowed to see.
    pub async fn on_chat(&self, principal: &Principal, chat: &Chat) -> Result<Vec<Tag>> {
        if chat.organization_id != principal.organization_id() {
            return Err(Error::NotFound("no such chat".into()));
        }
        Ok(self
            .store
            .chat_tags(&chat.organization_id, &chat.id)
            .await?)
    }

    /// Adds a tag to the organization. Admins and owners.
    pub async fn create(&self, principal: &Principal, input: TagInput) -> Result<Tag> {
        principal.require_admin("manage tags")?;
        let tag = Tag {
            id: domain::new_id(),
            organization_id: principal.organization_id().to_owned(),
            name: validate_tag_name(&input.name)?,
            color: validate_tag_color(input.color.as_deref())?,
            created_at: domain::now(),
        };
        self.store.insert_tag(&tag).await?;
        Ok(tag)
    }

    /// Renames and recolours a tag; the chats that have it keep it. Admins and owners.
    pub async fn update(&self, principal: &Principal, id: &str, input: TagInput) -> Result<Tag> {
        principal.require_admin("manage tags")?;
        let existing = self.tag(principal, id).await?;
        let tag = Tag {
            name: validate_tag_name(&input.name)?,
            color: validate_tag_color(input.color.as_deref())?,
            ..existing
        };
        self.store.update_tag(&tag).await.map_err(not_found)?;
        Ok(tag)
    }

    /// Deletes a tag and takes it off every chat. Admins and owners.
    pub async fn delete(&self, principal: &Principal, id: &str) -> Result<bool> {
        principal.require_admin("manage tags")?;
        if self
            .store
            .delete_tag(principal.organization_id(), id)
            .await?
        {
            Ok(true)
        } else {
            Err(not_found(DbError::NotFound))
        }
    }

    async fn tag(&self, principal: &Principal, id: &str) -> Result<Tag> {
        self.store
            .tags(principal.organization_id())
            .await?
            .into_iter()
            .find(|tag| tag.id == id)
            .ok_or_else(|| not_found(DbError::NotFound))
    }
}

fn not_found(err: DbError) -> Error {
    match err {
        DbError::NotFound => Error::NotFound("no such tag".into()),
        other => other.into(),
    }
}
