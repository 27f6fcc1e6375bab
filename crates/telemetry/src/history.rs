//! The last minutes of samples.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use crate::Sample;

/// Samples younger than `span`, oldest first.
#[derive(Debug)]
pub struct History {
    span_ms: u64,
    samples: Mutex<VecDeque<Sample>>,
}

impl History {
    /// Keeps `span` of samples.
    pub fn new(span: Duration) -> Self {
        Self {
            span_ms: u64::try_from(span.as_millis()).unwrap_or(u64::MAX),
            samples: Mutex::new(VecDeque::new()),
        }
    }

    /// Adds a sample and forgets those older than the span (measured from the newest).
    pub fn push(&self, sample: Sample) {
        let Ok(mut samples) = self.samples.lock() else {
            return;
        };
        let horizon = sample.at_ms.saturating_sub(self.span_ms);
        samples.push_back(sample);
        while samples.front().is_some_and(|s| s.at_ms < horizon) {
            samples.pop_front();
        }
    }

    /// Samples taken at or after `since_ms`, oldest first.
    pub fn since(&self, since_ms: u64) -> Vec<Sample> {
        self.samples.lock().map_or_else(
            |_| Vec::new(),
            |samples| {
                samples
                    .iter()
                    .filter(|s| s.at_ms >= since_ms)
                    .cloned()
                    .collect()
            },
        )
    }

    /// The newest sample.
    pub fn latest(&self) -> Option<Sample> {
        self.samples.lock().ok()?.back().cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Sample {
        Sample {
            at_ms: ms,
            ..Sample::default()
        }
    }

    #[test]
    fn keeps_only_the_span_measured_from_the_newest_sample() {
        let history = History::new(Duration::from_secs(600));
        for s in 0..=700 {
            history.push(at(s * 1000));
        }
        let kept = history.since(0);
        assert_eq!(kept.first().map(|s| s.at_ms), Some(100_000));
        assert_eq!(kept.len(), 601);
        assert_eq!(history.latest().map(|s| s.at_ms), Some(700_000));
        assert_eq!(history.since(650_000).len(), 51);
    }
}
