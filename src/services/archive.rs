//! The archive (every chat an agent may see, filtered and searched), customer profiles
//! (previous chats, fields agents edit) and bans.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::domain::{
    self, ArchiveCursor, ArchiveFilter, ArchivePage, CustomField, Customer, CustomerBan,
    CustomerProfile, MAX_ARCHIVE_PAGE, MAX_BAN_REASON_CHARS, MAX_CUSTOMER_NOTE_CHARS,
    MAX_PHONE_CHARS, archive_scope, may_ban, optional_field, validate_custom_fields,
};
use crate::error::{Error, Result};
use crate::services::Principal;
use crate::store::{CustomerChange, Database, DbError};

/// Shortest ban, in seconds.
pub const MIN_BAN_SECONDS: i64 = 60;
/// Longest ban with an end, in seconds (ten years); longer is "until lifted".
pub const MAX_BAN_SECONDS: i64 = 10 * 365 * 24 * 3600;

/// A change to a customer; `None` leaves a field as it is, an empty text clears it.
#[derive(Debug, Clone, Default)]
pub struct CustomerUpdate {
    /// Also sets the first name to its first word, unless `first_name` is given too.
    pub name: Option<String>,
    pub first_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub note: Option<String>,
    /// Replaces every custom field.
    pub custom_fields: Option<Vec<CustomField>>,
}

/// A ban as an agent asks for it.
#[derive(Debug, Clone)]
pub struct BanInput {
    pub reason: String,
    /// `None`: until lifted.
    pub duration_seconds: Option<i64>,
    /// Also bans the address the customer was last seen at.
    pub include_address: bool,
}

/// A customer with what agents added to them.
#[derive(Debug, Clone)]
pub struct CustomerRecord {
    pub customer: Customer,
    pub profile: CustomerProfile,
}

/// The archive's, profiles' and bans' use cases.
pub struct ArchiveService {
    store: Arc<dyn Database>,
}

impl ArchiveService {
    pub fn new(store: Arc<dyn Database>) -> Self {
        ArchiveService { store }
    }

    /// A page of the chats the agent may see that match `filter`, newest first, `first`
    /// (1 to 50) after the cursor `after`.
    pub async fn archive(
        &self,
        principal: &Principal,
        filter: &ArchiveFilter,
        first: i32,
        after: Option<&str>,
    ) -> Result<ArchivePage> {
        if !(1..=MAX_ARCHIVE_PAGE).contains(&first) {
            return Err(Error::BadUserInput(format!(
                "first must be 1 to {MAX_ARCHIVE_PAGE}"
            )));
        }
        let after = after.map(ArchiveCursor::decode).transpose()?;
        if let (Some(from), Some(to)) = (filter.from, filter.to)
            && from >= to
        {
            return Err(Error::BadUserInput("from must be before to".into()));
        }
        // Plain agents read their groups' chats when the organization lets them (teammates'
        // chats, read only): the same rule as `domain::can_read_teammates_chat`.
        let agents_see_group_chats = principal.role() < domain::Role::Supervisor
            && self
                .store
                .organization(principal.organization_id())
                .await?
                .settings
                .agents_see_group_chats;
        let scope = archive_scope(&principal.agent, agents_see_group_chats);
        let mut entries = self
            .store
            .archive(
                principal.organization_id(),
                &scope,
                filter,
                after.as_ref(),
                i64::from(first) + 1,
            )
            .await?;
        let next = if entries.len() > first as usize {
            entries.truncate(first as usize);
            entries.last().map(|e| ArchiveCursor {
                created_at_ms: e.chat.created_at.timestamp_millis(),
                chat_id: e.chat.id.clone(),
            })
        } else {
            None
        };
        Ok(ArchivePage { entries, next })
    }

    /// A customer of the agent's organization with their profile; NOT_FOUND otherwise.
    pub async fn customer(
        &self,
        principal: &Principal,
        customer_id: &str,
    ) -> Result<CustomerRecord> {
        let organization_id = principal.organization_id();
        let customer = self
            .store
            .customer(organization_id, customer_id)
            .await
            .map_err(customer_not_found)?;
        let profile = self
            .store
            .customer_profile(organization_id, customer_id)
            .await?;
        Ok(CustomerRecord { customer, profile })
    }

    /// The customer's first name: as an agent set it, or the first word of their name.
    pub async fn first_name(&self, customer: &Customer) -> Result<Option<String>> {
        let profile = self
            .store
            .customer_profile(&customer.organization_id, &customer.id)
            .await?;
        Ok(profile
            .first_name
            .or_else(|| domain::first_name(customer.name.as_deref())))
    }

    /// Changes a customer's name, email, first name, phone, note or custom fields.
    pub async fn update_customer(
        &self,
        principal: &Principal,
        customer_id: &str,
        update: CustomerUpdate,
    ) -> Result<CustomerRecord> {
        let CustomerRecord {
            customer,
            mut profile,
        } = self.customer(principal, customer_id).await?;
        let mut name = customer.name.clone();
        let mut email = customer.email.clone();
        if let Some(new_name) = update.name {
            let trimmed = new_name.trim();
            name = if trimmed.is_empty() {
                None
            } else {
                Some(domain::validate_name("name", trimmed, 100)?)
            };
            profile.first_name = domain::first_name(name.as_deref());
        }
        if let Some(first_name) = update.first_name {
            profile.first_name = optional_field("first name", Some(first_name), 100)?;
        }
        if let Some(new_email) = update.email {
            email = if new_email.trim().is_empty() {
                None
            } else {
                Some(domain::normalize_email(&new_email)?)
            };
        }
        if let Some(phone) = update.phone {
            let phone = optional_field("phone", Some(phone), MAX_PHONE_CHARS)?;
            if let Some(phone) = &phone
                && (!phone
                    .chars()
                    .all(|c| c.is_ascii_digit() || " +-().".contains(c))
                    || !phone.chars().any(|c| c.is_ascii_digit()))
            {
                return Err(Error::BadUserInput(
                    "a phone number has digits and only + - ( ) . and spaces besides".into(),
                ));
            }
            profile.phone = phone;
        }
        if let Some(note) = update.note {
            profile.note = optional_field("the note", Some(note), MAX_CUSTOMER_NOTE_CHARS)?;
        }
        if let Some(fields) = update.custom_fields {
            profile.custom_fields = validate_custom_fields(fields)?;
        }
        let now = domain::now();
        profile.updated_at = Some(now);
        let customer = self
            .store
            .update_customer(
                principal.organization_id(),
                customer_id,
                &CustomerChange {
                    name,
                    email,
                    profile: profile.clone(),
                    updated_by: principal.agent.id.clone(),
                    updated_at: now,
                },
            )
            .await
            .map_err(customer_not_found)?;
        let data = serde_json::json!({
            "customer": domain::customer_json(&customer),
            "updatedBy": principal.agent.id,
        });
        crate::services::webhooks::queue_event(
            &*self.store,
            principal.organization_id(),
            domain::WebhookEvent::CustomerUpdated,
            None,
            data,
        )
        .await?;
        Ok(CustomerRecord { customer, profile })
    }

    /// The customer's bans, newest first (in force or not).
    pub async fn bans(&self, principal: &Principal, customer_id: &str) -> Result<Vec<CustomerBan>> {
        Ok(self
            .store
            .customer_bans(principal.organization_id(), customer_id)
            .await?)
    }

    /// Bans a customer: supervisors, admins and owners. A ban in force is replaced.
    pub async fn ban(
        &self,
        principal: &Principal,
        customer_id: &str,
        input: BanInput,
    ) -> Result<CustomerBan> {
        if !may_ban(&principal.agent) {
            return Err(Error::forbidden("ban customers"));
        }
        let CustomerRecord { customer, .. } = self.customer(principal, customer_id).await?;
        let reason = input.reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_BAN_REASON_CHARS {
            return Err(Error::BadUserInput(format!(
                "a ban's reason is 1 to {MAX_BAN_REASON_CHARS} characters"
            )));
        }
        if let Some(seconds) = input.duration_seconds
            && !(MIN_BAN_SECONDS..=MAX_BAN_SECONDS).contains(&seconds)
        {
            return Err(Error::BadUserInput(format!(
                "a ban lasts {MIN_BAN_SECONDS} seconds to ten years; leave the duration out \
                 to ban until lifted"
            )));
        }
        let ip_address = if input.include_address {
            Some(customer.ip_address.clone().ok_or_else(|| {
                Error::BadUserInput(
                    "the customer's address is not known: ban the visitor alone".into(),
                )
            })?)
        } else {
            None
        };
        let now = domain::now();
        self.store
            .lift_bans(
                principal.organization_id(),
                customer_id,
                &principal.agent.id,
                now,
            )
            .await?;
        let ban = CustomerBan {
            id: domain::new_id(),
            organization_id: principal.organization_id().to_owned(),
            customer_id: customer.id.clone(),
            visitor_id: customer.visitor_id.clone(),
            ip_address,
            reason: reason.to_owned(),
            created_by: principal.agent.id.clone(),
            created_at: now,
            expires_at: input.duration_seconds.map(|s| now + Duration::seconds(s)),
            lifted_at: None,
            lifted_by: None,
        };
        self.store.insert_ban(&ban).await?;
        Ok(ban)
    }

    /// Lifts the customer's bans in force; false when there was none.
    pub async fn unban(&self, principal: &Principal, customer_id: &str) -> Result<bool> {
        if !may_ban(&principal.agent) {
            return Err(Error::forbidden("lift bans"));
        }
        self.customer(principal, customer_id).await?;
        let lifted = self
            .store
            .lift_bans(
                principal.organization_id(),
                customer_id,
                &principal.agent.id,
                domain::now(),
            )
            .await?;
        Ok(lifted > 0)
    }
}

/// The ban in force on `customer` (by visitor id, or by `address`), if any.
pub async fn ban_in_force(
    store: &dyn Database,
    customer: &Customer,
    address: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<CustomerBan>> {
    Ok(store
        .ban_in_force(
            &customer.organization_id,
            &customer.visitor_id,
            address,
            now,
        )
        .await?)
}

fn customer_not_found(err: DbError) -> Error {
    match err {
        DbError::NotFound => Error::NotFound("no such customer".into()),
        other => other.into(),
    }
}
