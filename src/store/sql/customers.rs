//! Customers (the widget's visitors) and the pages they view.

use chrono::{DateTime, Utc};

use super::rows::customer_from;
use super::{Conn, all, execute, one, optional};
use crate::domain::{Customer, PageView};
use crate::store::{CustomerVisit, DbError, DbResult, RecordedVisit, from_millis, to_millis};

/// A customer of the organization: every customer message reads it.
pub(super) async fn customer(
    conn: &mut dyn Conn,
    organization_id: &str,
    customer_id: &str,
) -> DbResult<Customer> {
    one(
        conn,
        concat!(
            "SELECT ",
            customer_columns!(),
            " FROM customers WHERE id = $1 AND organization_id = $2"
        ),
        params![customer_id, organization_id],
        customer_from,
    )
    .await
}

/// Creates the customer, or updates the returning one whose secret the visit presents; a
/// visit with someone else's visitor id gets a customer of its own.
pub(super) async fn record_visit(
    conn: &mut dyn Conn,
    visit: &CustomerVisit,
    new_id: &str,
) -> DbResult<RecordedVisit> {
    let identified = match &visit.external_id {
        Some(external_id) => identified_visit(conn, visit, external_id).await?,
        None => None,
    };
    let recorded = match identified {
        Some(recorded) => recorded,
        None => {
            let mut recorded = match upsert_customer(conn, visit, &visit.visitor_id, new_id).await?
            {
                Some(recorded) => recorded,
                // Someone else's visitor id: a customer of their own, under an id of their own.
                None => upsert_customer(
                    conn,
                    visit,
                    &crate::domain::new_id(),
                    &crate::domain::new_id(),
                )
                .await?
                .ok_or(DbError::NotFound)?,
            };
            if let Some(external_id) = &visit.external_id {
                if recorded.customer.external_id.is_some() {
                    // The browser was someone else's identity: this one starts afresh.
                    recorded = upsert_customer(
                        conn,
                        visit,
                        &crate::domain::new_id(),
                        &crate::domain::new_id(),
                    )
                    .await?
                    .ok_or(DbError::NotFound)?;
                }
                // The first proof of this identity: the visitor becomes that customer.
                execute(
                    conn,
                    "UPDATE customers SET external_id = $1 WHERE id = $2",
                    params![external_id, &recorded.customer.id],
                )
                .await?;
                recorded.customer.external_id = Some(external_id.clone());
            }
            recorded
        }
    };
    if let Some(url) = &visit.page_url {
        insert_page_view(
            conn,
            &recorded.customer.id,
            url,
            visit.page_title.as_deref(),
            visit.at,
        )
        .await?;
    }
    Ok(recorded)
}

/// The visit of the customer the shop knows as `external_id`, when there is one: their
/// visitor id and secret are not needed, the signature has proved who they are.
async fn identified_visit(
    conn: &mut dyn Conn,
    visit: &CustomerVisit,
    external_id: &str,
) -> DbResult<Option<RecordedVisit>> {
    optional(
        conn,
        concat!(
            "UPDATE customers SET \
             name = COALESCE($1, name), email = COALESCE($2, email), \
             location = COALESCE($3, location), ip_address = COALESCE($4, ip_address), \
             current_page_url = COALESCE($5, current_page_url), \
             current_page_title = COALESCE($6, current_page_title), \
             referrer = COALESCE($7, referrer), user_agent = COALESCE($8, user_agent), \
             visits = visits + 1, last_seen_at = $9 \
             WHERE organization_id = $10 AND external_id = $11 \
             RETURNING ",
            customer_columns!()
        ),
        params![
            &visit.name,
            &visit.email,
            &visit.location,
            &visit.ip_address,
            &visit.page_url,
            &visit.page_title,
            &visit.referrer,
            &visit.user_agent,
            to_millis(visit.at),
            &visit.organization_id,
            external_id,
        ],
        |r| {
            Ok(RecordedVisit {
                customer: customer_from(r)?,
                secret_issued: false,
            })
        },
    )
    .await
}

/// Inserts the customer `visitor_id`, or updates them when the visit presents their secret
/// (or they have none yet, from before secrets: the visit claims them with its new one).
/// `None` when the customer exists and the secret does not match: nothing was written.
async fn upsert_customer(
    conn: &mut dyn Conn,
    visit: &CustomerVisit,
    visitor_id: &str,
    new_id: &str,
) -> DbResult<Option<RecordedVisit>> {
    // A returning visitor keeps what they told us before unless they tell us anew.
    optional(
        conn,
        concat!(
            "INSERT INTO customers (id, organization_id, visitor_id, name, email, location, \
             ip_address, current_page_url, current_page_title, referrer, user_agent, visits, \
             created_at, last_seen_at, visitor_secret_hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, $12, $12, $13) \
             ON CONFLICT (organization_id, visitor_id) DO UPDATE SET \
             name = COALESCE(excluded.name, customers.name), \
             email = COALESCE(excluded.email, customers.email), \
             location = COALESCE(excluded.location, customers.location), \
             ip_address = COALESCE(excluded.ip_address, customers.ip_address), \
             current_page_url = COALESCE(excluded.current_page_url, customers.current_page_url), \
             current_page_title = COALESCE(excluded.current_page_title, customers.current_page_title), \
             referrer = COALESCE(excluded.referrer, customers.referrer), \
             user_agent = COALESCE(excluded.user_agent, customers.user_agent), \
             visits = customers.visits + 1, last_seen_at = excluded.last_seen_at, \
             visitor_secret_hash = COALESCE(customers.visitor_secret_hash, excluded.visitor_secret_hash) \
             WHERE customers.visitor_secret_hash IS NULL OR customers.visitor_secret_hash = $14 \
             RETURNING ",
            customer_columns!(),
            ", visitor_secret_hash"
        ),
        params![
            new_id,
            &visit.organization_id,
            visitor_id,
            &visit.name,
            &visit.email,
            &visit.location,
            &visit.ip_address,
            &visit.page_url,
            &visit.page_title,
            &visit.referrer,
            &visit.user_agent,
            to_millis(visit.at),
            &visit.new_secret_hash,
            &visit.presented_secret_hash,
        ],
        |r| {
            let stored_hash = r.opt_text("visitor_secret_hash")?;
            Ok(RecordedVisit {
                customer: customer_from(r)?,
                secret_issued: stored_hash.as_deref() == Some(visit.new_secret_hash.as_str()),
            })
        },
    )
    .await
}

async fn insert_page_view(
    conn: &mut dyn Conn,
    customer_id: &str,
    url: &str,
    title: Option<&str>,
    at: DateTime<Utc>,
) -> DbResult<()> {
    let id = crate::domain::new_id();
    execute(
        conn,
        "INSERT INTO page_views (id, customer_id, url, title, viewed_at) \
         VALUES ($1, $2, $3, $4, $5)",
        params![&id, customer_id, url, title, to_millis(at)],
    )
    .await?;
    Ok(())
}

/// Records that the customer is on `url` now, with the page view.
pub(super) async fn record_page_view(
    conn: &mut dyn Conn,
    organization_id: &str,
    customer_id: &str,
    url: &str,
    title: Option<&str>,
    at: DateTime<Utc>,
) -> DbResult<Customer> {
    let customer = one(
        conn,
        concat!(
            "UPDATE customers SET current_page_url = $1, current_page_title = $2, \
             last_seen_at = $3 WHERE id = $4 AND organization_id = $5 RETURNING ",
            customer_columns!()
        ),
        params![url, title, to_millis(at), customer_id, organization_id],
        customer_from,
    )
    .await?;
    insert_page_view(conn, customer_id, url, title, at).await?;
    Ok(customer)
}

/// The customer's most recent page views, newest first.
pub(super) async fn page_views(
    conn: &mut dyn Conn,
    customer_id: &str,
    limit: i64,
) -> DbResult<Vec<PageView>> {
    all(
        conn,
        "SELECT url, title, viewed_at FROM page_views WHERE customer_id = $1 \
         ORDER BY viewed_at DESC, id DESC LIMIT $2",
        params![customer_id, limit],
        |r| {
            Ok(PageView {
                url: r.text(0)?,
                title: r.opt_text(1)?,
                viewed_at: from_millis(r.int(2)?),
            })
        },
    )
    .await
}
