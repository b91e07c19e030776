//! Greeting rules: admins define them; they greet visitors on the site whose page, time on
//! it, visits and referrer meet the conditions, in the name of the least-loaded agent of the
//! rule's group who can take a chat now, at most once per visitor per `oncePerHours`.
//!
//! The rules look at a visitor when they arrive, when their page changes, and, for time on
//! the page, when the [`GreetingRules`] worker's pass finds that the time has come: each
//! look says when the next one is due, so a pass costs a scan of memory and no query for
//! visitors nothing is due for.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::greetings::not_found;
use super::on_site::Claimed;
use super::{KeptRules, VisitorService, VisitorSettings};
use crate::domain::{
    self, CompiledRule, Greeting, GreetingCounts, GreetingRule, Organization, PlaceholderValues,
    RoutingCandidate, RuleCheck, RuleConditions, Visitor, VisitorFacts, choose_agent,
    render_greeting, validate_rule,
};
use crate::error::{Error, Result};
use crate::services::auth::Principal;
use crate::store::AgentLoad;

/// How long an organization's compiled rules are used before they are read again (changes
/// made on this node apply at once).
const RULES_KEPT: Duration = Duration::from_secs(5);

/// A rule as an admin writes it.
#[derive(Debug, Clone)]
pub struct GreetingRuleInput {
    pub name: String,
    pub enabled: bool,
    pub text: String,
    pub group_id: Option<String>,
    pub conditions: RuleConditions,
    pub once_per_hours: i32,
}

/// Who may send a rule's greeting now, per organization, read once per pass.
type Senders = HashMap<String, (Organization, Vec<AgentLoad>)>;

impl VisitorService {
    /// The organization's rules, oldest first, with how their greetings fared.
    pub async fn greeting_rules(
        &self,
        principal: &Principal,
    ) -> Result<Vec<(GreetingRule, GreetingCounts)>> {
        require_admin(principal)?;
        let organization_id = principal.organization_id();
        let rules = self.store.greeting_rules(organization_id).await?;
        let counts: HashMap<String, GreetingCounts> = self
            .store
            .greeting_counts(organization_id)
            .await?
            .into_iter()
            .collect();
        Ok(rules
            .into_iter()
            .map(|rule| {
                let counts = counts.get(&rule.id).copied().unwrap_or_default();
                (rule, counts)
            })
            .collect())
    }

    /// An admin adds a rule.
    pub async fn create_greeting_rule(
        &self,
        principal: &Principal,
        input: GreetingRuleInput,
    ) -> Result<(GreetingRule, GreetingCounts)> {
        require_admin(principal)?;
        let rule = GreetingRule {
            id: domain::new_id(),
            organization_id: principal.organization_id().to_owned(),
            name: input.name,
            enabled: input.enabled,
            text: input.text,
            group_id: input.group_id,
            conditions: input.conditions,
            once_per_hours: input.once_per_hours,
            created_at: domain::now(),
        };
        let rule = self.checked(rule).await?;
        self.store.insert_greeting_rule(&rule).await?;
        self.rules_changed(&rule.organization_id);
        Ok((rule, GreetingCounts::default()))
    }

    /// An admin changes a rule; its counts stay.
    pub async fn update_greeting_rule(
        &self,
        principal: &Principal,
        id: &str,
        input: GreetingRuleInput,
    ) -> Result<(GreetingRule, GreetingCounts)> {
        require_admin(principal)?;
        let organization_id = principal.organization_id();
        let existing = self
            .store
            .greeting_rule(organization_id, id)
            .await
            .map_err(|err| not_found(err, "greeting rule"))?;
        let rule = self
            .checked(GreetingRule {
                name: input.name,
                enabled: input.enabled,
                text: input.text,
                group_id: input.group_id,
                conditions: input.conditions,
                once_per_hours: input.once_per_hours,
                ..existing
            })
            .await?;
        self.store
            .update_greeting_rule(&rule)
            .await
            .map_err(|err| not_found(err, "greeting rule"))?;
        self.rules_changed(organization_id);
        let counts = self
            .store
            .greeting_counts(organization_id)
            .await?
            .into_iter()
            .find(|(rule_id, _)| *rule_id == rule.id)
            .map(|(_, counts)| counts)
            .unwrap_or_default();
        Ok((rule, counts))
    }

    /// An admin deletes a rule; the greetings it sent stay. False when there was none.
    pub async fn delete_greeting_rule(&self, principal: &Principal, id: &str) -> Result<bool> {
        require_admin(principal)?;
        let deleted = self
            .store
            .delete_greeting_rule(principal.organization_id(), id)
            .await?;
        self.rules_changed(principal.organization_id());
        Ok(deleted)
    }

    /// Validates a rule and checks its group is the organization's.
    async fn checked(&self, rule: GreetingRule) -> Result<GreetingRule> {
        let rule = validate_rule(rule)?;
        if let Some(group_id) = &rule.group_id {
            let groups = self.store.groups(&rule.organization_id).await?;
            if !groups.iter().any(|g| &g.id == group_id) {
                return Err(Error::BadUserInput(format!(
                    "no group with id {group_id:?}"
                )));
            }
        }
        Ok(rule)
    }

    /// Forgets the organization's compiled rules, so the next look reads them again, and has
    /// the next pass look at everyone on the site: a new rule may hold for them already.
    fn rules_changed(&self, organization_id: &str) {
        self.rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(organization_id);
        self.on_site.look_again(organization_id);
    }

    /// The organization's enabled rules, compiled, oldest first.
    async fn enabled_rules(&self, organization_id: &str) -> Result<Arc<Vec<CompiledRule>>> {
        if let Some(kept) = self
            .rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(organization_id)
            && kept.read_at.elapsed() < RULES_KEPT
        {
            return Ok(kept.rules.clone());
        }
        let rules: Vec<CompiledRule> = self
            .store
            .greeting_rules(organization_id)
            .await?
            .into_iter()
            .filter(|rule| rule.enabled)
            .filter_map(|rule| match CompiledRule::new(rule) {
                Ok(compiled) => Some(compiled),
                Err(err) => {
                    tracing::warn!(error = %err.0, "a stored greeting rule does not compile");
                    None
                }
            })
            .collect();
        let rules = Arc::new(rules);
        self.rules.lock().unwrap_or_else(|p| p.into_inner()).insert(
            organization_id.to_owned(),
            KeptRules {
                read_at: tokio::time::Instant::now(),
                rules: rules.clone(),
            },
        );
        Ok(rules)
    }

    /// Lets the rules look at one visitor now (they arrived, or their page changed).
    pub(super) async fn greet_if_a_rule_says_so(&self, organization_id: &str, customer_id: &str) {
        let Some(claimed) = self.on_site.claim(organization_id, customer_id) else {
            return;
        };
        let mut senders = Senders::new();
        self.look(claimed, &mut senders).await;
    }

    /// One pass of the worker: departures, then the visitors the rules are due to look at.
    async fn pass(&self) {
        self.on_site.sweep();
        let mut senders = Senders::new();
        for claimed in self.on_site.claim_due(domain::now()) {
            self.look(claimed, &mut senders).await;
        }
    }

    /// The rules look at a claimed visitor, then release them with when to look again.
    async fn look(&self, claimed: Claimed<'_>, senders: &mut Senders) {
        let due = match self.apply_rules(&claimed.visitor, senders).await {
            Ok(due) => due,
            Err(err) => {
                tracing::warn!(error = %err, "greeting rules could not look at a visitor");
                Some(domain::now() + chrono::Duration::seconds(5))
            }
        };
        claimed.look_again_at(due);
    }

    /// Sends the first rule's greeting whose conditions hold and whose sender is there;
    /// otherwise says when a rule may hold (time on the page, `oncePerHours`, nobody to send
    /// it yet).
    async fn apply_rules(
        &self,
        visitor: &Visitor,
        senders: &mut Senders,
    ) -> Result<Option<DateTime<Utc>>> {
        let customer = &visitor.customer;
        let rules = self.enabled_rules(&customer.organization_id).await?;
        if rules.is_empty() {
            return Ok(None);
        }
        let now = domain::now();
        let facts = VisitorFacts {
            url: customer.current_page_url.as_deref(),
            referrer: customer.referrer.as_deref(),
            visits: customer.visits,
            seconds_on_page: (now - visitor.page_since).num_seconds(),
        };
        let mut due: Option<DateTime<Utc>> = None;
        let mut look_at = |at: DateTime<Utc>| due = Some(due.map_or(at, |d| d.min(at)));
        for compiled in rules.iter() {
            let rule = &compiled.rule;
            match compiled.check(&facts) {
                RuleCheck::No => continue,
                RuleCheck::AfterSecondsOnPage(seconds) => {
                    look_at(visitor.page_since + chrono::Duration::seconds(seconds));
                    continue;
                }
                RuleCheck::Matches => {}
            }
            let Some((agent_id, agent_name)) = self.sender(rule, senders, now).await? else {
                // Nobody of the group can take a chat: look again on the next pass.
                look_at(now);
                continue;
            };
            if let Some(last) = self
                .store
                .last_rule_greeting_at(&rule.id, &customer.id)
                .await?
            {
                let next = last + chrono::Duration::hours(i64::from(rule.once_per_hours));
                if next > now {
                    look_at(next);
                    continue;
                }
            }
            let text = render_greeting(
                &rule.text,
                &PlaceholderValues {
                    visitor_name: customer.name.as_deref(),
                    page_title: customer.current_page_title.as_deref(),
                    agent_name: Some(&agent_name),
                },
            );
            let greeting = Greeting {
                id: domain::new_id(),
                organization_id: customer.organization_id.clone(),
                customer_id: customer.id.clone(),
                agent_id: Some(agent_id),
                agent_name: Some(agent_name),
                rule_id: Some(rule.id.clone()),
                group_id: rule.group_id.clone(),
                text,
                created_at: now,
                shown_at: None,
                answered_at: None,
                chat_id: None,
                dismissed_at: None,
            };
            let once_per = chrono::Duration::hours(i64::from(rule.once_per_hours));
            if !self
                .store
                .insert_rule_greeting(&greeting, &rule.id, now - once_per)
                .await?
            {
                // Another node's rules greeted the visitor (open on several nodes) just now.
                look_at(now + once_per);
                continue;
            }
            self.on_site.greeting_changed(greeting.clone());
            self.announce_greeting(&greeting);
            return Ok(None);
        }
        Ok(due)
    }

    /// The least-loaded agent of the rule's group who could take a chat now, by routing's
    /// rule (accepting chats, reachable, with room).
    async fn sender(
        &self,
        rule: &GreetingRule,
        senders: &mut Senders,
        now: DateTime<Utc>,
    ) -> Result<Option<(String, String)>> {
        let organization_id = &rule.organization_id;
        if !senders.contains_key(organization_id) {
            let org = self.store.organization(organization_id).await?;
            let loads = self.store.agent_loads(organization_id, now).await?;
            senders.insert(organization_id.clone(), (org, loads));
        }
        let (org, loads) = &senders[organization_id];
        let candidates: Vec<RoutingCandidate> = loads
            .iter()
            .filter(|l| {
                l.agent.routable(l.reachable)
                    && domain::in_chat_group(&l.agent, rule.group_id.as_deref())
            })
            .map(|l| RoutingCandidate {
                agent_id: l.agent.id.clone(),
                load: l.active_chats,
                chat_limit: i64::from(l.agent.effective_chat_limit(&org.settings)),
                last_assigned_at: None,
            })
            .collect();
        Ok(choose_agent(&candidates, None, &[]).and_then(|chosen| {
            loads
                .iter()
                .find(|l| l.agent.id == chosen.agent_id)
                .map(|l| (l.agent.id.clone(), l.agent.name.clone()))
        }))
    }

    /// The worker that sweeps departures and runs the rules' passes; run it once per node.
    pub fn greeting_rules_worker(self: &Arc<Self>, interval: Duration) -> GreetingRules {
        GreetingRules {
            visitors: self.clone(),
            interval,
        }
    }

    /// How the visitors on the site behave.
    pub fn settings(&self) -> VisitorSettings {
        self.settings
    }
}

fn require_admin(principal: &Principal) -> Result<()> {
    if principal.role().is_admin() {
        Ok(())
    } else {
        Err(Error::forbidden("manage greeting rules"))
    }
}

/// Removes visitors whose grace period has passed (and other nodes' visitors not heard of for
/// a few heartbeats) and lets the greeting rules look at the visitors due, every interval,
/// until shutdown. One per node, not per cluster: the visitors it looks at are the ones whose
/// pages are connected to this node, never those it lists for another node. A visitor with pages on
/// several nodes is greeted once all the same: the greeting is written with the customer
/// locked, after the rule's `oncePerHours` is checked again.
pub struct GreetingRules {
    visitors: Arc<VisitorService>,
    interval: Duration,
}

impl GreetingRules {
    /// Runs until `shutdown` says stop.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tick.tick() => {}
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                () = self.visitors.pass() => {}
            }
        }
    }
}
