//! Files attached to messages: `Message.attachments` (with a short-lived download link for
//! whoever may see the message), and the organization's limits (`fileSettings`,
//! `updateFileSettings`). Uploading is plain HTTP (`POST /files`, see `http::files`); sending is
//! `sendMessage` with `fileIds`, in the chats module.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{Context, ID, InputObject, Object};
use chrono::{DateTime, Utc};

use crate::domain;
use crate::graphql::{ApiError, ApiResult, ContextExt};
use crate::services::Services;

/// Loads the attachments of the messages of one response together: a transcript page of 50
/// messages costs one query.
pub struct AttachmentLoader {
    services: Arc<Services>,
}

impl AttachmentLoader {
    /// The loader of the schema serving `services`.
    pub fn loader(services: Arc<Services>) -> DataLoader<AttachmentLoader> {
        DataLoader::new(AttachmentLoader { services }, tokio::spawn)
    }
}

/// The id of a message whose attachments are wanted.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MessageFiles(pub String);

impl Loader<MessageFiles> for AttachmentLoader {
    type Value = Arc<Vec<domain::StoredFile>>;
    type Error = ApiError;

    async fn load(
        &self,
        keys: &[MessageFiles],
    ) -> Result<HashMap<MessageFiles, Self::Value>, ApiError> {
        let ids: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let found = self.services.files.attachments(&ids).await?;
        Ok(found
            .into_iter()
            .map(|(event, files)| (MessageFiles(event), Arc::new(files)))
            .collect())
    }
}

/// The attachments of `message`, oldest first.
pub async fn attachments_of(
    ctx: &Context<'_>,
    message: &domain::ChatEvent,
) -> ApiResult<Vec<Attachment>> {
    if message.kind != domain::ChatEventKind::Message {
        return Ok(Vec::new());
    }
    let loaded = ctx
        .data_unchecked::<DataLoader<AttachmentLoader>>()
        .load_one(MessageFiles(message.id.clone()))
        .await?;
    Ok(loaded
        .map(|files| {
            files
                .iter()
                .map(|file| Attachment {
                    file: file.clone(),
                    message: message.clone(),
                })
                .collect()
        })
        .unwrap_or_default())
}

/// A file sent with a message.
pub struct Attachment {
    file: domain::StoredFile,
    /// The message it came with: its link goes only to who may see that message.
    message: domain::ChatEvent,
}

#[Object]
impl Attachment {
    async fn id(&self) -> ID {
        ID(self.file.id.clone())
    }

    /// As the sender named it.
    async fn name(&self) -> &str {
        &self.file.name
    }

    /// Such as image/png or application/pdf.
    async fn content_type(&self) -> &str {
        &self.file.content_type
    }

    /// In bytes.
    async fn size(&self) -> i64 {
        self.file.size
    }

    /// Whether apps show it inline (PNG, JPEG, GIF or WebP) rather than as a download.
    async fn is_image(&self) -> bool {
        self.file.is_image()
    }

    /// A download link, relative to the server's address, valid for a short time
    /// (SWITCHBOARD_FILE_URL_TTL, 15 minutes by default): ask again for a fresh one. Given only
    /// to the chat's customer (not for notes) and the agents who may see the chat.
    async fn url(&self, ctx: &Context<'_>) -> ApiResult<Option<String>> {
        let caller = ctx.caller()?;
        Ok(Some(
            ctx.services()
                .files
                .download_url(&caller, &self.message, &self.file)
                .await?,
        ))
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.file.created_at
    }
}

/// What files an organization accepts.
pub struct FileSettings(domain::FileSettings);

#[Object]
impl FileSettings {
    /// The largest file accepted, in bytes.
    async fn max_file_bytes(&self) -> i64 {
        self.0.max_file_bytes
    }

    /// The content types accepted, such as image/png.
    async fn allowed_types(&self) -> &[String] {
        &self.0.allowed_types
    }
}

/// New limits on files.
#[derive(InputObject)]
pub struct FileSettingsInput {
    /// 1 byte to 100 MB.
    pub max_file_bytes: i64,
    /// Content types such as image/png; pages and scripts (text/html, image/svg+xml …) are
    /// never accepted.
    pub allowed_types: Vec<String>,
}

#[derive(Default)]
pub struct FilesQuery;

#[Object]
impl FilesQuery {
    /// The limits on files in the caller's organization, for agents and customers alike.
    async fn file_settings(&self, ctx: &Context<'_>) -> ApiResult<FileSettings> {
        let caller = ctx.caller()?;
        let organization_id = match &caller {
            crate::services::Caller::Agent(principal) => principal.organization_id(),
            crate::services::Caller::Customer(customer) => &customer.organization_id,
        };
        Ok(FileSettings(
            ctx.services().files.settings(organization_id).await?,
        ))
    }
}

#[derive(Default)]
pub struct FilesMutation;

#[Object]
impl FilesMutation {
    /// Sets the organization's limits on files (admins and owners).
    async fn update_file_settings(
        &self,
        ctx: &Context<'_>,
        input: FileSettingsInput,
    ) -> ApiResult<FileSettings> {
        Ok(FileSettings(
            ctx.services()
                .files
                .update_settings(ctx.principal()?, input.max_file_bytes, &input.allowed_types)
                .await?,
        ))
    }
}
