//! Tags: the organization's labels (`tags`; admins and owners manage them) and putting them
//! on chats (`addChatTag`, `removeChatTag`). A chat's own are `Chat.tags`, in the chats module.

use async_graphql::{Context, ID, InputObject, Object};
use chrono::{DateTime, Utc};

use crate::domain;
use crate::graphql::chats::Chat;
use crate::graphql::{ApiResult, ContextExt, limits};
use crate::services::tags::TagInput as ServiceTagInput;

/// A label an organization puts on chats.
pub struct Tag(pub domain::Tag);

#[Object]
impl Tag {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    /// Unique in the organization whatever the case; 1 to 40 characters.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// A hex colour such as `#1a5fd0`; null for the apps' default.
    async fn color(&self) -> Option<&str> {
        self.0.color.as_deref()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A tag as an admin writes it.
#[derive(InputObject)]
pub struct TagInput {
    /// 1 to 40 characters, unique in the organization whatever the case (else CONFLICT).
    pub name: String,
    /// `#rrggbb` or `#rgb`; null or empty for the default.
    pub color: Option<String>,
}

impl From<TagInput> for ServiceTagInput {
    fn from(input: TagInput) -> Self {
        ServiceTagInput {
            name: input.name,
            color: input.color,
        }
    }
}

/// The organization's tags.
#[derive(Default)]
pub struct TagsQuery;

#[Object]
impl TagsQuery {
    /// The organization's tags, by name. Any agent.
    #[graphql(complexity = "limits::unbounded_list_cost(child_complexity)")]
    async fn tags(&self, ctx: &Context<'_>) -> ApiResult<Vec<Tag>> {
        let principal = ctx.principal()?;
        Ok(ctx
            .services()
            .tags
            .list(principal)
            .await?
            .into_iter()
            .map(Tag)
            .collect())
    }
}

/// Managing tags and tagging chats.
#[derive(Default)]
pub struct TagsMutation;

#[Object]
impl TagsMutation {
    /// Adds a tag to the organization. Admins and owners.
    async fn create_tag(&self, ctx: &Context<'_>, input: TagInput) -> ApiResult<Tag> {
        let principal = ctx.principal()?;
        Ok(Tag(ctx
            .services()
            .tags
            .create(principal, input.into())
            .await?))
    }

    /// Renames or recolours a tag; chats keep it. Admins and owners.
    async fn update_tag(&self, ctx: &Context<'_>, id: ID, input: TagInput) -> ApiResult<Tag> {
        let principal = ctx.principal()?;
        Ok(Tag(ctx
            .services()
            .tags
            .update(principal, &id, input.into())
            .await?))
    }

    /// Deletes a tag and takes it off every chat. Admins and owners.
    async fn delete_tag(&self, ctx: &Context<'_>, id: ID) -> ApiResult<bool> {
        let principal = ctx.principal()?;
        Ok(ctx.services().tags.delete(principal, &id).await?)
    }

    /// Puts a tag on a chat, during it or after it: its agent, whoever took part, the
    /// supervisors of its group and admins may. Agents viewing the chat hear of it (a
    /// TAGS_CHANGED entry, agents only). A tag already there changes nothing.
    async fn add_chat_tag(&self, ctx: &Context<'_>, chat_id: ID, tag_id: ID) -> ApiResult<Chat> {
        let principal = ctx.principal()?;
        Ok(Chat::loaded(
            ctx.services()
                .chats
                .add_chat_tag(principal, &chat_id, &tag_id)
                .await?,
        ))
    }

    /// Takes a tag off a chat, with the same rights as adding it.
    async fn remove_chat_tag(&self, ctx: &Context<'_>, chat_id: ID, tag_id: ID) -> ApiResult<Chat> {
        let principal = ctx.principal()?;
        Ok(Chat::loaded(
            ctx.services()
                .chats
                .remove_chat_tag(principal, &chat_id, &tag_id)
                .await?,
        ))
    }
}
