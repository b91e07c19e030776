//! A terminal agent app built on the Switchboard SDK's public API alone.
//!
//! It signs an agent in (or resumes the session it kept from the last run), streams the
//! agent's events live (new chats, messages, transfers, the queue, the connection), and reads
//! commands from stdin: reply, take from the queue, transfer, close, change the routing status.
//!
//! # Running it
//!
//! Start a server in one terminal. On its first start it prints the owner's email and
//! password, and the widget key customers' chats come in with:
//!
//! ```sh
//! cargo run                      # the server, on 127.0.0.1:8080
//! ```
//!
//! Then the agent app in another:
//!
//! ```sh
//! SWITCHBOARD_PASSWORD='<the printed password>' \
//!   cargo run -p switchboard-sdk --example agent -- \
//!   --server http://127.0.0.1:8080 --email owner@example.com
//! ```
//!
//! Options: `--server URL` (default `http://127.0.0.1:8080`), `--email EMAIL` (required),
//! `--password PW` (or the environment variable `SWITCHBOARD_PASSWORD`; required), and
//! `--data-dir DIR`, where the session, the outbox and the event cursor are kept (default
//! `./.switchboard-agent/<email>`). With a session from an earlier run the app resumes it
//! instead of signing in again, and picks up the event stream where it stopped.
//!
//! Type `status accepting` if the app says you are not accepting chats, then be a customer in
//! a third terminal: a visitor session with the widget key, and a chat with its token.
//!
//! ```sh
//! W=wk_...   # the widget key the server printed
//! T=$(curl -s http://127.0.0.1:8080/graphql -H 'content-type: application/json' -d '{
//!  "query":"mutation($w:String!){startVisitorSession(input:{widgetKey:$w,name:\"Ann\"}){token}}",
//!  "variables": {"w": "'$W'"}}' | sed 's/.*"token":"\([^"]*\)".*/\1/')
//! curl -s http://127.0.0.1:8080/graphql -H 'content-type: application/json' \
//!   -H "authorization: Bearer $T" -d '{
//!  "query": "mutation { startChat(input: {message: \"Hello, anyone there?\"}) { id status } }"}'
//! ```
//!
//! The app shows `[new chat] #1 from Ann: Hello, anyone there?`; answer with
//! `reply #1 Hi Ann!`. Type `help` for the other commands. Chats are named `#1`, `#2`, ...
//! in the order this run saw them; a command takes that name, a chat's full id, or a unique
//! prefix of the id of a chat the app has seen. (Ids are UUIDv7s, whose first characters are
//! a timestamp: chats started close together share long prefixes, hence the short names.)

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use switchboard_sdk::{
    AgentEvent, Attention, AuthorKind, Chat, ChatStatus, Client, ClientConfig, ConnectionState,
    EventListener, Message, MessageKind, NamedRef, OutgoingMessage, OutgoingState, Role,
    RoutingStatus, SdkError, Session, SessionStore, TaskHandle, TransferTarget, Visibility,
};
use tokio::sync::mpsc;

const USAGE: &str = "\
usage: agent --email EMAIL [--password PW] [--server URL] [--data-dir DIR]

  --server URL     the Switchboard server (default http://127.0.0.1:8080)
  --email EMAIL    the agent's email
  --password PW    the agent's password (or set SWITCHBOARD_PASSWORD)
  --data-dir DIR   where the session, outbox and event cursor live
                   (default ./.switchboard-agent/<email>)";

const HELP: &str = "\
commands (<chat> is #N, a full chat id, or a unique prefix of one):
  chats                                  your active chats
  queue                                  customers waiting
  take <chat>                            take a chat from the queue
  open <chat>                            a chat's details and its last 20 messages
  reply <chat> <text>                    send a message
  agents <chat>                          who the chat could be transferred to
  transfer <chat> <agent|group:ID> [note]
                                         hand the chat over (agent: id, id prefix, email or name)
  close <chat>                           close a chat
  status [accepting|not-accepting|offline]
                                         show or set whether you get new chats
  outbox                                 messages not yet sent, or refused
  retry <message> / discard <message>    a FAILED message (the id `outbox` shows)
  help                                   this list
  login                                  sign in again (after the session ended)
  logout                                 sign out here and on the server, and quit
  quit                                   quit (the session is kept for next time)";

/// How many transcript entries `open` shows.
const OPEN_LAST: usize = 20;

#[tokio::main]
async fn main() -> ExitCode {
    match parse_args(std::env::args().skip(1)) {
        Ok(Parsed::Help) => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Ok(Parsed::Run(args)) => run(args).await,
        Err(problem) => {
            eprintln!("agent: {problem}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

// ---- arguments -------------------------------------------------------------------------------

struct Args {
    server: String,
    email: String,
    password: String,
    data_dir: PathBuf,
}

enum Parsed {
    Run(Args),
    Help,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Parsed, String> {
    let mut server = None;
    let mut email = None;
    let mut password = None;
    let mut data_dir = None;
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(Parsed::Help);
        }
        // Both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value.into())),
            _ => (arg, None),
        };
        let slot = match flag.as_str() {
            "--server" => &mut server,
            "--email" => &mut email,
            "--password" => &mut password,
            "--data-dir" => &mut data_dir,
            other => return Err(format!("unknown argument {other:?}")),
        };
        let value = match inline.or_else(|| args.next()) {
            Some(value) => value,
            None => return Err(format!("{flag} needs a value")),
        };
        *slot = Some(value);
    }
    let email = email
        .filter(|e| !e.trim().is_empty())
        .ok_or("--email is required")?;
    let password = password
        .or_else(|| std::env::var("SWITCHBOARD_PASSWORD").ok())
        .filter(|p| !p.is_empty())
        .ok_or("a password is required: --password or SWITCHBOARD_PASSWORD")?;
    let data_dir = match data_dir {
        Some(dir) => PathBuf::from(dir),
        None => default_data_dir(&email),
    };
    Ok(Parsed::Run(Args {
        server: server.unwrap_or_else(|| "http://127.0.0.1:8080".into()),
        email: email.trim().to_owned(),
        password,
        data_dir,
    }))
}

/// `./.switchboard-agent/<email>`: one directory per agent, since the SDK's outbox and event
/// cursor live there and two apps must not share them.
fn default_data_dir(email: &str) -> PathBuf {
    let safe: String = email
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "@.-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    Path::new(".switchboard-agent").join(safe)
}

// ---- the session file ------------------------------------------------------------------------

/// Keeps the session in `<data dir>/session.json`. A phone app would use the keychain or an
/// encrypted store instead; this is the terminal's equivalent, readable by its user only.
struct FileSessionStore {
    path: PathBuf,
    server: String,
    /// Told when the SDK ends the session (a refused refresh token, say), which the app
    /// would not hear of otherwise until the event stream reconnects.
    shared: Arc<Shared>,
    signals: mpsc::UnboundedSender<Signal>,
}

impl FileSessionStore {
    fn write(&self, session: &Session) -> std::io::Result<()> {
        let document = json!({
            "server": self.server,
            "agent_id": session.agent_id,
            "email": session.email,
            "access_token": session.access_token,
            "refresh_token": session.refresh_token,
            "access_token_expires_at_ms": millis(session.access_token_expires_at),
        });
        let bytes = serde_json::to_vec_pretty(&document).map_err(std::io::Error::other)?;
        // A new file renamed over the old one, so a crash never leaves half a session.
        let temporary = self.path.with_extension("json.tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temporary)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, &self.path)
    }

    /// The session an earlier run kept for this server and email, if any.
    fn load(&self, email: &str) -> Option<Session> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return None,
            Err(err) => {
                say(format!(
                    "[session] cannot read {}: {err}",
                    self.path.display()
                ));
                return None;
            }
        };
        let document: Value = match serde_json::from_slice(&bytes) {
            Ok(document) => document,
            Err(err) => {
                say(format!(
                    "[session] {} is unreadable: {err}",
                    self.path.display()
                ));
                return None;
            }
        };
        let text = |key: &str| document[key].as_str().map(str::to_owned);
        let session = Session {
            access_token: text("access_token")?,
            refresh_token: text("refresh_token")?,
            access_token_expires_at: SystemTime::UNIX_EPOCH
                + Duration::from_millis(document["access_token_expires_at_ms"].as_u64()?),
            agent_id: text("agent_id")?,
            email: text("email")?,
        };
        let same_server = text("server").as_deref() == Some(self.server.as_str());
        (same_server && session.email.eq_ignore_ascii_case(email)).then_some(session)
    }
}

impl SessionStore for FileSessionStore {
    fn save(&self, session: Session) {
        if let Err(err) = self.write(&session) {
            say(format!(
                "[session] cannot keep the session in {}: {err}",
                self.path.display()
            ));
        }
    }

    fn clear(&self) {
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => say(format!(
                "[session] cannot remove {}: {err}",
                self.path.display()
            )),
        }
        if !self.shared.signing_out.load(Ordering::SeqCst) {
            let _ = self.signals.send(Signal::SignedOut);
        }
    }
}

// ---- what the app remembers ------------------------------------------------------------------

/// Chats the app has seen, named `#1`, `#2`, ... in that order.
#[derive(Default)]
struct ChatBook {
    chats: Vec<KnownChat>,
}

struct KnownChat {
    id: String,
    customer: Option<String>,
}

impl ChatBook {
    /// Remembers a chat (and its customer's name); returns its short name.
    fn note(&mut self, chat: &Chat) -> String {
        let name = self.note_id(&chat.id);
        if let Some(known) = self.chats.iter_mut().find(|k| k.id == chat.id) {
            known.customer = Some(customer_name(chat));
        }
        name
    }

    /// Remembers a chat by id; returns its short name.
    fn note_id(&mut self, id: &str) -> String {
        let index = match self.chats.iter().position(|k| k.id == id) {
            Some(index) => index,
            None => {
                self.chats.push(KnownChat {
                    id: id.to_owned(),
                    customer: None,
                });
                self.chats.len() - 1
            }
        };
        format!("#{}", index + 1)
    }

    fn customer(&self, id: &str) -> Option<String> {
        self.chats
            .iter()
            .find(|k| k.id == id)
            .and_then(|k| k.customer.clone())
    }

    /// `#N`, a full id, or a unique prefix of a known chat's id. An id the app has not seen
    /// goes to the server as it is, which says whether it exists.
    fn resolve(&self, input: &str) -> Result<String, String> {
        if let Some(number) = input.strip_prefix('#') {
            return number
                .parse::<usize>()
                .ok()
                .and_then(|n| n.checked_sub(1))
                .and_then(|index| self.chats.get(index))
                .map(|k| k.id.clone())
                .ok_or_else(|| format!("no chat {input} (see `chats` and `queue`)"));
        }
        if self.chats.iter().any(|k| k.id == input) {
            return Ok(input.to_owned());
        }
        let matches: Vec<usize> = (0..self.chats.len())
            .filter(|&i| self.chats[i].id.starts_with(input))
            .collect();
        match matches.as_slice() {
            [] => Ok(input.to_owned()),
            [one] => Ok(self.chats[*one].id.clone()),
            several => {
                let names: Vec<String> = several.iter().map(|i| format!("#{}", i + 1)).collect();
                Err(format!(
                    "{input:?} matches {}; type more of the id",
                    names.join(", ")
                ))
            }
        }
    }
}

/// The connection state as last shown.
#[derive(PartialEq, Eq)]
enum Said {
    Connecting,
    Live,
    Lost { reason: String, at: Instant },
}

/// State the event listener (on the SDK's threads) and the command loop share.
#[derive(Default)]
struct Shared {
    book: Mutex<ChatBook>,
    /// The signed-in agent, to tell their own messages apart.
    agent_id: Mutex<Option<String>>,
    /// Chats whose customer is typing, to say so once rather than on every keystroke.
    typing: Mutex<HashSet<String>>,
    last_connection: Mutex<Option<Said>>,
    /// Set while signing out on purpose, so the stream's SignedOut is not a surprise.
    signing_out: AtomicBool,
    /// The queue's length as last heard.
    queue_length: Mutex<Option<i64>>,
    /// Transcript entries already shown live, so none is shown twice.
    printed: Mutex<HashSet<String>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn note(&self, chat: &Chat) -> String {
        lock(&self.book).note(chat)
    }

    fn note_id(&self, id: &str) -> String {
        lock(&self.book).note_id(id)
    }

    fn is_me(&self, agent_id: Option<&str>) -> bool {
        agent_id.is_some() && lock(&self.agent_id).as_deref() == agent_id
    }
}

// ---- the event listener ----------------------------------------------------------------------

/// What the listener tells the command loop.
enum Signal {
    /// The session ended without `logout` (the stream or the session store says so): sign
    /// in again.
    SignedOut,
}

/// Prints the agent's events as they come.
struct Printer {
    shared: Arc<Shared>,
    signals: mpsc::UnboundedSender<Signal>,
    /// For the transcript of a new chat; weak, since the client keeps its listeners.
    client: Weak<Client>,
    /// The app's runtime, for that request (the listener is called on the SDK's threads).
    runtime: tokio::runtime::Handle,
}

impl EventListener for Printer {
    fn on_event(&self, event: AgentEvent) {
        if let Some(line) = self.describe(event) {
            say(line);
        }
    }

    fn on_connection_state(&self, state: ConnectionState) {
        // Changes only: a stream that keeps failing the same way is said once a minute, not
        // on every attempt, and "connecting" only before the first connection.
        let mut last = lock(&self.shared.last_connection);
        match state {
            ConnectionState::Connecting => {
                if last.is_none() {
                    *last = Some(Said::Connecting);
                    say("[connection] connecting...");
                }
            }
            ConnectionState::Connected => {
                if *last != Some(Said::Live) {
                    *last = Some(Said::Live);
                    say("[connection] live");
                }
            }
            ConnectionState::WaitingForNetwork {
                retry_in_ms,
                reason,
            } => {
                if let Some(Said::Lost { reason: before, at }) = &*last
                    && *before == reason
                    && at.elapsed() < Duration::from_secs(60)
                {
                    return;
                }
                say(format!(
                    "[connection] lost ({reason}); trying again in {:.1}s",
                    retry_in_ms as f64 / 1000.0
                ));
                *last = Some(Said::Lost {
                    reason,
                    at: Instant::now(),
                });
            }
            ConnectionState::SignedOut => {
                if !self.shared.signing_out.load(Ordering::SeqCst) {
                    let _ = self.signals.send(Signal::SignedOut);
                }
            }
        }
    }

    fn on_outgoing_message(&self, message: OutgoingMessage) {
        let chat = self.shared.note_id(&message.chat_id);
        match message.state {
            OutgoingState::Sent => say(format!("[sent] {chat}: {}", clip(&message.text, 60))),
            OutgoingState::Failed => say(format!(
                "[FAILED] {chat}: {} -- server said {}: {} (`retry {id}` or `discard {id}`)",
                clip(&message.text, 60),
                message
                    .error_code
                    .map_or("?".to_owned(), |code| format!("{code:?}")),
                message.error_message.as_deref().unwrap_or(""),
                id = short_id(&message.client_id),
            )),
            OutgoingState::Pending => {}
        }
    }
}

impl Printer {
    /// `[new chat] #N from <customer>: <their first message>`, and any more they wrote.
    fn announce_new_chat(&self, chat: Chat, reason: Option<String>) {
        let shared = self.shared.clone();
        let client = self.client.upgrade();
        self.runtime.spawn(async move {
            let name = shared.note(&chat);
            let customer = customer_name(&chat);
            let mut header = format!("[new chat] {name} from {customer}");
            if let Some(reason) = reason {
                header += &format!(" ({reason})");
            }
            let opening = match client {
                Some(client) => client.chat(chat.id.clone(), None, 100).await,
                None => return,
            };
            let mut first = true;
            let mut more = Vec::new();
            match opening {
                Ok(detail) => {
                    let mut printed = lock(&shared.printed);
                    let customer_says = detail.messages.into_iter().filter(|m| {
                        m.kind == MessageKind::Message && m.author == AuthorKind::Customer
                    });
                    for message in customer_says {
                        // Skipped when the stream has already shown it.
                        if !printed.insert(message.id.clone()) {
                            continue;
                        }
                        if first {
                            header += &format!(": {}", indent(&message.text));
                            first = false;
                        } else {
                            more.push(format_message(&name, &message, Some(&customer), &shared));
                        }
                    }
                }
                Err(err) => header += &format!(" (transcript not loaded: {})", describe(&err)),
            }
            let context = customer_context(&chat);
            if !context.is_empty() {
                header += &format!("\n    {}", context.join(", "));
            }
            say(header);
            for line in more {
                say(line);
            }
        });
    }

    fn describe(&self, event: AgentEvent) -> Option<String> {
        let shared = &self.shared;
        Some(match event {
            AgentEvent::ChatAssigned { chat, reason, .. } => {
                // The customer's first words came before the chat was ours, so the stream
                // does not carry them: read them from the transcript.
                self.announce_new_chat(chat, reason);
                return None;
            }
            AgentEvent::ChatTransferred {
                chat,
                from_agent,
                to_agent,
                to_group_id,
                note,
                reason,
                ..
            } => {
                let name = shared.note(&chat);
                let customer = customer_name(&chat);
                let mut line = if shared.is_me(to_agent.as_ref().map(|a| a.id.as_str())) {
                    let from = agent_label(from_agent.as_ref());
                    format!("[transferred to you] {name} from {customer}, by {from}")
                } else {
                    let to = match (&chat.assignee, to_group_id) {
                        (Some(agent), _) => agent.name.clone(),
                        (None, Some(group)) => format!("group {group}"),
                        (None, None) => agent_label(to_agent.as_ref()),
                    };
                    format!("[transferred away] {name} ({customer}) to {to}")
                };
                if let Some(reason) = reason {
                    line += &format!(" ({reason})");
                }
                if let Some(note) = note.filter(|n| !n.trim().is_empty()) {
                    line += &format!("\n    note: {}", indent(&note));
                }
                line
            }
            AgentEvent::MessageAdded { message, .. } => {
                if message.author == AuthorKind::Customer {
                    lock(&shared.typing).remove(&message.chat_id);
                }
                // "You joined the chat" says no more than the [new chat] line.
                if message.kind == MessageKind::AgentAssigned
                    || !lock(&shared.printed).insert(message.id.clone())
                {
                    return None;
                }
                let name = shared.note_id(&message.chat_id);
                let customer = lock(&shared.book).customer(&message.chat_id);
                format_message(&name, &message, customer.as_deref(), shared)
            }
            AgentEvent::ChatClosed { chat, .. } => {
                let name = shared.note(&chat);
                lock(&shared.typing).remove(&chat.id);
                format!("[closed] {name} ({})", customer_name(&chat))
            }
            AgentEvent::AttentionChanged {
                chat_id, attention, ..
            } => {
                let name = shared.note_id(&chat_id);
                let what = match attention {
                    Attention::Normal => "back to normal",
                    Attention::WaitingLong => "RED: the customer has waited long for an answer",
                    Attention::CustomerIdle => "grey: the customer has gone quiet",
                };
                format!("[attention] {name} {what}")
            }
            AgentEvent::RoutingStatusChanged { routing_status, .. } => {
                format!("[status] {}", routing_label(routing_status))
            }
            AgentEvent::OfflineMessageReceived {
                offline_message, ..
            } => {
                let handled = if offline_message.handled {
                    " (handled)"
                } else {
                    ""
                };
                format!(
                    "[offline message] from {} <{}>{handled}\n    {}",
                    offline_message.name,
                    offline_message.email,
                    indent(&offline_message.text)
                )
            }
            AgentEvent::TypingChanged {
                chat_id,
                author,
                is_typing,
                ..
            } => {
                // Said once when the customer starts; the sneak peek would flood the screen.
                if author != AuthorKind::Customer {
                    return None;
                }
                let started = {
                    let mut typing = lock(&shared.typing);
                    if is_typing {
                        typing.insert(chat_id.clone())
                    } else {
                        typing.remove(&chat_id);
                        false
                    }
                };
                if !started {
                    return None;
                }
                let name = shared.note_id(&chat_id);
                format!("[typing] {name} the customer is typing...")
            }
            AgentEvent::ChatQueued { chat, queue_length } => {
                *lock(&shared.queue_length) = Some(queue_length);
                let name = shared.note(&chat);
                format!(
                    "[queue] {name} {} is waiting ({queue_length} in the queue; `take {name}`)",
                    customer_name(&chat)
                )
            }
            AgentEvent::QueueChanged { queue_length } => {
                // Said when the length changes, not on every chat routed past the queue.
                let before = lock(&shared.queue_length).replace(queue_length);
                if before == Some(queue_length) || (before.is_none() && queue_length == 0) {
                    return None;
                }
                format!("[queue] {queue_length} waiting")
            }
            AgentEvent::WebhookEndpointDisabled { .. } => {
                "[webhooks] an endpoint kept failing and was disabled: see the admin's webhooks"
                    .to_owned()
            }
        })
    }
}

/// A transcript entry as one line (more when the text has several).
fn format_message(
    chat: &str,
    message: &Message,
    customer: Option<&str>,
    shared: &Shared,
) -> String {
    let text = indent(&message.text);
    if message.kind != MessageKind::Message && message.kind != MessageKind::TransferNote {
        return format!("[event] {chat} {text}");
    }
    let author = match message.author {
        AuthorKind::Agent if shared.is_me(message.author_id.as_deref()) => "you".to_owned(),
        AuthorKind::Agent => message
            .author_name
            .clone()
            .unwrap_or_else(|| "agent".into()),
        AuthorKind::Customer => message
            .author_name
            .clone()
            .or_else(|| customer.map(str::to_owned))
            .unwrap_or_else(|| "visitor".into()),
        AuthorKind::System => "system".to_owned(),
    };
    let label = if message.visibility == Visibility::Agents {
        "note"
    } else {
        "message"
    };
    format!("[{label}] {chat} {author}: {text}")
}

// ---- the app ---------------------------------------------------------------------------------

async fn run(args: Args) -> ExitCode {
    let shared = Arc::new(Shared::default());
    let (signals, mut signal_rx) = mpsc::unbounded_channel();
    let store = FileSessionStore {
        path: args.data_dir.join("session.json"),
        server: args.server.trim().to_owned(),
        shared: shared.clone(),
        signals: signals.clone(),
    };
    // The SDK creates the directory too, but the store needs it first.
    if let Err(err) = std::fs::create_dir_all(&args.data_dir) {
        eprintln!("agent: cannot create {}: {err}", args.data_dir.display());
        return ExitCode::FAILURE;
    }
    let kept = store.load(&args.email);
    let config = ClientConfig {
        server_url: args.server.clone(),
        data_dir: args.data_dir.to_string_lossy().into_owned(),
    };
    let client = match Client::new(config, Box::new(store)) {
        Ok(client) => client,
        Err(err) => {
            eprintln!("agent: {}", describe(&err));
            return ExitCode::FAILURE;
        }
    };
    let mut app = App {
        client,
        shared,
        signals,
        subscription: None,
        last_sign_in: None,
        args,
    };
    if !app.start(kept).await {
        return ExitCode::FAILURE;
    }
    say("Type `help` for the commands.");

    let mut lines = stdin_lines();
    loop {
        tokio::select! {
            line = lines.recv() => match line {
                Some(Ok(line)) => {
                    if app.command(&line).await == Flow::Quit {
                        break;
                    }
                }
                // End of input (a pipe ran dry, or Ctrl-D): as `quit`.
                None => {
                    app.quit();
                    break;
                }
                Some(Err(err)) => {
                    eprintln!("agent: cannot read stdin: {err}");
                    break;
                }
            },
            Some(signal) = signal_rx.recv() => app.signal(signal).await,
        }
    }
    ExitCode::SUCCESS
}

/// The lines typed on stdin, read on a thread of their own. (The SDK's Tokio has no `io-std`
/// feature, so there is no `tokio::io::stdin`; and Tokio advises a plain thread for
/// interactive input anyway.) The channel closes at the end of input.
fn stdin_lines() -> mpsc::UnboundedReceiver<std::io::Result<String>> {
    let (lines, receiver) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let failed = line.is_err();
            if lines.send(line).is_err() || failed {
                return;
            }
        }
    });
    receiver
}

#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Quit,
}

struct App {
    client: Arc<Client>,
    shared: Arc<Shared>,
    signals: mpsc::UnboundedSender<Signal>,
    /// The event stream; it runs as long as this is kept.
    subscription: Option<Arc<TaskHandle>>,
    /// When this run last signed in with the password.
    last_sign_in: Option<Instant>,
    args: Args,
}

impl App {
    /// Resumes the kept session, or signs in; then starts the event stream. False when
    /// there is no way in.
    async fn start(&mut self, kept: Option<Session>) -> bool {
        let mut signed_in = false;
        if let Some(session) = kept {
            say(format!("Resuming the session of {}...", session.email));
            let agent_id = session.agent_id.clone();
            self.client.restore(session);
            match self.client.me().await {
                Ok(agent) => {
                    *lock(&self.shared.agent_id) = Some(agent.id.clone());
                    print_agent(&agent);
                    signed_in = true;
                }
                Err(SdkError::Unauthenticated { msg: message }) => {
                    say(format!("The kept session is no longer valid ({message})."));
                }
                Err(err) => {
                    // The session may well be fine: work offline, the stream connects later.
                    say(format!(
                        "Could not check the session: {}; carrying on with it.",
                        describe(&err)
                    ));
                    *lock(&self.shared.agent_id) = Some(agent_id);
                    signed_in = true;
                }
            }
        }
        if !signed_in && !self.sign_in().await {
            return false;
        }
        self.subscribe();
        self.show_chats().await;
        true
    }

    async fn sign_in(&mut self) -> bool {
        say(format!(
            "Signing in as {} on {}...",
            self.args.email, self.args.server
        ));
        self.last_sign_in = Some(Instant::now());
        match self
            .client
            .login(self.args.email.clone(), self.args.password.clone())
            .await
        {
            Ok(agent) => {
                *lock(&self.shared.agent_id) = Some(agent.id.clone());
                print_agent(&agent);
                true
            }
            Err(err) => {
                say(format!("Cannot sign in: {}", describe(&err)));
                false
            }
        }
    }

    /// Signs in with the password and restarts the event stream.
    async fn login(&mut self) {
        if self.sign_in().await {
            self.subscribe();
        }
    }

    fn subscribe(&mut self) {
        *lock(&self.shared.last_connection) = None;
        let printer = Printer {
            shared: self.shared.clone(),
            signals: self.signals.clone(),
            client: Arc::downgrade(&self.client),
            runtime: tokio::runtime::Handle::current(),
        };
        if let Some(old) = self.subscription.take() {
            old.cancel();
        }
        self.subscription = Some(self.client.subscribe(Box::new(printer)));
    }

    async fn signal(&mut self, signal: Signal) {
        match signal {
            Signal::SignedOut => {
                // Both the stream and the session store may say so; once is enough.
                if self.client.session().is_some() {
                    return;
                }
                say("The session has ended.");
                // Should sessions keep ending right after signing in, stop rather than loop.
                if self
                    .last_sign_in
                    .is_some_and(|at| at.elapsed() < Duration::from_secs(10))
                {
                    say("Signed out; type `login` to sign in again.");
                    return;
                }
                self.login().await;
            }
        }
    }

    async fn command(&mut self, line: &str) -> Flow {
        let (word, rest) = split_word(line);
        let result = match word {
            "" => Ok(()),
            "help" | "?" => {
                say(HELP);
                Ok(())
            }
            "chats" => {
                self.show_chats().await;
                Ok(())
            }
            "queue" => self.queue().await,
            "take" => self.take(rest).await,
            "open" => self.open(rest).await,
            "reply" => self.reply(rest),
            "agents" => self.agents(rest).await,
            "transfer" => self.transfer(rest).await,
            "close" => self.close(rest).await,
            "status" => self.status(rest).await,
            "outbox" => {
                self.outbox();
                Ok(())
            }
            "retry" => self.retry(rest),
            "discard" => self.discard(rest),
            "quit" | "exit" => {
                self.quit();
                return Flow::Quit;
            }
            "login" => {
                self.login().await;
                Ok(())
            }
            "logout" => {
                self.logout().await;
                return Flow::Quit;
            }
            other => Err(format!("unknown command {other:?}; type `help`")),
        };
        if let Err(problem) = result {
            say(format!("  {problem}"));
        }
        Flow::Continue
    }

    /// A command's one argument, a chat, as a chat id.
    fn chat_arg(&self, arg: &str, usage: &str) -> Result<String, String> {
        let (chat, extra) = split_word(arg);
        if chat.is_empty() || !extra.trim().is_empty() {
            return Err(format!("usage: {usage}"));
        }
        lock(&self.shared.book).resolve(chat)
    }

    async fn show_chats(&self) {
        match self.client.my_chats().await {
            Ok(chats) if chats.is_empty() => say("No active chats."),
            Ok(chats) => {
                say(format!("Your chats ({}):", chats.len()));
                for chat in &chats {
                    say(format!("  {}", self.chat_line(chat)));
                }
            }
            Err(err) => say(format!("  {}", describe(&err))),
        }
    }

    async fn queue(&self) -> Result<(), String> {
        let entries = self.client.queue().await.map_err(|e| describe(&e))?;
        if entries.is_empty() {
            say("Nobody is waiting.");
            return Ok(());
        }
        say(format!("Waiting ({}):", entries.len()));
        for entry in &entries {
            let name = self.shared.note(&entry.chat);
            say(format!(
                "  {}. {name} {} -- waiting {}, about {} more{}  [{}]",
                entry.position,
                customer_name(&entry.chat),
                human(entry.wait_seconds),
                human(entry.estimated_wait_seconds),
                group_suffix(&entry.chat),
                entry.chat.id,
            ));
        }
        Ok(())
    }

    async fn take(&self, rest: &str) -> Result<(), String> {
        let chat_id = self.chat_arg(rest, "take <chat>")?;
        let chat = self
            .client
            .take_chat(chat_id)
            .await
            .map_err(|e| describe(&e))?;
        say(format!("  Took {}", self.chat_line(&chat)));
        Ok(())
    }

    async fn open(&self, rest: &str) -> Result<(), String> {
        let chat_id = self.chat_arg(rest, "open <chat>")?;
        // The end of the transcript: what a chat screen opens with.
        let page = self
            .client
            .chat_latest(chat_id, None, OPEN_LAST as u32)
            .await
            .map_err(|e| describe(&e))?;
        let chat = page.chat;
        let last = page.messages;
        let name = self.shared.note(&chat);
        say(self.chat_line(&chat));
        let mut details: Vec<String> = chat.customer.email.iter().cloned().collect();
        details.extend(customer_context(&chat));
        if !details.is_empty() {
            say(format!("  customer: {}", details.join(", ")));
        }
        if page.has_more {
            say("  ... earlier entries above");
        }
        for message in &last {
            let line = format_message(&name, message, Some(&customer_name(&chat)), &self.shared);
            say(format!("  {} {line}", clock(message.created_at)));
        }
        if last.is_empty() {
            say("  (no messages)");
        }
        Ok(())
    }

    fn reply(&self, rest: &str) -> Result<(), String> {
        let (chat, text) = split_word(rest);
        let text = text.trim();
        if text.is_empty() {
            return Err("usage: reply <chat> <text>".into());
        }
        let chat_id = self.chat_arg(chat, "reply <chat> <text>")?;
        let message = self
            .client
            .send_message(chat_id.clone(), text.to_owned())
            .map_err(|e| describe(&e))?;
        let name = self.shared.note_id(&chat_id);
        say(format!(
            "  [pending] {name}: {} (message {})",
            clip(text, 60),
            short_id(&message.client_id)
        ));
        Ok(())
    }

    async fn agents(&self, rest: &str) -> Result<(), String> {
        let chat_id = self.chat_arg(rest, "agents <chat>")?;
        let candidates = self
            .client
            .agents_for_transfer(chat_id.clone())
            .await
            .map_err(|e| describe(&e))?;
        let name = self.shared.note_id(&chat_id);
        if candidates.is_empty() {
            say(format!("  Nobody else could take {name} now."));
            return Ok(());
        }
        say(format!("Who could take {name}, least loaded first:"));
        for c in &candidates {
            say(format!(
                "  {} <{}> {}/{} chats, {}{}  [{}]",
                c.agent.name,
                c.agent.email,
                c.active_chats,
                c.chat_limit,
                routing_label(c.agent.routing_status),
                if c.reachable {
                    ""
                } else {
                    ", not reachable (a transfer needs force)"
                },
                c.agent.id,
            ));
        }
        Ok(())
    }

    async fn transfer(&self, rest: &str) -> Result<(), String> {
        const USAGE: &str = "transfer <chat> <agent|group:ID> [note]";
        let (chat, rest) = split_word(rest);
        let (target, note) = split_word(rest);
        if target.is_empty() {
            return Err(format!("usage: {USAGE}"));
        }
        let chat_id = self.chat_arg(chat, USAGE)?;
        let target = match target.strip_prefix("group:") {
            Some("") => return Err(format!("usage: {USAGE}")),
            Some(group_id) => TransferTarget::Group {
                group_id: group_id.to_owned(),
            },
            None => TransferTarget::Agent {
                agent_id: self.find_agent(&chat_id, target).await?,
            },
        };
        let note = Some(note.trim().to_owned()).filter(|n| !n.is_empty());
        let chat = self
            .client
            .transfer_chat(chat_id, target, note, false)
            .await
            .map_err(|e| describe(&e))?;
        say(format!("  Transferred: {}", self.chat_line(&chat)));
        Ok(())
    }

    /// An agent among the chat's transfer candidates, by id, email, name or a unique prefix
    /// of the id; anything else goes to the server as an id.
    async fn find_agent(&self, chat_id: &str, wanted: &str) -> Result<String, String> {
        let Ok(candidates) = self.client.agents_for_transfer(chat_id.to_owned()).await else {
            return Ok(wanted.to_owned());
        };
        let agents: Vec<_> = candidates.into_iter().map(|c| c.agent).collect();
        if let Some(agent) = agents.iter().find(|a| {
            a.id == wanted
                || a.email.eq_ignore_ascii_case(wanted)
                || a.name.eq_ignore_ascii_case(wanted)
        }) {
            return Ok(agent.id.clone());
        }
        let matching: Vec<_> = agents.iter().filter(|a| a.id.starts_with(wanted)).collect();
        match matching.as_slice() {
            [] => Ok(wanted.to_owned()),
            [one] => Ok(one.id.clone()),
            several => Err(format!(
                "{wanted:?} could be {}",
                several
                    .iter()
                    .map(|a| a.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    async fn close(&self, rest: &str) -> Result<(), String> {
        let chat_id = self.chat_arg(rest, "close <chat>")?;
        let chat = self
            .client
            .close_chat(chat_id)
            .await
            .map_err(|e| describe(&e))?;
        say(format!("  Closed {}", self.chat_line(&chat)));
        Ok(())
    }

    async fn status(&self, rest: &str) -> Result<(), String> {
        let status = match rest.trim() {
            "" => {
                let agent = self.client.me().await.map_err(|e| describe(&e))?;
                print_agent(&agent);
                return Ok(());
            }
            "accepting" => RoutingStatus::AcceptingChats,
            "not-accepting" => RoutingStatus::NotAcceptingChats,
            "offline" => RoutingStatus::Offline,
            _ => return Err("usage: status [accepting|not-accepting|offline]".into()),
        };
        let agent = self
            .client
            .set_routing_status(status)
            .await
            .map_err(|e| describe(&e))?;
        say(format!(
            "  You are {}.",
            routing_label(agent.routing_status)
        ));
        Ok(())
    }

    fn outbox(&self) {
        let messages = self.client.outbox();
        if messages.is_empty() {
            say("The outbox is empty.");
            return;
        }
        say(format!("Outbox ({}):", messages.len()));
        for m in &messages {
            let name = self.shared.note_id(&m.chat_id);
            let state = match m.state {
                OutgoingState::Pending => "PENDING".to_owned(),
                OutgoingState::Sent => "SENT".to_owned(),
                OutgoingState::Failed => format!(
                    "FAILED ({}: {})",
                    m.error_code
                        .map_or("?".to_owned(), |code| format!("{code:?}")),
                    m.error_message.as_deref().unwrap_or("")
                ),
            };
            say(format!(
                "  {} {name} {state}, {}: {}",
                short_id(&m.client_id),
                ago(m.created_at),
                clip(&m.text, 50)
            ));
        }
    }

    /// An outbox message by its client id or a unique part of it (`outbox` shows the end).
    fn outgoing_arg(&self, arg: &str, usage: &str) -> Result<String, String> {
        let arg = arg.trim();
        if arg.is_empty() {
            return Err(format!("usage: {usage}"));
        }
        let ids: Vec<String> = self
            .client
            .outbox()
            .into_iter()
            .map(|m| m.client_id)
            .filter(|id| id.contains(arg))
            .collect();
        match ids.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(format!("no message {arg:?} in the outbox (see `outbox`)")),
            _ => Err(format!("{arg:?} matches several messages; type more of it")),
        }
    }

    fn retry(&self, rest: &str) -> Result<(), String> {
        let id = self.outgoing_arg(rest, "retry <message>")?;
        self.client.retry_message(id).map_err(|e| describe(&e))?;
        say("  Sending it again.");
        Ok(())
    }

    fn discard(&self, rest: &str) -> Result<(), String> {
        let id = self.outgoing_arg(rest, "discard <message>")?;
        self.client.discard_message(id).map_err(|e| describe(&e))?;
        say("  Dropped.");
        Ok(())
    }

    fn quit(&self) {
        let pending = self
            .client
            .outbox()
            .iter()
            .filter(|m| m.state == OutgoingState::Pending)
            .count();
        if pending > 0 {
            say(format!(
                "{pending} message(s) not sent yet; they go out when the app next runs."
            ));
        }
        say("Bye. The session is kept for next time; `logout` ends it.");
    }

    async fn logout(&mut self) {
        self.shared.signing_out.store(true, Ordering::SeqCst);
        match self.client.logout().await {
            Ok(()) => say("Signed out."),
            Err(err) => say(format!("Signed out here; the server: {}", describe(&err))),
        }
        if let Some(subscription) = self.subscription.take() {
            subscription.cancel();
        }
    }

    /// One chat in a line: short name, customer, state, and the full id.
    fn chat_line(&self, chat: &Chat) -> String {
        let name = self.shared.note(chat);
        let status = match chat.status {
            ChatStatus::Queued => match chat.wait_seconds {
                Some(wait) => format!("queued {}", human(wait)),
                None => "queued".to_owned(),
            },
            ChatStatus::Active => match &chat.assignee {
                Some(agent) if self.shared.is_me(Some(&agent.id)) => "yours".to_owned(),
                Some(agent) => format!("with {}", agent.name),
                None => "active".to_owned(),
            },
            ChatStatus::Closed => "closed".to_owned(),
        };
        let attention = match chat.attention {
            Attention::Normal => "",
            Attention::WaitingLong => " RED",
            Attention::CustomerIdle => " idle",
        };
        format!(
            "{name} {} -- {status}{attention}, started {}{}  [{}]",
            customer_name(chat),
            ago(chat.created_at),
            group_suffix(chat),
            chat.id
        )
    }
}

// ---- small helpers ---------------------------------------------------------------------------

/// Prints a line (or several) at once, so lines from the listener's threads don't interleave.
fn say(text: impl AsRef<str>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", text.as_ref());
    let _ = out.flush();
}

/// An SDK error, said plainly.
fn describe(err: &SdkError) -> String {
    match err {
        SdkError::Unauthenticated { msg: message } if message == "not signed in" => message.clone(),
        SdkError::Unauthenticated { msg: message } => format!("not signed in: {message}"),
        SdkError::Network { msg: message } => format!("cannot reach the server: {message}"),
        other => format!("server said {:?}: {}", other.code(), other.msg()),
    }
}

fn print_agent(agent: &switchboard_sdk::Agent) {
    let role = match agent.role {
        Role::Agent => "agent",
        Role::Supervisor => "supervisor",
        Role::Admin => "admin",
        Role::Owner => "owner",
    };
    say(format!(
        "Signed in as {} <{}>, {role}, up to {} chats at once; {}.",
        agent.name,
        agent.email,
        agent.chat_limit,
        routing_label(agent.routing_status)
    ));
    if agent.routing_status != RoutingStatus::AcceptingChats {
        say("Type `status accepting` to get new chats.");
    }
}

fn routing_label(status: RoutingStatus) -> &'static str {
    match status {
        RoutingStatus::AcceptingChats => "accepting chats",
        RoutingStatus::NotAcceptingChats => "not accepting chats",
        RoutingStatus::Offline => "offline",
    }
}

fn customer_name(chat: &Chat) -> String {
    chat.customer
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or("visitor")
        .to_owned()
}

/// Where the customer is, for a new chat.
fn customer_context(chat: &Chat) -> Vec<String> {
    let mut parts = Vec::new();
    if let Some(location) = &chat.customer.location {
        parts.push(location.clone());
    }
    if let Some(page) = &chat.customer.current_page {
        parts.push(match &page.title {
            Some(title) => format!("on {title:?} {}", page.url),
            None => format!("on {}", page.url),
        });
    }
    parts
}

fn group_suffix(chat: &Chat) -> String {
    chat.group
        .as_ref()
        .map(|g| format!(", group {} ({})", g.name, g.id))
        .unwrap_or_default()
}

/// An agent the events name by id only.
fn agent_label(agent: Option<&NamedRef>) -> String {
    match agent {
        Some(agent) => agent.name.clone(),
        None => "the system".to_owned(),
    }
}

/// The first word and the rest of the line.
fn split_word(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    match text.find(char::is_whitespace) {
        Some(end) => (&text[..end], &text[end..]),
        None => (text, ""),
    }
}

/// At most `max` characters, on one line.
fn clip(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= max {
        flat
    } else {
        let mut short: String = flat.chars().take(max.saturating_sub(3)).collect();
        short.push_str("...");
        short
    }
}

/// Multi-line text with its later lines indented under the first.
fn indent(text: &str) -> String {
    text.trim_end().replace('\n', "\n    ")
}

/// The last 8 characters of an id: the random end of a UUIDv7 (its start is a timestamp).
fn short_id(id: &str) -> String {
    let count = id.chars().count();
    id.chars().skip(count.saturating_sub(8)).collect()
}

fn millis(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn human(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
    }
}

fn ago(at: SystemTime) -> String {
    match SystemTime::now().duration_since(at) {
        Ok(elapsed) => format!(
            "{} ago",
            human(i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        ),
        Err(_) => "just now".to_owned(),
    }
}

/// The time of day, UTC.
fn clock(at: SystemTime) -> String {
    let seconds = millis(at) / 1000 % 86_400;
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )
}
