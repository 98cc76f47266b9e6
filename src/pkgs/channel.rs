//! Channels: named snapshots of a Debian suite, like Nix's channels. A channel is a URL (`MIRROR/dists/SUITE`);
//! updating it downloads `InRelease`, verifies its OpenPGP signature against Debian's archive keyring (with
//! Debian's `gpgv`), downloads the `main/binary-amd64` Packages index and checks it against the SHA256 that the
//! signed Release lists, and stores the verified snapshot (InRelease, Packages.gz, the compact index, the mirror
//! URL, and the `default.nix` of the package set) as one store path. The set of channels in use is a profile,
//! `nix/var/nix/profiles/per-user/root/channels`, whose generations are text files naming each channel's store
//! path (and referring to it, so the garbage collector keeps it); `--rollback` goes back one generation.
//!
//! Nothing here names a mirror: the default channel `debian` is bookworm from the first Debian mirror in the
//! host's apt sources.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use super::control::Release;
use crate::store::hash::hex;
use crate::store::local::LocalStore;
use crate::store::path::StorePath;
use crate::store::profile::Profile;

/// The suite the default channel follows.
pub const DEFAULT_SUITE: &str = "bookworm";
pub const DEFAULT_NAME: &str = "debian";
/// The index every channel takes: Debian's main component for amd64.
const INDEX: &str = "main/binary-amd64/Packages";
/// Debian's archive keyring (package debian-archive-keyring); `RIXOS_DEBIAN_KEYRING` overrides it.
const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";
/// Largest InRelease accepted (Debian's are about 150 KB).
const MAX_RELEASE: u64 = 16 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub name: String,
    pub url: String,
}

/// The channels of a store: the list (`nix/var/rixos/channels`, one `URL NAME` per line, like
/// ~/.nix-channels) and the profile of downloaded snapshots.
pub struct Channels {
    root: PathBuf,
}

impl Channels {
    pub fn new(root: &Path) -> Channels {
        Channels {
            root: root.to_path_buf(),
        }
    }

    fn list_file(&self) -> PathBuf {
        self.root.join("nix/var/rixos/channels")
    }

    pub fn profile(&self) -> Profile {
        Profile::new(self.root.join("nix/var/nix/profiles/per-user/root/channels"))
    }

    /// The channel list as its file holds it (`URL NAME` lines), for a machine that updates from the same.
    pub fn list_text(&self) -> Result<String> {
        Ok(self.list()?.iter().map(|c| format!("{} {}\n", c.url, c.name)).collect())
    }

    /// The configured channels; without a list, the default channel.
    pub fn list(&self) -> Result<Vec<Channel>> {
        let file = self.list_file();
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![default_channel()?]),
            Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
        };
        let mut out = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split_whitespace().collect::<Vec<_>>().as_slice() {
                [url, name] => out.push(Channel {
                    name: name.to_string(),
                    url: url.to_string(),
                }),
                _ => bail!("{}:{}: expected 'URL NAME', found {line:?}", file.display(), n + 1),
            }
        }
        Ok(out)
    }

    fn write_list(&self, channels: &[Channel]) -> Result<()> {
        let file = self.list_file();
        let dir = file.parent().expect("the list has a parent");
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let text: String = channels.iter().map(|c| format!("{} {}\n", c.url, c.name)).collect();
        let tmp = file.with_extension("tmp");
        std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &file).with_context(|| format!("replacing {}", file.display()))
    }

    /// Adds (or re-points) a channel; the name defaults to the suite named by the URL.
    pub fn add(&self, url: &str, name: Option<&str>) -> Result<Channel> {
        let url = url.trim_end_matches('/').to_string();
        let suite = check_channel_url(&url)?.to_string();
        let name = name.map_or(suite, str::to_string);
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            bail!("channel name {name:?} may hold only letters, digits, '-', '_' and '.'");
        }
        let mut channels = self.list()?;
        channels.retain(|c| c.name != name);
        let channel = Channel { name, url };
        channels.push(channel.clone());
        self.write_list(&channels)?;
        Ok(channel)
    }

    pub fn remove(&self, name: &str) -> Result<()> {
        let mut channels = self.list()?;
        let before = channels.len();
        channels.retain(|c| c.name != name);
        if channels.len() == before {
            bail!("there is no channel named {name:?} (see `rixos channel --list`)");
        }
        self.write_list(&channels)
    }

    /// The store path of each channel in the current generation.
    pub fn current(&self) -> Result<BTreeMap<String, String>> {
        let profile = self.profile();
        let Ok(target) = std::fs::read_link(profile.path()) else {
            return Ok(BTreeMap::new());
        };
        let link = profile.path().parent().expect("a profile dir").join(target);
        let manifest = std::fs::read_link(&link).with_context(|| format!("reading {}", link.display()))?;
        let real = self.root.join(manifest.strip_prefix("/").unwrap_or(&manifest));
        let text = std::fs::read_to_string(&real).with_context(|| format!("reading {}", real.display()))?;
        Ok(text
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(n, p)| (n.to_string(), p.to_string()))
            .collect())
    }

    /// Downloads and verifies the named channels (all without names) and makes a new generation holding them
    /// beside the other channels' current snapshots. Gives the new generation's channels.
    pub fn update(&self, store: &mut LocalStore, names: &[String]) -> Result<BTreeMap<String, String>> {
        let channels = self.list()?;
        for n in names {
            if !channels.iter().any(|c| &c.name == n) {
                bail!("there is no channel named {n:?} (see `rixos channel --list`)");
            }
        }
        let mut current = self.current()?;
        current.retain(|n, _| channels.iter().any(|c| &c.name == n));
        for c in &channels {
            if names.is_empty() || names.contains(&c.name) {
                let path = fetch_snapshot(store, c)
                    .with_context(|| format!("updating channel '{}' from {}", c.name, c.url))?;
                current.insert(c.name.clone(), path.to_string());
            }
        }
        self.commit(store, &current)?;
        Ok(current)
    }

    fn commit(&self, store: &mut LocalStore, channels: &BTreeMap<String, String>) -> Result<()> {
        let text: String = channels.iter().map(|(n, p)| format!("{n} {p}\n")).collect();
        let refs = channels
            .values()
            .map(|p| StorePath::parse(p))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let manifest = store.add_text("channels", text.as_bytes(), &refs)?;
        let profile = self.profile();
        let number = profile.add_generation(&manifest)?;
        profile.switch(number)
    }

    /// Back to the previous generation of channels; gives its number.
    pub fn rollback(&self) -> Result<u64> {
        self.profile().rollback()
    }
}

/// Checks a channel URL (without a trailing `/`) has the form `http[s]://HOST/PATH/dists/SUITE` or
/// `file:///PATH/dists/SUITE`, so a mistake shows at `--add`, not at the next `--update`; gives the suite.
pub fn check_channel_url(url: &str) -> Result<&str> {
    let example =
        format!("e.g. http://MIRROR/debian/dists/{DEFAULT_SUITE} or file:///srv/debian/dists/{DEFAULT_SUITE}");
    let Some((scheme, rest)) = url.split_once("://") else {
        bail!("channel URL {url:?} has no scheme: it must be http://, https:// or file:// ({example})");
    };
    if !["http", "https", "file"].contains(&scheme) {
        bail!("channel URL {url:?} must be http://, https:// or file://, not {scheme}:// ({example})");
    }
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if scheme == "file" && !host.is_empty() {
        bail!("channel URL {url:?}: a file:// URL names a local path, file:///PATH/dists/SUITE ({example})");
    }
    if scheme != "file" && host.is_empty() {
        bail!("channel URL {url:?} has no host ({example})");
    }
    let suite = match path.rsplit_once('/') {
        Some((before, suite)) if before == "dists" || before.ends_with("/dists") => suite,
        _ => bail!("channel URL {url:?} must end in /dists/SUITE, the directory holding InRelease ({example})"),
    };
    if suite.is_empty() || suite == "." || suite == ".." {
        bail!("channel URL {url:?} names no suite after /dists/ ({example})");
    }
    Ok(suite)
}

/// The default channel: bookworm from the host's first Debian mirror.
pub fn default_channel() -> Result<Channel> {
    let mirror = host_mirror()?;
    Ok(Channel {
        name: DEFAULT_NAME.to_string(),
        url: format!("{mirror}/dists/{DEFAULT_SUITE}"),
    })
}

/// The first mirror in the host's apt sources that carries the default suite's main component.
pub fn host_mirror() -> Result<String> {
    let mut candidates = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut files: Vec<PathBuf> = dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "sources"))
            .collect();
        files.sort();
        for f in files {
            candidates.extend(deb822_mirrors(&std::fs::read_to_string(&f).unwrap_or_default()));
        }
    }
    {
        let f = "/etc/apt/sources.list";
        candidates.extend(one_line_mirrors(&std::fs::read_to_string(f).unwrap_or_default()));
    }
    candidates.into_iter().next().ok_or_else(|| {
        anyhow::anyhow!(
            "no Debian mirror for {DEFAULT_SUITE} main in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list; \
             add a channel with `rixos channel --add MIRROR/dists/{DEFAULT_SUITE} debian`"
        )
    })
}

/// Mirrors of deb822 stanzas (`Types: deb`, `URIs:`, `Suites:` with the default suite, `Components:` with main).
fn deb822_mirrors(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let mut fields: BTreeMap<String, String> = BTreeMap::new();
        for line in stanza.lines() {
            if line.starts_with('#') {
                continue;
            }
            if let Some((k, v)) = line.split_once(':')
                && !k.starts_with(' ')
            {
                fields.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let has = |k: &str, w: &str| fields.get(k).is_some_and(|v| v.split_whitespace().any(|x| x == w));
        if has("types", "deb")
            && has("suites", DEFAULT_SUITE)
            && has("components", "main")
            && let Some(uris) = fields.get("uris")
        {
            out.extend(uris.split_whitespace().map(|u| u.trim_end_matches('/').to_string()));
        }
    }
    out
}

/// Mirrors of one-line entries: `deb [options] URI SUITE COMPONENT...`.
fn one_line_mirrors(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let mut words: Vec<&str> = line.split_whitespace().collect();
        if words.first() != Some(&"deb") {
            continue;
        }
        words.remove(0);
        if words.first().is_some_and(|w| w.starts_with('[')) {
            while let Some(w) = words.first() {
                let done = w.ends_with(']');
                words.remove(0);
                if done {
                    break;
                }
            }
        }
        if let [uri, suite, components @ ..] = words.as_slice()
            && *suite == DEFAULT_SUITE
            && components.contains(&"main")
        {
            out.push(uri.trim_end_matches('/').to_string());
        }
    }
    out
}

/// Reads `url` (http, https or file) into memory, refusing more than `limit` bytes. The store's downloader does
/// the transfer, so broken transfers are retried and resumed the same way.
pub fn download(url: &str, limit: u64) -> Result<Vec<u8>> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("download");
    crate::store::build::fetch_url(url, &file).with_context(|| format!("downloading {url}"))?;
    let size = std::fs::metadata(&file)?.len();
    if size > limit {
        bail!("{url} is larger than {limit} bytes");
    }
    Ok(std::fs::read(&file)?)
}

/// Checks the clearsigned `InRelease` against the keyring with gpgv; gives the signed Release.
pub fn verify_release(in_release: &[u8], keyring: &Path) -> Result<Release> {
    if !keyring.exists() {
        bail!(
            "the keyring {} is missing: install Debian's debian-archive-keyring package (or set RIXOS_DEBIAN_KEYRING)",
            keyring.display()
        );
    }
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("InRelease");
    std::fs::write(&file, in_release)?;
    crate::command::run(
        Command::new("gpgv")
            .arg("--keyring")
            .arg(keyring)
            .arg("--homedir")
            .arg(dir.path())
            .arg(&file),
    )
    .context("the InRelease signature does not verify against Debian's archive keyring (tampered or not Debian's)")?;
    let text = std::str::from_utf8(in_release).context("InRelease is not UTF-8")?;
    Ok(Release::parse_in_release(text)?)
}

/// Downloads `name` of the release at `url`, checking size and sha256 against the signed Release.
fn fetch_listed(url: &str, release: &Release, name: &str) -> Result<Vec<u8>> {
    let listed = release
        .file(name)
        .with_context(|| format!("the Release does not list {name}"))?;
    let (hash, size) = (&listed.sha256, listed.size);
    let data = download(&format!("{url}/{name}"), size)?;
    let got = hex(&Sha256::digest(&data));
    if data.len() as u64 != size || &got != hash {
        bail!(
            "{url}/{name} does not match the signed Release: expected sha256 {hash} and {size} bytes, got {got} and {} bytes",
            data.len()
        );
    }
    Ok(data)
}

/// Downloads, verifies and stores one channel's snapshot; gives its store path.
pub fn fetch_snapshot(store: &mut LocalStore, channel: &Channel) -> Result<StorePath> {
    let keyring = std::env::var_os("RIXOS_DEBIAN_KEYRING").map_or_else(|| PathBuf::from(KEYRING), PathBuf::from);
    let in_release = download(&format!("{}/InRelease", channel.url), MAX_RELEASE)?;
    let release = verify_release(&in_release, &keyring)?;
    if let Some(valid_until) = &release.valid_until {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        if valid_until.unix < now {
            bail!(
                "the Release expired on {} (Valid-Until); the mirror is stale",
                valid_until.text
            );
        }
    }
    // The gzip index: smaller to download than the plain one, and every Debian suite has it.
    let gz = fetch_listed(&channel.url, &release, &format!("{INDEX}.gz"))?;
    let mut packages = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut packages)
        .with_context(|| format!("decompressing {INDEX}.gz"))?;
    if let Some(listed) = release.file(INDEX) {
        let (hash, size) = (&listed.sha256, listed.size);
        let got = hex(&Sha256::digest(&packages));
        if packages.len() as u64 != size || &got != hash {
            bail!("{INDEX} decompressed from {INDEX}.gz does not match the signed Release (sha256 {hash}, got {got})");
        }
    }
    let stage = tempfile::tempdir()?;
    let dir = stage.path().join("channel");
    std::fs::create_dir(&dir)?;
    std::fs::write(dir.join("InRelease"), &in_release)?;
    // The index as downloaded (a quarter of the plain file's size); its contents were checked above.
    std::fs::write(dir.join("Packages.gz"), &gz)?;
    let mirror = channel
        .url
        .rsplit_once("/dists/")
        .map_or(channel.url.as_str(), |(m, _)| m);
    std::fs::write(dir.join("mirror"), mirror)?;
    super::set::write_snapshot_files(&dir, &packages)?;
    store.add_path_named(&dir, &format!("{}-channel", channel.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_urls_are_checked_when_added() {
        let ok = [
            ("http://mirror.example/debian/dists/bookworm", "bookworm"),
            ("https://mirror.example/dists/bookworm-updates", "bookworm-updates"),
            ("file:///srv/debian/dists/trixie", "trixie"),
        ];
        for (url, suite) in ok {
            assert_eq!(check_channel_url(url).unwrap(), suite, "{url}");
        }
        let bad = [
            ("http://mirror.example/debian", "must end in /dists/SUITE"),
            ("http://mirror.example/debian/bookworm", "must end in /dists/SUITE"),
            ("http://mirror.example/debian/dists/", "names no suite"),
            ("mirror.example/debian/dists/bookworm", "has no scheme"),
            ("ftp://mirror.example/debian/dists/bookworm", "not ftp://"),
            ("http:///debian/dists/bookworm", "has no host"),
            ("file://host/srv/dists/bookworm", "names a local path"),
            ("http://mirror.example/debian/dists/..", "names no suite"),
        ];
        for (url, message) in bad {
            let error = check_channel_url(url).unwrap_err().to_string();
            assert!(error.contains(message), "{url}: {error}");
            assert!(
                error.contains("e.g. http://MIRROR/debian/dists/bookworm"),
                "{url}: {error}"
            );
        }
    }

    #[test]
    fn mirrors_come_from_both_apt_source_formats() {
        let deb822 = "Types: deb\n# a comment\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\nComponents: main\n";
        assert_eq!(deb822_mirrors(deb822), vec!["http://mirror.example/debian"]);
        let list = "# old style\ndeb [arch=amd64 signed-by=/k.gpg] http://a.example/debian bookworm main contrib\ndeb-src http://b.example/debian bookworm main\ndeb http://c.example/debian bullseye main\n";
        assert_eq!(one_line_mirrors(list), vec!["http://a.example/debian"]);
    }
}
