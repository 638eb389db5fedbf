//! A pull's progress as the page shows it: Ollama reports each layer's
//! bytes on its own, so the bar sums every layer seen, and the speed is
//! measured over about a second of samples, not guessed from one.

use crate::api::PullProgress;

/// How long a speed sample spans, in milliseconds.
const SPEED_WINDOW_MS: f64 = 1_000.0;

/// Everything a pull has reported so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PullTracker {
    /// Ollama's last status line (`pulling 6a0746a1ec1a`, `verifying…`).
    pub status: String,
    /// Each layer's digest with its size and bytes done.
    layers: Vec<Layer>,
    /// Where the current speed sample started: (time, bytes done).
    window: Option<(f64, u64)>,
    /// Bytes per second over the last whole window; until one has
    /// passed, since the first sample.
    speed: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
struct Layer {
    digest: String,
    total: u64,
    completed: u64,
}

impl PullTracker {
    /// Takes in one progress frame, received at `now_ms`.
    pub fn update(&mut self, progress: &PullProgress, now_ms: f64) {
        self.status = progress.status.clone();
        let (Some(digest), Some(total)) = (&progress.digest, progress.total) else {
            return;
        };
        let completed = progress.completed.unwrap_or(0).min(total);
        match self.layers.iter_mut().find(|layer| &layer.digest == digest) {
            Some(layer) => {
                layer.total = total;
                layer.completed = layer.completed.max(completed);
            }
            None => self.layers.push(Layer {
                digest: digest.clone(),
                total,
                completed,
            }),
        }
        let done = self.completed();
        match self.window {
            None => self.window = Some((now_ms, done)),
            Some((started, from)) => {
                let elapsed = now_ms - started;
                if elapsed > 0.0 {
                    let speed = done.saturating_sub(from) as f64 * 1_000.0 / elapsed;
                    if elapsed >= SPEED_WINDOW_MS {
                        self.window = Some((now_ms, done));
                        self.speed = Some(speed);
                    } else if self.speed.is_none() || elapsed >= SPEED_WINDOW_MS / 2.0 {
                        self.speed = Some(speed);
                    }
                }
            }
        }
    }

    /// Bytes downloaded, over every layer.
    pub fn completed(&self) -> u64 {
        self.layers.iter().map(|layer| layer.completed).sum()
    }

    /// Bytes to download, over every layer seen so far.
    pub fn total(&self) -> u64 {
        self.layers.iter().map(|layer| layer.total).sum()
    }

    /// 0 to 100, once a layer's size is known.
    pub fn percent(&self) -> Option<f64> {
        let total = self.total();
        (total > 0).then(|| self.completed() as f64 * 100.0 / total as f64)
    }

    pub fn bytes_per_second(&self) -> Option<f64> {
        self.speed
    }
}

/// A size the way Ollama prints one: decimal units, one decimal place
/// from a megabyte up (`1.3 GB`, `642 KB`, `17 B`).
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [(&str, f64); 4] = [("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)];
    let value = bytes as f64;
    for (unit, size) in UNITS {
        if value >= size {
            return if size >= 1e6 {
                format!("{:.1} {unit}", value / size)
            } else {
                format!("{:.0} {unit}", value / size)
            };
        }
    }
    format!("{bytes} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(digest: &str, total: u64, completed: u64) -> PullProgress {
        PullProgress {
            status: format!("pulling {digest}"),
            digest: Some(digest.to_string()),
            total: Some(total),
            completed: Some(completed),
        }
    }

    fn status(text: &str) -> PullProgress {
        PullProgress {
            status: text.to_string(),
            digest: None,
            total: None,
            completed: None,
        }
    }

    #[test]
    fn the_bar_sums_every_layer_and_a_status_line_keeps_it() {
        let mut pull = PullTracker::default();
        pull.update(&status("pulling manifest"), 0.0);
        assert_eq!(pull.percent(), None);
        pull.update(&layer("aaa", 1_000, 500), 10.0);
        assert_eq!(pull.percent(), Some(50.0));
        pull.update(&layer("bbb", 3_000, 0), 20.0);
        assert_eq!((pull.completed(), pull.total()), (500, 4_000));
        pull.update(&layer("aaa", 1_000, 1_000), 30.0);
        pull.update(&layer("bbb", 3_000, 3_000), 40.0);
        pull.update(&status("verifying sha256 digest"), 50.0);
        assert_eq!(pull.percent(), Some(100.0));
        assert_eq!(pull.status, "verifying sha256 digest");
    }

    #[test]
    fn speed_is_measured_over_time_and_bytes_never_go_back() {
        let mut pull = PullTracker::default();
        pull.update(&layer("aaa", 10_000_000, 0), 0.0);
        assert_eq!(pull.bytes_per_second(), None);
        pull.update(&layer("aaa", 10_000_000, 1_000_000), 250.0);
        assert_eq!(pull.bytes_per_second(), Some(4_000_000.0));
        pull.update(&layer("aaa", 10_000_000, 3_000_000), 1_000.0);
        assert_eq!(pull.bytes_per_second(), Some(3_000_000.0));
        // A repeated, older line (Ollama resends while it retries) is not
        // a step back.
        pull.update(&layer("aaa", 10_000_000, 2_000_000), 1_500.0);
        assert_eq!(pull.completed(), 3_000_000);
        assert_eq!(pull.bytes_per_second(), Some(0.0));
    }

    #[test]
    fn sizes_read_as_ollama_prints_them() {
        assert_eq!(format_bytes(17), "17 B");
        assert_eq!(format_bytes(642_000), "642 KB");
        assert_eq!(format_bytes(1_321_098_329), "1.3 GB");
        assert_eq!(format_bytes(98_362_432), "98.4 MB");
    }
}
