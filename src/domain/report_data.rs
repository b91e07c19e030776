//! A deterministic data set for reports: chats with their transcripts, transfers, tags,
//! ratings and greetings over a period, as a busy organization would have them. The
//! integration tests check reports against counts computed from it; `switchboard
//! generate-report-data` writes one into a database for the bench. The store imports it in
//! bulk (`ReportStore::import_report_data`).

use super::AuthorKind;

/// What to generate.
#[derive(Debug, Clone)]
pub struct ReportDataSpec {
    pub organization_id: String,
    /// Every agent with the groups they are in.
    pub agents: Vec<(String, Vec<String>)>,
    pub groups: Vec<String>,
    pub tags: Vec<String>,
    pub chats: usize,
    /// Chats start in [start_ms, end_ms).
    pub start_ms: i64,
    pub end_ms: i64,
    pub seed: u64,
}

/// A transcript message.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedMessage {
    pub author_kind: AuthorKind,
    pub author_id: Option<String>,
    pub at: i64,
}

/// A chat as stored, bookkeeping columns included.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedChat {
    pub id: String,
    pub customer_id: String,
    pub group_id: Option<String>,
    /// QUEUED, ACTIVE or CLOSED.
    pub status: &'static str,
    pub assignee_id: Option<String>,
    pub created_at: i64,
    pub first_assigned_at: Option<i64>,
    pub first_response_at: Option<i64>,
    pub closed_at: Option<i64>,
    pub rating: Option<&'static str>,
    pub response_count: i64,
    pub response_total_ms: i64,
    /// The agent who had it before a transfer.
    pub previous_assignee: Option<String>,
    pub tags: Vec<String>,
    pub messages: Vec<GeneratedMessage>,
}

/// A greeting and what became of it.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedGreeting {
    pub id: String,
    pub customer_id: String,
    pub agent_id: Option<String>,
    pub group_id: Option<String>,
    pub created_at: i64,
    pub shown_at: Option<i64>,
    pub answered_at: Option<i64>,
    pub chat_id: Option<String>,
}

/// A generated data set of one organization.
#[derive(Debug, Clone, Default)]
pub struct ReportData {
    pub organization_id: String,
    /// id and created_at.
    pub customers: Vec<(String, i64)>,
    pub chats: Vec<GeneratedChat>,
    pub greetings: Vec<GeneratedGreeting>,
}

/// SplitMix64: small, fast, and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// In [low, high).
    fn range(&mut self, low: i64, high: i64) -> i64 {
        low + (self.next() % (high - low).max(1) as u64) as i64
    }

    /// True with `percent` % probability.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        (!items.is_empty()).then(|| &items[(self.next() % items.len() as u64) as usize])
    }
}

/// Ids that sort by creation, unique within the set.
fn id(kind: &str, seed: u64, n: usize) -> String {
    format!("{kind}-{seed:x}-{n:08}")
}

/// Generates the data set `spec` describes.
pub fn generate_report_data(spec: &ReportDataSpec) -> ReportData {
    let mut rng = Rng(spec.seed);
    let mut data = ReportData {
        organization_id: spec.organization_id.clone(),
        ..ReportData::default()
    };
    let customers = (spec.chats / 2).max(1);
    for n in 0..customers {
        data.customers
            .push((id("customer", spec.seed, n), spec.start_ms - 86_400_000));
    }
    for n in 0..spec.chats {
        let created_at = rng.range(spec.start_ms, spec.end_ms);
        let customer_id = data.customers[(rng.next() % customers as u64) as usize]
            .0
            .clone();
        let group_id = if rng.chance(15) {
            None
        } else {
            rng.pick(&spec.groups).cloned()
        };
        let eligible: Vec<&String> = spec
            .agents
            .iter()
            .filter(|(_, groups)| group_id.as_ref().is_none_or(|g| groups.contains(g)))
            .map(|(agent, _)| agent)
            .collect();
        let mut chat = GeneratedChat {
            id: id("chat", spec.seed, n),
            customer_id,
            group_id,
            status: "CLOSED",
            assignee_id: None,
            created_at,
            first_assigned_at: None,
            first_response_at: None,
            closed_at: None,
            rating: None,
            response_count: 0,
            response_total_ms: 0,
            previous_assignee: None,
            tags: Vec::new(),
            messages: vec![GeneratedMessage {
                author_kind: AuthorKind::Customer,
                author_id: None,
                at: created_at,
            }],
        };
        let mut at = created_at;
        let fate = rng.range(0, 100);
        // Only chats of the last two hours are still open: the timers close older ones.
        let recent = created_at >= spec.end_ms - 2 * 3_600_000;
        let assignee = rng.pick(&eligible).map(|a| (*a).clone());
        match (fate, assignee) {
            // Left the queue unanswered, or is still waiting.
            (0..=7, _) | (_, None) => {
                at += rng.range(10_000, 600_000);
                if fate == 0 && recent {
                    chat.status = "QUEUED";
                } else {
                    chat.closed_at = Some(at);
                }
            }
            (_, Some(agent)) => {
                at += rng.range(0, 120_000);
                chat.first_assigned_at = Some(at);
                chat.assignee_id = Some(agent.clone());
                if rng.chance(10)
                    && let Some(other) = rng.pick(&eligible).filter(|o| ***o != agent)
                {
                    chat.previous_assignee = Some(agent);
                    chat.assignee_id = Some((*other).clone());
                }
                let assignee = chat.assignee_id.clone();
                // Some assigned chats end with no reply at all.
                let runs = if fate < 12 { 0 } else { rng.range(1, 6) };
                let mut run_start = created_at;
                for run in 0..runs {
                    if run > 0 {
                        // The customer writes again, once or twice.
                        at += rng.range(5_000, 120_000);
                        run_start = at;
                        for _ in 0..rng.range(1, 3) {
                            chat.messages.push(GeneratedMessage {
                                author_kind: AuthorKind::Customer,
                                author_id: None,
                                at,
                            });
                            at += rng.range(1_000, 20_000);
                        }
                    }
                    at += rng.range(3_000, 240_000);
                    chat.messages.push(GeneratedMessage {
                        author_kind: AuthorKind::Agent,
                        author_id: assignee.clone(),
                        at,
                    });
                    chat.first_response_at = chat.first_response_at.or(Some(at));
                    chat.response_count += 1;
                    chat.response_total_ms += at - run_start;
                }
                if fate == 99 && recent {
                    chat.status = "ACTIVE";
                } else {
                    at += rng.range(10_000, 300_000);
                    chat.closed_at = Some(at);
                    if runs > 0 && rng.chance(35) {
                        chat.rating = Some(if rng.chance(75) { "GOOD" } else { "BAD" });
                    }
                }
            }
        }
        for tag in &spec.tags {
            if rng.chance(20) {
                chat.tags.push(tag.clone());
            }
        }
        // Some chats answer a greeting.
        if rng.chance(5) {
            let agent = chat
                .assignee_id
                .clone()
                .or_else(|| rng.pick(&eligible).map(|a| (*a).clone()));
            data.greetings.push(GeneratedGreeting {
                id: id("greeting", spec.seed, data.greetings.len()),
                customer_id: chat.customer_id.clone(),
                agent_id: agent,
                group_id: chat.group_id.clone(),
                created_at: created_at - 20_000,
                shown_at: Some(created_at - 19_000),
                answered_at: Some(created_at),
                chat_id: Some(chat.id.clone()),
            });
        }
        data.chats.push(chat);
    }
    // Greetings nobody answered; some never reached a page.
    for n in 0..spec.chats / 10 {
        let created_at = rng.range(spec.start_ms, spec.end_ms);
        let agent = rng.pick(&spec.agents).cloned();
        data.greetings.push(GeneratedGreeting {
            id: id("greeting-unanswered", spec.seed, n),
            customer_id: data.customers[n % customers].0.clone(),
            group_id: agent.as_ref().and_then(|(_, g)| rng.pick(g).cloned()),
            agent_id: agent.map(|(a, _)| a),
            created_at,
            shown_at: rng.chance(80).then_some(created_at + 1_500),
            answered_at: None,
            chat_id: None,
        });
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_data() {
        let spec = ReportDataSpec {
            organization_id: "org".into(),
            agents: vec![("a".into(), vec!["g".into()]), ("b".into(), vec![])],
            groups: vec!["g".into()],
            tags: vec!["t".into()],
            chats: 300,
            start_ms: 0,
            end_ms: 86_400_000 * 10,
            seed: 7,
        };
        let one = generate_report_data(&spec);
        let two = generate_report_data(&spec);
        assert_eq!(one.chats, two.chats);
        assert!(one.chats.iter().any(|c| c.previous_assignee.is_some()));
        assert!(one.chats.iter().any(|c| c.rating.is_some()));
        assert!(
            one.chats
                .iter()
                .any(|c| c.closed_at.is_some() && c.first_response_at.is_none())
        );
    }
}
