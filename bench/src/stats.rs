//! What one stream saw, and percentiles over many.

use std::time::Duration;

/// One stream's measurements, from the client's side.
#[derive(Debug, Clone, Default)]
pub struct StreamRecord {
    /// From sending the request to the first token.
    pub ttft: Option<Duration>,
    /// Between consecutive tokens.
    pub gaps: Vec<Duration>,
    pub tokens: u64,
    pub error: Option<String>,
}

/// A summary of many streams.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub streams: usize,
    pub errors: usize,
    /// One error message, for the report.
    pub first_error: Option<String>,
    pub ttft_p50_ms: f64,
    pub ttft_p99_ms: f64,
    pub gap_p50_ms: f64,
    pub gap_p99_ms: f64,
    pub tokens: u64,
    pub wall: Duration,
}

impl Summary {
    pub fn of(records: &[StreamRecord], wall: Duration) -> Self {
        let mut ttfts: Vec<f64> = records.iter().filter_map(|r| r.ttft).map(ms).collect();
        let mut gaps: Vec<f64> = records
            .iter()
            .flat_map(|r| r.gaps.iter().copied().map(ms))
            .collect();
        let errors: Vec<&String> = records.iter().filter_map(|r| r.error.as_ref()).collect();
        Self {
            streams: records.len(),
            errors: errors.len(),
            first_error: errors.first().map(|e| e.to_string()),
            ttft_p50_ms: percentile(&mut ttfts, 50.0),
            ttft_p99_ms: percentile(&mut ttfts, 99.0),
            gap_p50_ms: percentile(&mut gaps, 50.0),
            gap_p99_ms: percentile(&mut gaps, 99.0),
            tokens: records.iter().map(|r| r.tokens).sum(),
            wall,
        }
    }

    /// Whether any stream got through: percentiles mean something.
    pub fn measured(&self) -> bool {
        self.streams > self.errors
    }

    pub fn tokens_per_second(&self) -> f64 {
        self.tokens as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile; NaN for no samples.
pub fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&mut values, 50.0), 50.0);
        assert_eq!(percentile(&mut values, 99.0), 99.0);
        assert_eq!(percentile(&mut [3.0], 99.0), 3.0);
        assert!(percentile(&mut [], 50.0).is_nan());
    }
}
