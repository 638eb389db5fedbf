//! Spawning the server against a fake Ollama, and reading SSE answers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fake_ollama::{Behavior, FakeOllama};
use llm_chat::backend::Backend;
use llm_chat::{AppState, Application, Config};
use tokio::task::JoinHandle;

/// A running server and the fake Ollama behind it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub state: AppState,
    pub fake: Option<FakeOllama>,
    pub client: reqwest::Client,
    pub server: JoinHandle<std::io::Result<()>>,
    /// Its database, removed with it.
    pub database: TempDir,
}

/// A directory of a test's own under the system's temporary directory,
/// removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "llm-chat-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        Self(dir)
    }

    /// The URL of a SQLite database in it.
    pub fn database_url(&self) -> String {
        format!("sqlite://{}/llm-chat.db", self.0.display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The configuration tests start from: a free port, the given Ollama, the
/// given database, and no embedded backend (its tests, in `embedded.rs`,
/// bring their own).
pub fn test_config(ollama_url: &str, database: &TempDir) -> Config {
    let mut config = Config::defaults();
    config.database_url = Some(database.database_url());
    config.embedded = false;
    config.addr = "127.0.0.1:0".parse().unwrap();
    config.ollama_url = Some(llm_chat::upstreams::parse_url_list(ollama_url).unwrap());
    config.ollama_timeout = Duration::from_secs(5);
    config.shutdown_grace = Duration::from_secs(5);
    config
}

/// The server in front of a fake Ollama that behaves as told.
pub async fn spawn_app(behavior: Behavior) -> TestApp {
    spawn_app_with(behavior, |_| {}).await
}

pub async fn spawn_app_with(behavior: Behavior, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let fake = FakeOllama::start(behavior)
        .await
        .expect("fake ollama starts");
    let database = TempDir::new();
    let mut config = test_config(&fake.url(), &database);
    adjust(&mut config);
    let mut app = run_app(
        Application::build(config).await.expect("server builds"),
        database,
    );
    app.fake = Some(fake);
    app
}

/// A server over the upstreams the TOML `file` declares (and no OLLAMA_URL).
pub async fn spawn_with_upstreams(file: &str, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let database = TempDir::new();
    let path = database.0.join("llm-chat.toml");
    std::fs::write(&path, file).unwrap();
    let mut config = test_config("http://127.0.0.1:9", &database);
    config.ollama_url = None;
    config.config_file = Some(path);
    adjust(&mut config);
    run_app(
        Application::build(config).await.expect("server builds"),
        database,
    )
}

/// The server over an existing database (a restart), before a new fake.
pub async fn spawn_app_on(behavior: Behavior, database: TempDir) -> TestApp {
    let fake = FakeOllama::start(behavior)
        .await
        .expect("fake ollama starts");
    let config = test_config(&fake.url(), &database);
    let mut app = run_app(
        Application::build(config).await.expect("server builds"),
        database,
    );
    app.fake = Some(fake);
    app
}

/// The server in front of an Ollama address where nothing listens.
pub async fn spawn_app_without_ollama() -> TestApp {
    let database = TempDir::new();
    let config = test_config(&format!("http://{}", dead_address().await), &database);
    run_app(
        Application::build(config).await.expect("server builds"),
        database,
    )
}

/// The server over hand-made backends.
pub async fn spawn_app_over(backends: Vec<Arc<dyn Backend>>) -> TestApp {
    let database = TempDir::new();
    let config = test_config("http://127.0.0.1:9", &database);
    run_app(
        Application::build_with_backends(config, backends)
            .await
            .expect("server builds"),
        database,
    )
}

pub fn run_app(app: Application, database: TempDir) -> TestApp {
    let addr = app.addr();
    let state = app.state().clone();
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        addr,
        state,
        fake: None,
        client: reqwest::Client::new(),
        server,
        database,
    }
}

/// A loopback address that refuses connections.
pub async fn dead_address() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn fake(&self) -> &FakeOllama {
        self.fake.as_ref().expect("this app has a fake ollama")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post_json(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.post(path, body.to_string()).await
    }

    /// Waits until the server counts no open stream, up to `within`.
    pub async fn streams_drain(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while self.state.metrics.active_streams() > 0 {
            if tokio::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }
}

/// One Server-Sent Event as a client parses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub event: Option<String>,
    pub data: String,
    pub id: Option<String>,
}

impl Frame {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).expect("frame data is JSON")
    }
}

/// Splits an SSE body into its events, skipping comments (keep-alives).
pub fn parse_frames(body: &str) -> Vec<Frame> {
    body.split("\n\n")
        .filter_map(|block| {
            let mut frame = Frame {
                event: None,
                data: String::new(),
                id: None,
            };
            let mut has_data = false;
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("data: ").or(line.strip_prefix("data:")) {
                    if has_data {
                        frame.data.push('\n');
                    }
                    frame.data.push_str(value);
                    has_data = true;
                } else if let Some(value) = line.strip_prefix("event: ") {
                    frame.event = Some(value.to_string());
                } else if let Some(value) = line.strip_prefix("id: ") {
                    frame.id = Some(value.to_string());
                }
            }
            has_data.then_some(frame)
        })
        .collect()
}

/// The concatenated text of a stream's token frames.
pub fn streamed_text(frames: &[Frame]) -> String {
    frames
        .iter()
        .filter(|frame| frame.event.is_none())
        .map(|frame| frame.json()["response"].as_str().unwrap().to_string())
        .collect()
}

/// Reads SSE frames from a streaming response as they arrive, until `count`
/// frames are in; returns them and the still-open response.
pub async fn read_frames(response: &mut reqwest::Response, count: usize) -> Vec<Frame> {
    let mut buffer = String::new();
    loop {
        let frames = parse_frames(&buffer);
        // Only whole events count: the buffer must end on a frame boundary.
        if frames.len() >= count && buffer.ends_with("\n\n") {
            return frames;
        }
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("a frame within 10 s")
            .expect("body readable")
            .expect("stream still open");
        buffer.push_str(std::str::from_utf8(&chunk).expect("UTF-8 frames"));
    }
}
