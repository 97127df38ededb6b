//! The browser's live connection to `/ws`.
//!
//! [`provide_live_connection`] puts a [`LiveConnection`] in context. On the server it stays
//! `Connecting` (that is what the first paint shows); in the browser an effect opens the socket,
//! says hello, watches heartbeats and reconnects with exponential back-off when the socket
//! closes or goes quiet. Pages read the state; only this module touches the socket.
//!
//! Pages say what they show with [`use_topics`]; the connection (re)subscribes whenever the
//! topics change and after every hello, so a reconnect resubscribes by itself. The latest
//! payload of each topic lands in a signal of [`LiveConnection`].
//!
//! The overview (the dashboard at `/`) and the alerts (badge and toasts on every page) are
//! decoded here. The other topics' payloads are kept as JSON text ([`RawPayload`]) and decoded
//! by their pages with [`decode`]: their decoders then ship in the pages' own wasm chunks, not in
//! the first download.

use contract::{
    protocol::{AlertsLive, Overview, Topic},
    tail::{TailFeed, TailUpdate},
};
use leptos::prelude::*;
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// A live payload's JSON text as the server sent it (a `LivePayload` object).
pub type RawPayload = Arc<str>;

/// Decodes a page's payload (`None` while there is none; an unreadable one is logged and
/// skipped).
pub fn decode<T: DeserializeOwned>(raw: &Option<RawPayload>) -> Option<T> {
    decode_text(raw.as_deref()?)
}

fn decode_text<T: DeserializeOwned>(text: &str) -> Option<T> {
    serde_json::from_str(text)
        .inspect_err(|error| leptos::logging::warn!("ignoring unreadable live payload: {error}"))
        .ok()
}

/// Applies the tail updates waiting in [`LiveConnection::tail_inbox`] to
/// [`LiveConnection::tail`], oldest first; the Records page runs it in an effect, which the
/// inbox wakes.
pub fn apply_tail_inbox(live: LiveConnection) {
    live.tail_inbox.track();
    let pending = live
        .tail_inbox
        .try_update_untracked(std::mem::take)
        .unwrap_or_default();
    if pending.is_empty() {
        return;
    }
    live.tail.update(|feed| {
        for text in &pending {
            if let Some(update) = decode_text::<TailUpdate>(text) {
                feed.apply(update, TAIL_KEEP);
            }
        }
    });
}

/// What the connection badge shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// First attempt under way (also what the server renders).
    Connecting,
    /// The server answered our hello.
    Connected,
    /// The socket closed; the next attempt starts after `retry_in_ms`.
    Reconnecting { attempt: u32, retry_in_ms: u32 },
}

impl ConnectionState {
    /// Stable name used in `data-state` attributes (and by the end-to-end tests).
    pub fn as_str(&self) -> &'static str {
        match self {
            ConnectionState::Connecting => "connecting",
            ConnectionState::Connected => "connected",
            ConnectionState::Reconnecting { .. } => "reconnecting",
        }
    }
}

/// Context handle: the connection state and what the server told us about itself.
#[derive(Debug, Clone, Copy)]
pub struct LiveConnection {
    pub state: RwSignal<ConnectionState>,
    pub server_version: RwSignal<Option<String>>,
    /// What the current page shows.
    pub topics: RwSignal<Vec<Topic>>,
    pub overview: RwSignal<Option<Overview>>,
    /// A `StreamsLive`, to [`decode`].
    pub streams: RwSignal<Option<RawPayload>>,
    /// The latest payload of the subscribed metric (the detail page shows one at a time): a
    /// `MetricLive`, to [`decode`].
    pub metric: RwSignal<Option<RawPayload>>,
    /// Alert rules and recent transitions; every page is subscribed (badge and toasts).
    pub alerts: RwSignal<Option<AlertsLive>>,
    /// The newest records of the subscribed tail (its updates are increments, gathered here
    /// by the Records page from `tail_inbox`).
    pub tail: RwSignal<TailFeed>,
    /// Tail updates (`TailUpdate`s) not yet applied to `tail`, oldest first; at most
    /// [`TAIL_INBOX`] (the oldest are dropped while no page applies them).
    pub tail_inbox: RwSignal<Vec<RawPayload>>,
    /// Counts [`use_topics`] calls, so a page's cleanup can tell whether the next page has
    /// subscribed since (even to the same topics).
    pub subscriber: StoredValue<u64>,
}

/// Subscribes the current page to `topics` until it is left.
pub fn use_topics(topics: Vec<Topic>) -> LiveConnection {
    let live = use_live_connection();
    live.subscriber.update_value(|n| *n += 1);
    let me = live.subscriber.get_value();
    live.topics.set(topics);
    // The next page may already have subscribed (a new route renders before the old one is
    // cleaned up), possibly to the same topics: only clear the topics if nobody has since.
    on_cleanup(move || {
        if live.subscriber.try_get_value() == Some(me) {
            live.topics.set(Vec::new());
        }
    });
    live
}

/// Records of a tail the connection keeps for its page (newest first).
pub const TAIL_KEEP: usize = 200;

/// Tail updates waiting in [`LiveConnection::tail_inbox`] at most.
pub const TAIL_INBOX: usize = 64;

/// Delay before reconnect attempt `attempt` (0-based): 500 ms doubling, capped at 10 s.
pub fn backoff_delay_ms(attempt: u32) -> u32 {
    const FIRST_MS: u32 = 500;
    const MAX_MS: u32 = 10_000;
    FIRST_MS.saturating_mul(1u32 << attempt.min(16)).min(MAX_MS)
}

/// Creates the connection context; in the browser also starts the socket.
pub fn provide_live_connection() -> LiveConnection {
    let live = LiveConnection {
        state: RwSignal::new(ConnectionState::Connecting),
        server_version: RwSignal::new(None),
        topics: RwSignal::new(Vec::new()),
        overview: RwSignal::new(None),
        streams: RwSignal::new(None),
        metric: RwSignal::new(None),
        alerts: RwSignal::new(None),
        tail: RwSignal::new(TailFeed::default()),
        tail_inbox: RwSignal::new(Vec::new()),
        subscriber: StoredValue::new(0),
    };
    provide_context(live);
    #[cfg(feature = "hydrate")]
    WAITING.with(|waiting| waiting.set(Some((Owner::current(), live))));
    live
}

#[cfg(feature = "hydrate")]
thread_local! {
    /// The connection [`provide_live_connection`] made, waiting for [`hydrated`].
    static WAITING: std::cell::Cell<Option<(Option<Owner>, LiveConnection)>> =
        const { std::cell::Cell::new(None) };
}

/// Opens the live connection; the wasm entry point calls it once the server-rendered page is
/// hydrated. Not earlier: most pages are lazy routes whose hydration waits for their wasm chunk,
/// and a live update arriving meanwhile would change what the page renders while it hydrates,
/// which then no longer matches the server's HTML (a hydration panic).
#[cfg(feature = "hydrate")]
pub fn hydrated() {
    // The login page has no live data (and no session the socket could use yet).
    let on_login = web_sys::window()
        .and_then(|w| w.location().pathname().ok())
        .is_some_and(|path| path == "/login");
    if on_login {
        return;
    }
    if let Some((owner, live)) = WAITING.with(std::cell::Cell::take) {
        match owner {
            Some(owner) => owner.with(|| client::start(live)),
            None => client::start(live),
        }
    }
}

/// The connection handle put in context by [`provide_live_connection`].
pub fn use_live_connection() -> LiveConnection {
    expect_context::<LiveConnection>()
}

#[cfg(feature = "hydrate")]
mod client {
    use super::{ConnectionState, LiveConnection, RawPayload, TAIL_INBOX, backoff_delay_ms};
    use contract::protocol::{
        AlertsLive, ClientMessage, Overview, PROTOCOL_VERSION, PayloadHead, ServerMessageHead,
        Topic,
    };
    use leptos::prelude::*;
    use std::{
        cell::{Cell, RefCell},
        rc::Rc,
        time::Duration,
    };
    use wasm_bindgen::{JsCast, closure::Closure};
    use web_sys::{CloseEvent, Event, MessageEvent, WebSocket};

    /// A socket that has been silent for this many heartbeat intervals is presumed dead.
    const MISSED_HEARTBEATS: f64 = 3.0;

    struct Attempt {
        /// Consecutive failed attempts; reset when the server says hello.
        failures: Cell<u32>,
        /// `Date.now()` of the last message from the server.
        last_seen_ms: Cell<f64>,
        heartbeat_ms: Cell<f64>,
    }

    thread_local! {
        /// The open socket once the server said hello.
        static SOCKET: RefCell<Option<WebSocket>> = const { RefCell::new(None) };
    }

    fn subscribe(live: LiveConnection) {
        // The alerts topic is always on: the badge and the toasts are on every page.
        let mut topics = live.topics.get_untracked();
        if !topics.contains(&Topic::Alerts) {
            topics.push(Topic::Alerts);
        }
        SOCKET.with_borrow(|socket| {
            if let Some(socket) = socket {
                let _ = socket.send_with_str(&ClientMessage::Subscribe { topics }.to_json());
            }
        });
    }

    pub fn start(live: LiveConnection) {
        // Resubscribe whenever the page's topics change.
        Effect::new(move |_| {
            live.topics.track();
            subscribe(live);
        });
        let attempt = Rc::new(Attempt {
            failures: Cell::new(0),
            last_seen_ms: Cell::new(js_sys_now()),
            heartbeat_ms: Cell::new(5_000.0),
        });
        connect(live, attempt);
    }

    fn js_sys_now() -> f64 {
        web_sys::window()
            .and_then(|w| w.performance())
            .map(|p| p.now())
            .unwrap_or(0.0)
    }

    fn ws_url() -> Option<String> {
        let location = web_sys::window()?.location();
        let scheme = if location.protocol().ok()? == "https:" {
            "wss"
        } else {
            "ws"
        };
        Some(format!("{scheme}://{}/ws", location.host().ok()?))
    }

    fn connect(live: LiveConnection, attempt: Rc<Attempt>) {
        let Some(socket) = ws_url().and_then(|url| WebSocket::new(&url).ok()) else {
            schedule_reconnect(live, attempt);
            return;
        };
        attempt.last_seen_ms.set(js_sys_now());

        // The closures live as long as the socket; a page holds one socket at a time, so the
        // few hundred bytes forgotten per reconnect are bounded by the reconnect rate.
        let on_open = {
            let socket = socket.clone();
            Closure::<dyn FnMut(Event)>::new(move |_| {
                let hello = ClientMessage::Hello {
                    protocol: PROTOCOL_VERSION,
                };
                let _ = socket.send_with_str(&hello.to_json());
            })
        };
        socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        on_open.forget();

        let on_message = {
            let attempt = attempt.clone();
            let socket = socket.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                attempt.last_seen_ms.set(js_sys_now());
                let Some(text) = event.data().as_string() else {
                    return;
                };
                let head = match serde_json::from_str::<ServerMessageHead>(&text) {
                    Ok(head) => head,
                    Err(error) => {
                        leptos::logging::warn!("ignoring unreadable live message: {error}");
                        return;
                    }
                };
                match (head.kind, head.payload) {
                    ("hello", _) => {
                        attempt.failures.set(0);
                        if let Some(ms) = head.heartbeat_interval_ms {
                            attempt.heartbeat_ms.set(ms as f64);
                        }
                        live.server_version.set(head.server_version);
                        live.state.set(ConnectionState::Connected);
                        SOCKET.with_borrow_mut(|s| *s = Some(socket.clone()));
                        subscribe(live);
                    }
                    ("update", Some(payload)) => on_payload(live, payload.get()),
                    _ => {}
                }
            })
        };
        socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        on_message.forget();

        let closed = Rc::new(Cell::new(false));
        let on_close = {
            let attempt = attempt.clone();
            let closed = closed.clone();
            Closure::<dyn FnMut(CloseEvent)>::new(move |_| {
                if !closed.replace(true) {
                    SOCKET.with_borrow_mut(|s| *s = None);
                    schedule_reconnect(live, attempt.clone());
                }
            })
        };
        socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        on_close.forget();

        // Watchdog: a socket that stops hearing heartbeats is closed, which reconnects.
        let watchdog = set_interval_with_handle(
            {
                let attempt = attempt.clone();
                let socket = socket.clone();
                let closed = closed.clone();
                move || {
                    let silent_ms = js_sys_now() - attempt.last_seen_ms.get();
                    if !closed.get() && silent_ms > attempt.heartbeat_ms.get() * MISSED_HEARTBEATS {
                        let _ = socket.close();
                    }
                }
            },
            Duration::from_secs(1),
        );
        if let Ok(watchdog) = watchdog {
            // Stop the watchdog with the socket.
            let stop = Closure::<dyn FnMut(Event)>::new(move |_| watchdog.clear());
            socket
                .add_event_listener_with_callback("close", stop.as_ref().unchecked_ref())
                .ok();
            stop.forget();
        }
    }

    /// One update's payload: decoded here for the topics of the shell and `/`, kept as text
    /// for the pages that decode it.
    fn on_payload(live: LiveConnection, text: &str) {
        let topic = match serde_json::from_str::<PayloadHead>(text) {
            Ok(head) => head.topic,
            Err(error) => {
                leptos::logging::warn!("ignoring unreadable live payload: {error}");
                return;
            }
        };
        let raw = || -> RawPayload { text.into() };
        match topic {
            "overview" => {
                if let Some(o) = super::decode_text::<Overview>(text) {
                    live.overview.set(Some(o));
                }
            }
            "alerts" => {
                if let Some(a) = super::decode_text::<AlertsLive>(text) {
                    live.alerts.set(Some(a));
                }
            }
            "streams" => live.streams.set(Some(raw())),
            "metric" => live.metric.set(Some(raw())),
            "tail" => live.tail_inbox.update(|inbox| {
                if inbox.len() >= TAIL_INBOX {
                    inbox.remove(0);
                }
                inbox.push(raw());
            }),
            _ => {}
        }
    }

    fn schedule_reconnect(live: LiveConnection, attempt: Rc<Attempt>) {
        let failures = attempt.failures.get();
        attempt.failures.set(failures.saturating_add(1));
        let delay_ms = backoff_delay_ms(failures);
        live.state.set(ConnectionState::Reconnecting {
            attempt: failures + 1,
            retry_in_ms: delay_ms,
        });
        set_timeout(
            move || connect(live, attempt),
            Duration::from_millis(u64::from(delay_ms)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff_delay_ms(0), 500);
        assert_eq!(backoff_delay_ms(1), 1_000);
        assert_eq!(backoff_delay_ms(4), 8_000);
        assert_eq!(backoff_delay_ms(5), 10_000);
        assert_eq!(backoff_delay_ms(u32::MAX), 10_000);
    }
}
