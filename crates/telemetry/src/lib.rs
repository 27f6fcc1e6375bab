//! What the dashboard and the tray show about the machine and the gateway's work.
//!
//! - [`sample`]: one reading of CPU (total and per core), RAM, our own process and each GPU
//!   (sysinfo: NVIDIA through NVML loaded at run time, AMD through sysfs, macOS IOAccelerator,
//!   Windows DXGI); no GPU or no driver is an empty list, never an error;
//! - [`history`]: the last ten minutes of samples;
//! - [`traces`]: one record per request (tokens, timings, outcome; never prompt or answer text),
//!   the last 1000;
//! - [`Hub`]: the sampler task (one sample per 10 s always, 1 Hz while a dashboard watches) and
//!   the live event feed (`/api/events`).

pub mod history;
pub mod sample;
pub mod traces;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub use history::History;
pub use sample::{GpuSample, Sample, Sampler};
pub use traces::{Trace, TraceFilter, TraceStep, Traces};

/// The sampling period when nobody watches: cheap enough to run always, so a dashboard opened
/// now still shows the last minutes.
pub const IDLE_PERIOD: Duration = Duration::from_secs(10);
/// The sampling period while a dashboard (or the tray window) is open.
pub const WATCHED_PERIOD: Duration = Duration::from_secs(1);
/// How long samples are kept.
pub const HISTORY_SPAN: Duration = Duration::from_secs(600);

/// Something that happened, for live views. Serialised with its kind as the SSE event name.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LiveEvent {
    /// A telemetry sample.
    Telemetry(Sample),
    /// A finished request.
    Trace(Trace),
    /// Something the wiring watcher did (re-applied our keys, found a broken file).
    Wiring {
        /// What happened, in words.
        message: String,
        /// Whether the user has to act (a file that stopped parsing).
        attention: bool,
    },
    /// A request started or ended: how many are open now (the tray's busy icon).
    Requests {
        /// Requests in flight.
        open: usize,
    },
    /// A model loaded, unloaded, failed, or a download made progress.
    Model {
        /// The model's name.
        name: String,
        /// `loading`, `loaded`, `unloaded`, `failed`, `pulling`, `registered`.
        state: String,
        /// Bytes done and total, for downloads.
        #[serde(skip_serializing_if = "Option::is_none")]
        progress: Option<(u64, u64)>,
        /// Details (an error).
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
}

impl LiveEvent {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Telemetry(_) => "telemetry",
            Self::Trace(_) => "trace",
            Self::Wiring { .. } => "wiring",
            Self::Model { .. } => "model",
            Self::Requests { .. } => "requests",
        }
    }
}

/// Telemetry history, request traces and the live feed; one per running gateway.
#[derive(Debug)]
pub struct Hub {
    history: History,
    traces: Traces,
    events: broadcast::Sender<LiveEvent>,
    watchers: AtomicUsize,
    wake: Mutex<Option<std::sync::mpsc::Sender<()>>>,
    recent_wiring: Mutex<std::collections::VecDeque<WiringNote>>,
}

/// A wiring-watcher event kept for the Wiring page.
#[derive(Debug, Clone, Serialize)]
pub struct WiringNote {
    /// When, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// What happened.
    pub message: String,
    /// Whether the user has to act.
    pub attention: bool,
}

/// How many wiring events are kept.
const WIRING_NOTES: usize = 20;

impl Default for Hub {
    fn default() -> Self {
        Self {
            history: History::new(HISTORY_SPAN),
            traces: Traces::new(traces::CAPACITY),
            events: broadcast::channel(256).0,
            watchers: AtomicUsize::new(0),
            wake: Mutex::new(None),
            recent_wiring: Mutex::new(std::collections::VecDeque::new()),
        }
    }
}

impl Hub {
    /// A new hub (no sampler yet: see [`Hub::spawn_sampler`]).
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The samples kept.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The request traces kept.
    pub fn traces(&self) -> &Traces {
        &self.traces
    }

    /// Records a finished request and tells live views.
    pub fn record(&self, trace: Trace) {
        let trace = self.traces.push(trace);
        let _ = self.events.send(LiveEvent::Trace(trace));
    }

    /// Tells live views about something (wiring, models); wiring events are also kept.
    pub fn publish(&self, event: LiveEvent) {
        if let LiveEvent::Wiring { message, attention } = &event
            && let Ok(mut notes) = self.recent_wiring.lock()
        {
            if notes.len() == WIRING_NOTES {
                notes.pop_front();
            }
            notes.push_back(WiringNote {
                at_ms: now_ms(),
                message: message.clone(),
                attention: *attention,
            });
        }
        let _ = self.events.send(event);
    }

    /// The watcher's recent events, newest first.
    pub fn recent_wiring(&self) -> Vec<WiringNote> {
        self.recent_wiring
            .lock()
            .map(|notes| notes.iter().rev().cloned().collect())
            .unwrap_or_default()
    }

    /// The live feed, and a guard that keeps sampling at 1 Hz while it lives.
    pub fn watch(self: &Arc<Self>) -> (broadcast::Receiver<LiveEvent>, WatchGuard) {
        let receiver = self.events.subscribe();
        if self.watchers.fetch_add(1, Ordering::SeqCst) == 0
            && let Ok(wake) = self.wake.lock()
            && let Some(wake) = wake.as_ref()
        {
            let _ = wake.send(());
        }
        (receiver, WatchGuard(Arc::clone(self)))
    }

    /// The live feed without speeding up the sampler (the tray: it shows no charts).
    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.events.subscribe()
    }

    /// How many live views are open.
    pub fn watchers(&self) -> usize {
        self.watchers.load(Ordering::SeqCst)
    }

    /// Samples until `shutdown`: every [`IDLE_PERIOD`], every [`WATCHED_PERIOD`] while watched.
    /// The sampler lives on a thread of its own (GPU driver handles cannot move between
    /// threads); it sleeps between readings, and a reading takes well under a millisecond.
    pub fn spawn_sampler(self: &Arc<Self>, shutdown: CancellationToken) {
        let (wake, woken) = std::sync::mpsc::channel::<()>();
        if let Ok(mut slot) = self.wake.lock() {
            *slot = Some(wake.clone());
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let shutdown = shutdown.clone();
            runtime.spawn(async move {
                shutdown.cancelled().await;
                let _ = wake.send(());
            });
        }
        let hub = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("telemetry".into())
            .spawn(move || {
                let mut sampler = Sampler::new();
                while !shutdown.is_cancelled() {
                    let sample = sampler.sample();
                    hub.history.push(sample.clone());
                    let _ = hub.events.send(LiveEvent::Telemetry(sample));
                    let period = if hub.watchers() > 0 {
                        WATCHED_PERIOD
                    } else {
                        IDLE_PERIOD
                    };
                    // Woken early when a dashboard opens (sample now, then at 1 Hz) or at
                    // shutdown.
                    let _ = woken.recv_timeout(period);
                }
            });
        if let Err(error) = spawned {
            tracing::warn!("no telemetry: cannot start its thread: {error}");
        }
    }
}

/// Keeps the sampler at 1 Hz while it lives.
#[derive(Debug)]
pub struct WatchGuard(Arc<Hub>);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.watchers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
