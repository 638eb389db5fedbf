//! The server's one typed configuration: CLI flags, with environment
//! variables (and a `.env` file) as fallbacks, and a default for everything.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};
use url::Url;

use crate::upstreams::{self, UpstreamSpec, UpstreamsError, UrlList, parse_url_list};

/// llm-chat: a chat UI and a REST + Server-Sent Events API over Ollama.
///
/// Every option can also be set through the environment variable named in
/// its help, or in a `.env` file in the working directory.
#[derive(Debug, Clone, Parser)]
#[command(name = "llm-chat", version, about, long_about = None)]
pub struct Config {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address the HTTP server listens on.
    #[arg(long, env = "LLM_CHAT_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,

    /// Base URL of the Ollama server, or several, comma-separated (each
    /// request goes to the least-loaded one serving its model) [default:
    /// http://127.0.0.1:11434, or built from OLLAMA_HOST and OLLAMA_PORT
    /// when those are set; none when LLM_CHAT_CONFIG declares upstreams].
    #[arg(long, env = "OLLAMA_URL", value_parser = parse_url_list)]
    pub ollama_url: Option<UrlList>,

    /// Ollama host, as the Go API took it (used when OLLAMA_URL is not set).
    #[arg(long, env = "OLLAMA_HOST", hide_short_help = true)]
    pub ollama_host: Option<String>,

    /// Ollama port, as the Go API took it (used when OLLAMA_URL is not set).
    #[arg(long, env = "OLLAMA_PORT", hide_short_help = true)]
    pub ollama_port: Option<u16>,

    /// Seconds to wait for Ollama to accept a connection, and again for its
    /// response headers. Never bounds a response body: long answers stream
    /// for as long as they take.
    #[arg(
        long,
        env = "OLLAMA_HTTP_CLIENT_TIMEOUT_SECONDS",
        default_value = "30",
        value_parser = parse_positive_seconds
    )]
    pub ollama_timeout: Duration,

    /// TCP keep-alive interval, in seconds, of connections to Ollama.
    #[arg(
        long,
        env = "OLLAMA_HTTP_CLIENT_KEEP_ALIVE_SECONDS",
        default_value = "30",
        value_parser = parse_positive_seconds
    )]
    pub ollama_keep_alive: Duration,

    /// Seconds an idle pooled connection to Ollama is kept for reuse.
    #[arg(
        long,
        env = "OLLAMA_HTTP_CLIENT_IDLE_CONN_TIMEOUT_SECONDS",
        default_value = "90",
        value_parser = parse_positive_seconds
    )]
    pub ollama_idle_timeout: Duration,

    /// A TOML file declaring the upstreams (`[[upstream]]`: Ollama and
    /// OpenAI-compatible servers, keys, model allow-lists and aliases,
    /// weights, limits); see llm-chat.example.toml.
    #[arg(long, env = "LLM_CHAT_CONFIG")]
    pub config_file: Option<PathBuf>,

    /// Most upstreams one request is tried on before its first token (a
    /// failure after it is never retried).
    #[arg(long, env = "LLM_CHAT_FAILOVER_ATTEMPTS", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=16))]
    pub failover_attempts: u32,

    /// Seconds to wait for a first token before moving the request to
    /// another upstream serving the model, when there is one [default: no
    /// limit: a model load may take minutes].
    #[arg(long, env = "LLM_CHAT_FIRST_TOKEN_TIMEOUT_SECONDS",
          value_parser = parse_positive_seconds)]
    pub first_token_timeout: Option<Duration>,

    /// Seconds between health probes of every backend (Ollama's
    /// `/api/version`, an OpenAI-compatible server's `/health`), which also
    /// read which models each holds in memory.
    #[arg(long, env = "LLM_CHAT_PROBE_INTERVAL_SECONDS", default_value = "5",
          value_parser = parse_positive_seconds)]
    pub probe_interval: Duration,

    /// Largest accepted request body, in bytes; larger ones get 413.
    #[arg(long, env = "LLM_CHAT_BODY_LIMIT_BYTES", default_value_t = 1024 * 1024)]
    pub body_limit: usize,

    /// Seconds between keep-alive comments on an idle SSE stream, so
    /// proxies do not time it out.
    #[arg(
        long,
        env = "LLM_CHAT_SSE_KEEP_ALIVE_SECONDS",
        default_value = "15",
        value_parser = parse_positive_seconds
    )]
    pub sse_keep_alive: Duration,

    /// Seconds to let requests finish after SIGINT/SIGTERM before exiting.
    #[arg(
        long,
        env = "LLM_CHAT_SHUTDOWN_GRACE_SECONDS",
        default_value = "10",
        value_parser = parse_seconds
    )]
    pub shutdown_grace: Duration,

    /// Seconds a generation may run with no client reading it before it is
    /// cancelled (covers a browser reconnecting after a network drop).
    #[arg(
        long,
        env = "LLM_CHAT_GENERATION_GRACE_SECONDS",
        default_value = "15",
        value_parser = parse_positive_seconds
    )]
    pub generation_grace: Duration,

    /// Seconds a finished generation stays readable, so a late reconnect
    /// can still replay it.
    #[arg(
        long,
        env = "LLM_CHAT_GENERATION_TTL_SECONDS",
        default_value = "300",
        value_parser = parse_seconds
    )]
    pub generation_ttl: Duration,

    /// Most generations held at once (running or finished); when all are
    /// running, new ones get 503.
    #[arg(long, env = "LLM_CHAT_MAX_GENERATIONS", default_value_t = 256,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_generations: u64,

    /// Most bytes of text one generation keeps; a longer answer fails.
    #[arg(long, env = "LLM_CHAT_GENERATION_MAX_BYTES", default_value_t = 1024 * 1024)]
    pub generation_max_bytes: usize,

    /// Run GGUF models in-process with llama.cpp (the `embedded` backend),
    /// so the server answers without an Ollama.
    #[arg(long, env = "LLM_CHAT_EMBEDDED", default_value_t = true, action = clap::ArgAction::Set)]
    pub embedded: bool,

    /// Directory of the embedded backend's models: every `.gguf` in it is a
    /// model [default: ~/.cache/llm-chat/models].
    #[arg(long, env = "LLM_CHAT_MODELS_DIR")]
    pub models_dir: Option<PathBuf>,

    /// Answers the embedded backend decodes together (one batched context)
    /// [default: the number of cores, from 2 to 4].
    #[arg(long, env = "LLM_CHAT_EMBEDDED_PARALLEL",
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub embedded_parallel: Option<u32>,

    /// Threads llama.cpp decodes with [default: the number of cores].
    #[arg(long, env = "LLM_CHAT_EMBEDDED_THREADS",
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub embedded_threads: Option<u32>,

    /// Answers that may wait for a free embedded slot; more get 503.
    #[arg(long, env = "LLM_CHAT_EMBEDDED_QUEUE", default_value_t = 16)]
    pub embedded_queue: usize,

    /// Context window of each embedded answer, in tokens (the most a
    /// request's `num_ctx` can ask for).
    #[arg(long, env = "LLM_CHAT_EMBEDDED_CONTEXT_SIZE", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(64..))]
    pub embedded_context_size: u32,

    /// How long an idle embedded model stays loaded: a duration ("5m",
    /// "1h"), or seconds; negative keeps it forever (Ollama's `keep_alive`).
    #[arg(long, env = "LLM_CHAT_EMBEDDED_KEEP_ALIVE", default_value = "5m",
          value_parser = parse_keep_alive)]
    pub embedded_keep_alive: KeepAliveSetting,

    /// Where conversations are kept: a SQLite database URL, e.g.
    /// `sqlite:///var/lib/llm-chat/llm-chat.db` [default: DATABASE_URL, else
    /// llm-chat.db in the user's data directory, ~/.local/share/llm-chat].
    #[arg(long, env = "LLM_CHAT_DATABASE_URL")]
    pub database_url: Option<String>,

    /// Directory of the built web assets (cargo-leptos's site root).
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,

    /// Log format: human-readable lines, or one JSON object per line.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,

    /// Log filter in tracing's syntax, e.g. `info` or `llm_chat=debug,info`.
    /// llama.cpp's own chatter is kept to errors unless asked for.
    #[arg(
        long,
        env = "RUST_LOG",
        default_value = "info,llama-cpp-2=error,llama_cpp_2=error"
    )]
    pub log_level: String,
}

/// Something to do instead of serving.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Print the OpenAPI document of the HTTP API and exit.
    Openapi,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

impl Config {
    /// Reads `.env` (if present), then flags and environment.
    pub fn load() -> Self {
        // A missing .env is normal; a malformed one is worth a word, but the
        // logger is not up yet, so the error goes to stderr.
        if let Err(error) = dotenvy::dotenv()
            && !error.not_found()
        {
            eprintln!("llm-chat: ignoring .env: {error}");
        }
        let mut config = Self::parse();
        // The name every database tool knows, when ours is not set.
        if config.database_url.is_none() {
            config.database_url = std::env::var("DATABASE_URL")
                .ok()
                .filter(|url| !url.is_empty());
        }
        config
    }

    /// Every setting at its default, whatever the flags and environment
    /// say: the base that tests adjust field by field, so a variable set in
    /// the developer's shell cannot change what a test sees.
    pub fn defaults() -> Self {
        Self::from_flags_only(["llm-chat"]).expect("every setting has a default")
    }

    /// Flags as given, with no variable of the environment filling the gaps.
    fn from_flags_only<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<Self, clap::Error> {
        let command = Self::command().mut_args(|arg| arg.env(None));
        Self::from_arg_matches(&command.try_get_matches_from(args)?)
    }

    /// The embedded models' directory, `~` being the home directory.
    pub fn models_dir(&self) -> PathBuf {
        if let Some(dir) = &self.models_dir {
            return match dir.strip_prefix("~") {
                Ok(rest) => home().join(rest),
                Err(_) => dir.clone(),
            };
        }
        home().join(".cache/llm-chat/models")
    }

    /// Where the conversations' database is.
    pub fn database(&self) -> Database {
        match &self.database_url {
            Some(url) => Database::Url(url.clone()),
            None => {
                let data = std::env::var_os("XDG_DATA_HOME")
                    .filter(|dir| !dir.is_empty())
                    .map_or_else(|| home().join(".local/share"), PathBuf::from);
                Database::File(data.join("llm-chat/llm-chat.db"))
            }
        }
    }

    fn cores() -> u32 {
        std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
    }

    pub fn embedded_threads(&self) -> u32 {
        self.embedded_threads.unwrap_or_else(Self::cores)
    }

    /// Two answers at once even on one core (batching makes the second one
    /// cheap); at most four by default, since each slot holds a context
    /// window of KV cache.
    pub fn embedded_parallel(&self) -> u32 {
        self.embedded_parallel
            .unwrap_or_else(|| Self::cores().clamp(2, 4))
    }

    /// Every upstream: the file's, then OLLAMA_URL's (or OLLAMA_HOST's).
    /// Without a file, Ollama's default address when nothing else is set.
    pub fn upstreams(&self) -> Result<Vec<UpstreamSpec>, ConfigError> {
        let mut specs = match &self.config_file {
            Some(path) => upstreams::read_file(path, |name| std::env::var(name).ok())?,
            None => Vec::new(),
        };
        let from_env = self.ollama_url.is_some()
            || self
                .ollama_host
                .as_deref()
                .is_some_and(|host| !host.is_empty());
        if from_env || self.config_file.is_none() {
            for spec in upstreams::ollama_upstreams(&self.ollama_base_urls()?) {
                if specs.iter().any(|other| other.name == spec.name) {
                    return Err(ConfigError::NameTaken(spec.name));
                }
                specs.push(spec);
            }
        }
        if self.embedded && specs.iter().any(|spec| spec.name == "embedded") {
            return Err(ConfigError::NameTaken("embedded".into()));
        }
        Ok(specs)
    }

    /// Where Ollama is, from OLLAMA_URL, else OLLAMA_HOST + OLLAMA_PORT.
    pub fn ollama_base_urls(&self) -> Result<Vec<Url>, ConfigError> {
        if let Some(urls) = &self.ollama_url {
            return Ok(urls.0.clone());
        }
        let Some(host) = self.ollama_host.as_deref().filter(|host| !host.is_empty()) else {
            return Ok(vec![
                Url::parse("http://127.0.0.1:11434").expect("a valid URL"),
            ]);
        };
        // As Ollama reads OLLAMA_HOST: a bare host gets Ollama's port, a URL
        // with a scheme keeps that scheme's default port.
        let (with_scheme, default_port) = if host.contains("://") {
            (host.to_string(), None)
        } else {
            (format!("http://{host}"), Some(11434))
        };
        let mut url = Url::parse(&with_scheme).map_err(|source| ConfigError::OllamaHost {
            host: host.to_string(),
            source,
        })?;
        if url.port().is_none()
            && let Some(port) = self.ollama_port.or(default_port)
        {
            url.set_port(Some(port))
                .map_err(|()| ConfigError::OllamaPort {
                    host: host.to_string(),
                })?;
        }
        Ok(vec![url])
    }
}

/// Where the conversations' database is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// As the user gave it (`sqlite://…`).
    Url(String),
    /// The default file, created with its directory on first start.
    File(PathBuf),
}

/// A setting that parses but cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("OLLAMA_HOST={host:?} is not a host name: {source}")]
    OllamaHost {
        host: String,
        source: url::ParseError,
    },
    #[error("OLLAMA_HOST={host:?} cannot take a port")]
    OllamaPort { host: String },
    #[error(transparent)]
    Upstreams(#[from] UpstreamsError),
    #[error(
        "the upstream name {0:?} is taken (by OLLAMA_URL's servers or the embedded engine): rename it in LLM_CHAT_CONFIG"
    )]
    NameTaken(String),
}

/// How long an idle model stays loaded; `None` is forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepAliveSetting(pub Option<Duration>);

fn parse_keep_alive(text: &str) -> Result<KeepAliveSetting, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        return Ok(KeepAliveSetting(Duration::try_from_secs_f64(seconds).ok()));
    }
    if text.starts_with('-') {
        return Ok(KeepAliveSetting(None));
    }
    humantime::parse_duration(text)
        .map(|duration| KeepAliveSetting(Some(duration)))
        .map_err(|error| format!("{text:?} is not a duration: {error}"))
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{text:?} is not a valid duration"))
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from)
}

fn parse_positive_seconds(text: &str) -> Result<Duration, String> {
    let duration = parse_seconds(text)?;
    if duration.is_zero() {
        return Err("must be more than 0 seconds".to_string());
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Config {
        Config::from_flags_only(std::iter::once("llm-chat").chain(args.iter().copied()))
            .expect("valid flags")
    }

    #[test]
    fn ollama_url_wins_over_host_and_port() {
        let config = parse(&[
            "--ollama-url",
            "http://gpu-box:8080",
            "--ollama-host",
            "other",
        ]);
        assert_eq!(
            config.ollama_base_urls().unwrap()[0].as_str(),
            "http://gpu-box:8080/"
        );
    }

    #[test]
    fn the_go_apis_host_and_port_still_work() {
        let config = parse(&["--ollama-host", "gpu-box", "--ollama-port", "9999"]);
        assert_eq!(
            config.ollama_base_urls().unwrap()[0].as_str(),
            "http://gpu-box:9999/"
        );
        let config = parse(&["--ollama-host", "http://gpu-box"]);
        assert_eq!(
            config.ollama_base_urls().unwrap()[0].as_str(),
            "http://gpu-box/"
        );
        let config = parse(&["--ollama-host", "0.0.0.0"]);
        assert_eq!(
            config.ollama_base_urls().unwrap()[0].as_str(),
            "http://0.0.0.0:11434/"
        );
    }

    #[test]
    fn without_a_file_ollama_is_the_one_upstream_and_with_one_only_if_asked() {
        let names = |config: &Config| -> Vec<String> {
            config
                .upstreams()
                .unwrap()
                .into_iter()
                .map(|spec| spec.name)
                .collect()
        };
        assert_eq!(names(&parse(&[])), ["ollama"]);
        assert_eq!(
            names(&parse(&["--ollama-url", "http://a:1,http://b:2"])),
            ["ollama-1", "ollama-2"]
        );
        let file =
            std::env::temp_dir().join(format!("llm-chat-config-{}.toml", std::process::id()));
        std::fs::write(
            &file,
            "[[upstream]]\nname = \"vllm\"\nkind = \"openai\"\nurl = \"http://v/v1\"\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();
        assert_eq!(names(&parse(&["--config-file", path])), ["vllm"]);
        assert_eq!(
            names(&parse(&[
                "--config-file",
                path,
                "--ollama-url",
                "http://a:1"
            ])),
            ["vllm", "ollama"]
        );
        std::fs::remove_file(&file).unwrap();
    }

    #[test]
    fn fractional_seconds_are_accepted_and_zero_timeouts_refused() {
        assert_eq!(parse_seconds("0.25"), Ok(Duration::from_millis(250)));
        assert!(parse_positive_seconds("0").is_err());
        assert!(parse_seconds("soon").is_err());
    }

    #[test]
    fn keep_alive_takes_durations_seconds_or_forever() {
        assert_eq!(
            parse_keep_alive("5m"),
            Ok(KeepAliveSetting(Some(Duration::from_secs(300))))
        );
        assert_eq!(
            parse_keep_alive("0"),
            Ok(KeepAliveSetting(Some(Duration::ZERO)))
        );
        assert_eq!(parse_keep_alive("-1"), Ok(KeepAliveSetting(None)));
        assert!(parse_keep_alive("later").is_err());
    }

    #[test]
    fn the_models_dir_expands_home() {
        let config = parse(&["--models-dir", "~/models"]);
        assert_eq!(config.models_dir(), home().join("models"));
    }

    #[test]
    fn a_bad_value_names_the_flag() {
        let error = Config::from_flags_only(["llm-chat", "--ollama-timeout", "soon"]).unwrap_err();
        assert!(error.to_string().contains("--ollama-timeout"), "{error}");
    }
}
