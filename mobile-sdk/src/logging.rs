//! The app's logger: the SDK's `tracing` events, and the `log` records of the libraries under
//! it (HTTP, TLS, WebSocket), handed to the `LogListener` the app registers with `set_logger`, so
//! they land in os_log, Logcat or the app's own log files instead of a terminal nobody sees.

use std::cell::Cell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Once};

/// How much the SDK says, most severe first: a logger set to `Info` gets `Error`, `Warn` and
/// `Info` records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, uniffi::Enum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

/// One thing the SDK logged.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LogRecord {
    pub level: LogLevel,
    /// Where it comes from: a module of the SDK (`switchboard_sdk::stream`) or of a library
    /// under it (`rustls::…`, `tungstenite::…`).
    pub target: String,
    /// The text, followed by the record's fields as `name=value`.
    pub message: String,
}

/// Receives the SDK's log records. Called on whichever thread logged, the SDK's or the app's;
/// it should hand the record on quickly (to os_log, `android.util.Log`, Python's `logging`).
/// What it logs through the SDK in turn is dropped rather than sent back to it.
#[uniffi::export(callback_interface)]
pub trait LogListener: Send + Sync {
    fn log(&self, record: LogRecord);
}

/// The app's logger, and the most detailed level it wants (`0`: none).
static LOGGER: Mutex<Option<Arc<dyn LogListener>>> = Mutex::new(None);
static MAX_LEVEL: AtomicU8 = AtomicU8::new(0);
/// Whether the `log` records of the libraries come here (no other `log` logger came first), so
/// `log`'s own level may follow the app's and skip records nobody wants before they are made.
static OWNS_LOG: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Set while this thread is inside the app's logger, so its own logging does not loop.
    static IN_LOGGER: Cell<bool> = const { Cell::new(false) };
}

/// Sends the SDK's logs at `level` and more severe to `logger`, replacing any logger set
/// before. Call it once at app start, before creating a `Client`.
///
/// The SDK installs itself as the process's `tracing` and `log` destination the first time;
/// in a Rust program that already installed its own, those keep the records and `logger`
/// gets none of theirs.
#[uniffi::export]
pub fn set_logger(logger: Box<dyn LogListener>, level: LogLevel) {
    *LOGGER.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::from(logger));
    MAX_LEVEL.store(rank(level), Ordering::Release);
    install();
    if OWNS_LOG.load(Ordering::Acquire) {
        log::set_max_level(match level {
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Trace => log::LevelFilter::Trace,
        });
    }
}

/// Stops sending logs to the app's logger.
#[uniffi::export]
pub fn remove_logger() {
    MAX_LEVEL.store(0, Ordering::Release);
    if OWNS_LOG.load(Ordering::Acquire) {
        log::set_max_level(log::LevelFilter::Off);
    }
    LOGGER.lock().unwrap_or_else(|e| e.into_inner()).take();
}

fn rank(level: LogLevel) -> u8 {
    match level {
        LogLevel::Error => 1,
        LogLevel::Warn => 2,
        LogLevel::Info => 3,
        LogLevel::Debug => 4,
        LogLevel::Trace => 5,
    }
}

fn wanted(level: LogLevel) -> bool {
    rank(level) <= MAX_LEVEL.load(Ordering::Acquire) && !IN_LOGGER.with(Cell::get)
}

/// Hands a record to the app's logger. The lock is held only to take the logger: a logger that
/// blocks (on Python's GIL, say) never holds up `set_logger` on another thread.
fn emit(record: LogRecord) {
    let logger = LOGGER.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if let Some(logger) = logger {
        IN_LOGGER.with(|inside| inside.set(true));
        logger.log(record);
        IN_LOGGER.with(|inside| inside.set(false));
    }
}

fn install() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        // Either may already be taken by a Rust host program; it then keeps those records.
        let _ = tracing::dispatcher::set_global_default(tracing::Dispatch::new(ToApp));
        if log::set_logger(&ToApp).is_ok() {
            OWNS_LOG.store(true, Ordering::Release);
        }
    });
}

/// The `tracing` subscriber and `log` logger that forward to the app's logger.
struct ToApp;

impl From<tracing::Level> for LogLevel {
    fn from(level: tracing::Level) -> Self {
        match level {
            tracing::Level::ERROR => LogLevel::Error,
            tracing::Level::WARN => LogLevel::Warn,
            tracing::Level::INFO => LogLevel::Info,
            tracing::Level::DEBUG => LogLevel::Debug,
            tracing::Level::TRACE => LogLevel::Trace,
        }
    }
}

impl From<log::Level> for LogLevel {
    fn from(level: log::Level) -> Self {
        match level {
            log::Level::Error => LogLevel::Error,
            log::Level::Warn => LogLevel::Warn,
            log::Level::Info => LogLevel::Info,
            log::Level::Debug => LogLevel::Debug,
            log::Level::Trace => LogLevel::Trace,
        }
    }
}

impl tracing::Subscriber for ToApp {
    // The level can change at any time, so no callsite's interest is cached.
    fn register_callsite(
        &self,
        _: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::sometimes()
    }

    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.is_event() && wanted((*metadata.level()).into())
    }

    // Spans are not forwarded: every span is the same placeholder.
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let metadata = event.metadata();
        let mut text = Text::default();
        event.record(&mut text);
        emit(LogRecord {
            level: (*metadata.level()).into(),
            target: metadata.target().to_owned(),
            message: text.finish(),
        });
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

impl log::Log for ToApp {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        wanted(metadata.level().into())
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            emit(LogRecord {
                level: record.level().into(),
                target: record.target().to_owned(),
                message: record.args().to_string(),
            });
        }
    }

    fn flush(&self) {}
}

/// An event's `message` followed by its other fields.
#[derive(Default)]
struct Text {
    message: String,
    fields: String,
}

impl Text {
    fn finish(self) -> String {
        if self.message.is_empty() {
            self.fields.trim_start().to_owned()
        } else {
            self.message + &self.fields
        }
    }
}

impl tracing::field::Visit for Text {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Collect(std::sync::mpsc::Sender<LogRecord>);

    impl LogListener for Collect {
        fn log(&self, record: LogRecord) {
            let _ = self.0.send(record);
        }
    }

    #[test]
    fn records_reach_the_app_at_its_level_with_their_fields() {
        let (sender, received) = std::sync::mpsc::channel();
        set_logger(Box::new(Collect(sender)), LogLevel::Info);
        let err = "the server answered 502";
        tracing::info!(%err, attempt = 3, "message not sent yet");
        tracing::debug!("too detailed for Info");
        log::warn!(target: "rustls::client", "a library's warning");
        remove_logger();
        tracing::error!("after the logger was removed");

        // Other tests log on their own threads meanwhile.
        let records: Vec<LogRecord> = received
            .try_iter()
            .filter(|r| r.target == module_path!() || r.target == "rustls::client")
            .collect();
        assert_eq!(
            records,
            [
                LogRecord {
                    level: LogLevel::Info,
                    target: module_path!().to_owned(),
                    message: "message not sent yet err=the server answered 502 attempt=3".into(),
                },
                LogRecord {
                    level: LogLevel::Warn,
                    target: "rustls::client".into(),
                    message: "a library's warning".into(),
                },
            ]
        );
    }
}
