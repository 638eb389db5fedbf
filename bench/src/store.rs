//! Conversations in the database: how long listing and opening take with a
//! large history in it (written straight into the gateway's SQLite file,
//! as years of use would leave it), and how many database writes one answer
//! costs (a bounded number, never one per token).

use std::str::FromStr;
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{ConnectOptions, Connection};

use crate::paths::{PathKind, Target};
use crate::stats::percentile;

/// A history of `conversations`, each of `messages` messages.
#[derive(Debug, Clone, Copy)]
pub struct History {
    pub conversations: usize,
    pub messages: usize,
}

/// Latencies of one kind of request, in milliseconds.
#[derive(Debug, Clone, Default)]
pub struct Timings {
    pub requests: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: usize,
    pub first_error: Option<String>,
}

/// What the database rows measured.
#[derive(Debug, Clone, Default)]
pub struct StoreRows {
    pub conversations: usize,
    pub messages: usize,
    pub seed_seconds: f64,
    pub list: Timings,
    pub open: Timings,
    pub search: Timings,
    pub answers: usize,
    pub answer_tokens: usize,
    pub answer_seconds: f64,
    pub writes_per_answer: Option<f64>,
    pub answer_errors: usize,
    pub first_answer_error: Option<String>,
}

/// Writes `history` into the database at `url` (the gateway has made its
/// schema), in one transaction.
pub async fn seed(url: &str, history: History) -> Result<f64, String> {
    let started = Instant::now();
    let mut connection = SqliteConnectOptions::from_str(url)
        .map_err(|error| error.to_string())?
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(30))
        .connect()
        .await
        .map_err(|error| format!("open the database: {error}"))?;
    let mut tx = connection.begin().await.map_err(|e| e.to_string())?;
    // A day of history per thousand conversations, older than anything new.
    let epoch: i64 = 1_700_000_000_000;
    let text = "A fairly long message of the kind people write and models answer, \
                with a few sentences in it, so the rows weigh what real ones weigh. "
        .repeat(3);
    for c in 0..history.conversations {
        let id = format!("{:032x}", c + 1);
        let at = epoch + c as i64 * 60_000;
        let last = format!("{:016x}{:016x}", c + 1, history.messages);
        sqlx::query(
            "INSERT INTO conversations (id, title, titled_by_user, model, options, current_id, \
             created_at, updated_at) VALUES ($1, $2, 1, 'llama3.2', '{}', $3, $4, $4)",
        )
        .bind(&id)
        .bind(format!("Conversation {c} about marker{c}x"))
        .bind(&last)
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(|error| format!("seed: {error}"))?;
        for m in 1..=history.messages {
            let message = format!("{:016x}{:016x}", c + 1, m);
            let parent = (m > 1).then(|| format!("{:016x}{:016x}", c + 1, m - 1));
            sqlx::query(
                "INSERT INTO messages (id, conversation_id, parent_id, role, content, model, \
                 status, created_at) VALUES ($1, $2, $3, $4, $5, 'llama3.2', 'complete', $6)",
            )
            .bind(&message)
            .bind(&id)
            .bind(parent)
            .bind(if m % 2 == 1 { "user" } else { "assistant" })
            .bind(format!("{text} (word{c}w{m})"))
            .bind(at + m as i64)
            .execute(&mut *tx)
            .await
            .map_err(|error| format!("seed: {error}"))?;
        }
    }
    tx.commit().await.map_err(|e| e.to_string())?;
    Ok(started.elapsed().as_secs_f64())
}

/// Times `requests` GETs of the paths `path_of` names, one at a time.
pub async fn time_gets(
    client: &reqwest::Client,
    base_url: &str,
    requests: usize,
    path_of: impl Fn(usize) -> String,
) -> Timings {
    let mut times = Vec::with_capacity(requests);
    let mut timings = Timings {
        requests,
        ..Timings::default()
    };
    for i in 0..requests {
        let started = Instant::now();
        let response = client.get(format!("{base_url}{}", path_of(i))).send().await;
        let ok = match response {
            Ok(response) if response.status().is_success() => response.bytes().await.is_ok(),
            Ok(response) => {
                timings
                    .first_error
                    .get_or_insert(format!("HTTP {}", response.status()));
                false
            }
            Err(error) => {
                timings.first_error.get_or_insert(error.to_string());
                false
            }
        };
        if ok {
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        } else {
            timings.errors += 1;
        }
    }
    if !times.is_empty() {
        timings.p50_ms = percentile(&mut times, 50.0);
        timings.p99_ms = percentile(&mut times, 99.0);
    }
    timings
}

/// The gateway's count of database writes.
pub async fn writes(client: &reqwest::Client, base_url: &str) -> Result<u64, String> {
    let text = client
        .get(format!("{base_url}/metrics"))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    text.lines()
        .find_map(|line| line.strip_prefix("llm_chat_conversation_writes_total "))
        .and_then(|value| value.trim().parse().ok())
        .ok_or_else(|| "no llm_chat_conversation_writes_total in /metrics".to_string())
}

/// Runs `answers` conversation messages, a few at a time, to their end.
pub async fn answer(
    client: &reqwest::Client,
    base_url: &str,
    answers: usize,
    tokens: usize,
) -> (usize, Option<String>) {
    let target = Target {
        kind: PathKind::Conversation,
        base_url: base_url.to_string(),
        model: "llama3.2".into(),
        api_key: None,
        expected_tokens: Some(tokens as u64),
    };
    let mut errors = 0;
    let mut first_error = None;
    let mut done = 0;
    while done < answers {
        let batch = (answers - done).min(4);
        done += batch;
        let runs = (0..batch).map(|_| target.measure(client, "Tell me something"));
        for record in futures_util::future::join_all(runs).await {
            if let Some(error) = record.error {
                errors += 1;
                first_error.get_or_insert(error);
            }
        }
    }
    (errors, first_error)
}

/// The fake's behaviour for the answers whose writes are counted.
pub fn answer_behavior(tokens: usize, seconds: f64) -> serde_json::Value {
    let delay = (seconds * 1000.0 / tokens as f64).round() as u64;
    json!({"tokens": tokens, "token_delay_ms": delay})
}
