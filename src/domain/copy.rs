//! Every sentence a person reads: system entries in transcripts, feed reasons, push titles and
//! bodies, and the errors customers and agents see from the chat use cases. Each is a
//! [`Wording`] keyed by kind with its arguments, rendered in a locale: English, and German for
//! what customers and agents read (errors are for developers and stay English); any other
//! locale falls back to English, so a translation is one more arm per variant.
//!
//! Transcripts store the rendered text (they are read by both sides, in the organization's
//! language, its widget's locale). Pushes store the wording and render it when sent, in the
//! device's locale.

use serde::{Deserialize, Serialize};

use super::chat::Rating;

/// The locale text is rendered in when no other is known.
pub const DEFAULT_LOCALE: &str = "en";

/// A sentence a customer or agent reads, with what it needs to say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "key", rename_all = "snake_case")]
pub enum Wording {
    // ---- transcript entries ----------------------------------------------------------
    /// An agent (or a supervisor) joined the chat.
    Joined { agent: String },
    /// The chat waits in the queue.
    Queued,
    /// The customer rated the chat.
    Rated {
        rating: Rating,
        comment: Option<String>,
    },
    /// The customer closed the chat.
    CustomerLeft,
    /// An agent closed the chat.
    ClosedBy { agent: String },
    /// The timers closed a chat nobody touched.
    ClosedForInactivity,
    /// A queued customer went away.
    CustomerLeftQueue,
    /// A transfer to an agent, told to the customer.
    TransferringToAgent { agent: String },
    /// A transfer to a group, told to the customer.
    TransferringToGroup { group: String },
    /// The agent was deactivated; the chat goes on with someone else.
    AgentNoLongerAvailable { agent: String },
    /// The agent did not answer; `next` gets the chat, or someone is being found.
    NotAnswering { agent: String, next: Option<String> },
    /// For agents only: why a chat assigned through a push moved on.
    AcceptanceMissed { agent: String, seconds: i64 },
    /// For agents only: an agent put a tag on the chat.
    TagAdded { agent: String, tag: String },
    /// For agents only: an agent took a tag off the chat.
    TagRemoved { agent: String, tag: String },

    // ---- feed reasons ----------------------------------------------------------------
    /// A chat given from the queue.
    ReasonQueue,
    /// A new chat.
    ReasonNewChat,
    /// A customer who chatted before, back with their previous agent.
    ReasonReturningCustomer,
    /// A visitor answered a greeting.
    ReasonGreetingAnswered,
    /// An agent took the chat from the queue.
    ReasonTakenFromQueue,
    /// The chat's agent was deactivated.
    ReasonDeactivated { agent: String },
    /// The chat's agent did not accept it in time.
    ReasonNotAccepted { agent: String },
    /// The chat's agent did not reply in time.
    ReasonNoReply { agent: String, seconds: i64 },

    // ---- pushes ----------------------------------------------------------------------
    /// A customer whose name we do not know, in a push.
    SomeCustomer,
    /// A customer whose name we do not know, as a transcript author.
    Customer,
    /// Push title: a new chat.
    NewChatFrom { customer: String },
    /// Push title: a chat transferred to the agent.
    TransferredChatFrom { customer: String },
    /// Push title: customers wait in the queue.
    CustomersWaiting { count: i64 },
    /// Push body: what to do about the queue.
    OpenTheQueue,
    /// Push title: an offline message.
    OfflineMessageFrom { name: String },
    /// Push title: a chat the agent did not accept in time.
    MissedChatFrom { customer: String },
    /// Push body: what a missed chat means for the agent.
    MissedChatExplained,
    /// Push title: a note (a supervisor's whisper) in the agent's chat.
    NoteFrom { agent: String },

    // ---- errors ----------------------------------------------------------------------
    /// AGENTS_OFFLINE: nobody accepts chats.
    NobodyAccepting,
    /// AGENTS_OFFLINE: everybody is busy and the queue is full.
    QueueFull,
    /// RATE_LIMITED: visitor sessions from one address.
    TooManyVisitorSessions,
    /// RATE_LIMITED: chats started from one address.
    TooManyChatStartsFromAddress,
    /// RATE_LIMITED: the organization's new chats per minute.
    TooManyChatsStarting,
    /// RATE_LIMITED: a customer's messages.
    SendingTooFast,
    /// RATE_LIMITED: a customer's typing notices.
    TypingTooFast,
    /// RATE_LIMITED: a customer's other requests.
    TooManyVisitorRequests,
    /// A transfer to an agent nobody can reach.
    AgentUnavailable { agent: String },
    /// Someone took the queued chat first.
    NoLongerQueued,
    /// Only a chat's agent or a supervisor transfers it.
    TransferNotYours,
    /// Only active chats are transferred; `status` is the chat's, in lower case.
    TransferNotActive { status: String },
    /// A transfer to a deactivated agent.
    AgentDeactivated,
    /// A transfer to the agent who has the chat.
    AlreadyTheirs,
    /// The chat is closed.
    ChatClosed,
    /// Closing a closed chat.
    AlreadyClosed,
    /// An agent acting in a queued chat they have not taken.
    TakeItFirst,
    /// An agent acting in a chat they have not joined.
    JoinItFirst,
    /// Typing in a chat that is not the agent's.
    TypingNotYours,
    /// Acting in a teammate's chat the agent may only read.
    TeammatesChatReadOnly,
    /// A customer sending a note.
    NotesAreForAgents,
    /// For agents only: Messenger did not take an agent's message, and why.
    MessengerNotDelivered { reason: String },
    /// Answering a Messenger customer whose last message is older than Facebook allows.
    MessengerWindowClosed,

    // ---- emails ----------------------------------------------------------------------
    /// Subject of the email telling agents of a new offline message.
    OfflineEmailSubject { name: String },
    /// Body of that email; `link` opens the agent app's offline messages.
    OfflineEmailBody {
        name: String,
        email: String,
        text: String,
        link: Option<String>,
    },
    /// Subject of an agent's reply to a customer's offline message.
    OfflineReplySubject { organization: String },
    /// Body of that reply: the agent's text, signed, above the customer's message, quoted.
    OfflineReplyBody {
        text: String,
        agent: String,
        organization: String,
        original: String,
    },
    /// EMAIL_NOT_CONFIGURED: no SMTP server, so no reply by email.
    EmailNotConfigured,
}

impl Wording {
    /// The text in `locale` (a BCP 47 tag such as "en-GB"); unknown locales get English.
    pub fn render(&self, locale: &str) -> String {
        let language = locale.split(['-', '_']).next().unwrap_or_default();
        let translated = match language.to_ascii_lowercase().as_str() {
            "de" => self.german(),
            _ => None,
        };
        translated.unwrap_or_else(|| self.english())
    }

    /// German for what customers and agents read in transcripts and pushes. Feed reasons
    /// (values apps may match) and errors (for the app's developer) stay English (`None`).
    fn german(&self) -> Option<String> {
        use Wording::*;
        Some(match self {
            Joined { agent } => format!("{agent} ist dem Chat beigetreten"),
            Queued => "Alle unsere Mitarbeiter sind gerade beschäftigt; Sie sind in der \
                       Warteschlange und werden verbunden, sobald jemand frei ist"
                .into(),
            Rated { rating, comment } => {
                let verdict = match rating {
                    Rating::Good => "gut",
                    Rating::Bad => "schlecht",
                };
                match comment {
                    Some(comment) => {
                        format!("Der Kunde hat den Chat als {verdict} bewertet: {comment}")
                    }
                    None => format!("Der Kunde hat den Chat als {verdict} bewertet"),
                }
            }
            CustomerLeft => "Der Kunde hat den Chat verlassen".into(),
            ClosedBy { agent } => format!("{agent} hat den Chat beendet"),
            ClosedForInactivity => "Der Chat wurde nach längerer Inaktivität beendet".into(),
            CustomerLeftQueue => "Der Kunde hat die Warteschlange verlassen".into(),
            TransferringToAgent { agent } => format!(
                "Sie werden an {agent} weitergeleitet, der unser ganzes Gespräch sehen kann"
            ),
            TransferringToGroup { group } => format!(
                "Sie werden an unser Team {group} weitergeleitet, das unser ganzes Gespräch \
                 sehen kann"
            ),
            AgentNoLongerAvailable { agent } => format!(
                "{agent} ist nicht mehr erreichbar; wir leiten Sie an einen Kollegen weiter, der \
                 unser ganzes Gespräch sehen kann"
            ),
            NotAnswering {
                agent,
                next: Some(next),
            } => format!(
                "{agent} antwortet nicht; wir leiten Sie an {next} weiter, der unser ganzes \
                 Gespräch sehen kann"
            ),
            NotAnswering { agent, next: None } => {
                format!("{agent} antwortet nicht; wir suchen jemand anderen für Sie")
            }
            AcceptanceMissed { agent, seconds } => format!(
                "{agent} hat den Chat nicht innerhalb von {seconds} Sekunden angenommen und \
                 nimmt keine Chats mehr an"
            ),
            OfflineEmailSubject { name } => format!("Offline-Nachricht von {name}"),
            OfflineEmailBody {
                name,
                email,
                text,
                link,
            } => {
                let answer = match link {
                    Some(link) => format!(
                        "Antworten Sie auf diese E-Mail, um {name} zu antworten, oder in der \
                         App: {link}"
                    ),
                    None => format!(
                        "Antworten Sie auf diese E-Mail, um {name} zu antworten, oder in der App."
                    ),
                };
                format!(
                    "{name} ({email}) hat eine Offline-Nachricht hinterlassen:\n\n{text}\n\n{answer}\n"
                )
            }
            OfflineReplySubject { organization } => format!("Re: Ihre Nachricht an {organization}"),
            OfflineReplyBody {
                text,
                agent,
                organization,
                original,
            } => format!(
                "{text}\n\n{agent}, {organization}\n\nSie schrieben:\n{}\n",
                super::email::quoted(original)
            ),
            TagAdded { agent, tag } => format!("{agent} hat das Tag „{tag}“ hinzugefügt"),
            TagRemoved { agent, tag } => format!("{agent} hat das Tag „{tag}“ entfernt"),
            NoteFrom { agent } => format!("Notiz von {agent}"),
            SomeCustomer => "Ein Kunde".into(),
            Customer => "Kunde".into(),
            NewChatFrom { customer } => format!("Neuer Chat von {customer}"),
            TransferredChatFrom { customer } => {
                format!("Chat mit {customer} an Sie weitergeleitet")
            }
            CustomersWaiting { count: 1 } => "1 Kunde wartet".into(),
            CustomersWaiting { count } => format!("{count} Kunden warten"),
            OpenTheQueue => "Öffnen Sie die Warteschlange, um einen Chat zu übernehmen".into(),
            OfflineMessageFrom { name } => format!("Offline-Nachricht von {name}"),
            MissedChatFrom { customer } => format!("Verpasster Chat von {customer}"),
            MissedChatExplained => "Sie haben ihn nicht rechtzeitig angenommen und nehmen \
                                    daher keine Chats mehr an. Öffnen Sie die App, um wieder \
                                    Chats anzunehmen."
                .into(),
            _ => return None,
        })
    }

    fn english(&self) -> String {
        use Wording::*;
        match self {
            Joined { agent } => format!("{agent} joined the chat"),
            Queued => "All our agents are busy right now; you are in the queue and will be \
                       connected as soon as someone is free"
                .into(),
            Rated { rating, comment } => {
                let verdict = match rating {
                    Rating::Good => "good",
                    Rating::Bad => "bad",
                };
                match comment {
                    Some(comment) => format!("The customer rated the chat {verdict}: {comment}"),
                    None => format!("The customer rated the chat {verdict}"),
                }
            }
            CustomerLeft => "The customer left the chat".into(),
            ClosedBy { agent } => format!("{agent} closed the chat"),
            ClosedForInactivity => "The chat was closed after a period of inactivity".into(),
            CustomerLeftQueue => "The customer left the queue".into(),
            TransferringToAgent { agent } => {
                format!("You are being transferred to {agent}, who can see our whole conversation")
            }
            TransferringToGroup { group } => format!(
                "You are being transferred to our {group} team, who can see our whole \
                 conversation"
            ),
            AgentNoLongerAvailable { agent } => format!(
                "{agent} is no longer available; transferring you to a colleague, who can see \
                 our whole conversation"
            ),
            NotAnswering {
                agent,
                next: Some(next),
            } => format!(
                "{agent} is not answering; transferring you to {next}, who can see our whole \
                 conversation"
            ),
            NotAnswering { agent, next: None } => {
                format!("{agent} is not answering; we are finding you someone else")
            }
            AcceptanceMissed { agent, seconds } => format!(
                "{agent} did not accept the chat within {seconds} seconds and no longer accepts \
                 chats"
            ),
            ReasonQueue => "queue".into(),
            ReasonNewChat => "new chat".into(),
            ReasonReturningCustomer => "returning customer".into(),
            ReasonGreetingAnswered => "answered a greeting".into(),
            ReasonTakenFromQueue => "taken from the queue".into(),
            ReasonDeactivated { agent } => format!("{agent} was deactivated"),
            ReasonNotAccepted { agent } => format!("{agent} did not accept the chat in time"),
            ReasonNoReply { agent, seconds } => {
                format!("{agent} did not reply within {seconds} seconds")
            }
            SomeCustomer => "A customer".into(),
            Customer => "Customer".into(),
            NewChatFrom { customer } => format!("New chat from {customer}"),
            TransferredChatFrom { customer } => format!("Chat with {customer} transferred to you"),
            CustomersWaiting { count: 1 } => "1 customer is waiting".into(),
            CustomersWaiting { count } => format!("{count} customers are waiting"),
            OpenTheQueue => "Open the queue to take a chat".into(),
            OfflineMessageFrom { name } => format!("Offline message from {name}"),
            MissedChatFrom { customer } => format!("Missed chat from {customer}"),
            MissedChatExplained => "You did not accept it in time, so you no longer accept \
                                    chats. Open the app to accept chats again."
                .into(),
            NobodyAccepting => {
                "nobody is accepting chats right now; leave an offline message instead".into()
            }
            QueueFull => {
                "every agent is busy and the queue is full; leave an offline message instead".into()
            }
            TooManyVisitorSessions => {
                "too many visitor sessions from this address; try again in a minute".into()
            }
            TooManyChatStartsFromAddress => {
                "too many chats started from this address; try again in a minute".into()
            }
            TooManyChatsStarting => "too many chats are starting right now; try again in a \
                                     moment or leave a message"
                .into(),
            SendingTooFast => "you are sending messages too fast; wait a moment".into(),
            TypingTooFast => "typing notices come too fast; send at most one a second".into(),
            TooManyVisitorRequests => "too many requests from this visitor; wait a moment".into(),
            NoLongerQueued => "the chat is no longer waiting in the queue".into(),
            TransferNotYours => "only the chat's agent or a supervisor may transfer it".into(),
            TransferNotActive { status } => {
                format!("only active chats can be transferred; this one is {status}")
            }
            AgentDeactivated => "that agent is deactivated".into(),
            AlreadyTheirs => "the chat is already theirs".into(),
            ChatClosed => "the chat is closed".into(),
            AlreadyClosed => "the chat is already closed".into(),
            TakeItFirst => "this chat is not yours: take it from the queue first".into(),
            JoinItFirst => "this chat is not yours: join it first".into(),
            TypingNotYours => "only the chat's agents may type in it".into(),
            TeammatesChatReadOnly => {
                "this is a teammate's chat: you may read it, not act in it".into()
            }
            NotesAreForAgents => "only agents send notes (visibility AGENTS)".into(),
            MessengerNotDelivered { reason } => {
                format!("This message did not reach Messenger: {reason}")
            }
            MessengerWindowClosed => "the customer last wrote on Messenger more than 7 days \
                                      ago: Facebook no longer accepts replies; wait until they \
                                      write again"
                .into(),
            OfflineEmailSubject { name } => format!("Offline message from {name}"),
            OfflineEmailBody {
                name,
                email,
                text,
                link,
            } => {
                let answer = match link {
                    Some(link) => {
                        format!(
                            "Reply to this email to answer {name}, or answer in the app: {link}"
                        )
                    }
                    None => format!("Reply to this email to answer {name}, or answer in the app."),
                };
                format!("{name} ({email}) left an offline message:\n\n{text}\n\n{answer}\n")
            }
            OfflineReplySubject { organization } => format!("Re: Your message to {organization}"),
            OfflineReplyBody {
                text,
                agent,
                organization,
                original,
            } => format!(
                "{text}\n\n{agent}, {organization}\n\nYou wrote:\n{}\n",
                super::email::quoted(original)
            ),
            EmailNotConfigured => {
                "replies by email need an SMTP server: set SWITCHBOARD_SMTP_HOST \
                                   and SWITCHBOARD_SMTP_FROM"
                    .into()
            }
            TagAdded { agent, tag } => format!("{agent} added the tag \u{201c}{tag}\u{201d}"),
            TagRemoved { agent, tag } => {
                format!("{agent} removed the tag \u{201c}{tag}\u{201d}")
            }
            NoteFrom { agent } => format!("Note from {agent}"),
            AgentUnavailable { agent } => format!(
                "{agent} is not available: they have no app open and no phone to reach; choose \
                 someone else, transfer to a group, or (supervisors and admins) force it"
            ),
        }
    }
}

impl Wording {
    /// The text in the default locale, for what is stored once for every reader.
    pub fn text(&self) -> String {
        self.render(DEFAULT_LOCALE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_with_its_arguments() {
        assert_eq!(
            Wording::Joined {
                agent: "Ana".into()
            }
            .render("en"),
            "Ana joined the chat"
        );
        assert_eq!(
            Wording::Rated {
                rating: Rating::Good,
                comment: Some("quick".into())
            }
            .render("en"),
            "The customer rated the chat good: quick"
        );
        assert_eq!(
            Wording::NotAnswering {
                agent: "Ana".into(),
                next: None
            }
            .render("en"),
            "Ana is not answering; we are finding you someone else"
        );
    }

    #[test]
    fn one_customer_waits_in_the_singular() {
        assert_eq!(
            Wording::CustomersWaiting { count: 1 }.render("en"),
            "1 customer is waiting"
        );
        assert_eq!(
            Wording::CustomersWaiting { count: 3 }.render("en"),
            "3 customers are waiting"
        );
    }

    #[test]
    fn german_covers_what_people_read_and_leaves_errors_english() {
        assert_eq!(
            Wording::Joined {
                agent: "Ana".into()
            }
            .render("de-AT"),
            "Ana ist dem Chat beigetreten"
        );
        assert_eq!(
            Wording::CustomersWaiting { count: 2 }.render("de"),
            "2 Kunden warten"
        );
        assert_eq!(
            Wording::NobodyAccepting.render("de"),
            Wording::NobodyAccepting.render("en")
        );
    }

    #[test]
    fn an_unknown_locale_falls_back_to_english() {
        let wording = Wording::NewChatFrom {
            customer: "Bo".into(),
        };
        assert_eq!(wording.render("xx-YY"), wording.render("en"));
        assert_eq!(wording.render(""), "New chat from Bo");
    }

    #[test]
    fn survives_a_round_trip_through_storage() {
        let wording = Wording::MissedChatFrom {
            customer: "Bo".into(),
        };
        let stored = serde_json::to_string(&wording).unwrap();
        assert_eq!(stored, r#"{"key":"missed_chat_from","customer":"Bo"}"#);
        assert_eq!(serde_json::from_str::<Wording>(&stored).unwrap(), wording);
    }
}
