//! Messages on their way out. `send_message` puts one here as PENDING and returns; the client's
//! sender delivers it with its clientId, so the server keeps one copy however often it is sent,
//! and the file under the data directory carries it over app restarts.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, Result, SdkError};
use crate::models::Message;

/// Where an outgoing message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum OutgoingState {
    /// Waiting for the server; retried until it answers.
    Pending,
    /// The server has it; `message` is the transcript entry.
    Sent,
    /// The server refused it for good (the chat closed, the text is too long, ...). Retry it
    /// with `retry_message` or drop it with `discard_message`.
    Failed,
}

/// A message the agent sent from this device.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OutgoingMessage {
    /// Sent as the message's clientId; the transcript entry carries it back.
    pub client_id: String,
    pub chat_id: String,
    pub text: String,
    /// The canned response it was written from; the server counts one use when it arrives.
    pub canned_response_id: Option<String>,
    /// A note for the chat's agents (visibility AGENTS), never shown to the customer.
    pub is_note: bool,
    /// Files uploaded with `upload_file` that go with the message.
    pub file_ids: Vec<String>,
    pub state: OutgoingState,
    pub created_at: SystemTime,
    /// Set when SENT.
    pub message: Option<Message>,
    /// Why the server refused it, when FAILED (`error_message` has the text).
    pub error_code: Option<ErrorCode>,
    pub error_message: Option<String>,
}

/// The persisted form: pending and failed messages only (sent ones leave the outbox).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    client_id: String,
    agent_id: String,
    chat_id: String,
    text: String,
    /// Absent in files written before canned responses.
    #[serde(default)]
    canned_response_id: Option<String>,
    /// Absent in files written before notes: a public message.
    #[serde(default)]
    note: bool,
    /// Absent in files written before attachments.
    #[serde(default)]
    file_ids: Vec<String>,
    created_at_ms: u64,
    failed: Option<Failure>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Failure {
    code: String,
    message: String,
}

impl Entry {
    fn public(&self) -> OutgoingMessage {
        OutgoingMessage {
            client_id: self.client_id.clone(),
            chat_id: self.chat_id.clone(),
            text: self.text.clone(),
            canned_response_id: self.canned_response_id.clone(),
            is_note: self.note,
            file_ids: self.file_ids.clone(),
            state: if self.failed.is_some() {
                OutgoingState::Failed
            } else {
                OutgoingState::Pending
            },
            created_at: SystemTime::UNIX_EPOCH + Duration::from_millis(self.created_at_ms),
            message: None,
            error_code: self.failed.as_ref().map(|f| ErrorCode::parse(&f.code)),
            error_message: self.failed.as_ref().map(|f| f.message.clone()),
        }
    }
}

/// The next message to deliver.
pub(crate) struct Pending {
    pub client_id: String,
    pub chat_id: String,
    pub text: String,
    pub canned_response_id: Option<String>,
    pub note: bool,
    pub file_ids: Vec<String>,
}

pub(crate) struct Outbox {
    path: PathBuf,
    entries: Mutex<Vec<Entry>>,
}

impl Outbox {
    /// Opens the outbox in `dir`, with whatever an earlier run left unsent.
    pub(crate) fn open(dir: &Path) -> Result<Outbox> {
        std::fs::create_dir_all(dir).map_err(|err| {
            SdkError::bad_input(format!("cannot create the data directory {dir:?}: {err}"))
        })?;
        let path = dir.join("outbox.json");
        let entries = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|err| {
                // Never throw messages away silently: keep the unreadable file for support.
                tracing::error!(%err, "the outbox file is unreadable; kept as outbox.json.bad");
                let _ = std::fs::rename(&path, dir.join("outbox.json.bad"));
                Vec::new()
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(err) => {
                return Err(SdkError::bad_input(format!(
                    "cannot read the outbox {path:?}: {err}"
                )));
            }
        };
        Ok(Outbox {
            path,
            entries: Mutex::new(entries),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the outbox atomically: a new file, synced, renamed over the old one.
    fn save(&self, entries: &[Entry]) -> Result<()> {
        let write = || -> std::io::Result<()> {
            let temporary = self.path.with_extension("json.tmp");
            let bytes = serde_json::to_vec(entries).map_err(std::io::Error::other)?;
            let file = std::fs::File::create(&temporary)?;
            std::io::Write::write_all(&mut &file, &bytes)?;
            file.sync_all()?;
            std::fs::rename(&temporary, &self.path)
        };
        write().map_err(|err| SdkError::Storage {
            msg: format!("cannot write the outbox {:?}: {err}", self.path),
        })
    }

    pub(crate) fn add(
        &self,
        agent_id: &str,
        chat_id: &str,
        text: &str,
        canned_response_id: Option<&str>,
        note: bool,
        file_ids: &[String],
    ) -> Result<OutgoingMessage> {
        let entry = Entry {
            client_id: uuid::Uuid::now_v7().to_string(),
            agent_id: agent_id.to_owned(),
            chat_id: chat_id.to_owned(),
            text: text.to_owned(),
            canned_response_id: canned_response_id.map(str::to_owned),
            note,
            file_ids: file_ids.to_vec(),
            created_at_ms: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            failed: None,
        };
        let mut entries = self.lock();
        entries.push(entry.clone());
        if let Err(err) = self.save(&entries) {
            entries.pop();
            return Err(err);
        }
        Ok(entry.public())
    }

    /// The agent's messages not yet sent, oldest first.
    pub(crate) fn list(&self, agent_id: &str) -> Vec<OutgoingMessage> {
        self.lock()
            .iter()
            .filter(|e| e.agent_id == agent_id)
            .map(Entry::public)
            .collect()
    }

    /// The oldest pending message of the agent.
    pub(crate) fn next(&self, agent_id: &str) -> Option<Pending> {
        self.lock()
            .iter()
            .find(|e| e.agent_id == agent_id && e.failed.is_none())
            .map(|e| Pending {
                client_id: e.client_id.clone(),
                chat_id: e.chat_id.clone(),
                text: e.text.clone(),
                canned_response_id: e.canned_response_id.clone(),
                note: e.note,
                file_ids: e.file_ids.clone(),
            })
    }

    /// The server has the message: it leaves the outbox.
    pub(crate) fn sent(&self, client_id: &str, message: Message) -> Option<OutgoingMessage> {
        let mut entries = self.lock();
        let index = entries.iter().position(|e| e.client_id == client_id)?;
        let entry = entries.remove(index);
        if let Err(err) = self.save(&entries) {
            // Sending it again is harmless: the server answers with the same message.
            tracing::warn!(%err, "could not record a sent message");
        }
        let mut public = entry.public();
        public.state = OutgoingState::Sent;
        public.message = Some(message);
        Some(public)
    }

    pub(crate) fn failed(
        &self,
        client_id: &str,
        code: ErrorCode,
        message: &str,
    ) -> Option<OutgoingMessage> {
        let mut entries = self.lock();
        let entry = entries.iter_mut().find(|e| e.client_id == client_id)?;
        entry.failed = Some(Failure {
            code: code.as_str().to_owned(),
            message: message.to_owned(),
        });
        let public = entry.public();
        if let Err(err) = self.save(&entries) {
            tracing::warn!(%err, "could not record a failed message");
        }
        Some(public)
    }

    /// A failed message goes back to PENDING.
    pub(crate) fn retry(&self, client_id: &str) -> Result<OutgoingMessage> {
        let mut entries = self.lock();
        let entry = entries
            .iter_mut()
            .find(|e| e.client_id == client_id)
            .ok_or_else(|| not_in_outbox(client_id))?;
        entry.failed = None;
        let public = entry.public();
        self.save(&entries)?;
        Ok(public)
    }

    pub(crate) fn discard(&self, client_id: &str) -> Result<()> {
        let mut entries = self.lock();
        let index = entries
            .iter()
            .position(|e| e.client_id == client_id)
            .ok_or_else(|| not_in_outbox(client_id))?;
        let entry = entries.remove(index);
        if let Err(err) = self.save(&entries) {
            entries.insert(index, entry);
            return Err(err);
        }
        Ok(())
    }

    /// Drops what an agent who signed out left unsent.
    pub(crate) fn forget_agent(&self, agent_id: &str) {
        let mut entries = self.lock();
        let before = entries.len();
        entries.retain(|e| e.agent_id != agent_id);
        if entries.len() != before
            && let Err(err) = self.save(&entries)
        {
            tracing::warn!(%err, "could not clear the outbox");
        }
    }
}

fn not_in_outbox(client_id: &str) -> SdkError {
    SdkError::NotFound {
        msg: format!("no outgoing message {client_id} in the outbox"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_messages_survive_reopening_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).unwrap();
        let first = outbox
            .add("agent-1", "chat-1", "first", None, false, &[])
            .unwrap();
        let second = outbox
            .add(
                "agent-1",
                "chat-2",
                "second",
                Some("canned-1"),
                false,
                &["file-1".into()],
            )
            .unwrap();
        outbox
            .add("agent-2", "chat-3", "someone else's", None, false, &[])
            .unwrap();
        let note = outbox
            .add("agent-1", "chat-2", "for the agents", None, true, &[])
            .unwrap();
        assert!(note.is_note && !second.is_note);
        assert_eq!(first.state, OutgoingState::Pending);
        drop(outbox);

        let outbox = Outbox::open(dir.path()).unwrap();
        let listed = outbox.list("agent-1");
        assert_eq!(listed, vec![first.clone(), second.clone(), note.clone()]);
        assert_eq!(outbox.next("agent-1").unwrap().client_id, first.client_id);

        let failed = outbox
            .failed(&first.client_id, ErrorCode::NotFound, "gone")
            .unwrap();
        assert_eq!(failed.state, OutgoingState::Failed);
        assert_eq!(failed.error_code, Some(ErrorCode::NotFound));
        // A failed message no longer holds up the ones behind it.
        let next = outbox.next("agent-1").unwrap();
        assert_eq!(next.client_id, second.client_id);
        assert_eq!(next.canned_response_id.as_deref(), Some("canned-1"));
        assert!(!next.note);
        assert_eq!(next.file_ids, vec!["file-1".to_owned()]);
        outbox.discard(&second.client_id).unwrap();
        assert!(outbox.next("agent-1").unwrap().note, "a note stays a note");
        outbox.discard(&note.client_id).unwrap();

        outbox.retry(&first.client_id).unwrap();
        assert_eq!(outbox.next("agent-1").unwrap().client_id, first.client_id);
        outbox.discard(&first.client_id).unwrap();
        assert!(matches!(
            outbox.discard(&first.client_id),
            Err(SdkError::NotFound { .. })
        ));

        outbox.forget_agent("agent-1");
        drop(outbox);
        let outbox = Outbox::open(dir.path()).unwrap();
        assert!(outbox.list("agent-1").is_empty());
        assert_eq!(outbox.list("agent-2").len(), 1);
    }

    #[test]
    fn a_file_from_before_canned_responses_still_opens() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("outbox.json"),
            br#"[{"client_id":"c1","agent_id":"a1","chat_id":"ch1","text":"hi","created_at_ms":1,"failed":null}]"#,
        )
        .unwrap();
        let outbox = Outbox::open(dir.path()).unwrap();
        let next = outbox.next("a1").unwrap();
        assert_eq!(next.text, "hi");
        assert_eq!(next.canned_response_id, None);
        assert!(!next.note, "a message from before notes is public");
    }

    #[test]
    fn an_unreadable_file_is_kept_aside_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("outbox.json"), b"{not json").unwrap();
        let outbox = Outbox::open(dir.path()).unwrap();
        assert!(outbox.list("agent-1").is_empty());
        assert_eq!(
            std::fs::read(dir.path().join("outbox.json.bad")).unwrap(),
            b"{not json"
        );
    }
}
