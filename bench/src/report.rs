//! BENCHMARKS.md: the tables, every figure also as a ratio to the direct
//! path and to LiteLLM, the targets, and the machine they were measured on.

use std::fmt::Write as _;

use crate::browser::PageRows;
use crate::paths::PathKind;
use crate::scale::ScaleRow;
use crate::stats::{Summary, percentile};
use crate::store::StoreRows;

/// Everything one run measured.
#[derive(Default)]
pub struct Results {
    pub mode: String,
    pub machine: Vec<(String, String)>,
    pub parameters: Vec<(String, String)>,
    pub paths: Vec<PathKind>,
    pub concurrencies: Vec<usize>,
    /// `latency[path][level]`.
    pub latency: Vec<Vec<Summary>>,
    /// `alone[path][level]`: whether that row had the machine to itself.
    pub alone: Vec<Vec<Alone>>,
    pub saturation: Vec<Saturation>,
    /// Many streams at a model's pace.
    pub scale: Vec<ScaleRow>,
    pub idle: Vec<Idle>,
    pub embedded: Vec<EmbeddedRow>,
    pub store: Option<StoreRows>,
    pub page: Option<PageRows>,
    pub notes: Vec<String>,
}

/// What else ran on the machine during a row.
#[derive(Debug, Clone, Default)]
pub struct Alone {
    /// The 1-minute load average when the row started.
    pub load_before: Option<f64>,
    /// CPU seconds the gateways the row does not use spent while it ran.
    pub others_cpu_seconds: f64,
    /// Processes still busy when the row had to start anyway.
    pub busy_before: Vec<&'static str>,
    /// Whether LiteLLM was restarted to give the row a quiet machine.
    pub restarted: bool,
}

impl Alone {
    /// Folds in another turn of the same row.
    pub fn add(&mut self, turn: Alone) {
        self.load_before = match (self.load_before, turn.load_before) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.others_cpu_seconds += turn.others_cpu_seconds;
        for name in turn.busy_before {
            if !self.busy_before.contains(&name) {
                self.busy_before.push(name);
            }
        }
        self.restarted |= turn.restarted;
    }

    /// Another process used more than 5% of a core while the row ran, or
    /// one was still busy when it began.
    pub fn was_alone(&self, wall: std::time::Duration) -> bool {
        self.busy_before.is_empty() && self.others_cpu_seconds <= 0.05 * wall.as_secs_f64()
    }
}

/// One saturation run of one path.
pub struct SaturationRun {
    pub summary: Summary,
    /// The gateway's CPU seconds per 100,000 tokens (none for the direct path).
    pub cpu_per_100k: Option<f64>,
}

/// A path's saturation runs, boiled down to medians.
pub struct Saturation {
    pub path: PathKind,
    /// The run with the median tokens/s, its errors replaced by all runs' errors.
    pub summary: Summary,
    /// The median of the runs' CPU seconds per 100,000 tokens.
    pub cpu_per_100k: Option<f64>,
    /// The median over rounds of this path's tokens/s over the direct path's
    /// in the same round.
    pub vs_direct: Option<f64>,
    pub rounds: usize,
}

impl Saturation {
    /// `direct_rates[i]` is the direct path's tokens/s in round `i`.
    pub fn of(path: PathKind, mut runs: Vec<SaturationRun>, direct_rates: &[f64]) -> Self {
        let rounds = runs.len();
        let mut ratios: Vec<f64> = runs
            .iter()
            .zip(direct_rates)
            .filter(|(_, direct)| **direct > 0.0)
            .map(|(run, direct)| run.summary.tokens_per_second() / direct)
            .collect();
        let vs_direct = (!ratios.is_empty()).then(|| percentile(&mut ratios, 50.0));
        let mut cpus: Vec<f64> = runs.iter().filter_map(|r| r.cpu_per_100k).collect();
        let cpu_per_100k = (!cpus.is_empty()).then(|| percentile(&mut cpus, 50.0));
        let errors = runs.iter().map(|r| r.summary.errors).sum();
        let first_error = runs.iter().find_map(|r| r.summary.first_error.clone());
        runs.sort_by(|a, b| {
            a.summary
                .tokens_per_second()
                .total_cmp(&b.summary.tokens_per_second())
        });
        let mut summary = runs
            .get(rounds.saturating_sub(1) / 2)
            .map(|run| run.summary.clone())
            .unwrap_or_default();
        summary.errors = errors;
        summary.first_error = first_error;
        Self {
            path,
            summary,
            cpu_per_100k,
            vs_direct,
            rounds,
        }
    }
}

pub struct Idle {
    pub path: PathKind,
    pub streams: usize,
    pub errors: usize,
    pub first_error: Option<String>,
    pub rss_before: u64,
    pub rss_after: u64,
}

impl Idle {
    /// What each stream added to the resident set; none when streams failed
    /// (the growth would be spread over streams that do not exist) or the
    /// set shrank (nothing was measured).
    pub fn bytes_per_stream(&self) -> Option<f64> {
        if self.errors > 0 || self.rss_after < self.rss_before || self.streams == 0 {
            return None;
        }
        Some((self.rss_after - self.rss_before) as f64 / self.streams as f64)
    }
}

pub struct EmbeddedRow {
    pub streams: usize,
    pub raw_ttft_ms: f64,
    pub raw_tokens_per_second: f64,
    pub served_ttft_ms: f64,
    pub served_tokens_per_second: f64,
    pub errors: usize,
}

impl Results {
    /// Errors of the direct path and llm-chat's (LiteLLM's are its own
    /// finding, shown in its rows).
    pub fn our_errors(&self) -> usize {
        let ours = |path: PathKind| !path.is_litellm();
        self.paths
            .iter()
            .zip(&self.latency)
            .filter(|(path, _)| ours(**path))
            .flat_map(|(_, runs)| runs)
            .map(|s| s.errors)
            .sum::<usize>()
            + self
                .saturation
                .iter()
                .filter(|s| ours(s.path))
                .map(|s| s.summary.errors)
                .sum::<usize>()
            + self
                .scale
                .iter()
                .map(|row| row.summary.errors)
                .sum::<usize>()
            + self
                .idle
                .iter()
                .filter(|i| ours(i.path))
                .map(|i| i.errors)
                .sum::<usize>()
            + self.embedded.iter().map(|e| e.errors).sum::<usize>()
            + self.store.as_ref().map_or(0, |store| {
                store.list.errors + store.open.errors + store.search.errors + store.answer_errors
            })
    }

    fn index(&self, path: PathKind) -> Option<usize> {
        self.paths.iter().position(|p| *p == path)
    }

    fn latency_of(&self, path: PathKind, level: usize) -> Option<&Summary> {
        self.latency.get(self.index(path)?)?.get(level)
    }

    fn saturation_of(&self, path: PathKind) -> Option<&Saturation> {
        self.saturation.iter().find(|s| s.path == path)
    }

    /// The markdown between the generated-section markers.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "_Generated by `{}` — do not edit by hand between the markers._\n",
            match self.mode.as_str() {
                "full" => "make bench",
                "quick" => "make bench-quick",
                _ => "the benchmark's smoke run (make test)",
            }
        );
        self.targets(&mut md);
        self.latency_table(&mut md);
        self.saturation_table(&mut md);
        self.scale_table(&mut md);
        self.idle_table(&mut md);
        self.store_table(&mut md);
        if let Some(page) = &self.page {
            page.section(&mut md);
        }
        self.embedded_table(&mut md);
        let _ = writeln!(md, "## How this was measured\n");
        for (key, value) in &self.parameters {
            let _ = writeln!(md, "- {key}: {value}");
        }
        for note in &self.notes {
            let _ = writeln!(md, "- {note}");
        }
        let _ = writeln!(md, "\n## Machine and versions\n");
        for (key, value) in &self.machine {
            let _ = writeln!(md, "- {key}: {value}");
        }
        md
    }

    fn targets(&self, md: &mut String) {
        let _ = writeln!(md, "## Targets\n");
        let _ = writeln!(md, "| target | measured | met |");
        let _ = writeln!(md, "|---|---|---|");
        let at_100 = self.concurrencies.iter().position(|&c| c == 100);
        // (streams, p50 bound, p99 bound), in ms of added time to first token.
        for (streams, p50_bound, p99_bound) in [(100, 0.3, 1.0), (1000, 1.0, 3.0)] {
            let Some(level) = self.concurrencies.iter().position(|&c| c == streams) else {
                continue;
            };
            // What a forwarder that parses nothing adds at this level: the
            // part of each figure any relay pays on this machine.
            let floor = self
                .latency_of(PathKind::Forwarder, level)
                .filter(|l| l.measured())
                .zip(self.latency_of(PathKind::Direct, level))
                .map(|(f, d)| (f.ttft_p50_ms - d.ttft_p50_ms, f.ttft_p99_ms - d.ttft_p99_ms));
            let measured = |added: f64, floor: Option<f64>| match floor {
                Some(floor) => format!("{added:.2} ms (bare forwarder: {floor:.2} ms)"),
                None => format!("{added:.2} ms"),
            };
            for path in [
                PathKind::GenerateStream,
                PathKind::Generations,
                PathKind::OpenAi,
            ] {
                let (Some(direct), Some(ours)) = (
                    self.latency_of(PathKind::Direct, level),
                    self.latency_of(path, level),
                ) else {
                    continue;
                };
                let added50 = ours.ttft_p50_ms - direct.ttft_p50_ms;
                let added99 = ours.ttft_p99_ms - direct.ttft_p99_ms;
                row(
                    md,
                    &format!(
                        "added TTFT p50 ≤ {p50_bound} ms at {streams} streams ({})",
                        path.label()
                    ),
                    &measured(added50, floor.map(|f| f.0)),
                    added50 <= p50_bound,
                );
                row(
                    md,
                    &format!(
                        "added TTFT p99 ≤ {p99_bound} ms at {streams} streams ({})",
                        path.label()
                    ),
                    &measured(added99, floor.map(|f| f.1)),
                    added99 <= p99_bound,
                );
            }
        }
        // The router's own cost: three upstreams against one, same upstream.
        if let Some(level) = at_100
            && let (Some(one), Some(three)) = (
                self.latency_of(PathKind::GenerateStream, level),
                self.latency_of(PathKind::Pool, level),
            )
            && one.measured()
            && three.measured()
        {
            let more = three.ttft_p50_ms - one.ttft_p50_ms;
            row(
                md,
                "three upstreams: TTFT p50 ≤ one upstream's + 0.1 ms at 100 streams",
                &format!("{more:+.3} ms"),
                more <= 0.1,
            );
        }
        // A conversation message costs a bare generation plus its saving.
        if let Some(level) = at_100
            && let (Some(generation), Some(message)) = (
                self.latency_of(PathKind::Generations, level),
                self.latency_of(PathKind::Conversation, level),
            )
        {
            let added = message.ttft_p50_ms - generation.ttft_p50_ms;
            row(
                md,
                "conversation message: TTFT p50 ≤ a bare generation's + 2 ms at 100 streams",
                &format!("{added:+.2} ms"),
                added <= 2.0,
            );
        }
        let direct = self
            .saturation_of(PathKind::Direct)
            .map(|s| s.summary.tokens_per_second());
        let litellm = self
            .saturation_of(PathKind::LiteLlm)
            .map(|s| s.summary.tokens_per_second())
            .filter(|rate| *rate > 0.0);
        for path in [
            PathKind::GenerateStream,
            PathKind::Generations,
            PathKind::OpenAi,
        ] {
            let Some(ours) = self
                .saturation_of(path)
                .map(|s| s.summary.tokens_per_second())
            else {
                continue;
            };
            let vs_direct = self
                .saturation_of(path)
                .and_then(|s| s.vs_direct)
                .or_else(|| direct.map(|direct| ours / direct));
            if let Some(ratio) = vs_direct {
                row(
                    md,
                    &format!("relayed tokens/s ≥ 80% of direct ({})", path.label()),
                    &format!("{:.0}%", ratio * 100.0),
                    ratio >= 0.8,
                );
            }
            if let Some(cpu) = self.saturation_of(path).and_then(|s| s.cpu_per_100k) {
                row(
                    md,
                    &format!(
                        "gateway CPU ≤ 0.1 s per 100,000 tokens at saturation ({})",
                        path.label()
                    ),
                    &format!("{cpu:.3} s"),
                    cpu <= 0.1,
                );
            }
            if let Some(litellm) = litellm {
                let ratio = ours / litellm;
                row(
                    md,
                    &format!("relayed tokens/s ≥ 10× LiteLLM ({})", path.label()),
                    &format!("{ratio:.1}×"),
                    ratio >= 10.0,
                );
            }
        }
        // The memory target is set at the largest count measured.
        let most = self
            .idle
            .iter()
            .filter(|i| i.path != PathKind::LiteLlm)
            .map(|i| i.streams)
            .max();
        for idle in self
            .idle
            .iter()
            .filter(|i| i.path != PathKind::LiteLlm && Some(i.streams) == most)
        {
            let kib = idle.bytes_per_stream().map(|bytes| bytes / 1024.0);
            row(
                md,
                &format!(
                    "≤ 16 KiB per idle stream at {} streams ({})",
                    idle.streams,
                    idle.path.label()
                ),
                &kib.map_or_else(
                    || format!("not measured ({} errors)", idle.errors),
                    |kib| format!("{kib:.1} KiB"),
                ),
                kib.is_some_and(|kib| kib <= 16.0),
            );
        }
        if let Some(store) = &self.store {
            let history = format!(
                "{} conversations × {} messages",
                store.conversations, store.messages
            );
            for (what, timings) in [("listing", &store.list), ("opening one", &store.open)] {
                row(
                    md,
                    &format!("{what} p50 ≤ 20 ms with {history}"),
                    &format!("{:.2} ms", timings.p50_ms),
                    timings.errors == 0 && timings.p50_ms <= 20.0,
                );
            }
            if let Some(writes) = store.writes_per_answer {
                // The conversation, the question and the answer, a save per
                // second of streaming (one more for an answer that runs a
                // little past its time), and the last: never one per token.
                let bound = 5.0 + store.answer_seconds.ceil();
                row(
                    md,
                    &format!(
                        "database writes per answer ≤ {bound:.0} ({} tokens over {:.0} s)",
                        store.answer_tokens, store.answer_seconds
                    ),
                    &format!("{writes:.1}"),
                    writes <= bound,
                );
            }
        }
        if let Some(page) = &self.page {
            page.targets(md, row);
        }
        for scaled in &self.scale {
            row(
                md,
                &format!(
                    "zero errors at {} streams at a model's pace ({})",
                    scaled.streams,
                    scaled.path.label()
                ),
                &format!("{} errors", scaled.summary.errors),
                scaled.summary.errors == 0,
            );
        }
        let errors = self.our_errors();
        row(
            md,
            "zero errors on every llm-chat path (and direct) at every concurrency",
            &format!("{errors} errors"),
            errors == 0,
        );
        for embedded in &self.embedded {
            let ratio = embedded.served_tokens_per_second / embedded.raw_tokens_per_second;
            row(
                md,
                &format!(
                    "embedded tokens/s ≥ 95% of raw llama-cpp-2, {} stream(s)",
                    embedded.streams
                ),
                &format!("{:.1}%", ratio * 100.0),
                ratio >= 0.95,
            );
        }
        md.push('\n');
    }

    fn latency_table(&self, md: &mut String) {
        if self.concurrencies.is_empty() {
            return;
        }
        let _ = writeln!(md, "## Time to first token\n");
        let _ = writeln!(
            md,
            "*Streams* are in flight at once: that many clients run streams back to back, starts staggered. \
             *Added* is the path's percentile minus the direct path's, *× direct* the path's p50 over the direct path's; \
             *vs LiteLLM* divides llm-chat's added latency by LiteLLM's. \
             *Alone* says whether the row had the machine to itself: every process waited idle before it began \
             (LiteLLM, which keeps working for clients that left, is restarted when it cannot settle: ↻), \
             with the load average then and the CPU the gateways the row does not use spent during it; \
             ⚠ marks a row another process took more than 5% of a core from.\n"
        );
        let _ = writeln!(
            md,
            "![TTFT percentiles per path and concurrency](doc/bench-ttft.svg)\n"
        );
        let _ = writeln!(
            md,
            "| streams | path | TTFT p50 | TTFT p99 | × direct | added p50 | added p99 | added p50 vs LiteLLM | added p99 vs LiteLLM | gap p99 | errors | alone |"
        );
        let _ = writeln!(
            md,
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        );
        for (level, streams) in self.concurrencies.iter().enumerate() {
            let direct = self.latency_of(PathKind::Direct, level);
            // Each of ours against its like: the router against LiteLLM's.
            let added_by = |peer: PathKind| {
                let peer = self
                    .latency_of(peer, level)
                    .filter(|l| l.measured())
                    .zip(direct);
                (
                    peer.map(|(l, d)| l.ttft_p50_ms - d.ttft_p50_ms),
                    peer.map(|(l, d)| l.ttft_p99_ms - d.ttft_p99_ms),
                )
            };
            for &path in &self.paths {
                let (litellm_added50, litellm_added99) = added_by(if path == PathKind::Pool {
                    PathKind::LiteLlmRouter
                } else {
                    PathKind::LiteLlm
                });
                let Some(summary) = self.latency_of(path, level) else {
                    continue;
                };
                if !summary.measured() {
                    let _ = writeln!(
                        md,
                        "| {streams} | {} | — | — | — | — | — | — | — | — | {} | {} |",
                        path.label(),
                        errors_cell(summary.errors, summary.first_error.as_deref()),
                        self.alone_cell(path, level, summary),
                    );
                    continue;
                }
                let (added50, added99) = match (path, direct) {
                    (PathKind::Direct, _) | (_, None) => ("—".to_string(), "—".to_string()),
                    (_, Some(d)) => (
                        format!("{:+.2} ms", summary.ttft_p50_ms - d.ttft_p50_ms),
                        format!("{:+.2} ms", summary.ttft_p99_ms - d.ttft_p99_ms),
                    ),
                };
                let ours = path.is_ours();
                let vs_litellm =
                    |added: Option<f64>, theirs: Option<f64>| match (ours, added, theirs) {
                        (true, Some(added), Some(theirs)) if theirs > 0.0 => {
                            format!("{:.3}×", added.max(0.0) / theirs)
                        }
                        _ => "—".to_string(),
                    };
                let vs50 = vs_litellm(
                    direct.map(|d| summary.ttft_p50_ms - d.ttft_p50_ms),
                    litellm_added50,
                );
                let vs99 = vs_litellm(
                    direct.map(|d| summary.ttft_p99_ms - d.ttft_p99_ms),
                    litellm_added99,
                );
                let times_direct = direct
                    .filter(|d| d.ttft_p50_ms > 0.0)
                    .map_or("—".to_string(), |d| {
                        format!("{:.2}×", summary.ttft_p50_ms / d.ttft_p50_ms)
                    });
                let _ = writeln!(
                    md,
                    "| {streams} | {} | {:.2} ms | {:.2} ms | {times_direct} | {added50} | {added99} | {vs50} | {vs99} | {:.2} ms | {} | {} |",
                    path.label(),
                    summary.ttft_p50_ms,
                    summary.ttft_p99_ms,
                    summary.gap_p99_ms,
                    errors_cell(summary.errors, summary.first_error.as_deref()),
                    self.alone_cell(path, level, summary),
                );
            }
        }
        md.push('\n');
    }

    /// `✅ load 0.42, others 0.01 s`, `⚠ …`, with `↻` when LiteLLM was restarted first.
    fn alone_cell(&self, path: PathKind, level: usize, summary: &Summary) -> String {
        let Some(alone) = self
            .index(path)
            .and_then(|index| self.alone.get(index)?.get(level))
        else {
            return "—".to_string();
        };
        let mark = if alone.was_alone(summary.wall) {
            "✅"
        } else {
            "⚠"
        };
        let restarted = if alone.restarted { " ↻" } else { "" };
        let load = alone
            .load_before
            .map_or("—".to_string(), |load| format!("{load:.2}"));
        let busy = if alone.busy_before.is_empty() {
            String::new()
        } else {
            format!(", busy before: {}", alone.busy_before.join(", "))
        };
        format!(
            "{mark}{restarted} load {load}, others {:.2} s{busy}",
            alone.others_cpu_seconds
        )
    }

    fn scale_table(&self, md: &mut String) {
        let Some(first) = self.scale.first() else {
            return;
        };
        let _ = writeln!(md, "## Streams at a model's pace, at scale\n");
        let _ = writeln!(
            md,
            "{} streams at once, their tokens at a model's pace (see *How this was measured*). Clients speak HTTP/2, \
             a hundred streams to a connection; upstream, each stream has its own HTTP/1.1 connection, as with a real Ollama. \
             *Added* is the path's percentile minus the direct path's; *gap* is the time between a stream's consecutive tokens. \
             *CPU* is each process's average use over the row, in cores: on a small machine the cores, shared by the load \
             generator, the upstream and the gateway, are what such a row runs into.\n",
            first.streams
        );
        let _ = writeln!(
            md,
            "| path | streams | TTFT p50 | TTFT p99 | added p50 | added p99 | gap p50 | gap p99 | errors | CPU: gateway / upstream / load generator |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        let direct = self
            .scale
            .iter()
            .find(|row| row.path == PathKind::Direct)
            .map(|row| &row.summary);
        for row in &self.scale {
            let summary = &row.summary;
            let added = |ours: f64, theirs: Option<f64>| match theirs {
                Some(theirs) if row.path != PathKind::Direct => format!("{:+.2} ms", ours - theirs),
                _ => "—".to_string(),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {:.2} ms | {:.2} ms | {} | {} | {:.2} ms | {:.2} ms | {} | {} / {:.2} / {:.2} |",
                row.path.label(),
                row.streams,
                summary.ttft_p50_ms,
                summary.ttft_p99_ms,
                added(summary.ttft_p50_ms, direct.map(|d| d.ttft_p50_ms)),
                added(summary.ttft_p99_ms, direct.map(|d| d.ttft_p99_ms)),
                summary.gap_p50_ms,
                summary.gap_p99_ms,
                summary.errors,
                row.cpu
                    .gateway
                    .map_or("—".to_string(), |cores| format!("{cores:.2}")),
                row.cpu.upstream,
                row.cpu.load_generator,
            );
        }
        if let Some(error) = self
            .scale
            .iter()
            .find_map(|row| row.summary.first_error.as_ref())
        {
            let _ = writeln!(md, "\nFirst error: `{error}`");
        }
        md.push('\n');
    }

    fn saturation_table(&self, md: &mut String) {
        if self.saturation.is_empty() {
            return;
        }
        let _ = writeln!(md, "## Relayed tokens per second at saturation\n");
        let _ = writeln!(
            md,
            "The upstream sends tokens with no delay; the client, the upstream and the gateway share the machine's cores. \
             Each path runs several rounds, taking turns with the others; a row is the path's median round (*tokens* is \
             one round's), *× direct* the median of its per-round ratios. CPU is the gateway process's user + system time.\n"
        );
        let _ = writeln!(
            md,
            "| path | rounds | streams | tokens | tokens/s | × direct | × LiteLLM | gateway CPU s / 100k tokens | CPU × LiteLLM | errors |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        let litellm = self.saturation_of(PathKind::LiteLlm);
        for run in &self.saturation {
            let rate = run.summary.tokens_per_second();
            let times =
                |ratio: Option<f64>| ratio.map_or("—".to_string(), |r| format!("{r:.2}×"));
            let vs_litellm = litellm
                .map(|l| l.summary.tokens_per_second())
                .filter(|l| *l > 0.0)
                .map(|l| rate / l);
            let cpu = run
                .cpu_per_100k
                .map_or("—".to_string(), |c| format!("{c:.3}"));
            let cpu_ratio = match (run.cpu_per_100k, litellm.and_then(|l| l.cpu_per_100k)) {
                (Some(ours), Some(theirs)) if theirs > 0.0 => format!("{:.3}×", ours / theirs),
                _ => "—".to_string(),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {rate:.0} | {} | {} | {cpu} | {cpu_ratio} | {} |",
                run.path.label(),
                run.rounds,
                run.summary.streams,
                run.summary.tokens,
                times(run.vs_direct),
                times(vs_litellm),
                errors_cell(run.summary.errors, run.summary.first_error.as_deref()),
            );
        }
        md.push('\n');
    }

    fn idle_table(&self, md: &mut String) {
        if self.idle.is_empty() {
            return;
        }
        let _ = writeln!(md, "## Resident memory of idle streams\n");
        let _ = writeln!(
            md,
            "Streams are opened and held with a silent upstream (headers sent, no token yet); the gateway's resident set \
             is read before and after. Each row is a fresh gateway process that has served one stream first, so earlier \
             runs cannot lend it memory. llm-chat's clients speak HTTP/2 (h2c), so the client side of 10,000 streams fits \
             in a few connections; upstream, each stream has its own HTTP/1.1 connection to Ollama, as with a real Ollama. \
             *× LiteLLM* compares rows with the same number of streams; *per stream* is left out when streams failed.\n"
        );
        let _ = writeln!(
            md,
            "| path | streams | RSS before | RSS after | per stream | × LiteLLM | errors |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|");
        for idle in &self.idle {
            let per = idle.bytes_per_stream();
            let litellm = self
                .idle
                .iter()
                .find(|i| i.path == PathKind::LiteLlm && i.streams == idle.streams)
                .and_then(Idle::bytes_per_stream);
            let ratio = match (per, litellm) {
                (Some(ours), Some(theirs)) if theirs > 0.0 && idle.path != PathKind::LiteLlm => {
                    format!("{:.2}×", ours / theirs)
                }
                _ => "—".to_string(),
            };
            let per = per.map_or("—".to_string(), |bytes| {
                format!("{:.1} KiB", bytes / 1024.0)
            });
            let _ = writeln!(
                md,
                "| {} | {} | {:.1} MiB | {:.1} MiB | {per} | {ratio} | {} |",
                idle.path.label(),
                idle.streams,
                idle.rss_before as f64 / 1048576.0,
                idle.rss_after as f64 / 1048576.0,
                errors_cell(idle.errors, idle.first_error.as_deref()),
            );
        }
        md.push('\n');
    }

    fn store_table(&self, md: &mut String) {
        let Some(store) = &self.store else {
            return;
        };
        let _ = writeln!(
            md,
            "## Conversations in the database
"
        );
        let _ = writeln!(
            md,
            "A gateway of its own over a SQLite file holding {} conversations of {} messages \
             each ({} rows, written in {:.1} s straight into the file, as long use would leave \
             it). Each request is timed alone, from the client. *Writes* counts the gateway's \
             database writes (`llm_chat_conversation_writes_total`) over {} answers of {} \
             tokens streamed over {:.0} s, each in a conversation of its own: the conversation, \
             the question, the answer, its saves while streaming (at most one a second) and \
             the last.\n",
            store.conversations,
            store.messages,
            store.conversations * (store.messages + 1),
            store.seed_seconds,
            store.answers,
            store.answer_tokens,
            store.answer_seconds,
        );
        let _ = writeln!(md, "| request | requests | p50 | p99 | errors |");
        let _ = writeln!(md, "|---|---:|---:|---:|---:|");
        for (what, timings) in [
            ("list the newest 50 (`GET /conversations`)", &store.list),
            (
                "open one with its messages (`GET /conversations/{id}`)",
                &store.open,
            ),
            (
                "search every message (`GET /conversations?q=…`)",
                &store.search,
            ),
        ] {
            let _ = writeln!(
                md,
                "| {what} | {} | {:.2} ms | {:.2} ms | {} |",
                timings.requests,
                timings.p50_ms,
                timings.p99_ms,
                errors_cell(timings.errors, timings.first_error.as_deref()),
            );
        }
        if let Some(writes) = store.writes_per_answer {
            let _ = writeln!(
                md,
                "\n{writes:.1} database writes per answer of {} tokens ({} errors).",
                store.answer_tokens,
                errors_cell(store.answer_errors, store.first_answer_error.as_deref()),
            );
        }
        md.push('\n');
    }

    fn embedded_table(&self, md: &mut String) {
        if self.embedded.is_empty() {
            return;
        }
        let _ = writeln!(md, "## Embedded backend against raw llama-cpp-2\n");
        let _ = writeln!(
            md,
            "The same model, threads and context shape. *Raw* is llama-cpp-2's decode loop in the benchmark process \
             (sequences batched as llm-chat's engine batches them); *served* is llm-chat's `/api/v1/generate/stream` read by \
             an HTTP client, the server given the same threads, parallel slots and context size. Tokens/s is per stream, after the first token.\n"
        );
        let _ = writeln!(
            md,
            "| streams | raw TTFT | served TTFT | raw tokens/s | served tokens/s | served / raw | errors |"
        );
        let _ = writeln!(md, "|---:|---:|---:|---:|---:|---:|---:|");
        for row in &self.embedded {
            let _ = writeln!(
                md,
                "| {} | {:.0} ms | {:.0} ms | {:.1} | {:.1} | {:.1}% | {} |",
                row.streams,
                row.raw_ttft_ms,
                row.served_ttft_ms,
                row.raw_tokens_per_second,
                row.served_tokens_per_second,
                row.served_tokens_per_second / row.raw_tokens_per_second * 100.0,
                row.errors
            );
        }
        md.push('\n');
    }
}

fn row(md: &mut String, target: &str, measured: &str, met: bool) {
    let _ = writeln!(
        md,
        "| {target} | {measured} | {} |",
        if met { "✅" } else { "❌" }
    );
}

fn errors_cell(errors: usize, first: Option<&str>) -> String {
    match first {
        Some(first) if errors > 0 => format!(
            "{errors} (`{}`)",
            first.chars().take(60).collect::<String>().replace('|', "/")
        ),
        _ => errors.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn run(tokens: u64, seconds: f64, cpu: f64) -> SaturationRun {
        SaturationRun {
            summary: Summary {
                streams: 1,
                tokens,
                wall: Duration::from_secs_f64(seconds),
                ..Summary::default()
            },
            cpu_per_100k: Some(cpu),
        }
    }

    #[test]
    fn saturation_takes_medians_and_per_round_ratios() {
        // Round 2 was a slow spell for everyone: per-round ratios see
        // through it, where a ratio of medians would not.
        let direct = [1000.0, 400.0, 1000.0];
        let runs = vec![run(600, 1.0, 0.3), run(200, 1.0, 0.9), run(500, 1.0, 0.2)];

        let saturation = Saturation::of(PathKind::Generations, runs, &direct);

        assert_eq!(saturation.rounds, 3);
        assert_eq!(saturation.summary.tokens, 500, "the median round");
        assert_eq!(saturation.cpu_per_100k, Some(0.3));
        assert_eq!(saturation.vs_direct, Some(0.5));
    }

    #[test]
    fn idle_memory_per_stream_is_not_reported_when_streams_failed() {
        let idle = |errors, before, after| Idle {
            path: PathKind::GenerateStream,
            streams: 100,
            errors,
            first_error: None,
            rss_before: before,
            rss_after: after,
        };
        assert_eq!(idle(0, 1000, 103_400).bytes_per_stream(), Some(1024.0));
        assert_eq!(idle(3, 1000, 103_400).bytes_per_stream(), None);
        assert_eq!(idle(0, 2000, 1000).bytes_per_stream(), None);
    }
}
