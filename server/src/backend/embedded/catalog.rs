//! The embedded models: every `.gguf` in the models directory, described as
//! Ollama describes models (family, size class, quantisation), under the
//! name a user would expect (`gemma3:270m`).

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use app::api::{ModelDetails, ModelInfo};
use sha2::{Digest, Sha256};

use super::gguf::{GgufError, Metadata};

/// One model file.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFile {
    pub info: ModelInfo,
    pub path: PathBuf,
    /// Whether the GGUF carries a chat template: such a model chats; one
    /// without is a base model that continues text.
    pub chats: bool,
}

/// A file as last described, with the size and time it had then: a file is
/// read again only when it changes.
struct Described {
    size: u64,
    modified: SystemTime,
    file: ModelFile,
}

#[derive(Default)]
struct Files {
    described: HashMap<PathBuf, Described>,
    /// Files whose checksum a background thread is computing.
    hashing: HashSet<PathBuf>,
}

/// The models directory, described. Reading a GGUF's header is quick;
/// checksumming gigabytes is not, so the digest is computed on a background
/// thread (one per file at a time) and is empty until it is known: a large
/// model dropped in, or still being copied, never holds up a listing or a
/// chat with another model.
pub struct Catalog {
    dir: PathBuf,
    /// The backend serving these models, as each model's listing names it.
    backend: String,
    files: Arc<Mutex<Files>>,
}

impl Catalog {
    pub fn new(dir: PathBuf, backend: &str) -> Self {
        Self {
            dir,
            backend: backend.to_string(),
            files: Arc::default(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The models in the directory now: those that chat first (the page
    /// picks the first model listed), then by name. Blocking: reads the
    /// directory, and the header of new or changed files.
    pub fn scan(&self) -> Result<Vec<ModelFile>, ScanError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(ScanError {
                    dir: self.dir.clone(),
                    source,
                });
            }
        };
        let mut files = lock(&self.files);
        let mut seen = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("gguf") {
                continue;
            }
            let Some((size, modified)) = stamp(&path) else {
                continue;
            };
            let fresh = files
                .described
                .get(&path)
                .is_some_and(|known| known.size == size && known.modified == modified);
            if !fresh {
                match describe(&path, size, modified, &self.backend) {
                    Ok(file) => {
                        let described = Described {
                            size,
                            modified,
                            file,
                        };
                        files.described.insert(path.clone(), described);
                    }
                    Err(error) => {
                        tracing::warn!(path = %path.display(), %error, "skipping a model file");
                        continue;
                    }
                }
            }
            let needs_digest = files.described[&path].file.info.digest.is_empty();
            if needs_digest && files.hashing.insert(path.clone()) {
                self.checksum_in_background(path.clone());
            }
            seen.push(path);
        }
        files.described.retain(|path, _| seen.contains(path));
        let mut listed: Vec<ModelFile> = files
            .described
            .values()
            .map(|known| known.file.clone())
            .collect();
        drop(files);
        listed.sort_by(|a, b| {
            b.chats
                .cmp(&a.chats)
                .then_with(|| a.info.name.cmp(&b.info.name))
        });
        // Two files with the same derived name: later ones go by file name.
        let mut taken = HashSet::new();
        for file in &mut listed {
            if !taken.insert(file.info.name.clone()) {
                let stem = file_stem(&file.path);
                file.info.name = stem.clone();
                file.info.model = stem;
            }
        }
        Ok(listed)
    }

    /// Computes a file's sha256 off the caller's thread. The digest is kept
    /// only if the file did not change while it was read (a copy still in
    /// progress); otherwise a later scan starts again.
    fn checksum_in_background(&self, path: PathBuf) {
        let files = self.files.clone();
        let work = move || {
            let before = stamp(&path);
            let digest = sha256_of(&path);
            let unchanged = before.is_some() && stamp(&path) == before;
            let mut files = lock(&files);
            files.hashing.remove(&path);
            let Some(known) = files.described.get_mut(&path) else {
                return;
            };
            match digest {
                Ok(digest) if unchanged && before == Some((known.size, known.modified)) => {
                    known.file.info.digest = digest;
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "cannot checksum a model file");
                }
            }
        };
        if let Err(error) = std::thread::Builder::new()
            .name("gguf-sha256".into())
            .spawn(work)
        {
            tracing::warn!(%error, "cannot start the checksum thread");
        }
    }
}

fn lock(files: &Mutex<Files>) -> MutexGuard<'_, Files> {
    files.lock().unwrap_or_else(|p| p.into_inner())
}

/// A regular file's size and modification time: what says it changed.
fn stamp(path: &Path) -> Option<(u64, SystemTime)> {
    let metadata = std::fs::metadata(path).ok()?;
    metadata.is_file().then(|| {
        let modified = metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        (metadata.len(), modified)
    })
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

/// The models directory could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {}: {source}", .dir.display())]
pub struct ScanError {
    dir: PathBuf,
    source: std::io::Error,
}

fn describe(
    path: &Path,
    size: u64,
    modified: SystemTime,
    backend: &str,
) -> Result<ModelFile, GgufError> {
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
            // Filled in by the checksum thread.
            digest: String::new(),
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
            backend: backend.to_string(),
            backends: vec![backend.to_string()],
        },
        path: path.to_path_buf(),
        chats: metadata.text("tokenizer.chat_template").is_some(),
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
fn sha256_of(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0_u8; 1 << 20];
    loop {
        let read = file.read(&mut buffer)?;
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

    /// A directory of its own, removed at the end of the test.
    struct ScratchDir(PathBuf);

    impl ScratchDir {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("llm-chat-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for ScratchDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A GGUF with no metadata (so named after its file) and `body` bytes
    /// of tensor data.
    fn write_gguf(path: &Path, body: usize) {
        write_gguf_with(path, &[], body);
    }

    /// A GGUF with these text metadata values.
    fn write_gguf_with(path: &Path, texts: &[(&str, &str)], body: usize) {
        let mut bytes = b"GGUF".to_vec();
        bytes.extend_from_slice(&3_u32.to_le_bytes());
        bytes.extend_from_slice(&0_u64.to_le_bytes());
        bytes.extend_from_slice(&(texts.len() as u64).to_le_bytes());
        for (key, value) in texts {
            bytes.extend_from_slice(&(key.len() as u64).to_le_bytes());
            bytes.extend_from_slice(key.as_bytes());
            bytes.extend_from_slice(&8_u32.to_le_bytes());
            bytes.extend_from_slice(&(value.len() as u64).to_le_bytes());
            bytes.extend_from_slice(value.as_bytes());
        }
        bytes.resize(bytes.len() + body, 7);
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn models_that_chat_are_listed_first() {
        let dir = ScratchDir::new("catalog-chat-first");
        write_gguf(&dir.0.join("aaa-base.gguf"), 16);
        write_gguf_with(
            &dir.0.join("zzz-instruct.gguf"),
            &[("tokenizer.chat_template", "{{ messages }}")],
            16,
        );
        let catalog = Catalog::new(dir.0.clone(), "embedded");
        let listed = catalog.scan().unwrap();
        let names: Vec<&str> = listed.iter().map(|file| file.info.name.as_str()).collect();
        assert_eq!(names, ["zzz-instruct", "aaa-base"]);
        assert!(listed[0].chats && !listed[1].chats);
    }

    /// Scans until the file's digest is known, as a client polling the
    /// model list would.
    fn digest_after_scans(catalog: &Catalog) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let files = catalog.scan().unwrap();
            assert_eq!(files.len(), 1, "{files:?}");
            if !files[0].info.digest.is_empty() {
                return files[0].info.digest.clone();
            }
            assert!(std::time::Instant::now() < deadline, "no digest after 20 s");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn the_checksum_follows_the_listing_and_a_changed_file_gets_a_new_one() {
        let dir = ScratchDir::new("catalog-digest");
        let path = dir.0.join("tiny.gguf");
        write_gguf(&path, 4 << 20);
        let catalog = Catalog::new(dir.0.clone(), "embedded");

        let listed = catalog.scan().unwrap();
        assert_eq!(listed[0].info.name, "tiny");
        assert_eq!(listed[0].info.size, 24 + (4 << 20));
        assert_eq!(digest_after_scans(&catalog), sha256_of(&path).unwrap());

        // Rewritten with another size: described and checksummed again.
        let before = sha256_of(&path).unwrap();
        write_gguf(&path, 1 << 20);
        let listed = catalog.scan().unwrap();
        assert_eq!(listed[0].info.size, 24 + (1 << 20));
        assert_ne!(listed[0].info.digest, before, "the old digest is not kept");
        assert_eq!(digest_after_scans(&catalog), sha256_of(&path).unwrap());
    }

    #[test]
    fn a_model_linked_into_the_directory_is_listed() {
        let store = ScratchDir::new("catalog-store");
        let models = ScratchDir::new("catalog-links");
        write_gguf(&store.0.join("big.gguf"), 1024);
        std::os::unix::fs::symlink(store.0.join("big.gguf"), models.0.join("linked.gguf")).unwrap();
        let catalog = Catalog::new(models.0.clone(), "embedded");
        let listed = catalog.scan().unwrap();
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0].info.name, "linked");
        assert_eq!(listed[0].info.size, 24 + 1024);
    }

    #[test]
    fn an_empty_or_missing_directory_has_no_models() {
        let catalog = Catalog::new(
            std::env::temp_dir().join("llm-chat-no-such-dir"),
            "embedded",
        );
        assert_eq!(catalog.scan().unwrap(), Vec::new());
    }
}
