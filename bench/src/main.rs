//! `llm-chat-bench`: what llm-chat costs, measured in one run on this
//! machine, against talking to the upstream directly (the limit) and
//! against LiteLLM proxy (what users would pick instead); and the embedded
//! backend against llama-cpp-2's own decode loop.
//!
//! It starts fake-ollama, llm-chat and LiteLLM as separate processes on
//! loopback, drives them with its own load generator, and writes
//! BENCHMARKS.md and an SVG chart of time to first token.

mod browser;
mod chart;
mod load;
mod paths;
mod processes;
mod raw;
mod report;
mod scale;
mod stats;
mod store;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;

use crate::paths::{PathKind, Target};
use crate::processes::{LITELLM_KEY, Service, wait_ready};
use crate::report::{Alone, EmbeddedRow, Idle, Results, Saturation, SaturationRun};
use crate::stats::{StreamRecord, Summary, ms};

#[derive(Debug, Parser)]
#[command(about = "Benchmark llm-chat against the direct path and LiteLLM")]
struct Args {
    /// Under a minute: fewer streams and tokens (LiteLLM only with --litellm).
    #[arg(long)]
    quick: bool,
    /// A few streams only: proves the harness runs (used by `make test`).
    #[arg(long, conflicts_with = "quick")]
    smoke: bool,
    /// Include LiteLLM in a quick or smoke run.
    #[arg(long)]
    litellm: bool,
    /// Leave LiteLLM out of a full run.
    #[arg(long)]
    no_litellm: bool,
    /// Leave the embedded-backend rows out.
    #[arg(long)]
    no_embedded: bool,
    /// Only the embedded-backend rows (skips the relay measurements).
    #[arg(long, conflicts_with = "no_embedded")]
    embedded_only: bool,
    /// Where the report goes.
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
    /// Where the TTFT chart goes.
    #[arg(long, default_value = "doc/bench-ttft.svg")]
    chart: PathBuf,
    /// The virtualenv holding `litellm[proxy]`.
    #[arg(long, default_value = ".venv")]
    venv: PathBuf,
    /// Where the release binaries are.
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// The upstream's pause between tokens in the time-to-first-token runs
    /// [default: 20, or 5 in a smoke run].
    #[arg(long)]
    token_delay_ms: Option<u64>,
    /// The embedded models [default: ~/.cache/llm-chat/models].
    #[arg(long, env = "LLM_CHAT_MODELS_DIR")]
    models_dir: Option<PathBuf>,
    /// Only these parts of the run, for working on one figure (the report
    /// holds what ran).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Part>,
    /// The time-to-first-token concurrency levels, instead of the mode's.
    #[arg(long, value_delimiter = ',')]
    levels: Vec<usize>,
    /// Only these relay paths (the direct path, every ratio's baseline,
    /// always runs).
    #[arg(long, value_enum, value_delimiter = ',')]
    paths: Vec<PathArg>,
}

/// The parts of a run `--only` can pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Part {
    Ttft,
    Saturation,
    /// Many streams at a model's pace.
    Scale,
    Idle,
    Store,
    Page,
    Embedded,
}

/// The relay paths `--paths` can pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PathArg {
    Stream,
    Generations,
    Conversation,
    Openai,
    Pool,
    Litellm,
    LitellmRouter,
}

impl PathArg {
    fn kind(self) -> PathKind {
        match self {
            Self::Stream => PathKind::GenerateStream,
            Self::Generations => PathKind::Generations,
            Self::Conversation => PathKind::Conversation,
            Self::Openai => PathKind::OpenAi,
            Self::Pool => PathKind::Pool,
            Self::Litellm => PathKind::LiteLlm,
            Self::LitellmRouter => PathKind::LiteLlmRouter,
        }
    }
}

impl Args {
    /// Whether this part of the run is wanted.
    fn runs(&self, part: Part) -> bool {
        self.only.is_empty() || self.only.contains(&part)
    }

    /// Whether this path is measured.
    fn measures(&self, kind: PathKind) -> bool {
        matches!(kind, PathKind::Direct | PathKind::Forwarder)
            || self.paths.is_empty()
            || self.paths.iter().any(|path| path.kind() == kind)
    }
}

/// How big each part of the run is.
struct Plan {
    mode: &'static str,
    concurrencies: Vec<usize>,
    tokens: usize,
    token_delay_ms: u64,
    saturation_streams: usize,
    saturation_tokens: usize,
    /// Saturation runs per path, taken in turns (LiteLLM runs once).
    saturation_rounds: usize,
    /// LiteLLM relays two orders of magnitude slower: fewer tokens, the
    /// same streams, so its run takes seconds too.
    litellm_saturation_tokens: usize,
    idle_streams: usize,
    litellm_idle_streams: usize,
    embedded_tokens: usize,
    /// Streams each client runs back to back in a TTFT run (the first warms up).
    rounds: usize,
    /// Turns the TTFT rows of one level are run in (see `relay_rows`).
    turns: usize,
    litellm: bool,
    embedded: bool,
    /// The history the database rows are measured over.
    history: store::History,
    /// GETs timed per kind of database row.
    store_requests: usize,
    /// Answers whose database writes are counted.
    store_answers: usize,
    /// Tokens of the Markdown answer the page is measured rendering.
    page_tokens: usize,
    /// Many streams at a model's pace.
    scale: scale::Shape,
}

impl Plan {
    /// Streams each client runs back to back at a concurrency level. A full
    /// run takes at least ~1,000 timed streams per level where it can, so
    /// p99 is not one unlucky stream; LiteLLM, a hundred times slower,
    /// keeps the base count.
    fn rounds_at(&self, level: usize, path: PathKind) -> usize {
        if path.is_litellm() && level >= 1000 {
            // One timed stream per client: each takes LiteLLM about a minute.
            return 2.min(self.rounds);
        }
        if self.mode != "full" || path.is_litellm() {
            return self.rounds;
        }
        (1000 / level.max(1)).clamp(8, 32) + 1
    }

    /// Streams each client runs in one turn: the level's timed streams
    /// shared out over the turns, plus the turn's own warm-up stream.
    fn rounds_per_turn(&self, level: usize) -> usize {
        let timed = self.rounds_at(level, PathKind::GenerateStream) - 1;
        timed.div_ceil(self.turns) + 1
    }

    fn from(args: &Args) -> Self {
        let (
            mode,
            concurrencies,
            tokens,
            saturation_streams,
            saturation_tokens,
            litellm_saturation_tokens,
            idle_streams,
            litellm_idle_streams,
            embedded_tokens,
        ) = if args.smoke {
            ("smoke", vec![1, 2], 4, 2, 200, 20, 20, 10, 8)
        } else if args.quick {
            ("quick", vec![1, 10, 100], 16, 8, 25_000, 500, 500, 100, 64)
        } else {
            (
                "full",
                vec![1, 100, 1000],
                32,
                16,
                100_000,
                2_000,
                10_000,
                // LiteLLM opens at most 500 connections to one upstream
                // (aiohttp's limit_per_host, AIOHTTP_CONNECTOR_LIMIT_PER_HOST):
                // more streams than that only queue inside it.
                500,
                128,
            )
        };
        let concurrencies = if args.levels.is_empty() {
            concurrencies
        } else {
            args.levels.clone()
        };
        Self {
            mode,
            concurrencies,
            tokens,
            token_delay_ms: args
                .token_delay_ms
                .unwrap_or(if args.smoke { 5 } else { 20 }),
            saturation_streams,
            saturation_tokens,
            saturation_rounds: if args.smoke {
                1
            } else if args.quick {
                3
            } else {
                7
            },
            litellm_saturation_tokens,
            idle_streams,
            litellm_idle_streams,
            embedded_tokens,
            rounds: if args.smoke { 2 } else { 4 },
            turns: if args.smoke { 1 } else { 3 },
            litellm: (if args.quick || args.smoke {
                args.litellm
            } else {
                !args.no_litellm
            }) && (args.measures(PathKind::LiteLlm)
                || args.measures(PathKind::LiteLlmRouter)),
            embedded: !args.no_embedded && args.runs(Part::Embedded),
            history: if args.smoke {
                store::History {
                    conversations: 50,
                    messages: 10,
                }
            } else if args.quick {
                store::History {
                    conversations: 1_000,
                    messages: 50,
                }
            } else {
                store::History {
                    conversations: 10_000,
                    messages: 50,
                }
            },
            store_requests: if args.smoke {
                10
            } else if args.quick {
                100
            } else {
                300
            },
            store_answers: if args.smoke { 4 } else { 16 },
            scale: if args.smoke {
                scale::Shape {
                    streams: 20,
                    tokens: 4,
                    token_delay: Duration::from_millis(5),
                }
            } else if args.quick {
                scale::Shape {
                    streams: 2_000,
                    tokens: 10,
                    token_delay: Duration::from_millis(50),
                }
            } else {
                scale::Shape {
                    streams: 10_000,
                    tokens: 20,
                    token_delay: Duration::from_millis(50),
                }
            },
            page_tokens: if args.smoke {
                300
            } else if args.quick {
                1_000
            } else {
                5_000
            },
        }
    }
}

const MODEL: &str = "llama3.2";
const EMBEDDED_MODEL: &str = "gemma3:270m";
const EMBEDDED_FILE: &str = "gemma-3-270m-q4_k_m.gguf";

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("llm-chat-bench: {error}");
            ExitCode::FAILURE
        }
    }
}

fn say(message: &str) {
    eprintln!("[bench] {message}");
}

async fn run(args: &Args) -> Result<(), String> {
    let plan = Plan::from(args);
    let root = std::env::current_dir().map_err(|e| e.to_string())?;
    let work = root.join("target/bench");
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let mut results = Results {
        mode: plan.mode.to_string(),
        concurrencies: if args.runs(Part::Ttft) {
            plan.concurrencies.clone()
        } else {
            Vec::new()
        },
        ..Results::default()
    };

    if !args.embedded_only {
        relay_rows(args, &plan, &root, &work, &mut results).await?;
    }

    if !args.embedded_only && args.runs(Part::Page) {
        say(&format!(
            "the page: a {}-token Markdown answer in Chromium",
            plan.page_tokens
        ));
        match browser::measure(&root, plan.page_tokens, 200).await {
            Ok(page) => results.page = Some(page),
            // The smoke run proves the harness: a broken browser run fails it.
            Err(error) if args.smoke => return Err(error),
            Err(error) => results.notes.push(format!("page rows skipped: {error}")),
        }
    }

    if plan.embedded {
        let dir = args.models_dir.clone().unwrap_or_else(default_models_dir);
        if dir.join(EMBEDDED_FILE).is_file() {
            results.embedded = embedded_rows(args, &root, &dir, plan.embedded_tokens).await?;
        } else {
            results.notes.push(format!(
                "embedded rows skipped: no {EMBEDDED_FILE} in {} (run make setup)",
                dir.display()
            ));
        }
    }

    describe(&mut results, &plan, args);
    write_outputs(args, &results)?;
    say(&format!(
        "wrote {} and {}",
        args.out.display(),
        args.chart.display()
    ));
    // The smoke run proves the harness and the paths work: any error fails it.
    let errors = results.our_errors();
    if args.smoke && errors > 0 {
        return Err(format!(
            "{errors} errors on llm-chat's paths or the direct one; see {}",
            args.out.display()
        ));
    }
    Ok(())
}

/// The gateway against the direct path and LiteLLM: TTFT, saturation, idle memory.
async fn relay_rows(
    args: &Args,
    plan: &Plan,
    root: &Path,
    work: &Path,
    results: &mut Results,
) -> Result<(), String> {
    say("starting fake-ollama and llm-chat");
    let fake = processes::fake_ollama(&args.bin_dir.join("fake-ollama"))?;
    wait_ready(&fake, "/api/version", Duration::from_secs(10)).await?;
    let mut gateways = Gateways {
        ours: start_gateway(args, root, &fake).await?,
        pool: start_pool(args, root, &fake).await?,
        forwarder: start_forwarder(args, &fake).await?,
        litellm: None,
        litellm_router: None,
    };
    if plan.litellm {
        say("starting LiteLLM proxy and router (slow to import)");
        gateways.litellm = Some(start_litellm(args, work, &fake).await?);
        gateways.litellm_router = Some(start_litellm_router(args, work, &fake).await?);
    }

    let gateway = &gateways.ours;
    let mut targets = vec![
        Target {
            kind: PathKind::Direct,
            base_url: fake.url.clone(),
            model: MODEL.into(),
            api_key: None,
            expected_tokens: None,
        },
        Target {
            kind: PathKind::Forwarder,
            base_url: gateways.forwarder.url.clone(),
            model: MODEL.into(),
            api_key: None,
            expected_tokens: None,
        },
        Target {
            kind: PathKind::GenerateStream,
            base_url: gateway.url.clone(),
            model: MODEL.into(),
            api_key: None,
            expected_tokens: None,
        },
        Target {
            kind: PathKind::Generations,
            base_url: gateway.url.clone(),
            model: MODEL.into(),
            api_key: None,
            expected_tokens: None,
        },
        Target {
            kind: PathKind::Conversation,
            base_url: gateway.url.clone(),
            model: MODEL.into(),
            api_key: None,
            expected_tokens: None,
        },
        Target {
            kind: PathKind::OpenAi,
            base_url: gateway.url.clone(),
            model: MODEL.into(),
            api_key: None,
            expected_tokens: None,
        },
    ];
    targets.push(Target {
        kind: PathKind::Pool,
        base_url: gateways.pool.url.clone(),
        model: MODEL.into(),
        api_key: None,
        expected_tokens: None,
    });
    for (kind, service) in [
        (PathKind::LiteLlm, &gateways.litellm),
        (PathKind::LiteLlmRouter, &gateways.litellm_router),
    ] {
        if let Some(service) = service {
            targets.push(Target {
                kind,
                base_url: service.url.clone(),
                model: MODEL.into(),
                api_key: Some(LITELLM_KEY.into()),
                expected_tokens: None,
            });
        }
    }
    targets.retain(|target| args.measures(target.kind));
    results.paths = targets.iter().map(|t| t.kind).collect();
    let client = load::http1_client();

    // Time to first token.
    set_behavior(
        &fake,
        json!({"tokens": plan.tokens, "token_delay_ms": plan.token_delay_ms}),
    )
    .await?;
    for target in &mut targets {
        target.expected_tokens = Some(plan.tokens as u64);
        load::run_streams(target, &client, 2, "Warm up").await;
    }
    results.latency = vec![Vec::new(); targets.len()];
    results.alone = vec![Vec::new(); targets.len()];
    let stream_duration = Duration::from_millis(plan.token_delay_ms * plan.tokens as u64);
    let levels = if args.runs(Part::Ttft) {
        plan.concurrencies.as_slice()
    } else {
        &[]
    };
    let count = targets.len();
    for &level in levels {
        // Each path's streams at this level are run in turns: every turn
        // runs each path once, starting with another one, so a slow spell
        // of the machine falls on all paths alike. Run as one block each,
        // the same build's added p50 at 100 streams moved between +0.4 and
        // +1.9 ms from one run to the next. LiteLLM, minutes a block, runs
        // its streams in the first turn only.
        let turns = plan.turns;
        let mut records: Vec<Vec<StreamRecord>> = vec![Vec::new(); count];
        let mut walls = vec![Duration::ZERO; count];
        let mut alone = vec![Alone::default(); count];
        for turn in 0..turns {
            for index in (0..count).map(|i| (i + turn) % count) {
                let kind = targets[index].kind;
                if kind.is_litellm() && turn > 0 {
                    continue;
                }
                // A row starts on a quiet machine: a peer still working for
                // clients that left (LiteLLM does not stop) is restarted.
                let (restarted, busy) = quiet_machine(args, work, &fake, &mut gateways).await?;
                if restarted {
                    gateways.point(&mut targets);
                }
                // The gateways this row does not go through.
                let others = gateways.others(kind);
                let load_before = processes::load_average();
                let others_before = processes::cpu_of(&others);
                let target = &targets[index];
                say(&format!(
                    "TTFT: {level} streams on {} (turn {}/{turns})",
                    target.kind.label(),
                    turn + 1
                ));
                let rounds = if kind.is_litellm() {
                    plan.rounds_at(level, kind)
                } else {
                    plan.rounds_per_turn(level)
                };
                let (run, wall) = bounded_records(load::concurrent_records(
                    target,
                    std::slice::from_ref(&client),
                    level,
                    rounds,
                    stream_duration,
                    "Tell me a story",
                ))
                .await;
                records[index].extend(run);
                walls[index] += wall;
                alone[index].add(Alone {
                    load_before,
                    others_cpu_seconds: processes::cpu_of(&others) - others_before,
                    busy_before: busy,
                    restarted,
                });
                clear_events(&fake).await;
            }
        }
        for index in 0..count {
            results.latency[index].push(Summary::of(&records[index], walls[index]));
            results.alone[index].push(std::mem::take(&mut alone[index]));
        }
    }

    // Saturation, in rounds: each round runs every path once, so a slow
    // spell of the machine hits all paths alike, and the report takes medians.
    let mut runs: Vec<Vec<SaturationRun>> = targets.iter().map(|_| Vec::new()).collect();
    let rounds = if args.runs(Part::Saturation) {
        plan.saturation_rounds
    } else {
        0
    };
    for round in 0..rounds {
        // Each round starts with another path, so no path always runs just
        // after the same one.
        let count = targets.len();
        let order = (0..count).map(|i| (i + round) % count);
        for index in order {
            let kind = targets[index].kind;
            let is_litellm = kind == PathKind::LiteLlm;
            // A conversation message relays as a generation does, the
            // routed paths are measured for the router's latency, and the
            // forwarder for the floor under it: their rows are their time
            // to first token.
            if (is_litellm && round > 0)
                || matches!(
                    kind,
                    PathKind::Forwarder
                        | PathKind::Conversation
                        | PathKind::Pool
                        | PathKind::LiteLlmRouter
                )
            {
                continue;
            }
            let (restarted, _) = quiet_machine(args, work, &fake, &mut gateways).await?;
            if restarted {
                gateways.point(&mut targets);
            }
            let target = &targets[index];
            let tokens = if is_litellm {
                plan.litellm_saturation_tokens
            } else {
                plan.saturation_tokens
            };
            set_behavior(&fake, json!({"tokens": tokens, "token_delay_ms": 0})).await?;
            say(&format!(
                "saturation {}/{}: {} streams on {}",
                round + 1,
                plan.saturation_rounds,
                plan.saturation_streams,
                target.kind.label()
            ));
            let service = gateways.of(kind);
            let cpu_before = service.map(Service::cpu_seconds).transpose()?;
            let target = Target {
                expected_tokens: Some(tokens as u64),
                ..target.clone()
            };
            let summary = bounded(load::run_streams(
                &target,
                &client,
                plan.saturation_streams,
                "Go",
            ))
            .await;
            let cpu_after = service.map(Service::cpu_seconds).transpose()?;
            let cpu_per_100k = cpu_before
                .zip(cpu_after)
                .filter(|_| summary.tokens > 0)
                .map(|(before, after)| (after - before) / summary.tokens as f64 * 100_000.0);
            runs[index].push(SaturationRun {
                summary,
                cpu_per_100k,
            });
            clear_events(&fake).await;
        }
    }
    let direct_rates: Vec<f64> = runs[0]
        .iter()
        .map(|r| r.summary.tokens_per_second())
        .collect();
    for (target, runs) in targets.iter().zip(runs) {
        if !runs.is_empty() {
            results
                .saturation
                .push(Saturation::of(target.kind, runs, &direct_rates));
        }
    }

    // Many streams at a model's pace, straight and through the gateway.
    if args.runs(Part::Scale) {
        let shape = plan.scale;
        set_behavior(
            &fake,
            json!({"tokens": shape.tokens, "token_delay_ms": shape.token_delay.as_millis()}),
        )
        .await?;
        for target in &targets {
            if !matches!(target.kind, PathKind::Direct | PathKind::GenerateStream) {
                continue;
            }
            quiet_machine(args, work, &fake, &mut gateways).await?;
            say(&format!(
                "scale: {} streams at a token every {:?} on {}",
                shape.streams,
                shape.token_delay,
                target.kind.label()
            ));
            let target = Target {
                expected_tokens: Some(shape.tokens as u64),
                ..target.clone()
            };
            let row = scale::measure(&target, shape, &fake, gateways.of(target.kind)).await;
            results.scale.push(row);
            wait_for_upstream_to_close(&fake).await;
            clear_events(&fake).await;
        }
    }

    // Idle streams, each measured in a process of its own: the runs above
    // grew the heaps, and a grown heap takes new streams for free.
    drop(gateways);
    if args.runs(Part::Store) {
        results.store = Some(store_rows(args, plan, root, &fake).await?);
    }
    let mut runs = vec![
        (PathKind::GenerateStream, plan.idle_streams),
        (PathKind::Generations, plan.idle_streams),
    ];
    if plan.litellm {
        // LiteLLM holds fewer (see the notes): llm-chat at its count too, so
        // the two compare like for like.
        runs.extend([
            (PathKind::GenerateStream, plan.litellm_idle_streams),
            (PathKind::Generations, plan.litellm_idle_streams),
            (PathKind::LiteLlm, plan.litellm_idle_streams),
        ]);
    }
    runs.retain(|(kind, _)| args.runs(Part::Idle) && args.measures(*kind));
    for (kind, count) in runs {
        say(&format!("idle: {count} streams on {}", kind.label()));
        let service = if kind == PathKind::LiteLlm {
            start_litellm(args, work, &fake).await?
        } else {
            start_gateway(args, root, &fake).await?
        };
        let target = Target {
            kind,
            base_url: service.url.clone(),
            model: MODEL.into(),
            api_key: (kind == PathKind::LiteLlm).then(|| LITELLM_KEY.into()),
            expected_tokens: Some(2),
        };
        let clients = if kind == PathKind::LiteLlm {
            // LiteLLM speaks HTTP/1.1 only: two sockets per stream.
            vec![load::http1_client()]
        } else {
            load::http2_clients(count.div_ceil(100))
        };
        // One stream first, so what every process loads on first use is in
        // the baseline, not spread over the streams.
        set_behavior(&fake, json!({"tokens": 2, "token_delay_ms": 0})).await?;
        load::run_streams(&target, &clients[0], 1, "Warm up").await;
        wait_for_upstream_to_close(&fake).await;
        // Then the upstream answers headers and stays silent.
        set_behavior(&fake, json!({"tokens": 2, "token_delay_ms": 600_000})).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss_before = service.rss()?;
        let mut idle = load::IdleStreams::open(&target, &clients, count, 250).await;
        let open = wait_for_upstream(&fake, count, Duration::from_secs(120)).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss_after = service.rss()?;
        let (mut errors, mut first_error) = idle.failures().await;
        if open < count && errors == 0 {
            errors = count - open;
            first_error = Some(format!(
                "only {open} of {count} streams reached the upstream within 120 s"
            ));
        }
        results.idle.push(Idle {
            path: kind,
            streams: count,
            errors,
            first_error,
            rss_before,
            rss_after,
        });
        drop(idle);
        drop(clients);
        drop(service);
        wait_for_upstream_to_close(&fake).await;
        clear_events(&fake).await;
    }
    Ok(())
}

/// Conversations in the database: listing and opening over a large
/// history, and the writes one answer costs; in a gateway of its own.
async fn store_rows(
    args: &Args,
    plan: &Plan,
    root: &Path,
    fake: &Service,
) -> Result<store::StoreRows, String> {
    let history = plan.history;
    say(&format!(
        "database: {} conversations × {} messages",
        history.conversations, history.messages
    ));
    let gateway = start_gateway(args, root, fake).await?;
    let url = gateway
        .database_url()
        .ok_or("the gateway has no database")?;
    let seed_seconds = store::seed(&url, history).await?;
    let client = load::http1_client();
    let base = gateway.url.clone();
    let conversations = history.conversations;
    // Warm the server's statement cache and the file's pages, as use would.
    store::time_gets(&client, &base, 3, |_| "/api/v1/conversations".to_string()).await;
    let list = store::time_gets(&client, &base, plan.store_requests, |_| {
        "/api/v1/conversations".to_string()
    })
    .await;
    // Spread over the whole history, old conversations as much as new.
    let open = store::time_gets(&client, &base, plan.store_requests, |i| {
        let c = (i * 7919) % conversations + 1;
        format!("/api/v1/conversations/{c:032x}")
    })
    .await;
    let search = store::time_gets(&client, &base, plan.store_requests.min(20), |i| {
        let c = (i * 7919) % conversations;
        format!("/api/v1/conversations?q=word{c}w7")
    })
    .await;

    let (tokens, seconds) = (100, 2.0);
    set_behavior(fake, store::answer_behavior(tokens, seconds)).await?;
    let before = store::writes(&client, &base).await?;
    let (answer_errors, first_answer_error) =
        store::answer(&client, &base, plan.store_answers, tokens).await;
    // The last saves land just after the last token.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = store::writes(&client, &base).await?;
    clear_events(fake).await;
    Ok(store::StoreRows {
        conversations: history.conversations,
        messages: history.messages,
        seed_seconds,
        list,
        open,
        search,
        answers: plan.store_answers,
        answer_tokens: tokens,
        answer_seconds: seconds,
        writes_per_answer: Some((after - before) as f64 / plan.store_answers as f64),
        answer_errors,
        first_answer_error,
    })
}

/// llm-chat in front of the fake, once it answers.
async fn start_gateway(args: &Args, root: &Path, fake: &Service) -> Result<Service, String> {
    let gateway = processes::llm_chat(&args.bin_dir.join("llm-chat"), root, &fake.url, None)?;
    wait_ready(&gateway, "/healthz", Duration::from_secs(20)).await?;
    Ok(gateway)
}

/// LiteLLM in front of the fake, once it answers (it is slow to import).
/// Waits (up to 20 s) until fake-ollama and every gateway are idle; a
/// LiteLLM, which keeps streaming for clients that left, is restarted when
/// it cannot settle. Says whether one was, and what was still busy.
async fn quiet_machine(
    args: &Args,
    work: &Path,
    fake: &Service,
    gateways: &mut Gateways,
) -> Result<(bool, Vec<&'static str>), String> {
    const WITHIN: Duration = Duration::from_secs(20);
    let mut services = gateways.all();
    services.insert(0, fake);
    let busy = processes::settle(&services, WITHIN).await;
    let restart_litellm = busy.contains(&"litellm");
    let restart_router = busy.contains(&"litellm-router");
    if !restart_litellm && !restart_router {
        return Ok((false, busy));
    }
    if restart_litellm {
        say("LiteLLM is still working for clients that left: restarting it");
        gateways.litellm = None;
        gateways.litellm = Some(start_litellm(args, work, fake).await?);
    }
    if restart_router {
        say("LiteLLM's router is still working for clients that left: restarting it");
        gateways.litellm_router = None;
        gateways.litellm_router = Some(start_litellm_router(args, work, fake).await?);
    }
    let mut services = gateways.all();
    services.insert(0, fake);
    Ok((true, processes::settle(&services, WITHIN).await))
}

/// The gateways the relay rows go through (the direct path goes through
/// none), and the bare forwarder measured beside them.
struct Gateways {
    ours: Service,
    /// llm-chat routing over three upstreams (one fake, listed three times).
    pool: Service,
    /// Not a gateway: the bare TCP forwarder, the floor of any relay.
    forwarder: Service,
    litellm: Option<Service>,
    litellm_router: Option<Service>,
}

impl Gateways {
    /// The gateway a path goes through.
    fn of(&self, kind: PathKind) -> Option<&Service> {
        match kind {
            PathKind::Direct => None,
            PathKind::Pool => Some(&self.pool),
            PathKind::Forwarder => Some(&self.forwarder),
            PathKind::LiteLlm => self.litellm.as_ref(),
            PathKind::LiteLlmRouter => self.litellm_router.as_ref(),
            PathKind::GenerateStream
            | PathKind::Generations
            | PathKind::Conversation
            | PathKind::OpenAi => Some(&self.ours),
        }
    }

    fn all(&self) -> Vec<&Service> {
        [
            Some(&self.ours),
            Some(&self.pool),
            Some(&self.forwarder),
            self.litellm.as_ref(),
            self.litellm_router.as_ref(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// Every gateway a path does not go through.
    fn others(&self, kind: PathKind) -> Vec<&Service> {
        let own = self.of(kind);
        self.all()
            .into_iter()
            .filter(|service| !own.is_some_and(|own| std::ptr::eq(own, *service)))
            .collect()
    }

    /// Points the targets at their gateways again (after a restart).
    fn point(&self, targets: &mut [Target]) {
        for target in targets {
            if let Some(service) = self.of(target.kind) {
                target.base_url = service.url.clone();
            }
        }
    }
}

/// The bare TCP forwarder in front of the fake, once it answers through it.
async fn start_forwarder(args: &Args, fake: &Service) -> Result<Service, String> {
    let forwarder = processes::tcp_forwarder(&args.bin_dir.join("tcp-forward"), fake)?;
    wait_ready(&forwarder, "/api/version", Duration::from_secs(10)).await?;
    Ok(forwarder)
}

/// llm-chat over three upstreams that are one fake listed three times: the
/// upstream's work is the same as the one-upstream gateway's, so the
/// difference is the router's.
async fn start_pool(args: &Args, root: &Path, fake: &Service) -> Result<Service, String> {
    let urls = [fake.url.as_str(); 3].join(",");
    let pool = processes::llm_chat(&args.bin_dir.join("llm-chat"), root, &urls, None)?;
    wait_ready(&pool, "/healthz", Duration::from_secs(20)).await?;
    Ok(pool)
}

async fn start_litellm_router(args: &Args, work: &Path, fake: &Service) -> Result<Service, String> {
    let router = processes::litellm(&args.venv, &fake.url, MODEL, work, 3)?;
    wait_ready(&router, "/health/liveliness", Duration::from_secs(120)).await?;
    Ok(router)
}

async fn start_litellm(args: &Args, work: &Path, fake: &Service) -> Result<Service, String> {
    let litellm = processes::litellm(&args.venv, &fake.url, MODEL, work, 1)?;
    wait_ready(&litellm, "/health/liveliness", Duration::from_secs(120)).await?;
    Ok(litellm)
}

/// Waits (up to 30 s) until the upstream holds no open answer.
async fn wait_for_upstream_to_close(fake: &Service) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if upstream_open(fake).await == Ok(0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    say("the upstream still holds answers after 30 s");
}

/// A run that takes too long counts as errors rather than hanging the
/// bench; its clients are stopped with it.
/// [`bounded`] for a run's records: a run given up on is one failed stream.
async fn bounded_records(
    run: impl Future<Output = (Vec<StreamRecord>, Duration)>,
) -> (Vec<StreamRecord>, Duration) {
    const BOUND: Duration = Duration::from_secs(600);
    tokio::time::timeout(BOUND, run).await.unwrap_or_else(|_| {
        let failed = StreamRecord {
            error: Some(format!("the run did not finish within {BOUND:?}")),
            ..StreamRecord::default()
        };
        (vec![failed], BOUND)
    })
}

async fn bounded(run: impl Future<Output = Summary>) -> Summary {
    const BOUND: Duration = Duration::from_secs(600);
    tokio::time::timeout(BOUND, run)
        .await
        .unwrap_or_else(|_| Summary {
            errors: 1,
            first_error: Some(format!("the run did not finish within {BOUND:?}")),
            ..Summary::default()
        })
}

async fn set_behavior(fake: &Service, behavior: serde_json::Value) -> Result<(), String> {
    let response = reqwest::Client::new()
        .post(format!("{}/_fake/behavior", fake.url))
        .json(&behavior)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("fake-ollama refused {behavior}"));
    }
    Ok(())
}

/// Waits until the upstream holds `count` open answers; returns how many it holds.
async fn wait_for_upstream(fake: &Service, count: usize, within: Duration) -> usize {
    let deadline = Instant::now() + within;
    let mut open = 0;
    while Instant::now() < deadline {
        match upstream_open(fake).await {
            Ok(now) => open = now,
            Err(error) => say(&format!("cannot read fake-ollama's counters: {error}")),
        }
        if open >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    open
}

async fn upstream_open(fake: &Service) -> Result<usize, String> {
    let stats: serde_json::Value = reqwest::get(format!("{}/_fake/stats", fake.url))
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    stats["open_streams"]
        .as_u64()
        .map(|n| n as usize)
        .ok_or_else(|| format!("no open_streams in {stats}"))
}

async fn clear_events(fake: &Service) {
    let _ = reqwest::Client::new()
        .delete(format!("{}/_fake/events", fake.url))
        .send()
        .await;
}

fn default_models_dir() -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/llm-chat/models")
}

/// The embedded backend served by llm-chat against llama-cpp-2 raw, with 1
/// and 2 streams. Served and raw runs alternate (which goes first alternates
/// too), several times each, and the medians are reported: these machines
/// are noisy. Both decode greedily, so
/// for the same prompt they produce the same tokens; rates are compared over
/// the tokens both produced.
async fn embedded_rows(
    args: &Args,
    root: &Path,
    dir: &Path,
    tokens: usize,
) -> Result<Vec<EmbeddedRow>, String> {
    // A full run takes nine pairs: with five, the median swung ±8% between
    // full runs here.
    let repeats = if args.quick || args.smoke { 5 } else { 9 };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let questions = [
        "Write a long story about a lighthouse keeper.",
        "Describe a journey across the sea.",
    ];
    say("embedded: llm-chat serving Gemma 3 270M, and the raw decode loop");
    let server = processes::llm_chat(
        &args.bin_dir.join("llm-chat"),
        root,
        "http://127.0.0.1:9",
        Some(processes::Embedded {
            models_dir: dir,
            threads,
            parallel: 2,
            context_size: 4096,
        }),
    )?;
    wait_ready(&server, "/healthz", Duration::from_secs(20)).await?;
    let client = load::http1_client();
    // Load the model in the server before measuring.
    served_stream(&client, &server, questions[0], 2).await;
    let raw = {
        let model = dir.join(EMBEDDED_FILE);
        tokio::task::spawn_blocking(move || raw::RawModel::load(&model))
            .await
            .map_err(|e| e.to_string())??
    };
    let raw = std::sync::Arc::new(raw);
    // The same shape as the server's (see above).
    let settings = std::sync::Arc::new(raw::RawSettings {
        threads: threads as i32,
        parallel: 2,
        context_size: 4096,
    });

    let mut rows = Vec::new();
    for streams in [1, 2] {
        let prompts: Vec<String> = questions[..streams]
            .iter()
            .map(|q| raw::transcript(q))
            .collect();
        let mut served_rates = Vec::new();
        let mut served_ttfts = Vec::new();
        let mut raw_rates = Vec::new();
        let mut raw_ttfts = Vec::new();
        let mut errors = 0;
        for repeat in 0..repeats {
            let run_raw = || {
                let (raw, settings, prompts) = (raw.clone(), settings.clone(), prompts.clone());
                tokio::task::spawn_blocking(move || raw.decode(&prompts, tokens, &settings))
            };
            let run_served = || {
                futures_util::future::join_all(
                    questions[..streams]
                        .iter()
                        .map(|q| served_stream(&client, &server, q, tokens)),
                )
            };
            let (served, raw_times) = if repeat % 2 == 0 {
                let served = run_served().await;
                (served, run_raw().await.map_err(|e| e.to_string())??)
            } else {
                let raw_times = run_raw().await.map_err(|e| e.to_string())??;
                (run_served().await, raw_times)
            };
            for (served, times) in served.iter().zip(&raw_times) {
                if served.error.is_some() || served.times.len() < 2 {
                    errors += 1;
                    continue;
                }
                // Over the tokens both produced, after the first.
                let n = served.times.len().min(times.len());
                if n < 2 {
                    errors += 1;
                    continue;
                }
                served_rates.push(rate(&served.times[..n]));
                raw_rates.push(rate(&times[..n]));
                served_ttfts.push(ms(served.times[0]));
                raw_ttfts.push(ms(times[0]));
            }
        }
        rows.push(EmbeddedRow {
            streams,
            raw_ttft_ms: stats::percentile(&mut raw_ttfts, 50.0),
            raw_tokens_per_second: stats::percentile(&mut raw_rates, 50.0),
            served_ttft_ms: stats::percentile(&mut served_ttfts, 50.0),
            served_tokens_per_second: stats::percentile(&mut served_rates, 50.0),
            errors,
        });
    }
    Ok(rows)
}

/// Tokens per second after the first, from each token's arrival time.
fn rate(times: &[Duration]) -> f64 {
    let span = times[times.len() - 1] - times[0];
    (times.len() - 1) as f64 / span.as_secs_f64().max(1e-9)
}

struct ServedStream {
    /// When each token arrived, from sending the request.
    times: Vec<Duration>,
    error: Option<String>,
}

/// One greedy answer from the embedded backend, timed from the client.
async fn served_stream(
    client: &reqwest::Client,
    server: &Service,
    question: &str,
    tokens: usize,
) -> ServedStream {
    use futures_util::StreamExt;
    let sent = Instant::now();
    let failed = |error: String| ServedStream {
        times: Vec::new(),
        error: Some(error),
    };
    let response = client
        .post(format!("{}/api/v1/generate/stream", server.url))
        .json(&json!({"model": EMBEDDED_MODEL, "prompt": question,
                      "options": {"temperature": 0, "num_predict": tokens}}))
        .send()
        .await;
    let response = match response {
        Ok(response) if response.status().is_success() => response,
        Ok(response) => return failed(format!("HTTP {}", response.status())),
        Err(error) => return failed(error.to_string()),
    };
    let mut body = response.bytes_stream();
    let mut times = Vec::with_capacity(tokens);
    let mut buffer = String::new();
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else {
            return failed("body broke".into());
        };
        let now = sent.elapsed();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        // Only whole frames count; a partial one waits for the next chunk.
        let Some(end) = buffer.rfind("\n\n") else {
            continue;
        };
        let complete: String = buffer.drain(..end + 2).collect();
        let frames = complete.matches("data: {\"response\":").count();
        times.extend(std::iter::repeat_n(now, frames));
        if complete.contains("event: done") {
            break;
        }
        if complete.contains("event: error") {
            return failed(complete);
        }
    }
    ServedStream { times, error: None }
}

fn describe(results: &mut Results, plan: &Plan, args: &Args) {
    let command = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .ok()
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
            .filter(|text| !text.is_empty())
            .unwrap_or_else(|| "unknown".into())
    };
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown".into());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            let kib: f64 = info
                .lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))?
                .split_whitespace()
                .next()?
                .parse()
                .ok()?;
            Some(format!("{:.1} GiB", kib / 1048576.0))
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    results.machine = vec![
        ("CPU".into(), format!("{cpu}, {cores} cores")),
        ("memory".into(), memory),
        (
            "kernel".into(),
            std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_string(),
        ),
        ("open files limit".into(), open_files_limit()),
        ("rustc".into(), command("rustc", &["-V"])),
        (
            "llm-chat".into(),
            format!(
                "commit {}",
                command("git", &["describe", "--always", "--dirty"])
            ),
        ),
        (
            "LiteLLM".into(),
            if plan.litellm {
                command(
                    &args.venv.join("bin/python").to_string_lossy(),
                    &[
                        "-c",
                        "import importlib.metadata as m; print(m.version('litellm'))",
                    ],
                )
            } else {
                "not run".into()
            },
        ),
        (
            "measured".into(),
            humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        ),
    ];
    results.parameters = vec![
        ("mode".into(), plan.mode.into()),
        (
            "TTFT runs".into(),
            format!(
                "{} tokens per stream, {} ms apart; at each of {:?} concurrent streams, that many clients run streams back to back, \
                 in {} turns that take every path once each, starting with another path each turn (LiteLLM in the first only); \
                 in a turn each client runs {} streams (the first, warming the connection pools, not counted){}, \
                 their starts spread over one stream's duration and each stream after a random pause under 1 ms \
                 (so no path starts its streams at a fixed phase of the upstream's millisecond timer)",
                plan.tokens,
                plan.token_delay_ms,
                plan.concurrencies,
                plan.turns,
                plan.concurrencies
                    .iter()
                    .map(|&level| plan.rounds_per_turn(level).to_string())
                    .collect::<Vec<_>>()
                    .join(" / "),
                if plan.litellm && plan.mode == "full" {
                    format!(
                        "; LiteLLM's clients run {} in its one turn ({} at 1,000 streams)",
                        plan.rounds,
                        plan.rounds_at(1000, PathKind::LiteLlm)
                    )
                } else {
                    String::new()
                }
            ),
        ),
        (
            "saturation".into(),
            format!(
                "{} streams × {} tokens ({} on LiteLLM), no delay upstream; {} rounds, each running every path once, starting with a different one each round \
                 (LiteLLM in the first only); the table shows each path's median round, and its ratio to direct is the median of \
                 the per-round ratios",
                plan.saturation_streams,
                plan.saturation_tokens,
                plan.litellm_saturation_tokens,
                plan.saturation_rounds
            ),
        ),
        (
            "at scale".into(),
            format!(
                "{} streams × {} tokens, one every {} ms; HTTP/2 clients ({} streams a connection), each running two streams back to back (the first not counted)",
                plan.scale.streams,
                plan.scale.tokens,
                plan.scale.token_delay.as_millis(),
                100
            ),
        ),
        (
            "idle streams".into(),
            format!(
                "{} on llm-chat (HTTP/2 clients), {} on LiteLLM (HTTP/1.1)",
                plan.idle_streams, plan.litellm_idle_streams
            ),
        ),
        (
            "embedded".into(),
            format!(
                "{EMBEDDED_MODEL}, greedy, {} tokens per stream; served and raw runs alternate, {} pairs per row, medians",
                plan.embedded_tokens,
                if plan.mode == "full" { 9 } else { 5 }
            ),
        ),
        (
            "upstream".into(),
            "fake-ollama (this workspace), one process, the same for every path".into(),
        ),
    ];
    results.notes.push(
        "LiteLLM runs as `litellm --config … --num_workers 1` with `ollama_chat/<model>` and `api_base` = the fake, \
         no callbacks, no database; it is HTTP/1.1 only, so each idle stream holds two sockets and the open-files \
         limit above caps how many streams it can hold; and it opens at most 500 connections to one upstream (its default \
         `AIOHTTP_CONNECTOR_LIMIT_PER_HOST`), so past 500 concurrent streams the rest queue inside it, as its time to \
         first token at 1,000 streams shows"
            .into(),
    );
    results.notes.push(
        "the routed rows (\"3 upstreams\", \"LiteLLM router, 3 deployments\") put one fake-ollama behind three \
         upstream entries (llm-chat: `OLLAMA_URL` with the fake's URL three times, three members with a connection \
         pool each; LiteLLM: three deployments of one model, its default simple-shuffle strategy), so the upstream \
         does the same work as on the one-upstream rows and the difference is the router's; the 3-upstream row's \
         \"vs LiteLLM\" columns compare it with LiteLLM's router"
            .into(),
    );
}

fn open_files_limit() -> String {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|line| line.starts_with("Max open files"))
                .map(|line| line.split_whitespace().nth(3).unwrap_or("?").to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

const BEGIN: &str = "<!-- bench:begin -->";
const END: &str = "<!-- bench:end -->";

/// Writes the chart and the report, keeping what the report file holds
/// outside the generated markers (the hand-written history of changes).
fn write_outputs(args: &Args, results: &Results) -> Result<(), String> {
    let series: Vec<chart::Series> = results
        .paths
        .iter()
        .zip(&results.latency)
        .map(|(path, runs)| chart::Series {
            label: path.label().to_string(),
            p50: runs.iter().map(|s| s.ttft_p50_ms).collect(),
            p99: runs.iter().map(|s| s.ttft_p99_ms).collect(),
        })
        .collect();
    let title = format!(
        "Time to first token ({} ms upstream pacing)",
        Plan::from(args).token_delay_ms
    );
    if let Some(parent) = args.chart.parent() {
        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    std::fs::write(
        &args.chart,
        chart::ttft_svg(&title, &results.concurrencies, &series),
    )
    .map_err(|e| e.to_string())?;

    let existing = std::fs::read_to_string(&args.out).unwrap_or_default();
    let (before, after) = match (existing.find(BEGIN), existing.find(END)) {
        (Some(begin), Some(end)) if begin < end => (
            existing[..begin].to_string(),
            existing[end + END.len()..].to_string(),
        ),
        _ => ("# Benchmarks\n\n".to_string(), String::new()),
    };
    let text = format!("{before}{BEGIN}\n{}{END}{after}", results.markdown());
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    std::fs::write(&args.out, text).map_err(|e| e.to_string())
}
