//! Progress reporting for training: an `indicatif` bar with the step, the loss and the
//! throughput in tokens per second.
//!
//! indicatif hides the bar when stderr is not a terminal (CI logs), so callers that want
//! a line per step there print [`Progress::message`] themselves.

use indicatif::{ProgressBar, ProgressStyle};
use std::time::Instant;

/// A progress bar over `total` training steps.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
    start: Instant,
    tokens: u64,
    last_loss: Option<f64>,
}

/// `loss 2.3456 | 1.23k tok/s` (three significant digits, k/M suffixes).
pub fn format_message(loss: Option<f64>, tokens_per_second: f64) -> String {
    let rate = if tokens_per_second >= 1e6 {
        format!("{:.2}M", tokens_per_second / 1e6)
    } else if tokens_per_second >= 1e3 {
        format!("{:.2}k", tokens_per_second / 1e3)
    } else {
        format!("{tokens_per_second:.1}")
    };
    match loss {
        Some(l) => format!("loss {l:.4} | {rate} tok/s"),
        None => format!("{rate} tok/s"),
    }
}

impl Progress {
    /// A bar drawn on stderr (hidden when it is not a terminal).
    pub fn new(total: u64) -> Progress {
        let bar = ProgressBar::new(total);
        // The template is a constant; should indicatif ever reject it, keep the default.
        if let Ok(style) = ProgressStyle::with_template(
            "{bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}",
        ) {
            bar.set_style(style);
        }
        Progress::with_bar(bar)
    }

    /// A bar that draws nothing (tests, quiet runs); the counters still work.
    pub fn hidden(total: u64) -> Progress {
        Progress::with_bar(
            ProgressBar::hidden()
                .with_position(0)
                .with_message(String::new()),
        )
        .with_len(total)
    }

    fn with_bar(bar: ProgressBar) -> Progress {
        Progress {
            bar,
            start: Instant::now(),
            tokens: 0,
            last_loss: None,
        }
    }

    fn with_len(self, total: u64) -> Progress {
        self.bar.set_length(total);
        self
    }

    /// Records one finished step of `tokens` tokens with its loss.
    pub fn step(&mut self, loss: f64, tokens: u64) {
        self.tokens += tokens;
        self.last_loss = Some(loss);
        self.bar.inc(1);
        self.bar.set_message(self.message());
    }

    /// Tokens processed per second of wall time since the bar was created.
    pub fn tokens_per_second(&self) -> f64 {
        let s = self.start.elapsed().as_secs_f64();
        if s > 0.0 {
            self.tokens as f64 / s
        } else {
            0.0
        }
    }

    /// Tokens processed so far.
    pub fn tokens(&self) -> u64 {
        self.tokens
    }

    /// Steps recorded so far.
    pub fn position(&self) -> u64 {
        self.bar.position()
    }

    /// The current message: last loss and throughput.
    pub fn message(&self) -> String {
        format_message(self.last_loss, self.tokens_per_second())
    }

    /// Prints a line above the bar (or to stderr when hidden by the terminal check).
    pub fn println(&self, line: &str) {
        self.bar.println(line);
    }

    /// Leaves the bar at its final state.
    pub fn finish(&self) {
        self.bar.finish_with_message(self.message());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_counters() {
        assert_eq!(
            format_message(Some(2.5), 1234.0),
            "loss 2.5000 | 1.23k tok/s"
        );
        assert_eq!(format_message(None, 2.5e6), "2.50M tok/s");
        assert_eq!(format_message(Some(0.1), 12.34), "loss 0.1000 | 12.3 tok/s");
        let mut p = Progress::hidden(10);
        p.step(3.0, 64);
        p.step(2.0, 64);
        assert_eq!(p.position(), 2);
        assert_eq!(p.tokens(), 128);
        assert!(p.message().starts_with("loss 2.0000 | "));
        assert!(p.tokens_per_second() > 0.0);
    }
}
