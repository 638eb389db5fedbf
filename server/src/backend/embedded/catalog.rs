//! The embedded models: every `.gguf` in the models directory, described as
//! Ollama describes models (family, size class, quantisation), under the
//! name a user would expect (`gemma3:270m`).

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use app::api::{BackendKind, ModelDetails, ModelInfo};
use sha2::{Digest, Sha256};

use super::gguf::Metadata;

/// One model file.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFile {
    pub info: ModelInfo,
    pub path: PathBuf,
}

/// Files already described, by path, with the size and time they had:
/// a file is read (and hashed) again only when it changes.
type Described = HashMap<PathBuf, (u64, SystemTime, ModelFile)>;

pub struct Catalog {
    dir: PathBuf,
    described: Mutex<Described>,
}

impl Catalog {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            described: Mutex::new(HashMap::new()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The models in the directory now, sorted by name. Blocking: reads the
    /// directory, and the header (and checksum) of new or changed files.
    pub fn scan(&self) -> Result<Vec<ModelFile>, String> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(format!("cannot read {}: {error}", self.dir.display())),
        };
        let mut described = self.described.lock().unwrap_or_else(|p| p.into_inner());
        let mut seen = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("gguf") {
                continue;
            }
            let Ok(metadata) = entry.metadata() else {
                continue;
            };
            if !metadata.is_file() {
                continue;
            }
            let size = metadata.len();
            let modified = metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            let fresh = described
                .get(&path)
                .is_some_and(|(s, m, _)| *s == size && *m == modified);
            if !fresh {
                match describe(&path, size, modified) {
                    Ok(file) => {
                        described.insert(path.clone(), (size, modified, file));
                    }
                    Err(error) => {
                        tracing::warn!(path = %path.display(), %error, "skipping a model file");
                        continue;
                    }
                }
            }
            seen.push(path);
        }
        described.retain(|path, _| seen.contains(path));
        let mut files: Vec<ModelFile> = described
            .values()
            .map(|(_, _, file)| file.clone())
            .collect();
        files.sort_by(|a, b| a.info.name.cmp(&b.info.name));
        // Two files with the same derived name: later ones go by file name.
        let mut taken = std::collections::HashSet::new();
        for file in &mut files {
            if !taken.insert(file.info.name.clone()) {
                let stem = file_stem(&file.path);
                file.info.name = stem.clone();
                file.info.model = stem;
            }
        }
        Ok(files)
    }
}

impl ModelFile {
    /// Whether a request's `model` names this file (`name` means `name:latest`).
    pub fn answers_to(&self, requested: &str) -> bool {
        self.info.name == requested || self.info.name.strip_suffix(":latest") == Some(requested)
    }
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default()
}

fn describe(path: &Path, size: u64, modified: SystemTime) -> Result<ModelFile, String> {
    let metadata = Metadata::read(path)?;
    let name = model_name(&metadata).unwrap_or_else(|| file_stem(path));
    let family = metadata
        .text("general.architecture")
        .unwrap_or_default()
        .to_string();
    let parameter_size = metadata
        .text("general.size_label")
        .map(str::to_string)
        .or_else(|| {
            metadata
                .int("general.parameter_count")
                .map(|count| size_label(count as f64))
        })
        .unwrap_or_default();
    let quantization_level = metadata
        .int("general.file_type")
        .and_then(|file_type| quantization_name(file_type as u32))
        .unwrap_or_default()
        .to_string();
    Ok(ModelFile {
        info: ModelInfo {
            model: name.clone(),
            name,
            modified_at: humantime::format_rfc3339_seconds(modified).to_string(),
            size,
            digest: sha256_of(path)?,
            details: ModelDetails {
                format: "gguf".into(),
                families: if family.is_empty() {
                    Vec::new()
                } else {
                    vec![family.clone()]
                },
                family,
                parameter_size,
                quantization_level,
            },
            backend: BackendKind::Embedded,
        },
        path: path.to_path_buf(),
    })
}

/// `general.basename` + `general.size_label` as Ollama names models:
/// "gemma-3" + "270M" → `gemma3:270m`.
fn model_name(metadata: &Metadata) -> Option<String> {
    let base = metadata
        .text("general.basename")
        .or_else(|| metadata.text("general.name"))?
        .trim()
        .to_lowercase();
    if base.is_empty() {
        return None;
    }
    // Join a letter run to the version number after it: "gemma-3" → "gemma3".
    let mut name = String::new();
    let chars: Vec<char> = base.chars().collect();
    for (index, &ch) in chars.iter().enumerate() {
        let joins_version = (ch == '-' || ch == ' ')
            && index > 0
            && chars[index - 1].is_ascii_alphabetic()
            && chars.get(index + 1).is_some_and(char::is_ascii_digit);
        if joins_version {
            continue;
        }
        name.push(if ch == ' ' { '-' } else { ch });
    }
    let tag = metadata
        .text("general.size_label")
        .map(|label| label.trim().to_lowercase())
        .filter(|label| !label.is_empty())
        .unwrap_or_else(|| "latest".into());
    Some(format!("{name}:{tag}"))
}

fn size_label(parameters: f64) -> String {
    if parameters >= 1e9 {
        format!("{:.1}B", parameters / 1e9)
    } else {
        format!("{:.0}M", parameters / 1e6)
    }
}

/// llama.cpp's `llama_ftype` values, named as Ollama names them.
fn quantization_name(file_type: u32) -> Option<&'static str> {
    Some(match file_type {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        38 => "MXFP4",
        _ => return None,
    })
}

/// The file's sha256, as Ollama's digests are.
fn sha256_of(path: &Path) -> Result<String, String> {
    let mut file = std::fs::File::open(path).map_err(|error| error.to_string())?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0_u8; 1 << 20];
    loop {
        let read = file.read(&mut buffer).map_err(|error| error.to_string())?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_quantisations_read_like_ollamas() {
        assert_eq!(size_label(268_098_176.0), "268M");
        assert_eq!(size_label(3_212_749_888.0), "3.2B");
        assert_eq!(quantization_name(15), Some("Q4_K_M"));
        assert_eq!(quantization_name(999), None);
    }

    #[test]
    fn an_empty_or_missing_directory_has_no_models() {
        let catalog = Catalog::new(std::env::temp_dir().join("llm-chat-no-such-dir"));
        assert_eq!(catalog.scan().unwrap(), Vec::new());
    }
}
