//! The `llm-chat` binary as a user runs it: its help, its start-up errors,
//! its request logs, and SIGTERM.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fake_ollama::{Behavior, FakeOllama};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::{TempDir, read_frames};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The binary, run where no `.env` file can change its settings.
fn llm_chat() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_llm-chat"));
    command
        .current_dir(std::env::temp_dir())
        .env_remove("RUST_LOG")
        .env("LLM_CHAT_EMBEDDED", "false")
        .env_remove("LLM_CHAT_DATABASE_URL")
        .env_remove("DATABASE_URL")
        .kill_on_drop(true);
    command
}

/// The environment variables `--help` names, in order.
async fn documented_variables() -> Vec<String> {
    let output = llm_chat().arg("--help").output().await.unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    help.split("[env: ")
        .skip(1)
        .map(|rest| rest.split(['=', ']']).next().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn help_env_example_and_readme_name_the_same_settings() {
    let variables = documented_variables().await;
    for expected in [
        "LLM_CHAT_ADDR",
        "OLLAMA_URL",
        "OLLAMA_HOST",
        "OLLAMA_PORT",
        "OLLAMA_HTTP_CLIENT_TIMEOUT_SECONDS",
        "OLLAMA_HTTP_CLIENT_KEEP_ALIVE_SECONDS",
        "OLLAMA_HTTP_CLIENT_IDLE_CONN_TIMEOUT_SECONDS",
        "LLM_CHAT_BODY_LIMIT_BYTES",
        "LLM_CHAT_SSE_KEEP_ALIVE_SECONDS",
        "LLM_CHAT_SHUTDOWN_GRACE_SECONDS",
        "LOG_FORMAT",
    ] {
        assert!(
            variables.iter().any(|v| v == expected),
            "--help lacks {expected}"
        );
    }
    let env_example = std::fs::read_to_string(repo_root().join(".env.example")).unwrap();
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    for variable in &variables {
        assert!(
            env_example.contains(&format!("{variable}=")),
            ".env.example lacks {variable}"
        );
        assert!(
            readme.contains(&format!("`{variable}`")),
            "README's configuration table lacks {variable}"
        );
    }
}

#[tokio::test]
async fn a_bad_setting_stops_the_start_and_names_the_flag() {
    let output = llm_chat()
        .env("LLM_CHAT_BODY_LIMIT_BYTES", "lots")
        .output()
        .await
        .unwrap();

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("lots") && stderr.contains("--body-limit"),
        "{stderr}"
    );
}

/// The running binary, its address, and its log lines (JSON) as they come.
struct Running {
    child: Child,
    url: String,
    logs: tokio::sync::mpsc::UnboundedReceiver<Value>,
}

/// Starts the binary over the fake, with a database of the test's own.
async fn start(fake: &FakeOllama, database: &TempDir) -> Running {
    start_with(llm_chat(), fake, database).await
}

async fn start_with(mut command: Command, fake: &FakeOllama, database: &TempDir) -> Running {
    let mut child = command
        .env("LLM_CHAT_DATABASE_URL", database.database_url())
        .env("LLM_CHAT_ADDR", "127.0.0.1:0")
        .env("OLLAMA_URL", fake.url())
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env("LLM_CHAT_SHUTDOWN_GRACE_SECONDS", "3")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (send, mut logs) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let entry: Value = serde_json::from_str(&line)
                .unwrap_or_else(|_| panic!("a log line that is not JSON: {line}"));
            if send.send(entry).is_err() {
                break;
            }
        }
    });
    let url = loop {
        let entry = tokio::time::timeout(Duration::from_secs(10), logs.recv())
            .await
            .expect("the server logs its address")
            .expect("the server is running");
        let message = entry["message"].as_str().unwrap_or_default();
        if let Some(url) = message.strip_prefix("llm-chat listening on ") {
            break url.to_string();
        }
    };
    Running { child, url, logs }
}

#[tokio::test]
async fn requests_are_logged_with_their_fields_and_never_their_prompt() {
    let fake = FakeOllama::start(Behavior::default()).await.unwrap();
    let database = TempDir::new();
    let mut server = start(&fake, &database).await;
    let client = reqwest::Client::new();

    let response = client
        .post(format!("{}/api/v1/generate", server.url))
        .header("x-request-id", "trace-me-42")
        .body(r#"{"model":"llama3.2","prompt":"my secret prompt"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "trace-me-42");
    response.text().await.unwrap();

    let mut seen = Vec::new();
    let completed = loop {
        let entry = tokio::time::timeout(Duration::from_secs(5), server.logs.recv())
            .await
            .expect("the request is logged")
            .unwrap();
        seen.push(entry.to_string());
        if entry["message"] == "request completed" {
            break entry;
        }
    };
    let started = seen
        .iter()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find(|entry| entry["message"] == "request started")
        .expect("a request started line");
    for entry in [&started, &completed] {
        let span = &entry["span"];
        assert_eq!(entry["level"], "INFO");
        assert_eq!(span["method"], "POST", "{entry}");
        assert_eq!(span["path"], "/api/v1/generate", "{entry}");
        assert_eq!(span["request_id"], "trace-me-42", "{entry}");
        assert!(
            span["remote"].as_str().unwrap().starts_with("127.0.0.1:"),
            "{entry}"
        );
    }
    assert_eq!(completed["status"], 200);
    assert!(completed["latency_ms"].as_f64().unwrap() > 0.0);
    assert!(
        seen.iter().all(|line| !line.contains("secret prompt")),
        "a prompt reached the logs: {seen:#?}"
    );
    server.child.kill().await.unwrap();
}

#[tokio::test]
async fn sigterm_ends_open_streams_with_an_event_and_exits_within_the_grace() {
    let fake = FakeOllama::start(Behavior {
        tokens: 10_000,
        token_delay_ms: 20,
        ..Behavior::default()
    })
    .await
    .unwrap();
    let database = TempDir::new();
    let mut server = start(&fake, &database).await;
    let mut stream = reqwest::Client::new()
        .post(format!("{}/api/v1/generate/stream", server.url))
        .body(r#"{"model":"llama3.2","prompt":"Go on"}"#)
        .send()
        .await
        .unwrap();
    read_frames(&mut stream, 2).await;

    let pid = server.child.id().unwrap().to_string();
    let signalled = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(signalled.success());

    let rest = tokio::time::timeout(Duration::from_secs(5), stream.text())
        .await
        .expect("the stream ends")
        .expect("the stream ends cleanly");
    assert!(
        rest.ends_with("event: error\ndata: {\"error\":\"server shutting down\"}\n\n"),
        "{rest}"
    );
    let exit = tokio::time::timeout(Duration::from_secs(5), server.child.wait())
        .await
        .expect("the server exits within its grace period")
        .unwrap();
    assert!(exit.success(), "{exit}");
    // And it no longer accepts connections.
    assert!(
        reqwest::get(format!("{}/healthz", server.url))
            .await
            .is_err()
    );
}

/// A server killed outright (no chance to save) mid-answer: the next one
/// finds the answer with the text that was flushed, marked interrupted.
#[tokio::test]
async fn an_answer_cut_by_sigkill_comes_back_interrupted_with_its_text() {
    let fake = FakeOllama::start(Behavior {
        tokens: 10_000,
        token_delay_ms: 20,
        ..Behavior::default()
    })
    .await
    .unwrap();
    let database = TempDir::new();
    let mut server = start(&fake, &database).await;
    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("{}/api/v1/conversations", server.url))
        .body(r#"{"model":"llama3.2"}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let posted: Value = client
        .post(format!("{}/api/v1/conversations/{id}/messages", server.url))
        .body(r#"{"content":"Go on and on"}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reply_id = posted["reply"]["id"].as_str().unwrap();
    // Two flushes' worth of tokens.
    tokio::time::sleep(Duration::from_millis(2300)).await;

    server.child.kill().await.unwrap();
    let mut server = start(&fake, &database).await;

    let conversation: Value = client
        .get(format!("{}/api/v1/conversations/{id}", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reply = conversation["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|message| message["id"] == reply_id)
        .unwrap();
    assert_eq!(reply["status"], "interrupted", "{reply}");
    let text = reply["content"].as_str().unwrap();
    assert!(text.starts_with("The quick brown fox"), "{text:?}");
    assert_eq!(
        reply["error"],
        "the server stopped while this answer was being written"
    );
    server.child.kill().await.unwrap();
}

/// The bundle as `make build` leaves it: names with a content hash, and a
/// brotli and a gzip copy of each file made at build time.
#[tokio::test]
async fn the_bundle_is_served_precompressed_under_hashed_names_and_kept_a_year() {
    let binary = Path::new(env!("CARGO_BIN_EXE_llm-chat"));
    let hashes = std::fs::read_to_string(binary.with_file_name("hash.txt"))
        .expect("hash.txt beside the binary (run `make build`)");
    let wasm_hash = hashes
        .lines()
        .find_map(|line| line.strip_prefix("wasm:"))
        .expect("a wasm line")
        .trim()
        .to_string();
    let site = repo_root().join("target/site");
    let fake = FakeOllama::start(Behavior::default()).await.unwrap();
    let database = TempDir::new();
    let mut command = llm_chat();
    command.env("LEPTOS_SITE_ROOT", &site);
    let server = start_with(command, &fake, &database).await;
    let client = reqwest::Client::new();

    let page = client
        .get(format!("{}/", server.url))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.headers()["cache-control"], "no-cache");
    let wasm_path = format!("/pkg/llm-chat.{wasm_hash}.wasm");
    assert!(page.text().await.unwrap().contains(&wasm_path));

    let on_disk =
        |suffix: &str| std::fs::read(site.join(format!("{}{suffix}", &wasm_path[1..]))).unwrap();
    for (accepted, encoding, suffix) in [
        (Some("gzip, deflate, br"), Some("br"), ".br"),
        (Some("gzip"), Some("gzip"), ".gz"),
        (None, None, ""),
    ] {
        let mut request = client.get(format!("{}{wasm_path}", server.url));
        if let Some(accepted) = accepted {
            request = request.header("accept-encoding", accepted);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        let headers = response.headers().clone();
        assert_eq!(
            headers["cache-control"],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(headers["content-type"], "application/wasm");
        assert_eq!(
            headers.get("content-encoding").map(|v| v.to_str().unwrap()),
            encoding,
            "{accepted:?}"
        );
        let body = response.bytes().await.unwrap();
        // The copy made at build time, byte for byte: not compressed again.
        assert!(
            body == on_disk(suffix),
            "{accepted:?}: {} bytes",
            body.len()
        );
    }

    // The highlighter, vendored by the build under its own content hash.
    let page = client
        .get(format!("{}/", server.url))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    let html = page.text().await.unwrap();
    let start = html
        .find("/vendor/highlight.")
        .expect("the page names the highlighter");
    let end = start + html[start..].find(".js").unwrap() + 3;
    let highlighter = client
        .get(format!("{}{}", server.url, &html[start..end]))
        .header("accept-encoding", "br")
        .send()
        .await
        .unwrap();
    assert_eq!(highlighter.status(), 200);
    assert_eq!(
        highlighter.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(highlighter.headers()["content-encoding"], "br");

    let favicon = client
        .get(format!("{}/favicon.svg", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(favicon.status(), 200);
    assert_eq!(favicon.headers()["cache-control"], "no-cache");
}
