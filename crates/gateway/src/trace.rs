//! One request's trace: built while the request runs, recorded in the telemetry hub when it
//! ends — answered, failed, or dropped because the client left.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use moe_sovereign_anthropic::Message;
use moe_sovereign_telemetry::{Hub, Trace, TraceStep};

use crate::sse::StepLog;

use crate::{Caller, GatewayError};

/// Requests in flight (messages, streamed or not): the dashboard's "open streams".
#[derive(Debug, Default)]
pub struct InFlight(AtomicUsize);

impl InFlight {
    /// How many requests are running now.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// A trace in the making. Dropped without [`Recorder::finish`], it is recorded as cancelled.
#[derive(Debug)]
pub struct Recorder {
    hub: Arc<Hub>,
    in_flight: Arc<InFlight>,
    started: Instant,
    first_token_ms: Option<u64>,
    trace: Option<Trace>,
    steps: Option<StepLog>,
}

impl Recorder {
    /// Starts timing a request from `caller` for `model`.
    pub fn start(hub: Arc<Hub>, in_flight: Arc<InFlight>, caller: &Caller, endpoint: &str) -> Self {
        let open = in_flight.0.fetch_add(1, Ordering::SeqCst) + 1;
        hub.publish(moe_sovereign_telemetry::LiveEvent::Requests { open });
        Self {
            hub,
            in_flight,
            started: Instant::now(),
            first_token_ms: None,
            steps: None,
            trace: Some(Trace {
                at_ms: moe_sovereign_telemetry::now_ms(),
                endpoint: endpoint.into(),
                key_id: caller.key_id.clone(),
                key_name: caller.key_name.clone(),
                profile: caller.profile.name().into(),
                ..Trace::default()
            }),
        }
    }

    /// The model id the client asked for, and whether it asked for a stream.
    pub fn request(&mut self, model: &str, stream: bool) {
        if let Some(trace) = self.trace.as_mut() {
            trace.model = model.into();
            trace.stream = stream;
        }
    }

    /// The profile and expert the request was routed to.
    pub fn routed(&mut self, profile: &str, expert: &str) {
        if let Some(trace) = self.trace.as_mut() {
            trace.profile = profile.into();
            trace.expert = expert.into();
        }
    }

    /// Records the pipeline steps that reach `steps` with the trace.
    pub fn follow_steps(&mut self, steps: StepLog) {
        self.steps = Some(steps);
    }

    /// The first answer token went out (only the first call counts).
    pub fn first_token(&mut self) {
        if self.first_token_ms.is_none() {
            self.first_token_ms = Some(self.elapsed_ms());
        }
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Records the outcome: the message as sent (usage, stop reason) and the error, if any.
    pub fn finish(mut self, message: Option<&Message>, error: Option<&GatewayError>) {
        self.record(message, error, None);
    }

    fn record(
        &mut self,
        message: Option<&Message>,
        error: Option<&GatewayError>,
        other: Option<&str>,
    ) {
        let Some(mut trace) = self.trace.take() else {
            return;
        };
        trace.duration_ms = self.elapsed_ms();
        let steps = self
            .steps
            .as_ref()
            .and_then(|log| log.lock().ok().map(|steps| steps.clone()))
            .unwrap_or_default();
        for step in steps {
            // The expert that answered, when a fallback chose it.
            if step.stage == "chosen" {
                trace.expert.clone_from(&step.expert);
            }
            trace.steps.push(TraceStep {
                stage: step.stage,
                expert: step.expert,
                outcome: step.outcome,
                ms: step.ms,
            });
        }
        trace.ttft_ms = self.first_token_ms;
        trace.status = 200;
        if let Some(message) = message {
            trace.input_tokens = message.usage.input_tokens;
            trace.output_tokens = message.usage.output_tokens;
            trace.cache_read_tokens = message.usage.cache_read_input_tokens;
            trace.stop_reason = message
                .stop_reason
                .and_then(|r| serde_json::to_value(r).ok())
                .and_then(|v| v.as_str().map(str::to_owned));
        }
        if let Some(error) = error {
            let (status, kind, _) = error.classify();
            // After a 200 the status stays 200; the error type tells what happened.
            if trace.ttft_ms.is_none() && message.is_none() {
                trace.status = status.as_u16();
            }
            trace.error_type = serde_json::to_value(kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned));
        }
        if let Some(other) = other {
            trace.error_type = Some(other.into());
        }
        trace.tokens_per_s =
            Trace::generation_rate(trace.output_tokens, trace.ttft_ms, trace.duration_ms);
        self.hub.record(trace);
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let open = self
            .in_flight
            .0
            .fetch_sub(1, Ordering::SeqCst)
            .saturating_sub(1);
        self.hub
            .publish(moe_sovereign_telemetry::LiveEvent::Requests { open });
        if self.trace.is_some() {
            self.record(None, None, Some("cancelled"));
        }
    }
}
