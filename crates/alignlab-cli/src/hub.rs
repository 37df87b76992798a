//! Models by name: `hf://org/name[@revision][/file]` resolves to a local file or folder, downloaded once from the
//! Hugging Face hub — or any server with its layout, `{endpoint}/{org}/{name}/resolve/{revision}/{file}` — into a
//! cache, so that the next run needs no network. Environment, as in `huggingface_hub`: `HF_ENDPOINT` (another
//! server), `HF_TOKEN` (gated models), `HF_HUB_OFFLINE=1` (cache only); `ALIGNLAB_CACHE` moves the cache
//! (default `$XDG_CACHE_HOME/alignlab` or `~/.cache/alignlab`).
//!
//! A download goes to `<file>.part` and is renamed when complete, so an interrupted one never looks finished and
//! the next run continues it with an HTTP range request. A revision is cached under its name: `@main` is what
//! `main` was at the first download (delete its folder to fetch it again); pin a commit for reproducible runs.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use alignlab_core::weights::hf::shard_index;
use anyhow::{Context, Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};

const SCHEME: &str = "hf://";
const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// Longest name part (org, name, revision, file segment): the hub's own limit is 96.
const MAX_PART: usize = 96;
/// The files of a Hugging Face model folder that the loaders may read, besides the weights.
const REQUIRED: &[&str] = &["config.json"];
const OPTIONAL: &[&str] = &["tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json"];
/// Marks an optional file the server does not have, so that the next run does not ask again.
const ABSENT_SUFFIX: &str = ".absent";

/// A parsed `hf://` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubRef {
    /// `org/name`.
    pub repo: String,
    pub revision: String,
    /// One file of the repository (a GGUF among several); `None` for a whole model folder.
    pub file: Option<String>,
}

impl HubRef {
    /// `None` when `s` is not an `hf://` reference; an error when it is one but malformed.
    pub fn parse(s: &str) -> Result<Option<HubRef>> {
        let Some(rest) = s.strip_prefix(SCHEME) else { return Ok(None) };
        let bad = |why: &str| anyhow!("{s}: {why} (expected hf://org/name[@revision][/file])");
        let mut parts = rest.split('/');
        let org = parts.next().unwrap_or_default();
        let name_rev = parts.next().ok_or_else(|| bad("no model name"))?;
        let (name, revision) = match name_rev.split_once('@') {
            Some((n, r)) => (n, r),
            None => (name_rev, "main"),
        };
        let file: Vec<&str> = parts.filter(|p| !p.is_empty()).collect();
        if let Some(part) = [org, name, revision].iter().chain(&file).find(|p| !valid_part(p)) {
            return Err(bad(&format!(
                "{part:?} must be 1 to {MAX_PART} letters, digits, '-', '_' or '.' (and not '.' or '..')"
            )));
        }
        let file = (!file.is_empty()).then(|| file.join("/"));
        Ok(Some(HubRef { repo: format!("{org}/{name}"), revision: revision.to_string(), file }))
    }
}

/// One segment of a name: what the hub allows, and nothing that could leave the cache folder.
fn valid_part(part: &str) -> bool {
    (1..=MAX_PART).contains(&part.len())
        && part != "."
        && part != ".."
        && part.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// `path` itself, or for an `hf://` reference the local file or folder it was downloaded to.
pub fn resolve(path: &Path) -> Result<PathBuf> {
    let Some(reference) = path.to_str().map(HubRef::parse).transpose()?.flatten() else {
        return Ok(path.to_path_buf());
    };
    Hub::from_env()?.fetch(&reference)
}

/// Where and how to download.
pub struct Hub {
    pub endpoint: String,
    pub cache: PathBuf,
    pub token: Option<String>,
    pub offline: bool,
}

impl Hub {
    pub fn from_env() -> Result<Hub> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let cache = match (var("ALIGNLAB_CACHE"), var("XDG_CACHE_HOME"), var("HOME")) {
            (Some(dir), _, _) => PathBuf::from(dir),
            (None, Some(xdg), _) => Path::new(&xdg).join("alignlab"),
            (None, None, Some(home)) => Path::new(&home).join(".cache/alignlab"),
            _ => bail!("no cache folder for hf:// models: set ALIGNLAB_CACHE"),
        };
        Ok(Hub {
            endpoint: var("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.into()).trim_end_matches('/').into(),
            cache,
            token: var("HF_TOKEN"),
            offline: var("HF_HUB_OFFLINE").is_some_and(|v| v != "0"),
        })
    }

    /// Downloads what `reference` names (unless cached) and returns its local path: the file, or the folder.
    pub fn fetch(&self, reference: &HubRef) -> Result<PathBuf> {
        let dir = self.cache.join("hub").join(&reference.repo).join(&reference.revision);
        if let Some(file) = &reference.file {
            return self.required(reference, &dir, file);
        }
        for name in REQUIRED {
            self.required(reference, &dir, name)?;
        }
        for name in OPTIONAL {
            self.optional(reference, &dir, name)?;
        }
        match self.optional(reference, &dir, "model.safetensors.index.json")? {
            Some(index) => {
                let bytes = fs::read(&index).with_context(|| format!("reading {}", index.display()))?;
                let (shards, _) = shard_index(&bytes).with_context(|| format!("{}", index.display()))?;
                for shard in shards {
                    if !shard.split('/').all(valid_part) {
                        bail!("{}: shard name {shard:?} is not a plain file name", index.display());
                    }
                    self.required(reference, &dir, &shard)?;
                }
            }
            None => {
                self.required(reference, &dir, "model.safetensors")?;
            }
        }
        Ok(dir)
    }

    fn required(&self, reference: &HubRef, dir: &Path, name: &str) -> Result<PathBuf> {
        self.file(reference, dir, name, true)?.ok_or_else(|| {
            let url = format!("{}/{}/resolve/{}/{name}", self.endpoint, reference.repo, reference.revision);
            anyhow!(
                "{SCHEME}{}@{}/{name}: the server has no such file ({url} answered 404)",
                reference.repo,
                reference.revision
            )
        })
    }

    fn optional(&self, reference: &HubRef, dir: &Path, name: &str) -> Result<Option<PathBuf>> {
        self.file(reference, dir, name, false)
    }

    /// One file into `dir`; `Ok(None)` when the server does not have it (remembered for optional files).
    fn file(&self, reference: &HubRef, dir: &Path, name: &str, required: bool) -> Result<Option<PathBuf>> {
        let path = dir.join(name);
        let absent = dir.join(format!("{name}{ABSENT_SUFFIX}"));
        if path.is_file() {
            return Ok(Some(path));
        }
        if !required && absent.is_file() {
            return Ok(None);
        }
        let what = format!("{SCHEME}{}@{}/{name}", reference.repo, reference.revision);
        if self.offline {
            if required {
                bail!("{what} is not in the cache ({}) and HF_HUB_OFFLINE is set", self.cache.display());
            }
            return Ok(None);
        }
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        let url = format!("{}/{}/resolve/{}/{name}", self.endpoint, reference.repo, reference.revision);
        match download(&url, &path, self.token.as_deref()).with_context(|| format!("downloading {what} from {url}"))? {
            true => Ok(Some(path)),
            false if required => Ok(None),
            false => {
                File::create(&absent).with_context(|| format!("writing {}", absent.display()))?;
                Ok(None)
            }
        }
    }
}

/// GETs `url` into `path` through `path.part`, continuing a partial download with a range request. `false` when
/// the server answers 404.
fn download(url: &str, path: &Path, token: Option<&str>) -> Result<bool> {
    let part = path.with_file_name(format!("{}.part", path.file_name().and_then(|n| n.to_str()).unwrap_or("file")));
    let have = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut request = agent.get(url).header("User-Agent", concat!("alignlab/", env!("CARGO_PKG_VERSION")));
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    if have > 0 {
        request = request.header("Range", format!("bytes={have}-"));
    }
    let response = request.call()?;
    let status = response.status().as_u16();
    let length = response.headers().get("content-length").and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let (mut out, start) = match status {
        404 => return Ok(false),
        206 if have > 0 => (OpenOptions::new().append(true).open(&part)?, have),
        // a full answer (the server ignored the range, or there was nothing to continue): start over
        200 => (File::create(&part).with_context(|| format!("writing {}", part.display()))?, 0),
        416 if have > 0 => {
            // the range starts at the end: the partial file is already complete
            fs::rename(&part, path)?;
            return Ok(true);
        }
        401 | 403 => bail!("HTTP {status}: the model is gated or private (set HF_TOKEN)"),
        _ => bail!("HTTP {status}"),
    };
    let total = length.map(|l| l + start);
    let bar = ProgressBar::with_draw_target(total, indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{msg} {bytes}/{total_bytes} {bytes_per_sec} {wide_bar}")
            .expect("a fixed template"),
    );
    bar.set_message(path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string());
    bar.set_position(start);
    let mut body = response.into_body().into_reader();
    let mut buf = vec![0u8; 1 << 16];
    let mut written = start;
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                out.flush()?;
                bail!("the connection broke after {written} bytes ({e}); run again to continue from there")
            }
        };
        out.write_all(&buf[..n]).with_context(|| format!("writing {}", part.display()))?;
        written += n as u64;
        bar.set_position(written);
    }
    out.flush()?;
    bar.finish_and_clear();
    if let Some(total) = total
        && written != total
    {
        bail!("got {written} of {total} bytes; run again to continue");
    }
    fs::rename(&part, path).with_context(|| format!("renaming {} to {}", part.display(), path.display()))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        let r = HubRef::parse("hf://HuggingFaceTB/SmolLM2-135M-Instruct").unwrap().unwrap();
        assert_eq!(
            (r.repo.as_str(), r.revision.as_str(), r.file),
            ("HuggingFaceTB/SmolLM2-135M-Instruct", "main", None)
        );
        let r = HubRef::parse("hf://org/m@v1.0/sub/model.Q4_K.gguf").unwrap().unwrap();
        assert_eq!((r.revision.as_str(), r.file.as_deref()), ("v1.0", Some("sub/model.Q4_K.gguf")));
        assert_eq!(HubRef::parse("models/x.gguf").unwrap(), None);
        for bad in
            ["hf://", "hf://org", "hf://org/", "hf://org/m@", "hf://org/m/../x", "hf://o rg/m", "hf://org/m/a%2f"]
        {
            assert!(HubRef::parse(bad).is_err(), "{bad} should be refused");
        }
    }
}
