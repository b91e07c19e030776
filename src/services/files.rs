//! Files attached to messages: uploading into a chat (size counted as the bytes arrive, type
//! checked against the organization's list and against the content), checking files before a
//! message sends them, the attachments of messages, download links signed for a short time
//! and given only to who may see the message, and the organization's limits.
//!
//! The bytes are in an [`ObjectStore`]: the data directory by default, any S3-compatible
//! store when configured.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use hmac::{Hmac, Mac};
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use sha2::Sha256;

use crate::domain::{
    self, AuthorKind, ChatEvent, ChatStatus, FileSettings, MAX_FILES_PER_MESSAGE, MAX_UNSENT_FILES,
    StoredFile, UNSENT_FILE_LIFETIME_HOURS, Visibility, Wording,
};
use crate::error::{Error, Result};
use crate::services::{Caller, ChatService, Principal};
use crate::store::{Database, DbError};

/// How many bytes of a file are read before its content is checked against its type.
const SNIFF_BYTES: usize = 512;

/// Why an upload was refused, so HTTP can say 413 or 415 rather than 400.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// Larger than the organization accepts.
    #[error("{0}")]
    TooLarge(String),
    /// A type the organization does not accept, or content that is not what the type says.
    #[error("{0}")]
    Unsupported(String),
    /// The body stopped arriving in time, or the connection broke.
    #[error("{0}")]
    Incomplete(String),
    #[error(transparent)]
    Other(#[from] Error),
}

impl From<DbError> for UploadError {
    fn from(err: DbError) -> Self {
        UploadError::Other(err.into())
    }
}

/// What the file service is built with.
#[derive(Clone)]
pub struct FileServiceSettings {
    /// Where the bytes go.
    pub blobs: Arc<dyn ObjectStore>,
    /// Signs download links; derived from the server secret, so every node agrees.
    pub url_key: Vec<u8>,
    /// How long a download link works.
    pub url_ttl: Duration,
    /// Time one upload may take.
    pub upload_timeout: Duration,
}

impl std::fmt::Debug for FileServiceSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileServiceSettings")
            .field("blobs", &self.blobs.to_string())
            .field("url_ttl", &self.url_ttl)
            .field("upload_timeout", &self.upload_timeout)
            .finish_non_exhaustive()
    }
}

/// A file on its way to the client.
pub struct Download {
    pub file: StoredFile,
    pub body: BoxStream<'static, std::result::Result<Bytes, object_store::Error>>,
}

/// The use cases of attached files.
pub struct FileService {
    store: Arc<dyn Database>,
    /// Decides which chats a caller may see and write in.
    chats: Arc<ChatService>,
    blobs: Arc<dyn ObjectStore>,
    url_key: Vec<u8>,
    url_ttl: Duration,
    upload_timeout: Duration,
}

impl FileService {
    /// The use cases over `store`, with `chats` deciding who sees which chat.
    pub fn new(
        store: Arc<dyn Database>,
        chats: Arc<ChatService>,
        settings: FileServiceSettings,
    ) -> Self {
        FileService {
            store,
            chats,
            blobs: settings.blobs,
            url_key: settings.url_key,
            url_ttl: settings.url_ttl,
            upload_timeout: settings.upload_timeout,
        }
    }

    /// The limits of the caller's organization: agents and customers read them, so the widget
    /// and the apps can refuse a file before uploading it.
    pub async fn settings(&self, organization_id: &str) -> Result<FileSettings> {
        Ok(self.store.file_settings(organization_id).await?)
    }

    /// Replaces the organization's limits: admins and owners only.
    pub async fn update_settings(
        &self,
        principal: &Principal,
        max_file_bytes: i64,
        allowed_types: &[String],
    ) -> Result<FileSettings> {
        principal.require_admin("change the organization's file limits")?;
        let settings = FileSettings::new(max_file_bytes, allowed_types)?;
        self.store
            .set_file_settings(principal.organization_id(), &settings, domain::now())
            .await?;
        Ok(settings)
    }

    /// Stores a file the caller uploads into a chat they may write in. The size is counted
    /// as the body arrives and the upload stops at the organization's limit; the first bytes
    /// must be what the declared type says.
    pub async fn upload<S, E>(
        &self,
        caller: &Caller,
        chat_id: &str,
        name: &str,
        content_type: &str,
        declared_len: Option<u64>,
        body: S,
    ) -> std::result::Result<StoredFile, UploadError>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let (uploader_kind, uploader_id) = self.writer_in(caller, chat_id).await?;
        if self.store.unsent_file_count(chat_id, &uploader_id).await? >= MAX_UNSENT_FILES {
            return Err(Error::Conflict(format!(
                "you have {MAX_UNSENT_FILES} files in this chat not sent yet: send them first"
            ))
            .into());
        }
        let organization_id = organization_of(caller);
        let settings = self.store.file_settings(organization_id).await?;
        let content_type = settings
            .accept_type(content_type)
            .map_err(|err| UploadError::Unsupported(err.0))?;
        let max = settings.max_file_bytes as u64;
        if declared_len.is_some_and(|len| len > max) {
            return Err(UploadError::TooLarge(settings.too_large().0));
        }
        let id = domain::new_id();
        let storage_key = format!("{organization_id}/{chat_id}/{id}");
        let upload = tokio::time::timeout(
            self.upload_timeout,
            self.receive(&storage_key, &content_type, &settings, body),
        )
        .await
        .unwrap_or_else(|_| {
            Err(UploadError::Incomplete(format!(
                "the file did not arrive within {} s",
                self.upload_timeout.as_secs()
            )))
        });
        let size = match upload {
            Ok(size) => size,
            Err(err) => {
                // A partial upload may have left an object behind (a multipart upload aborts
                // itself; a finished one past a later check does not).
                let _ = self
                    .blobs
                    .delete(&StorePath::from(storage_key.as_str()))
                    .await;
                return Err(err);
            }
        };
        let file = StoredFile {
            id,
            organization_id: organization_id.to_owned(),
            chat_id: chat_id.to_owned(),
            uploader_kind,
            uploader_id,
            name: domain::clean_file_name(name),
            content_type,
            size: size as i64,
            storage_key,
            event_id: None,
            created_at: domain::now(),
        };
        self.store.insert_file(&file).await?;
        Ok(file)
    }

    /// Streams `body` into the store under `key`, checking size and content on the way;
    /// returns the size.
    async fn receive<S, E>(
        &self,
        key: &str,
        content_type: &str,
        settings: &FileSettings,
        mut body: S,
    ) -> std::result::Result<u64, UploadError>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let max = settings.max_file_bytes as u64;
        // The first bytes are held back until the content check passes, so a refused file
        // never reaches the store.
        let mut head: Vec<Bytes> = Vec::new();
        let mut head_len = 0usize;
        let mut writer: Option<WriteMultipart> = None;
        let mut size = 0u64;
        loop {
            let chunk = match body.next().await {
                Some(Ok(chunk)) => chunk,
                Some(Err(err)) => {
                    abort(writer).await;
                    return Err(UploadError::Incomplete(format!(
                        "the upload broke off: {err}"
                    )));
                }
                None => break,
            };
            size += chunk.len() as u64;
            if size > max {
                abort(writer).await;
                return Err(UploadError::TooLarge(settings.too_large().0));
            }
            match &mut writer {
                Some(w) => {
                    w.wait_for_capacity(4).await.map_err(store_error)?;
                    w.write(&chunk);
                }
                None => {
                    head_len += chunk.len();
                    head.push(chunk);
                    if head_len >= SNIFF_BYTES {
                        writer = Some(self.start(key, content_type, &head).await?);
                        head.clear();
                    }
                }
            }
        }
        if size == 0 {
            abort(writer).await;
            return Err(UploadError::Other(Error::BadUserInput(
                "the file is empty".into(),
            )));
        }
        let writer = match writer {
            Some(w) => w,
            None => self.start(key, content_type, &head).await?,
        };
        writer.finish().await.map_err(store_error)?;
        Ok(size)
    }

    /// Checks the first bytes and opens the upload with them.
    async fn start(
        &self,
        key: &str,
        content_type: &str,
        head: &[Bytes],
    ) -> std::result::Result<WriteMultipart, UploadError> {
        let first: Vec<u8> = head.iter().flat_map(|b| b.iter().copied()).collect();
        domain::check_content(content_type, &first[..first.len().min(SNIFF_BYTES)])
            .map_err(|err| UploadError::Unsupported(err.0))?;
        let upload = self
            .blobs
            .put_multipart(&StorePath::from(key))
            .await
            .map_err(store_error)?;
        let mut writer = WriteMultipart::new(upload);
        writer.write(&first);
        Ok(writer)
    }

    /// Who the caller is in a chat they may write in: its customer, or an agent taking part
    /// (its assignee or a supervisor who joined). Sending checks this again, exactly.
    async fn writer_in(
        &self,
        caller: &Caller,
        chat_id: &str,
    ) -> std::result::Result<(AuthorKind, String), UploadError> {
        let chat = self.chats.chat_for(caller, chat_id).await?;
        if chat.status == ChatStatus::Closed {
            return Err(Error::Conflict(Wording::ChatClosed.text()).into());
        }
        match caller {
            Caller::Customer(customer) => {
                self.chats.limit_customer_action(customer).await?;
                Ok((AuthorKind::Customer, customer.customer_id.clone()))
            }
            Caller::Agent(principal) => {
                let agent_id = &principal.agent.id;
                if chat.assignee_id.as_deref() != Some(agent_id.as_str())
                    && !self.store.participated(&chat.id, agent_id).await?
                {
                    return Err(Error::Forbidden(
                        "only the chat's agents may send files in it: join it first".into(),
                    )
                    .into());
                }
                Ok((AuthorKind::Agent, agent_id.clone()))
            }
        }
    }

    /// Checks that the caller may send these files in this chat: each uploaded by them into
    /// it. Returns the ids without repeats.
    pub async fn check_sendable(
        &self,
        caller: &Caller,
        chat_id: &str,
        file_ids: &[String],
    ) -> Result<Vec<String>> {
        let mut ids: Vec<String> = Vec::new();
        for id in file_ids {
            if !ids.contains(id) {
                ids.push(id.clone());
            }
        }
        if ids.len() > MAX_FILES_PER_MESSAGE {
            return Err(Error::BadUserInput(format!(
                "a message may carry at most {MAX_FILES_PER_MESSAGE} files"
            )));
        }
        if ids.is_empty() {
            return Ok(ids);
        }
        // The chat first: someone else's chat id says "no such chat", not which files exist.
        self.chats.chat_for(caller, chat_id).await?;
        let uploader = match caller {
            Caller::Customer(customer) => &customer.customer_id,
            Caller::Agent(principal) => &principal.agent.id,
        };
        let found = self.store.chat_files(chat_id, &ids).await?;
        for id in &ids {
            match found.iter().find(|f| &f.id == id) {
                // One already sent is refused when the message is written, not here: a retry
                // with the same clientId returns the message that sent it.
                Some(file) if &file.uploader_id == uploader => {}
                _ => {
                    return Err(Error::NotFound(format!(
                        "no file {id:?} uploaded by you in this chat"
                    )));
                }
            }
        }
        Ok(ids)
    }

    /// The files sent with each message, by message id.
    pub async fn attachments(
        &self,
        event_ids: &[String],
    ) -> Result<HashMap<String, Vec<StoredFile>>> {
        let mut by_event: HashMap<String, Vec<StoredFile>> = HashMap::new();
        for file in self.store.event_files(event_ids).await? {
            if let Some(event) = file.event_id.clone() {
                by_event.entry(event).or_default().push(file);
            }
        }
        Ok(by_event)
    }

    /// A download link for a file of `message`, for a caller who may see the message: the
    /// chat's customer (public messages only) or an agent who may see the chat. Relative to
    /// the server's address.
    pub async fn download_url(
        &self,
        caller: &Caller,
        message: &ChatEvent,
        file: &StoredFile,
    ) -> Result<String> {
        if file.event_id.as_deref() != Some(message.id.as_str()) || file.chat_id != message.chat_id
        {
            return Err(Error::NotFound("no such file".into()));
        }
        if matches!(caller, Caller::Customer(_)) && message.visibility != Visibility::Public {
            return Err(Error::NotFound("no such file".into()));
        }
        // The same check as reading the chat's transcript; other organizations' chats are
        // not found by it.
        self.chats.chat_for(caller, &message.chat_id).await?;
        let expires = (domain::now() + self.url_ttl).timestamp();
        Ok(format!(
            "/files/{}/{}?expires={expires}&signature={}",
            file.id,
            path_segment(&file.name),
            self.sign(&file.id, expires)
        ))
    }

    /// Opens a file for a signed link: FORBIDDEN when the signature is not ours or has
    /// expired.
    pub async fn download(&self, id: &str, expires: i64, signature: &str) -> Result<Download> {
        let refused = || Error::Forbidden("this download link is invalid or has expired".into());
        let Some(signature) = decode_hex(signature) else {
            return Err(refused());
        };
        let mut mac = self.mac();
        mac.update(signed_text(id, expires).as_bytes());
        if mac.verify_slice(&signature).is_err() || expires < domain::now().timestamp() {
            return Err(refused());
        }
        let file = self.store.file(id).await.map_err(|err| match err {
            DbError::NotFound => Error::NotFound("no such file".into()),
            other => other.into(),
        })?;
        let found = self
            .blobs
            .get(&StorePath::from(file.storage_key.as_str()))
            .await
            .map_err(|err| match err {
                object_store::Error::NotFound { .. } => Error::NotFound("no such file".into()),
                other => Error::internal(other),
            })?;
        Ok(Download {
            file,
            body: found.into_stream(),
        })
    }

    /// Deletes files uploaded more than a day ago and never sent, bytes first; how many.
    pub async fn sweep_unsent(&self) -> Result<usize> {
        let before = domain::now() - chrono::Duration::hours(UNSENT_FILE_LIFETIME_HOURS);
        let mut deleted = 0;
        for file in self.store.unsent_files_before(before, 500).await? {
            match self
                .blobs
                .delete(&StorePath::from(file.storage_key.as_str()))
                .await
            {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(err) => return Err(Error::internal(err)),
            }
            if self.store.delete_unsent_file(&file.id).await? {
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes a key of any length.
        Hmac::<Sha256>::new_from_slice(&self.url_key).expect("HMAC accepts any key length")
    }

    fn sign(&self, id: &str, expires: i64) -> String {
        let mut mac = self.mac();
        mac.update(signed_text(id, expires).as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

fn organization_of(caller: &Caller) -> &str {
    match caller {
        Caller::Agent(principal) => principal.organization_id(),
        Caller::Customer(customer) => &customer.organization_id,
    }
}

/// What a link's signature covers: the file and the link's expiry.
fn signed_text(id: &str, expires: i64) -> String {
    format!("switchboard-file\n{id}\n{expires}")
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A file name as one URL path segment: unreserved characters kept, the rest %-escaped.
fn path_segment(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn abort(writer: Option<WriteMultipart>) {
    if let Some(writer) = writer {
        let _ = writer.abort().await;
    }
}

fn store_error(err: object_store::Error) -> UploadError {
    UploadError::Other(Error::internal(err))
}

/// Deletes uploads nobody sent, once an hour: a file is uploaded to be sent within minutes.
pub struct UnsentFileSweeper {
    pub services: Arc<crate::services::Services>,
}

impl UnsentFileSweeper {
    /// Runs until `shutdown` says stop.
    pub async fn run(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            match self.services.files.sweep_unsent().await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "deleted files uploaded but never sent"),
                Err(err) => tracing::warn!(error = %err, "sweeping unsent files failed"),
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                () = tokio::time::sleep(Duration::from_secs(3600)) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_one_path_segment() {
        assert_eq!(path_segment("a b/ü.png"), "a%20b%2F%C3%BC.png");
        assert_eq!(decode_hex(&"ab".repeat(32)).unwrap().len(), 32);
        assert!(decode_hex("zz").is_none());
        assert!(decode_hex(&"zz".repeat(32)).is_none());
    }
}
