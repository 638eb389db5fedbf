//! The built front end: which of its files carry a content hash in their
//! name (cargo-leptos's `hash.txt`, written next to the server binary), and
//! so how long a browser may keep each.
//!
//! A hashed file never changes under its name: browsers keep it a year
//! without asking again. Everything else (the HTML, the favicon, an
//! unhashed development build) is revalidated on each use, so a new release
//! is seen at once.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use axum::http::HeaderValue;

/// Cache-Control for a file whose name changes when its content does.
pub const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");
/// Cache-Control for the rest: keep it, but ask first (a 304 is cheap).
pub const REVALIDATE: HeaderValue = HeaderValue::from_static("no-cache");

/// The bundle's file names, as this build wrote them.
#[derive(Debug, Clone, Default)]
pub struct Assets {
    /// Paths of the files whose name carries their content's hash.
    hashed: HashSet<String>,
    stylesheet: String,
    /// The syntax highlighter, loaded by the page on its first code block.
    highlighter: Option<String>,
}

impl Assets {
    /// The hash file beside the running binary, if the build wrote one.
    pub fn hash_file() -> Option<PathBuf> {
        let path = std::env::current_exe().ok()?.parent()?.join("hash.txt");
        path.is_file().then_some(path)
    }

    /// Reads `hash_file` (`js: <hash>` lines, one per kind; without one,
    /// the unhashed names of a development build), finds the highlighter
    /// (`vendor/highlight.<hash>.js`) under `site_root`, and the split-off
    /// WASM files the split loader names (each named by its content too).
    pub fn load(output_name: &str, hash_file: Option<&Path>, site_root: &Path) -> Self {
        let hashes = hash_file
            .and_then(|path| std::fs::read_to_string(path).ok())
            .unwrap_or_default();
        let mut assets = Self::parse(output_name, &hashes);
        let loaders: Vec<String> = assets
            .hashed
            .iter()
            .filter(|path| path.starts_with(SPLIT_LOADER_PREFIX))
            .cloned()
            .collect();
        for loader in loaders {
            let Ok(script) = std::fs::read_to_string(site_root.join(&loader[1..])) else {
                continue;
            };
            assets
                .hashed
                .extend(split_files(&script).map(|name| format!("/pkg/{name}")));
        }
        let vendored = std::fs::read_dir(site_root.join("vendor"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| name.starts_with("highlight.") && name.ends_with(".js"))
            .min();
        if let Some(name) = vendored {
            let path = format!("/vendor/{name}");
            assets.hashed.insert(path.clone());
            assets.highlighter = Some(path);
        }
        assets
    }

    fn parse(output_name: &str, hashes: &str) -> Self {
        let mut assets = Self {
            hashed: HashSet::new(),
            stylesheet: format!("/pkg/{output_name}.css"),
            highlighter: None,
        };
        for line in hashes.lines() {
            let Some((kind, hash)) = line.split_once(':') else {
                continue;
            };
            let (kind, hash) = (kind.trim(), hash.trim());
            if hash.is_empty() {
                continue;
            }
            let path = match kind {
                "js" | "wasm" | "css" => format!("/pkg/{output_name}.{hash}.{kind}"),
                // cargo-leptos --split: the loader of the split-off files,
                // and their manifest.
                "split" => format!("{SPLIT_LOADER_PREFIX}{hash}.js"),
                "manifest" => format!("/pkg/__wasm_split_manifest.{hash}.json"),
                _ => continue,
            };
            if kind == "css" {
                assets.stylesheet = path.clone();
            }
            assets.hashed.insert(path);
        }
        assets
    }

    /// Where the page's stylesheet is.
    pub fn stylesheet(&self) -> &str {
        &self.stylesheet
    }

    /// Where the syntax highlighter is, if the build made one.
    pub fn highlighter(&self) -> Option<&str> {
        self.highlighter.as_deref()
    }

    /// How long a browser may keep the file at `path`.
    pub fn cache_control(&self, path: &str) -> HeaderValue {
        if self.hashed.contains(path) {
            IMMUTABLE
        } else {
            REVALIDATE
        }
    }
}

/// Where cargo-leptos `--split` puts the script that fetches the split-off
/// WASM files (followed by its hash and `.js`).
const SPLIT_LOADER_PREFIX: &str = "/pkg/__wasm_split.";

/// The WASM files a split loader fetches: the `"./<name>.wasm"` it names,
/// which cargo-leptos renamed after their content as it did the loader.
fn split_files(script: &str) -> impl Iterator<Item = &str> {
    script.split("\"./").skip(1).filter_map(|rest| {
        let name = &rest[..rest.find('"')?];
        let plain = !name.is_empty() && !name.contains(['/', '\\']);
        (plain && name.ends_with(".wasm")).then_some(name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASHES: &str = "js: AbC\nwasm: dEf\ncss: GhI\nsplit: zzz\n";

    #[test]
    fn hashed_files_are_kept_for_a_year_and_the_rest_revalidated() {
        let assets = Assets::parse("llm-chat", HASHES);
        assert_eq!(assets.cache_control("/pkg/llm-chat.AbC.js"), IMMUTABLE);
        assert_eq!(assets.cache_control("/pkg/llm-chat.dEf.wasm"), IMMUTABLE);
        assert_eq!(assets.cache_control("/pkg/llm-chat.GhI.css"), IMMUTABLE);
        assert_eq!(assets.cache_control("/pkg/llm-chat.js"), REVALIDATE);
        assert_eq!(assets.cache_control("/favicon.svg"), REVALIDATE);
        assert_eq!(assets.stylesheet(), "/pkg/llm-chat.GhI.css");
    }

    #[test]
    fn the_split_off_files_a_hashed_loader_names_are_kept_for_a_year() {
        let site = std::env::temp_dir().join(format!("llm-chat-assets-{}", std::process::id()));
        std::fs::create_dir_all(site.join("pkg")).unwrap();
        std::fs::write(
            site.join("pkg/__wasm_split.LoAd.js"),
            "import { initSync } from \"./llm-chat.AbC.js\";\n\
             const src = fetch(new URL(\"./chunk_3.Xy.wasm\", import.meta.url));\n\
             const other = fetch(new URL(\"./split_panel_12.Zw.wasm\", import.meta.url));\n\
             const odd = \"./../escape.wasm\";\n",
        )
        .unwrap();
        let hash_file = site.join("hash.txt");
        std::fs::write(&hash_file, format!("{HASHES}split: LoAd\nmanifest: MaN\n")).unwrap();
        let assets = Assets::load("llm-chat", Some(&hash_file), &site);
        std::fs::remove_dir_all(&site).unwrap();

        for kept in [
            "/pkg/__wasm_split.LoAd.js",
            "/pkg/__wasm_split_manifest.MaN.json",
            "/pkg/chunk_3.Xy.wasm",
            "/pkg/split_panel_12.Zw.wasm",
            "/pkg/llm-chat.dEf.wasm",
        ] {
            assert_eq!(assets.cache_control(kept), IMMUTABLE, "{kept}");
        }
        // Named in it but not a plain file of pkg, or not WASM: not vouched for.
        assert_eq!(assets.cache_control("/escape.wasm"), REVALIDATE);
        assert_eq!(
            assets.cache_control("/pkg/llm-chat.AbC.js.wasm"),
            REVALIDATE
        );
        assert_eq!(assets.cache_control("/pkg/split_panel_12.wasm"), REVALIDATE);
    }

    #[test]
    fn without_a_hash_file_nothing_is_immutable() {
        let assets = Assets::load("llm-chat", None, Path::new("/no/such/site"));
        assert_eq!(assets.cache_control("/pkg/llm-chat.wasm"), REVALIDATE);
        assert_eq!(assets.stylesheet(), "/pkg/llm-chat.css");
        assert_eq!(assets.highlighter(), None);
    }
}
