//! Logs for the go-plugin host: one JSON object per line on stderr, with the keys the host
//! reads (`@level`, `@message`, `@timestamp`) so SPIRE re-logs each line at its own level.
//! stdout carries only the handshake line.

use std::fmt::Write as _;
use std::io::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::{Layer, Registry};

/// Collects an event's fields into a JSON object.
struct Fields(serde_json::Map<String, serde_json::Value>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut text = String::new();
        let _formatted = write!(text, "{value:?}");
        self.insert(field, serde_json::Value::String(text));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.insert(field, serde_json::Value::String(value.to_owned()));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.insert(field, serde_json::Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.insert(field, serde_json::Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.insert(field, serde_json::Value::from(value));
    }
}

impl Fields {
    fn insert(&mut self, field: &Field, value: serde_json::Value) {
        let key = if field.name() == "message" {
            "@message"
        } else {
            field.name()
        };
        let _previous = self.0.insert(key.to_owned(), value);
    }
}

/// Writes hclog-style JSON lines to stderr.
struct HclogJson {
    max: Level,
}

impl<S: Subscriber> Layer<S> for HclogJson {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let level = *event.metadata().level();
        if level > self.max {
            return;
        }
        let mut fields = Fields(serde_json::Map::new());
        event.record(&mut fields);
        let mut line = fields.0;
        let name = match level {
            Level::ERROR => "error",
            Level::WARN => "warn",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        let _level = line.insert("@level".into(), name.into());
        let _module = line.insert("@module".into(), "plinth".into());
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .and_then(|d| u64::try_from(d.as_millis()).ok())
            .map(|ms| plinth_core::UnixTime::from_millis(ms).to_string())
            .unwrap_or_default();
        let _timestamp = line.insert("@timestamp".into(), timestamp.into());
        let mut text = serde_json::Value::Object(line).to_string();
        text.push('\n');
        // Nowhere to report a failed log write.
        let _written = std::io::stderr().lock().write_all(text.as_bytes());
    }
}

/// Installs the stderr logger: info and above, or debug with `PLINTH_LOG=debug`.
pub(crate) fn init() {
    let max = match std::env::var("PLINTH_LOG").as_deref() {
        Ok("debug") => Level::DEBUG,
        Ok("trace") => Level::TRACE,
        Ok("warn") => Level::WARN,
        Ok("error") => Level::ERROR,
        _ => Level::INFO,
    };
    let subscriber = Registry::default().with(HclogJson { max });
    // Already set (a test in the same process): keep the first.
    let _set = tracing::subscriber::set_global_default(subscriber);
}
