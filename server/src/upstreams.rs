//! The upstream servers llm-chat relays to: `OLLAMA_URL` (one URL, or a
//! comma-separated list as Open WebUI's `OLLAMA_BASE_URLS`), and the
//! `[[upstream]]` entries of the TOML file `LLM_CHAT_CONFIG` names (see
//! `llm-chat.example.toml`). A file that cannot be used stops the start
//! with its line and the reason.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;
use url::Url;

/// One upstream server, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamSpec {
    /// Unique; what model listings, `/readyz`, the metrics and logs say.
    pub name: String,
    pub kind: UpstreamKind,
    pub url: Url,
    /// Sent as a bearer token (OpenAI-compatible servers).
    pub api_key: Option<String>,
    /// Which models it may serve, and under what names; `None` is all it
    /// lists, as it names them.
    pub models: Option<ModelMap>,
    /// Its share of the load relative to the others serving a model.
    pub weight: u32,
    /// Most answers in flight on it at once; `None` is no limit.
    pub max_concurrent: Option<u32>,
}

/// The two dialects an upstream can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamKind {
    Ollama,
    Openai,
}

/// Names clients use → names the upstream knows. An allow-list: models
/// not in it are neither listed nor served through this upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelMap(pub BTreeMap<String, String>);

impl ModelMap {
    /// The upstream's name for what a client asked for, if allowed; with
    /// or without `:latest`, as everywhere else.
    pub fn upstream_name(&self, asked: &str) -> Option<&str> {
        let other = match asked.strip_suffix(":latest") {
            Some(bare) => bare.to_string(),
            None => format!("{asked}:latest"),
        };
        self.0
            .get(asked)
            .or_else(|| self.0.get(&other))
            .map(String::as_str)
    }

    /// Every name clients may use for the upstream's model `name` (which
    /// matches an entry with or without `:latest`).
    pub fn client_names<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let bare = name.strip_suffix(":latest").unwrap_or(name);
        self.0
            .iter()
            .filter(move |(_, upstream)| {
                upstream.as_str() == name
                    || upstream.strip_suffix(":latest").unwrap_or(upstream) == bare
            })
            .map(|(client, _)| client.as_str())
    }
}

/// Why the upstreams cannot be used; the server does not start.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {error}")]
    Syntax { path: PathBuf, error: String },
    #[error("{path}, line {line}: {reason}")]
    Invalid {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("OLLAMA_URL: {0:?} is not a URL")]
    OllamaUrl(String),
}

/// `OLLAMA_URL`'s URLs, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlList(pub Vec<Url>);

impl fmt::Display for UrlList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let urls: Vec<&str> = self.0.iter().map(Url::as_str).collect();
        f.write_str(&urls.join(","))
    }
}

/// Reads `OLLAMA_URL`: one URL or several, comma-separated.
pub fn parse_url_list(text: &str) -> Result<UrlList, String> {
    let urls = text
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| Url::parse(part).map_err(|error| format!("{part:?} is not a URL: {error}")))
        .collect::<Result<Vec<_>, _>>()?;
    if urls.is_empty() {
        return Err("no URL given".to_string());
    }
    Ok(UrlList(urls))
}

/// Ollama upstreams from a list of URLs: one is `ollama`, as it always
/// was; several are `ollama-1`, `ollama-2`… (never their addresses, which
/// clients must not read).
pub fn ollama_upstreams(urls: &[Url]) -> Vec<UpstreamSpec> {
    urls.iter()
        .enumerate()
        .map(|(index, url)| UpstreamSpec {
            name: if urls.len() == 1 {
                "ollama".to_string()
            } else {
                format!("ollama-{}", index + 1)
            },
            kind: UpstreamKind::Ollama,
            url: url.clone(),
            api_key: None,
            models: None,
            weight: 1,
            max_concurrent: None,
        })
        .collect()
}

/// The whole file. Unknown keys are refused, so a typo cannot pass as a
/// default.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    upstream: Vec<Spanned<Entry>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: Spanned<String>,
    kind: UpstreamKind,
    url: Spanned<String>,
    #[serde(default)]
    api_key: Option<String>,
    #[serde(default)]
    api_key_env: Option<Spanned<String>>,
    #[serde(default)]
    models: Option<Spanned<Models>>,
    #[serde(default)]
    weight: Option<Spanned<i64>>,
    #[serde(default)]
    max_concurrent: Option<Spanned<i64>>,
}

/// `models = ["a", "b"]`, or a table of client name = upstream name
/// (`fast = "llama3.2:1b"`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Models {
    List(Vec<String>),
    Aliases(BTreeMap<String, String>),
}

/// Reads the file at `path`; `env` looks up `api_key_env` variables.
pub fn read_file(
    path: &Path,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<UpstreamSpec>, UpstreamsError> {
    let text = std::fs::read_to_string(path).map_err(|source| UpstreamsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_file(&text, path, env)
}

fn parse_file(
    text: &str,
    path: &Path,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<UpstreamSpec>, UpstreamsError> {
    let invalid = |at: usize, reason: String| UpstreamsError::Invalid {
        path: path.to_path_buf(),
        line: text[..at.min(text.len())].matches('\n').count() + 1,
        reason,
    };
    // toml's own Display quotes the offending line, which may hold an
    // `api_key`: the message names the line and the reason only, as ours do.
    let file: File = toml::from_str(text).map_err(|error| match error.span() {
        Some(span) => invalid(span.start, error.message().to_string()),
        None => UpstreamsError::Syntax {
            path: path.to_path_buf(),
            error: error.message().to_string(),
        },
    })?;
    let mut names = HashSet::new();
    let mut specs = Vec::with_capacity(file.upstream.len());
    for entry in file.upstream {
        let entry_at = entry.span().start;
        let entry = entry.into_inner();
        let name = entry.name.get_ref().trim().to_string();
        if name.is_empty() {
            return Err(invalid(entry.name.span().start, "name is empty".into()));
        }
        if !names.insert(name.clone()) {
            return Err(invalid(
                entry.name.span().start,
                format!("the name {name:?} is taken by an upstream above"),
            ));
        }
        let url = Url::parse(entry.url.get_ref().trim())
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https"))
            .ok_or_else(|| {
                invalid(
                    entry.url.span().start,
                    format!(
                        "{:?} is not an http:// or https:// URL",
                        entry.url.get_ref()
                    ),
                )
            })?;
        let api_key = match (entry.api_key, entry.api_key_env) {
            (Some(_), Some(variable)) => {
                return Err(invalid(
                    variable.span().start,
                    "give api_key or api_key_env, not both".into(),
                ));
            }
            (Some(key), None) if key.trim().is_empty() => {
                return Err(invalid(entry_at, "api_key is empty".into()));
            }
            (Some(key), None) => Some(key),
            (None, Some(variable)) => Some(
                env(variable.get_ref())
                    .filter(|key| !key.trim().is_empty())
                    .ok_or_else(|| {
                        invalid(
                            variable.span().start,
                            format!("the variable {} is not set, or empty", variable.get_ref()),
                        )
                    })?,
            ),
            (None, None) => None,
        };
        if api_key.is_some() && entry.kind == UpstreamKind::Ollama {
            return Err(invalid(
                entry_at,
                "an Ollama upstream takes no API key (put a proxy in front for that)".into(),
            ));
        }
        let models = entry
            .models
            .map(|models| {
                let at = models.span().start;
                let map = match models.into_inner() {
                    Models::List(names) => names.into_iter().map(|n| (n.clone(), n)).collect(),
                    Models::Aliases(aliases) => aliases,
                };
                if map.is_empty() {
                    return Err(invalid(
                        at,
                        "models is empty: it would serve nothing".into(),
                    ));
                }
                Ok(ModelMap(map))
            })
            .transpose()?;
        let weight = match entry.weight {
            None => 1,
            Some(weight) => u32::try_from(*weight.get_ref())
                .ok()
                .filter(|weight| *weight >= 1)
                .ok_or_else(|| {
                    invalid(
                        weight.span().start,
                        "weight must be a whole number ≥ 1".into(),
                    )
                })?,
        };
        let max_concurrent = entry
            .max_concurrent
            .map(|limit| {
                u32::try_from(*limit.get_ref())
                    .ok()
                    .filter(|limit| *limit >= 1)
                    .ok_or_else(|| {
                        invalid(
                            limit.span().start,
                            "max_concurrent must be a whole number ≥ 1".into(),
                        )
                    })
            })
            .transpose()?;
        specs.push(UpstreamSpec {
            name,
            kind: entry.kind,
            url,
            api_key,
            models,
            weight,
            max_concurrent,
        });
    }
    Ok(specs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<UpstreamSpec>, UpstreamsError> {
        parse_file(text, Path::new("llm-chat.toml"), |name| {
            (name == "VLLM_KEY").then(|| "sk-vllm".to_string())
        })
    }

    #[test]
    fn the_example_file_reads() {
        let text = include_str!("../../llm-chat.example.toml");
        let specs = parse(text).expect("the example is valid");
        assert!(specs.len() >= 3, "{specs:?}");
        assert!(specs.iter().any(|spec| spec.kind == UpstreamKind::Openai));
    }

    #[test]
    fn entries_read_with_keys_aliases_weights_and_limits() {
        let specs = parse(
            r#"
[[upstream]]
name = "gpu-1"
kind = "ollama"
url = "http://gpu-1:11434"
weight = 3
max_concurrent = 8

[[upstream]]
name = "vllm"
kind = "openai"
url = "http://vllm:8000/v1"
api_key_env = "VLLM_KEY"
models = { fast = "llama3.2:1b", "qwen2.5:7b" = "qwen2.5:7b" }
"#,
        )
        .unwrap();
        assert_eq!(specs[0].name, "gpu-1");
        assert_eq!(specs[0].weight, 3);
        assert_eq!(specs[0].max_concurrent, Some(8));
        assert_eq!(specs[0].models, None);
        assert_eq!(specs[1].kind, UpstreamKind::Openai);
        assert_eq!(specs[1].api_key.as_deref(), Some("sk-vllm"));
        let models = specs[1].models.as_ref().unwrap();
        assert_eq!(models.upstream_name("fast"), Some("llama3.2:1b"));
        assert_eq!(models.upstream_name("llama3.2:1b"), None);
        assert_eq!(models.upstream_name("fast:latest"), Some("llama3.2:1b"));
        assert_eq!(
            models.client_names("qwen2.5:7b").collect::<Vec<_>>(),
            ["qwen2.5:7b"]
        );
        let list = parse(
            "[[upstream]]\nname = \"a\"\nkind = \"ollama\"\nurl = \"http://a\"\nmodels = [\"x\"]\n",
        )
        .unwrap();
        assert_eq!(
            list[0].models.as_ref().unwrap().upstream_name("x"),
            Some("x")
        );
    }

    #[test]
    fn a_bad_file_names_the_line_and_the_reason() {
        let message = |text: &str| parse(text).unwrap_err().to_string();
        let two = "[[upstream]]\nname = \"a\"\nkind = \"ollama\"\nurl = \"http://a\"\n\n\
                   [[upstream]]\nname = \"a\"\nkind = \"ollama\"\nurl = \"http://b\"\n";
        assert_eq!(
            message(two),
            "llm-chat.toml, line 7: the name \"a\" is taken by an upstream above"
        );
        assert_eq!(
            message("[[upstream]]\nname = \"a\"\nkind = \"ollama\"\nurl = \"gpu-box\"\n"),
            "llm-chat.toml, line 4: \"gpu-box\" is not an http:// or https:// URL"
        );
        assert_eq!(
            message(
                "[[upstream]]\nname = \"a\"\nkind = \"openai\"\nurl = \"http://a\"\napi_key_env = \"NOPE\"\n"
            ),
            "llm-chat.toml, line 5: the variable NOPE is not set, or empty"
        );
        assert_eq!(
            message(
                "[[upstream]]\nname = \"a\"\nkind = \"ollama\"\nurl = \"http://a\"\nweight = 0\n"
            ),
            "llm-chat.toml, line 5: weight must be a whole number ≥ 1"
        );
        let typo = message(
            "[[upstream]]\nname = \"a\"\nkind = \"ollama\"\nurl = \"http://a\"\nwieght = 2\n",
        );
        assert!(typo.contains("line 5") && typo.contains("wieght"), "{typo}");
        let kind = message("[[upstream]]\nname = \"a\"\nkind = \"vllm\"\nurl = \"http://a\"\n");
        assert!(kind.contains("line 3") && kind.contains("vllm"), "{kind}");
        let broken = message(
            "[[upstream]]\nname = \"a\"\nkind = \"openai\"\nurl = \"http://a\"\napi_key = \"sk-secret\n",
        );
        assert!(
            broken.starts_with("llm-chat.toml, line 5: ") && !broken.contains("sk-secret"),
            "a syntax error names the line, never quotes it: {broken}"
        );
    }

    #[test]
    fn ollama_url_takes_a_list() {
        let list = parse_url_list("http://a:11434, http://b:11434,").unwrap();
        let specs = ollama_upstreams(&list.0);
        assert_eq!(
            specs.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["ollama-1", "ollama-2"]
        );
        assert_eq!(specs[1].url.as_str(), "http://b:11434/");
        assert_eq!(ollama_upstreams(&list.0[..1])[0].name, "ollama");
        assert!(parse_url_list(" , ").is_err());
        assert!(parse_url_list("http://a, not a url").is_err());
    }
}
