//! The processes under test: fake-ollama, llm-chat and LiteLLM, started on
//! free loopback ports, with their resident memory and CPU time read from
//! `/proc`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process, killed when dropped.
pub struct Service {
    pub name: &'static str,
    pub url: String,
    child: Child,
    /// Files the process made that go with it (its database).
    scratch: Vec<PathBuf>,
}

impl Service {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory, in bytes.
    pub fn rss(&self) -> Result<u64, String> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .map_err(|error| format!("{}: {error}", self.name))?;
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.split_whitespace().next()?.parse().ok())
            .ok_or("no VmRSS")?;
        Ok(kib * 1024)
    }

    /// CPU time used so far (user + system), in seconds.
    pub fn cpu_seconds(&self) -> Result<f64, String> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .map_err(|error| format!("{}: {error}", self.name))?;
        // Fields after the parenthesised command name; utime and stime are
        // the 14th and 15th fields of the line.
        let after = stat.rsplit_once(')').ok_or("bad stat")?.1;
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        Ok((ticks(11) + ticks(12)) / clock_ticks())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for path in &self.scratch {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// How long a process's CPU time is watched to call it idle, and the most
/// it may use meanwhile (one clock tick: `/proc` counts in 10 ms steps).
const SETTLE_WINDOW: Duration = Duration::from_millis(500);
const IDLE_CPU_SECONDS: f64 = 0.011;

/// Waits, up to `within`, until every one of `services` is idle (its CPU
/// time moves by at most a tick over a settle window). Returns the names of
/// those still busy when the time is up.
pub async fn settle(services: &[&Service], within: Duration) -> Vec<&'static str> {
    let deadline = Instant::now() + within;
    loop {
        let before: Vec<f64> = services
            .iter()
            .map(|service| service.cpu_seconds().unwrap_or(0.0))
            .collect();
        tokio::time::sleep(SETTLE_WINDOW).await;
        let busy: Vec<&'static str> = services
            .iter()
            .zip(&before)
            .filter(|(service, before)| {
                service.cpu_seconds().unwrap_or(0.0) - **before > IDLE_CPU_SECONDS
            })
            .map(|(service, _)| service.name)
            .collect();
        if busy.is_empty() || Instant::now() >= deadline {
            return busy;
        }
    }
}

/// CPU seconds the services have used so far, together.
pub fn cpu_of(services: &[&Service]) -> f64 {
    services
        .iter()
        .map(|service| service.cpu_seconds().unwrap_or(0.0))
        .sum()
}

/// CPU time this process (the load generator) used so far, in seconds.
pub fn own_cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let after = stat.rsplit_once(')')?.1.to_string();
            let fields: Vec<f64> = after
                .split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|field| field.parse().ok())
                .collect();
            Some(fields.iter().sum::<f64>() / clock_ticks())
        })
        .unwrap_or(0.0)
}

/// The machine's load average over the last minute.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

fn spawn(name: &'static str, url: String, command: &mut Command) -> Result<Service, String> {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|error| format!("cannot start {name}: {error}"))?;
    Ok(Service {
        name,
        url,
        child,
        scratch: Vec::new(),
    })
}

/// Waits until `url` answers 2xx.
pub async fn wait_ready(service: &Service, path: &str, within: Duration) -> Result<(), String> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + within;
    loop {
        if let Ok(response) = client.get(format!("{}{path}", service.url)).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{} did not come up within {within:?}",
                service.name
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn fake_ollama(bin: &Path) -> Result<Service, String> {
    let port = free_port();
    spawn(
        "fake-ollama",
        format!("http://127.0.0.1:{port}"),
        Command::new(bin)
            .args(["--addr", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "warn"),
    )
}

/// The bare TCP forwarder (`tcp-forward`) in front of `upstream`: the
/// floor any relay pays on this machine.
pub fn tcp_forwarder(bin: &Path, upstream: &Service) -> Result<Service, String> {
    let port = free_port();
    let upstream = upstream
        .url
        .strip_prefix("http://")
        .ok_or("the forwarder needs a plain-HTTP upstream")?;
    spawn(
        "tcp-forward",
        format!("http://127.0.0.1:{port}"),
        Command::new(bin).args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--upstream",
            upstream,
        ]),
    )
}

/// How llm-chat's embedded backend is set up for a run.
pub struct Embedded<'a> {
    pub models_dir: &'a Path,
    pub threads: usize,
    pub parallel: usize,
    pub context_size: usize,
}

pub fn llm_chat(
    bin: &Path,
    root: &Path,
    ollama_url: &str,
    embedded: Option<Embedded<'_>>,
) -> Result<Service, String> {
    let port = free_port();
    // A database of the run's own (the benchmark never touches the user's
    // conversations), in the temporary directory; one per gateway process.
    let database = database_path(port);
    let mut command = Command::new(bin);
    command
        .current_dir(root)
        .env("LLM_CHAT_ADDR", format!("127.0.0.1:{port}"))
        .env(
            "LLM_CHAT_DATABASE_URL",
            format!("sqlite://{}", database.display()),
        )
        .env("OLLAMA_URL", ollama_url)
        // Room for every stream of the largest run.
        .env("LLM_CHAT_MAX_GENERATIONS", "20000")
        .env(
            "LLM_CHAT_EMBEDDED",
            if embedded.is_some() { "true" } else { "false" },
        )
        // As deployed: request logs on (to /dev/null here).
        .env(
            "RUST_LOG",
            std::env::var("BENCH_GATEWAY_LOG").unwrap_or_else(|_| "info".into()),
        )
        .env("LOG_FORMAT", "json");
    if let Some(embedded) = embedded {
        command
            .env("LLM_CHAT_MODELS_DIR", embedded.models_dir)
            .env("LLM_CHAT_EMBEDDED_THREADS", embedded.threads.to_string())
            .env("LLM_CHAT_EMBEDDED_PARALLEL", embedded.parallel.to_string())
            .env(
                "LLM_CHAT_EMBEDDED_CONTEXT_SIZE",
                embedded.context_size.to_string(),
            );
    }
    let mut service = spawn("llm-chat", format!("http://127.0.0.1:{port}"), &mut command)?;
    // SQLite's write-ahead log and index go with the database.
    service.scratch = ["", "-wal", "-shm"]
        .into_iter()
        .map(|suffix| PathBuf::from(format!("{}{suffix}", database.display())))
        .collect();
    Ok(service)
}

/// Where the gateway on `port` keeps its conversations.
fn database_path(port: u16) -> PathBuf {
    std::env::temp_dir().join(format!("llm-chat-bench-{}-{port}.db", std::process::id()))
}

impl Service {
    /// The SQLite URL of this gateway's database.
    pub fn database_url(&self) -> Option<String> {
        self.scratch
            .first()
            .map(|path| format!("sqlite://{}", path.display()))
    }
}

/// LiteLLM's master key: it refuses to start with a weak one.
pub const LITELLM_KEY: &str = "sk-llm-chat-benchmark-0123456789abcdef";

/// LiteLLM proxy, one worker, no callbacks, no database, in front of the
/// fake as an `ollama_chat` model; with several `deployments`, its router
/// over that many deployments of the same upstream (its default strategy).
pub fn litellm(
    venv: &Path,
    ollama_url: &str,
    model: &str,
    work: &Path,
    deployments: usize,
) -> Result<Service, String> {
    let port = free_port();
    let (name, file) = if deployments == 1 {
        ("litellm", "litellm.yaml")
    } else {
        ("litellm-router", "litellm-router.yaml")
    };
    let config = work.join(file);
    let deployment = format!(
        "  - model_name: {model}\n    litellm_params:\n      model: ollama_chat/{model}\n      api_base: {ollama_url}\n"
    );
    std::fs::write(
        &config,
        format!(
            "model_list:\n{}\
             litellm_settings:\n  callbacks: []\n  success_callback: []\n  failure_callback: []\n  telemetry: false\n  set_verbose: false\n\
             general_settings:\n  master_key: {LITELLM_KEY}\n  disable_spend_logs: true\n",
            deployment.repeat(deployments)
        ),
    )
    .map_err(|error| error.to_string())?;
    let bin: PathBuf = venv.join("bin/litellm");
    spawn(
        name,
        format!("http://127.0.0.1:{port}"),
        Command::new(bin)
            .args([
                "--config",
                &config.to_string_lossy(),
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--num_workers",
                "1",
            ])
            .env("LITELLM_LOG", "ERROR")
            .env("LITELLM_TELEMETRY", "False")
            .env("DISABLE_SCHEMA_UPDATE", "true")
            .env_remove("DATABASE_URL"),
    )
}
