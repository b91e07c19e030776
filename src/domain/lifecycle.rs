//! The chat state machine: the transitions a use case applies to a [`Chat`] (assign,
//! enqueue, record a message, close, rate). Each sets every field the transition touches, so
//! the status, the assignee and the clocks never disagree; the use cases store the result and
//! tell others.

use chrono::{DateTime, Duration, Utc};

use super::chat::{Attention, AuthorKind, Channel, Chat, ChatStatus, Rating, ReplyClock};

impl Chat {
    /// A chat a customer starts at `now`: stored as queued until routing places it (so it is
    /// never ahead of itself in the queue), awaiting its first reply from now.
    pub fn started(
        id: String,
        organization_id: String,
        customer_id: String,
        group_id: Option<String>,
        channel: Channel,
        now: DateTime<Utc>,
    ) -> Chat {
        Chat {
            id,
            organization_id,
            customer_id,
            group_id,
            channel,
            status: ChatStatus::Queued,
            assignee_id: None,
            attention: Attention::Normal,
            created_at: now,
            queued_at: Some(now),
            assigned_at: None,
            first_response_at: None,
            closed_at: None,
            rating: None,
            rating_comment: None,
            awaiting_reply_since: Some(now),
            last_customer_activity_at: now,
            last_activity_at: now,
            agent_typing_since: None,
            acceptance_deadline: None,
            customer_seen_at: None,
            reply_clock: ReplyClock::default(),
        }
    }

    /// Gives the chat to `agent_id` at `now`. An agent with no app connected live must
    /// acknowledge within `acceptance_timeout`, or the chat moves on. Returns whether the chat
    /// left the queue.
    pub fn assign(
        &mut self,
        agent_id: &str,
        now: DateTime<Utc>,
        live: bool,
        acceptance_timeout: Duration,
    ) -> bool {
        let was_queued = self.status == ChatStatus::Queued;
        self.status = ChatStatus::Active;
        self.assignee_id = Some(agent_id.to_owned());
        self.assigned_at = Some(now);
        self.reply_clock.first_assigned_at.get_or_insert(now);
        self.queued_at = None;
        self.attention = Attention::Normal;
        self.agent_typing_since = None;
        // The reply clock starts when the agent gets the chat, not when the customer wrote.
        if self.awaiting_reply_since.is_some() {
            self.awaiting_reply_since = Some(now);
        }
        self.acceptance_deadline = (!live).then(|| now + acceptance_timeout);
        was_queued
    }

    /// Puts the chat in the queue at `now`. Returns the agent who had it, who must not get
    /// it back.
    pub fn enqueue(&mut self, now: DateTime<Utc>) -> Option<String> {
        let previous = self.assignee_id.take();
        self.status = ChatStatus::Queued;
        self.queued_at = Some(now);
        self.attention = Attention::Normal;
        previous
    }

    /// A message by `author` at `now`: a customer's starts the reply clock and wakes an idle
    /// chat; an agent's answers it, acknowledges a pending assignment and ends a red state.
    /// Returns whether the attention state changed.
    pub fn record_message(&mut self, author: AuthorKind, now: DateTime<Utc>) -> bool {
        let before = self.attention;
        self.last_activity_at = now;
        match author {
            AuthorKind::Customer => {
                self.last_customer_activity_at = now;
                self.awaiting_reply_since = self.awaiting_reply_since.or(Some(now));
                if self.attention == Attention::CustomerIdle {
                    self.attention = Attention::Normal;
                }
            }
            _ => {
                self.awaiting_reply_since = None;
                self.agent_typing_since = None;
                // A reply acknowledges an assignment made through a push.
                self.acceptance_deadline = None;
                self.first_response_at = self.first_response_at.or(Some(now));
                if self.attention == Attention::WaitingLong {
                    self.attention = Attention::Normal;
                }
            }
        }
        self.attention != before
    }

    /// The reports' reply clock for a public message by `author` at `now` (never a note): a
    /// customer's opens a run waiting for a reply unless one is open (before the chat's
    /// first reply the run started with the chat); an agent's answers the open run, if any,
    /// and adds its wait to the chat's response time.
    pub fn record_reply_clock(&mut self, author: AuthorKind, now: DateTime<Utc>) {
        let clock = &mut self.reply_clock;
        match author {
            AuthorKind::Customer => {
                if clock.reply_run_since.is_none() {
                    clock.reply_run_since = Some(if clock.response_count == 0 {
                        self.created_at
                    } else {
                        now
                    });
                }
            }
            AuthorKind::Agent => {
                if clock.reply_run_since.is_some() || clock.response_count == 0 {
                    let since = clock.reply_run_since.take().unwrap_or(self.created_at);
                    clock.response_count += 1;
                    // In stored milliseconds, as the reports read them.
                    clock.response_total_ms += now.timestamp_millis() - since.timestamp_millis();
                }
            }
            AuthorKind::System => {}
        }
    }

    /// Closes the chat at `now`. Returns whether it left the queue.
    pub fn close(&mut self, now: DateTime<Utc>) -> bool {
        let was_queued = self.status == ChatStatus::Queued;
        self.status = ChatStatus::Closed;
        self.closed_at = Some(now);
        self.queued_at = None;
        self.awaiting_reply_since = None;
        self.attention = Attention::Normal;
        was_queued
    }

    /// The customer's rating. A chat has one: a change of mind replaces it. Returns whether
    /// this is the first.
    pub fn rate(&mut self, rating: Rating, comment: Option<String>) -> bool {
        let first = self.rating.is_none();
        self.rating = Some(rating);
        self.rating_comment = comment;
        first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(now: DateTime<Utc>) -> Chat {
        Chat::started(
            "c".into(),
            "o".into(),
            "cu".into(),
            None,
            Channel::Widget,
            now,
        )
    }

    #[test]
    fn assigning_starts_the_reply_clock_and_asks_an_absent_agent_to_accept() {
        let start = Utc::now();
        let later = start + Duration::seconds(30);
        let mut chat = queued(start);
        assert!(chat.assign("a", later, false, Duration::seconds(60)));
        assert_eq!(chat.status, ChatStatus::Active);
        assert_eq!(chat.assignee_id.as_deref(), Some("a"));
        assert_eq!(chat.queued_at, None);
        assert_eq!(chat.awaiting_reply_since, Some(later));
        assert_eq!(
            chat.acceptance_deadline,
            Some(later + Duration::seconds(60))
        );
        // An agent with the app open needs no deadline; an active chat did not leave a queue.
        assert!(!chat.assign("b", later, true, Duration::seconds(60)));
        assert_eq!(chat.acceptance_deadline, None);
    }

    #[test]
    fn the_reports_reply_clock_times_each_answered_run() {
        let start = crate::domain::now();
        let at = |s: i64| start + Duration::seconds(s);
        let mut chat = queued(start);
        chat.assign("a", at(5), true, Duration::seconds(60));
        chat.assign("b", at(9), true, Duration::seconds(60));
        // The first assignment stays; assigned_at is the latest.
        assert_eq!(chat.reply_clock.first_assigned_at, Some(at(5)));
        // The first run starts with the chat, whatever the customer wrote meanwhile.
        chat.record_reply_clock(AuthorKind::Customer, at(10));
        chat.record_reply_clock(AuthorKind::Agent, at(20));
        // A second reply answers nothing.
        chat.record_reply_clock(AuthorKind::Agent, at(25));
        // The next run starts at its first customer message.
        chat.record_reply_clock(AuthorKind::Customer, at(30));
        chat.record_reply_clock(AuthorKind::Customer, at(35));
        chat.record_reply_clock(AuthorKind::System, at(36));
        chat.record_reply_clock(AuthorKind::Agent, at(40));
        // A customer message still waiting counts for nothing yet.
        chat.record_reply_clock(AuthorKind::Customer, at(50));
        let clock = chat.reply_clock;
        assert_eq!(clock.response_count, 2);
        assert_eq!(clock.response_total_ms, 20_000 + 10_000);
        assert_eq!(clock.reply_run_since, Some(at(50)));
    }

    #[test]
    fn enqueuing_hands_back_the_previous_agent() {
        let now = Utc::now();
        let mut chat = queued(now);
        chat.assign("a", now, true, Duration::seconds(60));
        chat.attention = Attention::WaitingLong;
        assert_eq!(chat.enqueue(now).as_deref(), Some("a"));
        assert_eq!(chat.status, ChatStatus::Queued);
        assert_eq!(chat.assignee_id, None);
        assert_eq!(chat.attention, Attention::Normal);
    }

    #[test]
    fn a_reply_ends_the_red_state_and_acknowledges_the_assignment() {
        let now = Utc::now();
        let mut chat = queued(now);
        chat.assign("a", now, false, Duration::seconds(60));
        chat.attention = Attention::WaitingLong;
        assert!(chat.record_message(AuthorKind::Agent, now));
        assert_eq!(chat.attention, Attention::Normal);
        assert_eq!(chat.awaiting_reply_since, None);
        assert_eq!(chat.acceptance_deadline, None);
        assert_eq!(chat.first_response_at, Some(now));
        let later = now + Duration::seconds(5);
        assert!(!chat.record_message(AuthorKind::Agent, later));
        assert_eq!(
            chat.first_response_at,
            Some(now),
            "the first response stays"
        );
    }

    #[test]
    fn a_customer_message_wakes_an_idle_chat_and_keeps_the_oldest_unanswered_time() {
        let now = Utc::now();
        let mut chat = queued(now);
        chat.assign("a", now, true, Duration::seconds(60));
        chat.attention = Attention::CustomerIdle;
        let later = now + Duration::seconds(5);
        assert!(chat.record_message(AuthorKind::Customer, later));
        assert_eq!(chat.attention, Attention::Normal);
        assert_eq!(chat.awaiting_reply_since, Some(now));
        assert_eq!(chat.last_customer_activity_at, later);
    }

    #[test]
    fn closing_stops_the_clocks_and_says_whether_the_queue_shrank() {
        let now = Utc::now();
        let mut chat = queued(now);
        assert!(chat.close(now));
        assert_eq!(chat.status, ChatStatus::Closed);
        assert_eq!(chat.closed_at, Some(now));
        assert_eq!(chat.awaiting_reply_since, None);
    }

    #[test]
    fn a_second_rating_replaces_the_first() {
        let mut chat = queued(Utc::now());
        assert!(chat.rate(Rating::Bad, None));
        assert!(!chat.rate(Rating::Good, Some("sorted".into())));
        assert_eq!(chat.rating, Some(Rating::Good));
        assert_eq!(chat.rating_comment.as_deref(), Some("sorted"));
    }
}
