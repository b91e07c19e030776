//! Canned responses: the agent's `#shortcut` suggestions (`cannedResponses`), a response
//! filled in for a chat (`renderCannedResponse`), and managing them. Sending one is
//! `sendMessage` with its `cannedResponseId`, in the chats module.

use async_graphql::{Context, Enum, ID, InputObject, Object};
use chrono::{DateTime, Utc};

use crate::domain::{self, CannedList, MAX_CANNED_RESULTS};
use crate::graphql::accounts::{Agent, Group};
use crate::graphql::{ApiResult, ContextExt, limits, loaders};
use crate::services::canned::CannedInput;

/// Who a canned response is for.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::CannedScope")]
pub enum CannedResponseScope {
    /// Every agent of the organization; admins and owners manage it.
    Organization,
    /// The agents of one group; admins and owners manage it.
    Group,
    /// Its owner alone, who manages it.
    Personal,
}

/// A canned response, for the API.
pub struct CannedResponse(pub domain::CannedResponse);

/// A text agents insert by typing its `#shortcut`: the organization's, a group's, or an
/// agent's own.
#[Object]
impl CannedResponse {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    /// Without the `#`: 1 to 32 of a-z 0-9 _ -, lower case.
    async fn shortcut(&self) -> &str {
        &self.0.shortcut
    }

    async fn title(&self) -> &str {
        &self.0.title
    }

    /// As written, with its placeholders; `renderCannedResponse` fills them for a chat.
    async fn text(&self) -> &str {
        &self.0.text
    }

    async fn scope(&self) -> CannedResponseScope {
        self.0.scope.into()
    }

    /// The group whose agents use it, for GROUP.
    async fn group(&self, ctx: &Context<'_>) -> ApiResult<Option<Group>> {
        let Some(group_id) = &self.0.group_id else {
            return Ok(None);
        };
        let groups =
            loaders::groups(ctx, &self.0.organization_id, std::slice::from_ref(group_id)).await?;
        Ok(groups.into_iter().next().map(Group))
    }

    /// The agent whose own it is, for PERSONAL.
    async fn owner(&self, ctx: &Context<'_>) -> ApiResult<Option<Agent>> {
        let Some(owner_id) = &self.0.owner_id else {
            return Ok(None);
        };
        Ok(Some(Agent(
            loaders::agent(ctx, &self.0.organization_id, owner_id).await?,
        )))
    }

    /// Messages sent from it.
    async fn usage_count(&self) -> i32 {
        i32::try_from(self.0.usage_count).unwrap_or(i32::MAX)
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// A canned response as an agent writes it.
#[derive(InputObject)]
pub struct CannedResponseInput {
    /// 1 to 32 of a-z 0-9 _ - (upper case is lowered); a leading `#` is dropped.
    pub shortcut: String,
    /// 1 to 100 characters.
    pub title: String,
    /// 1 to 4000 characters, with placeholders `{{customer.first_name}}`,
    /// `{{customer.name}}`, `{{customer.email}}`, `{{agent.name}}`, `{{agent.first_name}}`.
    pub text: String,
    /// ORGANIZATION and GROUP: admins and owners only.
    #[graphql(default_with = "CannedResponseScope::Personal")]
    pub scope: CannedResponseScope,
    /// Required for GROUP, refused otherwise.
    pub group_id: Option<ID>,
}

impl From<CannedResponseInput> for CannedInput {
    fn from(input: CannedResponseInput) -> Self {
        CannedInput {
            shortcut: input.shortcut,
            title: input.title,
            text: input.text,
            scope: input.scope.into(),
            group_id: input.group_id.map(|id| id.0),
        }
    }
}

/// Finding and filling in canned responses.
#[derive(Default)]
pub struct CannedQuery;

#[Object]
impl CannedQuery {
    /// The responses the signed-in agent may use: the organization's, their groups', their
    /// own. With `manageable`, those they may change instead: every shared one for admins and
    /// owners (a group's too, when they are not in it), and their own.
    /// `search`: "#ship" or "ship" matches shortcuts by prefix; other words match title
    /// and text. Ranked: exact shortcut, shortcut prefix, title, text; then personal before
    /// shared, then usageCount desc, then shortcut. `first` 1–50.
    #[graphql(complexity = "limits::paged_list_cost(first, MAX_CANNED_RESULTS, child_complexity)")]
    async fn canned_responses(
        &self,
        ctx: &Context<'_>,
        search: Option<String>,
        #[graphql(default = 20)] first: i32,
        #[graphql(default = false)] manageable: bool,
    ) -> ApiResult<Vec<CannedResponse>> {
        let principal = ctx.principal()?;
        let list = if manageable {
            CannedList::Manageable
        } else {
            CannedList::Usable
        };
        Ok(ctx
            .services()
            .canned
            .search(principal, list, search.as_deref(), first)
            .await?
            .into_iter()
            .map(CannedResponse)
            .collect())
    }

    /// The text with placeholders filled for that chat (the app shows it before sending).
    async fn render_canned_response(
        &self,
        ctx: &Context<'_>,
        id: ID,
        chat_id: ID,
    ) -> ApiResult<String> {
        let principal = ctx.principal()?;
        Ok(ctx
            .services()
            .canned
            .render(principal, &id, &chat_id)
            .await?)
    }
}

/// Managing canned responses.
#[derive(Default)]
pub struct CannedMutation;

#[Object]
impl CannedMutation {
    /// Adds a canned response: PERSONAL for anyone, shared for admins and owners. A shortcut
    /// already used for the same people is a CONFLICT.
    async fn create_canned_response(
        &self,
        ctx: &Context<'_>,
        input: CannedResponseInput,
    ) -> ApiResult<CannedResponse> {
        let principal = ctx.principal()?;
        Ok(CannedResponse(
            ctx.services()
                .canned
                .create(principal, input.into())
                .await?,
        ))
    }

    /// Replaces a canned response's fields; its usage count stays. Agents change their own,
    /// admins and owners the shared ones.
    async fn update_canned_response(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: CannedResponseInput,
    ) -> ApiResult<CannedResponse> {
        let principal = ctx.principal()?;
        Ok(CannedResponse(
            ctx.services()
                .canned
                .update(principal, &id, input.into())
                .await?,
        ))
    }

    /// Deletes a canned response, with the same rights as changing it.
    async fn delete_canned_response(&self, ctx: &Context<'_>, id: ID) -> ApiResult<bool> {
        let principal = ctx.principal()?;
        Ok(ctx.services().canned.delete(principal, &id).await?)
    }
}
