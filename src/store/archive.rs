//! The archive, customer profiles and bans: the [`ArchiveStore`] trait.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::DbResult;
use crate::domain::{
    ArchiveCursor, ArchiveEntry, ArchiveFilter, ArchiveScope, Customer, CustomerBan,
    CustomerProfile,
};

/// A customer's name, email and profile as an agent saves them.
#[derive(Debug, Clone)]
pub struct CustomerChange {
    pub name: Option<String>,
    pub email: Option<String>,
    pub profile: CustomerProfile,
    pub updated_by: String,
    pub updated_at: DateTime<Utc>,
}

/// The archive of chats, what agents add to customers, and bans. Every method narrows by
/// organization.
#[async_trait]
pub trait ArchiveStore: Send + Sync {
    /// At most `limit` chats of `scope` matching `filter`, newest first (by start, then id),
    /// after `after`; with a search, each with its snippet.
    async fn archive(
        &self,
        organization_id: &str,
        scope: &ArchiveScope,
        filter: &ArchiveFilter,
        after: Option<&ArchiveCursor>,
        limit: i64,
    ) -> DbResult<Vec<ArchiveEntry>>;
    /// What agents added to the customer; the default when nothing yet.
    async fn customer_profile(
        &self,
        organization_id: &str,
        customer_id: &str,
    ) -> DbResult<CustomerProfile>;
    /// Saves the customer's name and email and their profile, in one transaction;
    /// [`super::DbError::NotFound`] when there is no such customer.
    async fn update_customer(
        &self,
        organization_id: &str,
        customer_id: &str,
        change: &CustomerChange,
    ) -> DbResult<Customer>;
    async fn insert_ban(&self, ban: &CustomerBan) -> DbResult<()>;
    /// Lifts the customer's bans in force; how many.
    async fn lift_bans(
        &self,
        organization_id: &str,
        customer_id: &str,
        lifted_by: &str,
        at: DateTime<Utc>,
    ) -> DbResult<u64>;
    /// The customer's bans, newest first.
    async fn customer_bans(
        &self,
        organization_id: &str,
        customer_id: &str,
    ) -> DbResult<Vec<CustomerBan>>;
    /// A ban in force at `now` on the visitor or on the address, if any.
    async fn ban_in_force(
        &self,
        organization_id: &str,
        visitor_id: &str,
        ip_address: Option<&str>,
        now: DateTime<Utc>,
    ) -> DbResult<Option<CustomerBan>>;
}
