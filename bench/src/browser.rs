//! The page in a real browser: what rendering a long Markdown answer costs
//! the main thread per token (Playwright drives Debian's Chromium through
//! `end2end/bench/render.bench.ts`), how long the page takes to become
//! interactive, and what the bundle weighs on the wire.

use std::path::Path;

use serde::Deserialize;

/// The figures the browser run writes (see render.bench.ts).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RenderRun {
    pub tokens: usize,
    pub rate: f64,
    pub per_token_p50_ms: f64,
    pub per_token_p95_ms: f64,
    pub per_token_max_ms: f64,
    pub early_mean_ms: f64,
    pub late_mean_ms: f64,
    pub late_over_early: f64,
    pub frames: usize,
    pub long_tasks: usize,
    pub longest_task_ms: f64,
    /// When each long task happened, so one can be traced to its cause.
    #[serde(default)]
    pub long_task_times: Vec<LongTask>,
    pub load_to_interactive_ms: f64,
}

/// A main-thread task over 50 ms while the answer streamed.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LongTask {
    pub after_send_ms: f64,
    /// Tokens that had arrived when it began.
    pub tokens_before: usize,
    pub ms: f64,
}

/// How many long tasks, and each one's length and moment.
fn long_tasks(render: &RenderRun) -> String {
    let moments: Vec<String> = render
        .long_task_times
        .iter()
        .map(|task| {
            format!(
                "{:.0} ms, {:.1} s after the send, after token {}",
                task.ms,
                task.after_send_ms / 1000.0,
                task.tokens_before
            )
        })
        .collect();
    if moments.is_empty() {
        render.long_tasks.to_string()
    } else {
        format!("{} ({})", render.long_tasks, moments.join("; "))
    }
}

/// A file of the bundle as the server sends it.
#[derive(Debug, Clone)]
pub struct BundleFile {
    pub what: &'static str,
    pub raw: u64,
    pub gzip: Option<u64>,
    pub brotli: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct PageRows {
    pub render: Option<RenderRun>,
    pub bundle: Vec<BundleFile>,
}

/// Runs the browser measurement over an answer of `tokens` tokens arriving
/// at `rate` tokens/s, and reads the bundle's sizes from the site root.
pub async fn measure(root: &Path, tokens: usize, rate: u32) -> Result<PageRows, String> {
    let out = root.join("target/bench/browser.json");
    let _ = std::fs::remove_file(&out);
    let status = tokio::process::Command::new("npx")
        .args(["playwright", "test", "--config", "bench.config.ts"])
        .current_dir(root.join("end2end"))
        .env("BENCH_BROWSER_OUT", &out)
        .env("BENCH_RENDER_TOKENS", tokens.to_string())
        .env("BENCH_RENDER_RATE", rate.to_string())
        .status()
        .await
        .map_err(|error| format!("cannot run Playwright: {error}"))?;
    if !status.success() {
        return Err(format!("the browser run failed ({status})"));
    }
    let written = std::fs::read_to_string(&out)
        .map_err(|error| format!("the browser run wrote no figures: {error}"))?;
    let render: RenderRun =
        serde_json::from_str(&written).map_err(|error| format!("browser figures: {error}"))?;
    Ok(PageRows {
        render: Some(render),
        bundle: bundle(&root.join("target/site")),
    })
}

/// The bundle's files, with the compressed copies made at build time: what
/// the first load fetches, then what is fetched later (the answers' renderer
/// once the page is live; the highlighter on the first code block; the
/// settings and Models panels the first time one opens), each kind summed
/// over its files.
fn bundle(site: &Path) -> Vec<BundleFile> {
    let pkg = site.join("pkg");
    // The renderer's split-off module and the shared chunks it needs, as the
    // split loader's manifest lists them.
    let renderer = split_files(&pkg, "mount_live_answer_");
    let in_renderer = |name: &str| renderer.iter().any(|file| file == name);
    let starts =
        |name: &str, prefixes: &[&str]| prefixes.iter().any(|prefix| name.starts_with(prefix));
    type Pick<'a> = Box<dyn Fn(&str) -> bool + 'a>;
    let kinds: [(&'static str, &Path, Pick); 6] = [
        (
            "WASM",
            &pkg,
            Box::new(|name| starts(name, &["llm-chat."]) && name.ends_with(".wasm")),
        ),
        // wasm-bindgen's glue, and the split loader it imports.
        (
            "JavaScript glue",
            &pkg,
            Box::new(|name| starts(name, &["llm-chat.", "__wasm_split."]) && name.ends_with(".js")),
        ),
        (
            "CSS",
            &pkg,
            Box::new(|name| starts(name, &["llm-chat."]) && name.ends_with(".css")),
        ),
        (
            "answers' renderer WASM (fetched once the page is live)",
            &pkg,
            Box::new(|name| in_renderer(name)),
        ),
        (
            "highlighter (loaded on the first code block)",
            &site.join("vendor"),
            Box::new(|name| starts(name, &["highlight."]) && name.ends_with(".js")),
        ),
        (
            "panels' WASM (when one first opens, beyond the renderer's)",
            &pkg,
            Box::new(|name| {
                starts(name, &["split_", "chunk_"]) && name.ends_with(".wasm") && !in_renderer(name)
            }),
        ),
    ];
    let size = |path: &Path| std::fs::metadata(path).ok().map(|m| m.len());
    kinds
        .into_iter()
        .filter_map(|(what, dir, pick)| {
            let files: Vec<_> = std::fs::read_dir(dir)
                .ok()?
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| {
                    path.file_name()
                        .is_some_and(|name| pick(&name.to_string_lossy()))
                })
                .collect();
            if files.is_empty() {
                return None;
            }
            // A compressed size is given only when every file has that copy.
            let total = |suffix: &str| -> Option<u64> {
                files
                    .iter()
                    .map(|file| size(Path::new(&format!("{}{suffix}", file.display()))))
                    .sum()
            };
            Some(BundleFile {
                what,
                raw: total("")?,
                gzip: total(".gz"),
                brotli: total(".br"),
            })
        })
        .collect()
}

/// The WASM files the split loader fetches for the `#[lazy]` function whose
/// name starts `function` (its module and the chunks it shares), from the
/// manifest cargo-leptos writes beside them.
fn split_files(pkg: &Path, function: &str) -> Vec<String> {
    let manifest = std::fs::read_dir(pkg)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name().is_some_and(|name| {
                let name = name.to_string_lossy();
                name.starts_with("__wasm_split_manifest.") && name.ends_with(".json")
            })
        });
    let Some(manifest) = manifest
        .and_then(|path| std::fs::read_to_string(path).ok())
        .and_then(|text| {
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&text).ok()
        })
    else {
        return Vec::new();
    };
    manifest
        .iter()
        .filter(|(name, _)| name.starts_with(function))
        .filter_map(|(_, files)| files.as_array())
        .flatten()
        .filter_map(|file| Some(format!("{}.wasm", file.as_str()?)))
        .collect()
}

/// The gzip size the page budget is set in (KB of 1,000 bytes, as the issue
/// states it).
const WASM_GZIP_BUDGET_KB: f64 = 250.0;

impl PageRows {
    /// The page's rows of the targets table.
    pub fn targets(&self, md: &mut String, row: fn(&mut String, &str, &str, bool)) {
        if let Some(render) = &self.render {
            let at = format!("{} tokens at {:.0} tokens/s", render.tokens, render.rate);
            row(
                md,
                &format!("main-thread time per token p95 ≤ 2 ms ({at})"),
                &format!(
                    "p50 {:.3} ms, p95 {:.3} ms",
                    render.per_token_p50_ms, render.per_token_p95_ms
                ),
                render.per_token_p95_ms <= 2.0,
            );
            row(
                md,
                "no long task over 50 ms while it streams",
                &format!(
                    "{} long tasks, longest {:.0} ms",
                    render.long_tasks, render.longest_task_ms
                ),
                render.longest_task_ms <= 50.0,
            );
            row(
                md,
                "time per token at the end ≤ 1.5× at token 100",
                &format!(
                    "{:.2}× ({:.3} ms / {:.3} ms)",
                    render.late_over_early, render.late_mean_ms, render.early_mean_ms
                ),
                render.late_over_early <= 1.5,
            );
        }
        if let Some(wasm) = self.bundle.iter().find(|file| file.what == "WASM")
            && let Some(gzip) = wasm.gzip
        {
            let kb = gzip as f64 / 1000.0;
            row(
                md,
                &format!("WASM of the first load ≤ {WASM_GZIP_BUDGET_KB:.0} KB gzip"),
                &format!("{kb:.1} KB"),
                kb <= WASM_GZIP_BUDGET_KB,
            );
        }
    }

    /// The page's own section.
    pub fn section(&self, md: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(md, "## The page\n");
        if let Some(render) = &self.render {
            let _ = writeln!(
                md,
                "A {}-token Markdown answer (headings, paragraphs, nested lists, a table and a code block per \
                 section) streamed at {:.0} tokens/s into Debian's Chromium. A token's cost is its EventSource \
                 handler with the WASM work it queues, plus its share of the frame that renders it (the Markdown \
                 update, Leptos's DOM changes, and the style and layout they cause, forced inside the frame; paint \
                 is not counted).\n",
                render.tokens, render.rate
            );
            let _ = writeln!(md, "| measure | value |\n|---|---:|");
            for (what, value) in [
                (
                    "main-thread time per token, p50",
                    format!("{:.3} ms", render.per_token_p50_ms),
                ),
                (
                    "main-thread time per token, p95",
                    format!("{:.3} ms", render.per_token_p95_ms),
                ),
                (
                    "main-thread time per token, max",
                    format!("{:.2} ms", render.per_token_max_ms),
                ),
                (
                    "mean around token 100 (tokens 50–250)",
                    format!("{:.3} ms", render.early_mean_ms),
                ),
                (
                    "mean over the last 200 tokens",
                    format!("{:.3} ms", render.late_mean_ms),
                ),
                ("frames rendered", render.frames.to_string()),
                ("long tasks (> 50 ms) while it streams", long_tasks(render)),
                (
                    "load to interactive (hydrated), loopback",
                    format!("{:.0} ms", render.load_to_interactive_ms),
                ),
            ] {
                let _ = writeln!(md, "| {what} | {value} |");
            }
            md.push('\n');
        }
        if !self.bundle.is_empty() {
            let _ = writeln!(
                md,
                "The bundle as sent (brotli and gzip made at build time, served as they are):\n\n\
                 | file | raw | gzip | brotli |\n|---|---:|---:|---:|"
            );
            let kb = |bytes: Option<u64>| {
                bytes.map_or("—".to_string(), |b| {
                    format!("{:.1} KB", b as f64 / 1000.0)
                })
            };
            for file in &self.bundle {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} |",
                    file.what,
                    kb(Some(file.raw)),
                    kb(file.gzip),
                    kb(file.brotli)
                );
            }
            md.push('\n');
        }
    }
}
