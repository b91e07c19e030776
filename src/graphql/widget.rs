//! The chat widget's set-up: the public `widget` query pages draw it from, and the admins'
//! settings and identity secret.

use async_graphql::{Context, Enum, InputObject, MaybeUndefined, Object, SimpleObject};

use crate::domain;
use crate::graphql::accounts::Group;
use crate::graphql::{ApiResult, ContextExt};

/// Which corner of the page the chat button sits in.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "domain::WidgetPosition")]
pub enum WidgetPosition {
    Right,
    Left,
}

/// Whether the widget asks for a field before a chat starts.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "domain::FieldRequirement")]
pub enum FieldRequirement {
    /// Not asked.
    Hidden,
    /// Asked; the visitor may leave it empty.
    Optional,
    /// The chat starts only with it.
    Required,
}

/// How the widget looks and speaks: what pages read and admins set alike. Texts that are null
/// are the widget's own, in the visitor's language.
#[derive(SimpleObject)]
pub struct WidgetLook {
    /// The button's and the header's colour, `#rrggbb`.
    color: String,
    position: WidgetPosition,
    /// The chat window's title.
    title: Option<String>,
    /// The line above an empty chat.
    greeting: Option<String>,
    /// The line above the offline form.
    offline_text: Option<String>,
    pre_chat_name: FieldRequirement,
    pre_chat_email: FieldRequirement,
    /// The organization's language for the widget and its transcripts ("en" or "de"); a
    /// page's `data-locale` may ask for the other.
    locale: String,
}

impl From<domain::WidgetSettings> for WidgetLook {
    fn from(s: domain::WidgetSettings) -> Self {
        WidgetLook {
            color: s.color,
            position: s.position.into(),
            title: s.title,
            greeting: s.greeting,
            offline_text: s.offline_text,
            pre_chat_name: s.pre_chat_name.into(),
            pre_chat_email: s.pre_chat_email.into(),
            locale: s.locale,
        }
    }
}

/// What a page needs to draw the widget; texts that are null are the widget's own.
#[derive(SimpleObject)]
pub struct WidgetConfig {
    organization_name: String,
    #[graphql(flatten)]
    look: WidgetLook,
    /// The groups a page may send chats to (`data-group`).
    groups: Vec<Group>,
}

/// How the organization's widget looks and speaks, and where it may be embedded.
#[derive(SimpleObject)]
pub struct WidgetSettings {
    #[graphql(flatten)]
    look: WidgetLook,
    /// Origins (`https://shop.example`) whose pages may use the widget key; empty: any.
    /// Pages elsewhere get FORBIDDEN from `widget`, `availability` and
    /// `startVisitorSession`.
    allowed_origins: Vec<String>,
}

impl From<domain::WidgetSettings> for WidgetSettings {
    fn from(mut s: domain::WidgetSettings) -> Self {
        let allowed_origins = std::mem::take(&mut s.allowed_origins);
        WidgetSettings {
            look: s.into(),
            allowed_origins,
        }
    }
}

/// Omitted fields stay as they are; a null or empty text returns to the widget's own words.
#[derive(InputObject)]
pub struct UpdateWidgetSettingsInput {
    /// `#rrggbb`.
    color: Option<String>,
    position: Option<WidgetPosition>,
    /// At most 80 characters.
    title: MaybeUndefined<String>,
    /// At most 500 characters.
    greeting: MaybeUndefined<String>,
    /// At most 500 characters.
    offline_text: MaybeUndefined<String>,
    pre_chat_name: Option<FieldRequirement>,
    pre_chat_email: Option<FieldRequirement>,
    /// "en" or "de".
    locale: Option<String>,
    /// Replaces the list; at most 50 origins such as `https://shop.example`.
    allowed_origins: Option<Vec<String>>,
}

fn text_change(value: MaybeUndefined<String>) -> Option<Option<String>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(text) => Some(Some(text)),
    }
}

/// The widget's public set-up.
#[derive(Default)]
pub struct WidgetQuery;

#[Object]
impl WidgetQuery {
    /// How the widget of `widgetKey` looks and speaks, and its groups. Public; FORBIDDEN on
    /// a page the organization does not allow.
    async fn widget(&self, ctx: &Context<'_>, widget_key: String) -> ApiResult<WidgetConfig> {
        let config = ctx
            .services()
            .widget
            .config(&widget_key, ctx.origin())
            .await?;
        Ok(WidgetConfig {
            organization_name: config.organization.name,
            look: config.settings.into(),
            groups: config.groups.into_iter().map(Group).collect(),
        })
    }

    /// The organization's widget settings, for any of its agents.
    async fn widget_settings(&self, ctx: &Context<'_>) -> ApiResult<WidgetSettings> {
        let principal = ctx.principal()?;
        Ok(ctx.services().widget.settings(principal).await?.into())
    }

    /// The secret the shop's server signs its customers' ids with (see
    /// `StartVisitorSessionInput.identity`); made on first read. Admins and owners only.
    async fn identity_secret(&self, ctx: &Context<'_>) -> ApiResult<String> {
        let principal = ctx.principal()?;
        Ok(ctx
            .services()
            .widget
            .identity_secret(principal, false)
            .await?)
    }
}

/// The admins' widget settings.
#[derive(Default)]
pub struct WidgetMutation;

#[Object]
impl WidgetMutation {
    /// Changes how the widget looks and speaks, and where it may be embedded; pages pick it
    /// up on their next load. Admins and owners only.
    async fn update_widget_settings(
        &self,
        ctx: &Context<'_>,
        input: UpdateWidgetSettingsInput,
    ) -> ApiResult<WidgetSettings> {
        let principal = ctx.principal()?;
        let update = domain::WidgetSettingsUpdate {
            color: input.color,
            position: input.position.map(Into::into),
            title: text_change(input.title),
            greeting: text_change(input.greeting),
            offline_text: text_change(input.offline_text),
            pre_chat_name: input.pre_chat_name.map(Into::into),
            pre_chat_email: input.pre_chat_email.map(Into::into),
            locale: input.locale,
            allowed_origins: input.allowed_origins,
        };
        Ok(ctx
            .services()
            .widget
            .update(principal, update)
            .await?
            .into())
    }

    /// Replaces the identity secret; identities signed with the old one are refused from
    /// now on. Admins and owners only.
    async fn rotate_identity_secret(&self, ctx: &Context<'_>) -> ApiResult<String> {
        let principal = ctx.principal()?;
        Ok(ctx
            .services()
            .widget
            .identity_secret(principal, true)
            .await?)
    }
}
