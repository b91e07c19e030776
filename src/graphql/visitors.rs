//! Visitors on the site and greetings: the agents' live list of visitors (`visitorsOnSite`,
//! `visitorsChanged`), greetings (`sendGreeting`, `dismissGreeting`, and the customer's
//! `visitorEvents` that delivers them), and the admins' greeting rules.

use async_graphql::{
    Context, Enum, ID, InputObject, Interface, Object, SimpleObject, Subscription,
};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};

use crate::domain::{self, GreetingCounts, RuleConditions};
use crate::graphql::accounts::Group;
use crate::graphql::chats::{Chat, Customer, Page};
use crate::graphql::{ApiError, ApiResult, ContextExt, limits, loaders};
use crate::services::visitors::{self, GreetingRuleInput as RuleInput};

/// What a visitor on the site is doing.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::services::visitors::VisitorState")]
pub enum VisitorState {
    /// On the site, nothing more.
    Browsing,
    /// Sent a greeting they have neither answered nor dismissed.
    Invited,
    /// Their chat waits in the queue.
    Queued,
    /// Their chat is with an agent.
    Chatting,
}

/// A greeting, for the API.
pub struct Greeting(pub domain::Greeting);

/// A message sent to a visitor on the site before any chat, by an agent or by a greeting
/// rule in an agent's name. Answering it (`startChat` with its id) starts a chat with it as
/// the first message.
#[Object]
impl Greeting {
    /// Pass it to `startChat` as `greetingId` to answer, or to `dismissGreeting`.
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    /// As the visitor reads it, placeholders filled in.
    async fn text(&self) -> &str {
        &self.0.text
    }

    /// The name of the agent it is sent as.
    async fn agent_name(&self) -> Option<&str> {
        self.0.agent_name.as_deref()
    }

    /// The agent it is sent as: the chat it starts goes to them when they can take it.
    async fn agent_id(&self) -> Option<ID> {
        self.0.agent_id.clone().map(ID)
    }

    /// The greeting rule that sent it; null when an agent sent it.
    async fn rule_id(&self) -> Option<ID> {
        self.0.rule_id.clone().map(ID)
    }

    /// When it was sent.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When it first reached an open page of the visitor.
    async fn shown_at(&self) -> Option<DateTime<Utc>> {
        self.0.shown_at
    }

    /// When the visitor answered it by starting a chat.
    async fn answered_at(&self) -> Option<DateTime<Utc>> {
        self.0.answered_at
    }

    /// When the visitor closed it without answering.
    async fn dismissed_at(&self) -> Option<DateTime<Utc>> {
        self.0.dismissed_at
    }

    /// The chat answering it started.
    async fn chat_id(&self) -> Option<ID> {
        self.0.chat_id.clone().map(ID)
    }
}

/// A visitor on the site, for the API.
pub struct Visitor(pub visitors::Visitor);

/// A visitor on the site now: someone with a page open that runs the widget. Times on the
/// site and on the page are as of the read; `visitorsChanged` does not send an update for
/// time passing, so apps count on from `onSiteSince` and `pageSince`.
#[Object]
impl Visitor {
    /// Who they are: name, email, page history, and more.
    async fn customer(&self) -> Customer {
        Customer::on_site(self.0.customer.clone())
    }

    /// The page they are on.
    async fn current_page(&self) -> Option<Page> {
        let customer = &self.0.customer;
        customer.current_page_url.clone().map(|url| Page {
            url,
            title: customer.current_page_title.clone(),
            viewed_at: self.0.page_since,
        })
    }

    /// Since when they have been on the site (this stay, reloads included).
    async fn on_site_since(&self) -> DateTime<Utc> {
        self.0.on_site_since
    }

    /// Since when they have been on the current page.
    async fn page_since(&self) -> DateTime<Utc> {
        self.0.page_since
    }

    /// Seconds since `onSiteSince`, as of the read.
    async fn time_on_site_seconds(&self) -> i64 {
        (Utc::now() - self.0.on_site_since).num_seconds().max(0)
    }

    /// Seconds since `pageSince`, as of the read.
    async fn time_on_page_seconds(&self) -> i64 {
        (Utc::now() - self.0.page_since).num_seconds().max(0)
    }

    /// Visitor sessions they started, this one included.
    async fn visits(&self) -> i32 {
        self.0.customer.visits
    }

    /// Where they came from to the site.
    async fn referrer(&self) -> Option<&str> {
        self.0.customer.referrer.as_deref()
    }

    /// Where they are, when the widget says so.
    async fn location(&self) -> Option<&str> {
        self.0.customer.location.as_deref()
    }

    /// Browsing, invited by a greeting, queued or chatting.
    async fn state(&self) -> VisitorState {
        self.0.state().into()
    }

    /// Their open chat, when the agent may see it.
    async fn chat(&self, ctx: &Context<'_>) -> ApiResult<Option<Chat>> {
        let Some((chat_id, _)) = &self.0.chat else {
            return Ok(None);
        };
        let caller = ctx.caller()?;
        Ok(ctx
            .services()
            .chat_views
            .chat(&caller, chat_id)
            .await
            .ok()
            .map(Chat::loaded))
    }

    /// The latest greeting sent to them on this stay, answered, dismissed or waiting.
    async fn greeting(&self) -> Option<Greeting> {
        self.0.greeting.clone().map(Greeting)
    }
}

/// An update of the visitors on the site.
#[derive(SimpleObject)]
pub struct VisitorsChanged {
    /// Visitors who arrived or changed (everyone, in a snapshot).
    pub visitors: Vec<Visitor>,
    /// Customer ids of visitors who left the site.
    pub left: Vec<ID>,
    /// True for the first update: `visitors` is the whole list, replacing what the app had.
    pub snapshot: bool,
}

/// A greeting given to a visitor's page.
pub struct GreetingReceived {
    at: DateTime<Utc>,
    greeting: Greeting,
}

/// A greeting for the visitor to show: sent to them now, or still waiting for an answer when
/// the page opened.
#[Object]
impl GreetingReceived {
    /// When the page was given it.
    async fn at(&self) -> DateTime<Utc> {
        self.at
    }

    /// The greeting to show, as a message from its agent.
    async fn greeting(&self) -> &Greeting {
        &self.greeting
    }
}

/// What a visitor's open page hears.
#[derive(Interface)]
#[graphql(field(
    name = "at",
    ty = "DateTime<Utc>",
    desc = "When the page was given it."
))]
pub enum VisitorEvent {
    GreetingReceived(GreetingReceived),
}

/// A greeting rule with its counts, for the API.
pub struct GreetingRule {
    rule: domain::GreetingRule,
    counts: GreetingCounts,
}

/// An automatic greeting: sent to visitors on the site who meet every condition set, in the
/// name of the least-loaded agent of the group who can take a chat now, at most once per
/// visitor every `oncePerHours`.
#[Object]
impl GreetingRule {
    /// Pass it to `updateGreetingRule` or `deleteGreetingRule`.
    async fn id(&self) -> ID {
        ID(self.rule.id.clone())
    }

    /// What admins call the rule.
    async fn name(&self) -> &str {
        &self.rule.name
    }

    /// A disabled rule is kept but never fires.
    async fn enabled(&self) -> bool {
        self.rule.enabled
    }

    /// The greeting, with its placeholders: `{{visitor.name}}`, `{{page.title}}`,
    /// `{{agent.name}}`.
    async fn text(&self) -> &str {
        &self.rule.text
    }

    /// Whose agents send it, and the group a chat it starts is routed in; null: any.
    async fn group(&self, ctx: &Context<'_>) -> ApiResult<Option<Group>> {
        let Some(group_id) = &self.rule.group_id else {
            return Ok(None);
        };
        let groups = loaders::groups(
            ctx,
            &self.rule.organization_id,
            std::slice::from_ref(group_id),
        )
        .await?;
        Ok(groups.into_iter().next().map(Group))
    }

    /// The page URL contains this (ignoring case).
    async fn url_contains(&self) -> Option<&str> {
        self.rule.conditions.url_contains.as_deref()
    }

    /// The page URL matches this regular expression (Rust regex syntax).
    async fn url_pattern(&self) -> Option<&str> {
        self.rule.conditions.url_pattern.as_deref()
    }

    /// The visitor has been on the page at least this long.
    async fn min_seconds_on_page(&self) -> Option<i32> {
        self.rule.conditions.min_seconds_on_page
    }

    /// The visitor has made at least this many visits.
    async fn min_visits(&self) -> Option<i32> {
        self.rule.conditions.min_visits
    }

    /// The referrer contains this (ignoring case).
    async fn referrer_contains(&self) -> Option<&str> {
        self.rule.conditions.referrer_contains.as_deref()
    }

    /// The rule greets one visitor at most once in this many hours.
    async fn once_per_hours(&self) -> i32 {
        self.rule.once_per_hours
    }

    /// Its greetings that reached a visitor's page.
    async fn shown(&self) -> i64 {
        self.counts.shown
    }

    /// Its greetings visitors answered with a chat.
    async fn answered(&self) -> i64 {
        self.counts.answered
    }

    /// Its greetings visitors closed without answering.
    async fn dismissed(&self) -> i64 {
        self.counts.dismissed
    }

    /// When it was created: older rules are tried first.
    async fn created_at(&self) -> DateTime<Utc> {
        self.rule.created_at
    }
}

impl From<(domain::GreetingRule, GreetingCounts)> for GreetingRule {
    fn from((rule, counts): (domain::GreetingRule, GreetingCounts)) -> Self {
        GreetingRule { rule, counts }
    }
}

/// A greeting an agent sends to a visitor on the site.
#[derive(InputObject)]
pub struct SendGreetingInput {
    /// The visitor's customer id (a `Visitor`'s `customer { id }`).
    pub customer_id: ID,
    /// 1 to 1000 characters; may hold the placeholders rules do.
    pub text: String,
}

/// A greeting rule as an admin writes it. Every condition given must hold; none given: every
/// visitor on the site.
#[derive(InputObject)]
pub struct GreetingRuleInput {
    /// 1 to 100 characters.
    pub name: String,
    /// A disabled rule is kept but never fires.
    #[graphql(default = true)]
    pub enabled: bool,
    /// 1 to 1000 characters, with placeholders `{{visitor.name}}`, `{{page.title}}`,
    /// `{{agent.name}}`; one without a value is left out with the space before it.
    pub text: String,
    /// Whose agents send it, and where a chat it starts is routed; omitted: any agent.
    pub group_id: Option<ID>,
    /// The page URL contains this (ignoring case).
    pub url_contains: Option<String>,
    /// The page URL matches this regular expression (Rust regex syntax, at most 500
    /// characters).
    pub url_pattern: Option<String>,
    /// Seconds on the current page, 0 to 86400.
    pub min_seconds_on_page: Option<i32>,
    /// Visits, this one included, at least 1.
    pub min_visits: Option<i32>,
    /// The referrer contains this (ignoring case).
    pub referrer_contains: Option<String>,
    /// At most once per visitor in this many hours, 1 to 8760.
    #[graphql(default = 24)]
    pub once_per_hours: i32,
}

impl From<GreetingRuleInput> for RuleInput {
    fn from(input: GreetingRuleInput) -> Self {
        RuleInput {
            name: input.name,
            enabled: input.enabled,
            text: input.text,
            group_id: input.group_id.map(|id| id.0),
            conditions: RuleConditions {
                url_contains: input.url_contains,
                url_pattern: input.url_pattern,
                min_seconds_on_page: input.min_seconds_on_page,
                min_visits: input.min_visits,
                referrer_contains: input.referrer_contains,
            },
            once_per_hours: input.once_per_hours,
        }
    }
}

/// The visitors on the site and the greeting rules.
#[derive(Default)]
pub struct VisitorsQuery;

#[Object]
impl VisitorsQuery {
    /// The visitors on the site now, longest there first. Every agent, whatever their role
    /// or status.
    #[graphql(complexity = "limits::unbounded_list_cost(child_complexity)")]
    async fn visitors_on_site(&self, ctx: &Context<'_>) -> ApiResult<Vec<Visitor>> {
        let principal = ctx.principal()?;
        Ok(ctx
            .services()
            .visitors
            .visitors_on_site(principal)
            .into_iter()
            .map(Visitor)
            .collect())
    }

    /// The organization's greeting rules, oldest first (the order they are tried in), with
    /// their counts. Admins and owners.
    #[graphql(complexity = "limits::unbounded_list_cost(child_complexity)")]
    async fn greeting_rules(&self, ctx: &Context<'_>) -> ApiResult<Vec<GreetingRule>> {
        let principal = ctx.principal()?;
        Ok(ctx
            .services()
            .visitors
            .greeting_rules(principal)
            .await?
            .into_iter()
            .map(GreetingRule::from)
            .collect())
    }
}

/// Greetings and greeting rules.
#[derive(Default)]
pub struct VisitorsMutation;

#[Object]
impl VisitorsMutation {
    /// An agent greets a visitor on the site who is not chatting: the widget shows it at once.
    async fn send_greeting(
        &self,
        ctx: &Context<'_>,
        input: SendGreetingInput,
    ) -> ApiResult<Greeting> {
        let principal = ctx.principal()?;
        Ok(Greeting(
            ctx.services()
                .visitors
                .send_greeting(principal, &input.customer_id, &input.text)
                .await?,
        ))
    }

    /// The visitor closes a greeting without answering it.
    async fn dismiss_greeting(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Greeting> {
        let customer = ctx.customer()?;
        Ok(Greeting(
            ctx.services()
                .visitors
                .dismiss_greeting(customer, &id)
                .await?,
        ))
    }

    /// Adds a greeting rule. Admins and owners.
    async fn create_greeting_rule(
        &self,
        ctx: &Context<'_>,
        input: GreetingRuleInput,
    ) -> ApiResult<GreetingRule> {
        let principal = ctx.principal()?;
        Ok(ctx
            .services()
            .visitors
            .create_greeting_rule(principal, input.into())
            .await?
            .into())
    }

    /// Replaces a greeting rule's settings; its counts stay. Admins and owners.
    async fn update_greeting_rule(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: GreetingRuleInput,
    ) -> ApiResult<GreetingRule> {
        let principal = ctx.principal()?;
        Ok(ctx
            .services()
            .visitors
            .update_greeting_rule(principal, &id, input.into())
            .await?
            .into())
    }

    /// Deletes a greeting rule; the greetings it sent stay. False when there was none.
    /// Admins and owners.
    async fn delete_greeting_rule(&self, ctx: &Context<'_>, id: ID) -> ApiResult<bool> {
        let principal = ctx.principal()?;
        Ok(ctx
            .services()
            .visitors
            .delete_greeting_rule(principal, &id)
            .await?)
    }
}

/// The visitor's page and the agents' list of visitors, live.
#[derive(Default)]
pub struct VisitorsSubscription;

#[Subscription]
impl VisitorsSubscription {
    /// The widget's live connection, with a visitor token: while one is open the visitor is
    /// on the site. Gives the greetings to show, first any still waiting for an answer.
    async fn visitor_events(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = VisitorEvent>, ApiError> {
        let customer = ctx.customer()?.clone();
        let services = ctx.services();
        let greetings = Box::pin(visitors::visitor_events(
            services.visitors.clone(),
            customer,
        ))
        .await?;
        Ok(greetings
            .map(|greeting| {
                VisitorEvent::GreetingReceived(GreetingReceived {
                    at: Utc::now(),
                    greeting: Greeting(greeting),
                })
            })
            .boxed())
    }

    /// The visitors on the site for an agent (any role or status): first the whole list
    /// (`snapshot: true`), then who arrived, changed or left, at most once per
    /// `SWITCHBOARD_VISITORS_COALESCE`.
    #[allow(clippy::unused_async)] // async-graphql's subscription fields are async fns
    async fn visitors_changed(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = VisitorsChanged>, ApiError> {
        let principal = ctx.principal()?;
        let updates = visitors::visitors_changed(ctx.services().visitors.clone(), principal);
        Ok(updates
            .map(|update| VisitorsChanged {
                visitors: update.visitors.into_iter().map(Visitor).collect(),
                left: update.left.into_iter().map(ID).collect(),
                snapshot: update.snapshot,
            })
            .boxed())
    }
}
