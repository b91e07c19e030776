//! Bans, where a customer meets them: a banned visitor (or anyone from a banned address)
//! cannot start a chat or leave an offline message, and their own session's availability
//! says chats are unavailable. Bans are made in the archive service.

use std::net::IpAddr;

use super::ChatService;
use crate::domain::{self, Customer};
use crate::error::{Error, Result};
use crate::services::auth::CustomerPrincipal;

/// What a banned visitor is told. The reason stays with the agents.
const BANNED: &str = "chats with us are not available to you";

impl ChatService {
    /// BANNED when a ban is in force on the customer's visitor id, or on `address` (the
    /// request's) or, without one, the address the customer was last seen at.
    pub(crate) async fn refuse_banned(
        &self,
        customer: &Customer,
        address: Option<IpAddr>,
    ) -> Result<()> {
        let address = match address {
            Some(address) => Some(address.to_string()),
            None => customer.ip_address.clone(),
        };
        let ban = crate::services::archive::ban_in_force(
            &*self.store,
            customer,
            address.as_deref(),
            domain::now(),
        )
        .await?;
        match ban {
            Some(_) => Err(Error::Banned(BANNED.into())),
            None => Ok(()),
        }
    }

    /// Whether the visitor of this (verified) session is banned now, from `address`, by the
    /// organization of `widget_key` (another organization's ban says nothing here).
    pub async fn is_banned(
        &self,
        customer: &CustomerPrincipal,
        widget_key: &str,
        address: IpAddr,
    ) -> Result<bool> {
        match self.store.organization_by_widget_key(widget_key).await {
            Ok(org) if org.id == customer.organization_id => {}
            _ => return Ok(false),
        }
        let record = self
            .store
            .customer(&customer.organization_id, &customer.customer_id)
            .await?;
        Ok(self.refuse_banned(&record, Some(address)).await.is_err())
    }
}
