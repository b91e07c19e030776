//! The archive (`archive`: every chat the agent may see, filtered, searched, paged), the
//! customer profile (`customer`, `updateCustomer`) and bans (`banCustomer`, `unbanCustomer`).

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::domain::{self, MAX_ARCHIVE_PAGE, SearchQuery};
use crate::graphql::accounts::Agent;
use crate::graphql::chats::{Channel, Chat, ChatStatus, Customer, Rating};
use crate::graphql::{ApiResult, ContextExt, limits, loaders};
use crate::services::archive::{BanInput, CustomerRecord, CustomerUpdate};

/// What the archive lists; every field given narrows it.
#[derive(InputObject, Default)]
pub struct ArchiveFilter {
    pub status: Option<ChatStatus>,
    /// The chat's agent: its assignee now or before.
    pub agent_id: Option<ID>,
    pub group_id: Option<ID>,
    pub tag_id: Option<ID>,
    pub rating: Option<Rating>,
    pub channel: Option<Channel>,
    /// Chats started at or after.
    pub from: Option<DateTime<Utc>>,
    /// Chats started before.
    pub to: Option<DateTime<Utc>>,
    pub customer_id: Option<ID>,
    /// Full-text search over the transcript (messages and notes) and the customer's name and
    /// email. Words are ANDed; `"a phrase"`; `a OR b`; `-excluded`; `prefix*`. Case does not
    /// matter, accents do. A malformed search is BAD_USER_INPUT.
    pub search: Option<String>,
}

impl ArchiveFilter {
    /// The domain's filter, the search parsed.
    pub fn into_domain(self) -> Result<domain::ArchiveFilter, domain::ValidationError> {
        let search = match self.search.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(SearchQuery::parse(text)?),
        };
        Ok(domain::ArchiveFilter {
            status: self.status.map(Into::into),
            agent_id: self.agent_id.map(|id| id.0),
            group_id: self.group_id.map(|id| id.0),
            tag_id: self.tag_id.map(|id| id.0),
            rating: self.rating.map(Into::into),
            channel: self.channel.map(Into::into),
            from: self.from,
            to: self.to,
            customer_id: self.customer_id.map(|id| id.0),
            search,
        })
    }
}

/// A piece of a search snippet: plain text, highlighted where it matched. Render each part as
/// text (never as HTML), the highlighted ones marked.
#[derive(SimpleObject)]
pub struct SnippetPart {
    pub text: String,
    pub highlighted: bool,
}

/// A chat of the archive.
pub struct ArchiveItem(domain::ArchiveEntry);

#[Object]
impl ArchiveItem {
    async fn chat(&self) -> Chat {
        Chat::loaded(self.0.chat.clone())
    }

    /// Where the search matched: a piece of the transcript or of the customer's name and
    /// email. Null when not searched.
    async fn snippet(&self) -> Option<Vec<SnippetPart>> {
        self.0.snippet.as_ref().map(|parts| {
            parts
                .iter()
                .map(|p| SnippetPart {
                    text: p.text.clone(),
                    highlighted: p.highlighted,
                })
                .collect()
        })
    }
}

/// A page of the archive, newest first.
pub struct ArchivePage(domain::ArchivePage);

#[Object]
impl ArchivePage {
    async fn items(&self) -> Vec<ArchiveItem> {
        self.0.entries.iter().cloned().map(ArchiveItem).collect()
    }

    /// Pass as `after` for the next page; null on the last page.
    async fn end_cursor(&self) -> Option<String> {
        self.0.next.as_ref().map(domain::ArchiveCursor::encode)
    }

    async fn has_next_page(&self) -> bool {
        self.0.next.is_some()
    }
}

/// A key and value an agent records about a customer.
#[derive(SimpleObject, InputObject, Clone)]
#[graphql(input_name = "CustomFieldInput")]
pub struct CustomField {
    /// 1 to 40 characters, unique per customer (whatever the case).
    pub key: String,
    /// At most 500 characters.
    pub value: String,
}

/// A ban on a customer.
pub struct CustomerBan(domain::CustomerBan);

#[Object]
impl CustomerBan {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    async fn reason(&self) -> &str {
        &self.0.reason
    }

    /// The address banned with the visitor, if any.
    async fn ip_address(&self) -> Option<&str> {
        self.0.ip_address.as_deref()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// Null: until lifted.
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }

    async fn lifted_at(&self) -> Option<DateTime<Utc>> {
        self.0.lifted_at
    }

    /// Whether it applies now (not lifted, not expired).
    async fn active(&self) -> bool {
        self.0.in_force(domain::now())
    }

    async fn created_by(&self, ctx: &Context<'_>) -> ApiResult<Agent> {
        Ok(Agent(
            loaders::agent(ctx, &self.0.organization_id, &self.0.created_by).await?,
        ))
    }
}

/// A customer as agents see them: what the widget told, what agents added, their chats and
/// their bans.
pub struct CustomerProfile(CustomerRecord);

#[Object]
impl CustomerProfile {
    async fn id(&self) -> ID {
        ID(self.0.customer.id.clone())
    }

    /// Their visits, pages and what the widget knows.
    async fn customer(&self) -> Customer {
        Customer::on_site(self.0.customer.clone())
    }

    async fn name(&self) -> Option<&str> {
        self.0.customer.name.as_deref()
    }

    /// As an agent set it, or the first word of the name.
    async fn first_name(&self) -> Option<String> {
        self.0
            .profile
            .first_name
            .clone()
            .or_else(|| domain::first_name(self.0.customer.name.as_deref()))
    }

    async fn email(&self) -> Option<&str> {
        self.0.customer.email.as_deref()
    }

    async fn phone(&self) -> Option<&str> {
        self.0.profile.phone.as_deref()
    }

    /// The agents' note about the customer.
    async fn note(&self) -> Option<&str> {
        self.0.profile.note.as_deref()
    }

    async fn custom_fields(&self) -> Vec<CustomField> {
        self.0
            .profile
            .custom_fields
            .iter()
            .map(|f| CustomField {
                key: f.key.clone(),
                value: f.value.clone(),
            })
            .collect()
    }

    /// How many visitor sessions they started.
    async fn visits(&self) -> i32 {
        self.0.customer.visits
    }

    /// When an agent last changed the profile.
    async fn updated_at(&self) -> Option<DateTime<Utc>> {
        self.0.profile.updated_at
    }

    /// Their chats the agent may see, newest first: the archive for this customer.
    #[graphql(complexity = "limits::paged_list_cost(first, MAX_ARCHIVE_PAGE, child_complexity)")]
    async fn chats(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
    ) -> ApiResult<ArchivePage> {
        let principal = ctx.principal()?;
        let filter = domain::ArchiveFilter {
            customer_id: Some(self.0.customer.id.clone()),
            ..Default::default()
        };
        Ok(ArchivePage(
            ctx.services()
                .archive
                .archive(principal, &filter, first, after.as_deref())
                .await?,
        ))
    }

    /// The ban in force, if any.
    async fn ban(&self, ctx: &Context<'_>) -> ApiResult<Option<CustomerBan>> {
        let principal = ctx.principal()?;
        let now = domain::now();
        Ok(ctx
            .services()
            .archive
            .bans(principal, &self.0.customer.id)
            .await?
            .into_iter()
            .find(|b| b.in_force(now))
            .map(CustomerBan))
    }

    /// Every ban, newest first, lifted and expired ones too.
    #[graphql(complexity = "limits::unbounded_list_cost(child_complexity)")]
    async fn bans(&self, ctx: &Context<'_>) -> ApiResult<Vec<CustomerBan>> {
        let principal = ctx.principal()?;
        Ok(ctx
            .services()
            .archive
            .bans(principal, &self.0.customer.id)
            .await?
            .into_iter()
            .map(CustomerBan)
            .collect())
    }
}

/// A change to a customer: omitted fields stay, an empty text clears one.
#[derive(InputObject, Default)]
pub struct UpdateCustomerInput {
    /// At most 100 characters; also sets firstName to its first word unless firstName is
    /// given too.
    pub name: Option<String>,
    /// At most 100 characters.
    pub first_name: Option<String>,
    pub email: Option<String>,
    /// Digits with + - ( ) . and spaces, at most 40 characters.
    pub phone: Option<String>,
    /// At most 2000 characters.
    pub note: Option<String>,
    /// Replaces them all: at most 20.
    pub custom_fields: Option<Vec<CustomField>>,
}

/// A ban as an agent asks for it.
#[derive(InputObject)]
pub struct BanCustomerInput {
    /// 1 to 500 characters; agents see it, the customer does not.
    pub reason: String,
    /// 60 seconds to ten years; omitted: until lifted.
    pub duration_seconds: Option<i64>,
    /// Also ban the address the customer was last seen at (anyone from it).
    #[graphql(default = false)]
    pub include_address: bool,
}

/// Reading the archive and customers.
#[derive(Default)]
pub struct ArchiveQuery;

#[Object]
impl ArchiveQuery {
    /// Every chat the agent may see, open or closed, newest first: their own (now or
    /// before, or joined), for supervisors their groups' chats, for admins and owners all.
    /// `first` 1–50; `after` is a page's endCursor.
    #[graphql(complexity = "limits::paged_list_cost(first, MAX_ARCHIVE_PAGE, child_complexity)")]
    async fn archive(
        &self,
        ctx: &Context<'_>,
        filter: Option<ArchiveFilter>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
    ) -> ApiResult<ArchivePage> {
        let principal = ctx.principal()?;
        let filter = filter
            .unwrap_or_default()
            .into_domain()
            .map_err(crate::error::Error::from)?;
        Ok(ArchivePage(
            ctx.services()
                .archive
                .archive(principal, &filter, first, after.as_deref())
                .await?,
        ))
    }

    /// A customer of the organization, with their profile, chats and bans.
    async fn customer(&self, ctx: &Context<'_>, id: ID) -> ApiResult<CustomerProfile> {
        let principal = ctx.principal()?;
        Ok(CustomerProfile(
            ctx.services().archive.customer(principal, &id).await?,
        ))
    }
}

/// Editing customers and banning them.
#[derive(Default)]
pub struct ArchiveMutation;

#[Object]
impl ArchiveMutation {
    /// Changes a customer's name, first name, email, phone, note or custom fields: any agent
    /// of the organization.
    async fn update_customer(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateCustomerInput,
    ) -> ApiResult<CustomerProfile> {
        let principal = ctx.principal()?;
        let update = CustomerUpdate {
            name: input.name,
            first_name: input.first_name,
            email: input.email,
            phone: input.phone,
            note: input.note,
            custom_fields: input.custom_fields.map(|fields| {
                fields
                    .into_iter()
                    .map(|f| domain::CustomField {
                        key: f.key,
                        value: f.value,
                    })
                    .collect()
            }),
        };
        Ok(CustomerProfile(
            ctx.services()
                .archive
                .update_customer(principal, &id, update)
                .await?,
        ))
    }

    /// Bans a customer (supervisors, admins, owners): their visitor, and with includeAddress
    /// their last address, cannot start chats or leave offline messages (error BANNED) until
    /// it expires or is lifted. Replaces a ban in force.
    async fn ban_customer(
        &self,
        ctx: &Context<'_>,
        customer_id: ID,
        input: BanCustomerInput,
    ) -> ApiResult<CustomerBan> {
        let principal = ctx.principal()?;
        Ok(CustomerBan(
            ctx.services()
                .archive
                .ban(
                    principal,
                    &customer_id,
                    BanInput {
                        reason: input.reason,
                        duration_seconds: input.duration_seconds,
                        include_address: input.include_address,
                    },
                )
                .await?,
        ))
    }

    /// Lifts the customer's ban (supervisors, admins, owners); false when none was in force.
    async fn unban_customer(&self, ctx: &Context<'_>, customer_id: ID) -> ApiResult<bool> {
        let principal = ctx.principal()?;
        Ok(ctx
            .services()
            .archive
            .unban(principal, &customer_id)
            .await?)
    }
}
