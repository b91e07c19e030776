//! Canned responses: agents find them as they type `#shortcut`, see them filled in for a chat
//! before sending, and each message sent from one counts a use. Admins and owners manage the
//! organization's and groups' responses; every agent manages their own.

use std::sync::Arc;

use crate::domain::{
    self, CannedList, CannedResponse, CannedScope, CannedSearch, CannedValues, MAX_CANNED_RESULTS,
    normalize_shortcut, rank_canned, render_canned, validate_canned_text, validate_canned_title,
};
use crate::error::{Error, Result};
use crate::services::{ChatService, Principal};
use crate::store::{Database, DbError};

/// A canned response as an agent writes it.
#[derive(Debug, Clone)]
pub struct CannedInput {
    /// A leading `#` is dropped.
    pub shortcut: String,
    pub title: String,
    pub text: String,
    pub scope: CannedScope,
    /// Required for [`CannedScope::Group`], refused otherwise.
    pub group_id: Option<String>,
}

/// The use cases of canned responses.
pub struct CannedService {
    store: Arc<dyn Database>,
    /// Decides which chats an agent may render a response for.
    chats: Arc<ChatService>,
}

impl CannedService {
    /// The use cases over `store`, with `chats` deciding who sees which chat.
    pub fn new(store: Arc<dyn Database>, chats: Arc<ChatService>) -> Self {
        CannedService { store, chats }
    }

    /// The agent's responses of `list` that match `search`, best first, at most `first`
    /// (1 to 50).
    pub async fn search(
        &self,
        principal: &Principal,
        list: CannedList,
        search: Option<&str>,
        first: i32,
    ) -> Result<Vec<CannedResponse>> {
        if !(1..=MAX_CANNED_RESULTS).contains(&first) {
            return Err(Error::BadUserInput(format!(
                "first must be 1 to {MAX_CANNED_RESULTS}"
            )));
        }
        let search = CannedSearch::parse(search);
        let candidates = self
            .store
            .canned_responses(principal.organization_id(), search.shortcut_prefix())
            .await?;
        Ok(rank_canned(
            candidates,
            &principal.agent,
            list,
            &search,
            first as usize,
        ))
    }

    /// Adds a response: a personal one for any agent, a shared one for admins and owners.
    pub async fn create(
        &self,
        principal: &Principal,
        input: CannedInput,
    ) -> Result<CannedResponse> {
        let now = domain::now();
        let response = self
            .checked(
                principal,
                CannedResponse {
                    id: domain::new_id(),
                    organization_id: principal.organization_id().to_owned(),
                    shortcut: String::new(),
                    title: String::new(),
                    text: String::new(),
                    scope: input.scope,
                    group_id: None,
                    owner_id: None,
                    usage_count: 0,
                    created_at: now,
                    updated_at: now,
                },
                input,
            )
            .await?;
        self.store.insert_canned_response(&response).await?;
        Ok(response)
    }

    /// Replaces a response's shortcut, title, text and scope; its count stays.
    pub async fn update(
        &self,
        principal: &Principal,
        id: &str,
        input: CannedInput,
    ) -> Result<CannedResponse> {
        let existing = self.managed(principal, id).await?;
        let response = self
            .checked(
                principal,
                CannedResponse {
                    updated_at: domain::now(),
                    ..existing
                },
                input,
            )
            .await?;
        self.store
            .update_canned_response(&response)
            .await
            .map_err(not_found)?;
        Ok(response)
    }

    /// Deletes a response the agent manages.
    pub async fn delete(&self, principal: &Principal, id: &str) -> Result<bool> {
        let existing = self.managed(principal, id).await?;
        if self
            .store
            .delete_canned_response(&existing.organization_id, &existing.id)
            .await?
        {
            Ok(true)
        } else {
            Err(not_found(DbError::NotFound))
        }
    }

    /// The response's text with its placeholders filled for the chat's customer and the agent.
    pub async fn render(&self, principal: &Principal, id: &str, chat_id: &str) -> Result<String> {
        let response = self.usable(principal, id).await?;
        let chat = self.chats.visible_chat(principal, chat_id).await?;
        let customer = self
            .store
            .customer(principal.organization_id(), &chat.customer_id)
            .await?;
        let profile = self
            .store
            .customer_profile(principal.organization_id(), &chat.customer_id)
            .await?;
        Ok(render_canned(
            &response.text,
            &CannedValues {
                customer_first_name: profile.first_name,
                customer_name: customer.name,
                customer_email: customer.email,
                agent_name: principal.agent.name.clone(),
            },
        ))
    }

    /// A response the agent may use, or NOT_FOUND.
    pub async fn usable(&self, principal: &Principal, id: &str) -> Result<CannedResponse> {
        let response = self
            .store
            .canned_response(principal.organization_id(), id)
            .await
            .map_err(not_found)?;
        if response.visible_to(&principal.agent) {
            Ok(response)
        } else {
            Err(not_found(DbError::NotFound))
        }
    }

    /// Counts one message the agent sent from the response.
    pub async fn count_use(&self, principal: &Principal, response: &CannedResponse) -> Result<()> {
        Ok(self
            .store
            .count_canned_use(principal.organization_id(), &response.id)
            .await?)
    }

    /// A response the agent may change: NOT_FOUND when they cannot even see it (another
    /// agent's own), FORBIDDEN when they see it but its scope is not theirs to manage.
    async fn managed(&self, principal: &Principal, id: &str) -> Result<CannedResponse> {
        let response = self
            .store
            .canned_response(principal.organization_id(), id)
            .await
            .map_err(not_found)?;
        if response.managed_by(&principal.agent) {
            Ok(response)
        } else if response.visible_to(&principal.agent) {
            Err(Error::forbidden("manage shared canned responses"))
        } else {
            Err(not_found(DbError::NotFound))
        }
    }

    /// Validates `input` and writes it over `response`: the scope's rights, its group or
    /// owner, and the texts.
    async fn checked(
        &self,
        principal: &Principal,
        mut response: CannedResponse,
        input: CannedInput,
    ) -> Result<CannedResponse> {
        if input.scope != CannedScope::Personal {
            principal.require_admin("manage shared canned responses")?;
        }
        let (group_id, owner_id) = match (input.scope, input.group_id) {
            (CannedScope::Group, None) => {
                return Err(Error::BadUserInput(
                    "groupId is required for a GROUP canned response".into(),
                ));
            }
            (CannedScope::Group, Some(group_id)) => {
                let groups = self.store.groups(principal.organization_id()).await?;
                if !groups.iter().any(|group| group.id == group_id) {
                    return Err(Error::BadUserInput(
                        "groupId is not a group of your organization".into(),
                    ));
                }
                (Some(group_id), None)
            }
            (scope, Some(_)) => {
                return Err(Error::BadUserInput(format!(
                    "groupId is only for GROUP canned responses, not {}",
                    scope.as_str()
                )));
            }
            (CannedScope::Organization, None) => (None, None),
            // A personal response stays its owner's; a shared one made personal becomes the
            // editor's.
            (CannedScope::Personal, None) => (
                None,
                Some(
                    response
                        .owner_id
                        .take()
                        .unwrap_or_else(|| principal.agent.id.clone()),
                ),
            ),
        };
        response.shortcut = normalize_shortcut(&input.shortcut)?;
        response.title = validate_canned_title(&input.title)?;
        response.text = validate_canned_text(&input.text)?;
        response.scope = input.scope;
        response.group_id = group_id;
        response.owner_id = owner_id;
        Ok(response)
    }
}

fn not_found(err: DbError) -> Error {
    match err {
        DbError::NotFound => Error::NotFound("no such canned response".into()),
        other => other.into(),
    }
}
