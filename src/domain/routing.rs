//! Who gets the next chat. The store loads the candidates inside the routing transaction; this
//! picks one, so the rule is tested without a database.

use chrono::{DateTime, Utc};

/// An agent who accepts chats, is reachable and belongs to the chat's group, with their load.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutingCandidate {
    pub agent_id: String,
    /// Active chats that count toward the limit (idle ones do not).
    pub load: i64,
    /// The agent's own limit or the organization's default.
    pub chat_limit: i64,
    /// When they last got a chat; `None` (never) counts as longest ago.
    pub last_assigned_at: Option<DateTime<Utc>>,
}

impl RoutingCandidate {
    /// Whether the agent can take one more chat.
    pub fn has_room(&self) -> bool {
        self.load < self.chat_limit
    }
}

/// The agent who gets a chat: `preferred` (a returning customer's previous agent) when they
/// have room, else the least-loaded candidate with room, ties going to the one who has waited
/// longest since their last assignment. Agents in `excluded` (who already had the chat) never
/// get it back. `None` when nobody has room.
pub fn choose_agent<'a>(
    candidates: &'a [RoutingCandidate],
    preferred: Option<&str>,
    excluded: &[String],
) -> Option<&'a RoutingCandidate> {
    let eligible = || {
        candidates
            .iter()
            .filter(|c| c.has_room() && !excluded.contains(&c.agent_id))
    };
    if let Some(preferred) = preferred
        && let Some(candidate) = eligible().find(|c| c.agent_id == preferred)
    {
        return Some(candidate);
    }
    eligible().min_by(|a, b| {
        a.load
            .cmp(&b.load)
            // None (never assigned) sorts before any time.
            .then_with(|| a.last_assigned_at.cmp(&b.last_assigned_at))
            .then_with(|| a.agent_id.cmp(&b.agent_id))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn candidate(id: &str, load: i64, limit: i64, minutes_ago: Option<i64>) -> RoutingCandidate {
        RoutingCandidate {
            agent_id: id.into(),
            load,
            chat_limit: limit,
            last_assigned_at: minutes_ago.map(|m| Utc::now() - Duration::minutes(m)),
        }
    }

    #[test]
    fn the_least_loaded_agent_gets_the_chat() {
        let candidates = [candidate("a", 2, 3, Some(1)), candidate("b", 1, 3, Some(1))];
        assert_eq!(choose_agent(&candidates, None, &[]).unwrap().agent_id, "b");
    }

    #[test]
    fn ties_go_to_the_agent_longest_without_an_assignment() {
        let candidates = [
            candidate("recent", 1, 3, Some(1)),
            candidate("long-ago", 1, 3, Some(30)),
            candidate("busy", 2, 3, None),
        ];
        assert_eq!(
            choose_agent(&candidates, None, &[]).unwrap().agent_id,
            "long-ago"
        );
        let candidates = [
            candidate("recent", 0, 3, Some(1)),
            candidate("never", 0, 3, None),
        ];
        assert_eq!(
            choose_agent(&candidates, None, &[]).unwrap().agent_id,
            "never"
        );
    }

    #[test]
    fn full_agents_get_nothing() {
        let candidates = [candidate("a", 3, 3, None), candidate("b", 5, 3, None)];
        assert!(choose_agent(&candidates, None, &[]).is_none());
    }

    #[test]
    fn a_returning_customer_goes_back_to_their_agent_if_they_have_room() {
        let candidates = [
            candidate("idle", 0, 3, None),
            candidate("theirs", 2, 3, Some(1)),
        ];
        assert_eq!(
            choose_agent(&candidates, Some("theirs"), &[])
                .unwrap()
                .agent_id,
            "theirs"
        );
        let candidates = [
            candidate("idle", 0, 3, None),
            candidate("theirs", 3, 3, Some(1)),
        ];
        assert_eq!(
            choose_agent(&candidates, Some("theirs"), &[])
                .unwrap()
                .agent_id,
            "idle"
        );
    }

    #[test]
    fn agents_who_had_the_chat_never_get_it_back() {
        let candidates = [
            candidate("had-it", 0, 3, None),
            candidate("other", 2, 3, None),
        ];
        let excluded = vec!["had-it".to_string()];
        assert_eq!(
            choose_agent(&candidates, None, &excluded).unwrap().agent_id,
            "other"
        );
        assert_eq!(
            choose_agent(&candidates, Some("had-it"), &excluded)
                .unwrap()
                .agent_id,
            "other"
        );
    }
}
