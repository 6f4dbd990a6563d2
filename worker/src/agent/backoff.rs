//! Reconnect delays: exponential backoff with jitter.

use std::time::Duration;

/// Returns the delay before reconnect attempt `attempt` (0 for the first retry):
/// `min(base · 2^attempt, max)`, scaled into `[½, 1]` of that value by `jitter`, a
/// number in `[0, 1)`. The jitter keeps a fleet of workers that lost the server at the
/// same moment from reconnecting in lockstep.
pub fn backoff_delay(attempt: u32, base: Duration, max: Duration, jitter: f64) -> Duration {
    let factor = 2f64.powi(attempt.min(62) as i32);
    let ceiling = (base.as_secs_f64() * factor).min(max.as_secs_f64());
    let jitter = jitter.clamp(0.0, 1.0);
    Duration::from_secs_f64(ceiling * (0.5 + 0.5 * jitter))
}

/// Backoff state across connection attempts; reset after a successful registration.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max: max.max(base),
            attempt: 0,
        }
    }

    /// Returns the next delay and advances the attempt counter.
    pub fn next_delay(&mut self) -> Duration {
        let delay = backoff_delay(self.attempt, self.base, self.max, rand::random::<f64>());
        self.attempt = self.attempt.saturating_add(1);
        delay
    }

    /// Number of delays handed out since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(60);

    #[test]
    fn delay_doubles_up_to_max() {
        let ceilings: Vec<f64> = (0..9)
            .map(|attempt| backoff_delay(attempt, BASE, MAX, 1.0).as_secs_f64())
            .collect();

        assert_eq!(ceilings, [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]);
    }

    #[test]
    fn jitter_spans_upper_half() {
        assert_eq!(backoff_delay(3, BASE, MAX, 0.0), Duration::from_secs(4));
        assert_eq!(backoff_delay(3, BASE, MAX, 0.5), Duration::from_secs(6));
        assert_eq!(backoff_delay(3, BASE, MAX, 2.0), Duration::from_secs(8));
    }

    #[test]
    fn huge_attempt_does_not_overflow() {
        assert_eq!(backoff_delay(u32::MAX, BASE, MAX, 1.0), MAX);
    }

    #[test]
    fn reset_restarts_sequence() {
        let mut backoff = Backoff::new(BASE, MAX);
        for _ in 0..5 {
            backoff.next_delay();
        }
        assert_eq!(backoff.attempts(), 5);

        backoff.reset();

        assert_eq!(backoff.attempts(), 0);
        assert!(backoff.next_delay() <= BASE);
    }
}
