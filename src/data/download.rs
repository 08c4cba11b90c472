//! Fetching MNIST (or any set of gzip-compressed files with known digests) from public
//! mirrors over HTTPS. Feature `download` (on by default).
//!
//! [`download`] makes sure that a directory holds each file of a list, raw (decompressed),
//! with the expected SHA-256 digest, and its `.gz` archive beside it. For each file, in order:
//!
//! 1. `NAME` is already there: its digest is checked, and it is kept if it matches (a file that
//!    does not match is an error: it is never overwritten).
//! 2. `NAME.gz` is there: it is decompressed and the result checked.
//! 3. Otherwise (or if that archive was bad) `NAME.gz` is fetched from each mirror in turn,
//!    until one gives a file whose decompressed digest matches.
//!
//! Every file is written atomically (see [`AtomicFile`]): the archive streams into a hidden
//! temporary file, is decompressed into another while its SHA-256 is computed, and only when
//! the digest matches are both renamed to `NAME.gz` and `NAME`. A download that is cut short,
//! times out or does not match leaves nothing behind, so a directory never looks complete
//! when it is not.
//!
//! The library never prints: [`DownloadProgress`] receives the progress (the `train` binary
//! draws a progress bar with it). HTTP is `ureq` (TLS by rustls, with the Mozilla root
//! certificates built in; the usual `HTTPS_PROXY`/`NO_PROXY` variables are honoured except for
//! loopback mirrors), gzip `flate2`, SHA-256 `sha2`.
//!
//! ```no_run
//! use simdnet::data::download::{DownloadOptions, download};
//! use simdnet::data::{Mnist, MnistOptions};
//!
//! download("data/mnist", &DownloadOptions::default(), &mut ())?;
//! let mnist = Mnist::open("data/mnist", &MnistOptions::default())?;
//! # Ok::<(), simdnet::Error>(())
//! ```

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::atomic::AtomicFile;
use crate::data::gz::{CopyError, copy_gunzip};
use crate::data::mnist::{TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};
use crate::error::{Error, Result};

/// Public mirrors of MNIST's four `.gz` files, tried in this order: the one PyTorch's
/// torchvision downloads from, the one TensorFlow's tutorials used, and a copy on GitHub.
pub const MNIST_MIRRORS: [&str; 3] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://raw.githubusercontent.com/fgnt/mnist/master/",
];

/// MNIST's four files with the SHA-256 digests of their raw (decompressed) contents.
pub const MNIST_FILES: [(&str, &str); 4] = [
    (
        TRAIN_IMAGES,
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ),
    (
        TRAIN_LABELS,
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ),
    (
        TEST_IMAGES,
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ),
    (
        TEST_LABELS,
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
];

/// One file to fetch: `NAME.gz` from a mirror, whose decompressed contents `NAME` must have
/// the SHA-256 digest `sha256`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteFile {
    /// The raw file's name (a plain file name, no directories); the mirror serves
    /// `NAME.gz`.
    pub name: String,
    /// The SHA-256 of the raw file, 64 hexadecimal digits.
    pub sha256: String,
}

impl RemoteFile {
    /// A file with its expected digest.
    pub fn new(name: impl Into<String>, sha256: impl Into<String>) -> RemoteFile {
        RemoteFile {
            name: name.into(),
            sha256: sha256.into(),
        }
    }
}

/// What [`download`] fetches, from where, and how patiently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownloadOptions {
    /// Base URLs (`https://` or `http://`), tried in order; `NAME.gz` is appended (after a
    /// `/` if the URL does not end in one).
    pub mirrors: Vec<String>,
    /// The files and their digests.
    pub files: Vec<RemoteFile>,
    /// The longest wait to connect to a mirror (resolving its name included).
    pub connect_timeout: Duration,
    /// The longest silence while waiting for the response or for more of the file.
    pub read_timeout: Duration,
}

impl Default for DownloadOptions {
    /// MNIST's four files from [`MNIST_MIRRORS`], 30 s to connect, 60 s of silence at most.
    fn default() -> Self {
        DownloadOptions {
            mirrors: MNIST_MIRRORS.iter().map(|m| m.to_string()).collect(),
            files: MNIST_FILES
                .iter()
                .map(|&(name, sha)| RemoteFile::new(name, sha))
                .collect(),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
        }
    }
}

impl DownloadOptions {
    /// MNIST's files (see [`Default`]) from `mirrors` instead of [`MNIST_MIRRORS`].
    pub fn with_mirrors<S: Into<String>>(mirrors: impl IntoIterator<Item = S>) -> Self {
        DownloadOptions {
            mirrors: mirrors.into_iter().map(Into::into).collect(),
            ..DownloadOptions::default()
        }
    }

    /// Checks the mirrors, names and digests without touching the network.
    ///
    /// # Errors
    ///
    /// [`Error::BadOption`] naming the first bad value.
    pub fn validate(&self) -> Result<()> {
        if self.mirrors.is_empty() {
            return Err(Error::BadOption {
                option: "mirror",
                problem: "no mirror to download from".to_string(),
            });
        }
        for mirror in &self.mirrors {
            if host(mirror).is_none() {
                return Err(Error::BadOption {
                    option: "mirror",
                    problem: format!(
                        "{mirror:?} is not an http:// or https:// URL with a host name"
                    ),
                });
            }
        }
        for file in &self.files {
            let plain = !file.name.is_empty()
                && file.name != "."
                && file.name != ".."
                && !file.name.contains(['/', '\\', '\0']);
            if !plain {
                return Err(Error::BadOption {
                    option: "file name",
                    problem: format!("{:?} is not a plain file name", file.name),
                });
            }
            if file.sha256.len() != 64 || !file.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::BadOption {
                    option: "SHA-256 digest",
                    problem: format!(
                        "{:?} for {} is not 64 hexadecimal digits",
                        file.sha256, file.name
                    ),
                });
            }
        }
        Ok(())
    }
}

/// How [`download`] made one file available.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The raw file was there already, with the right digest.
    Present,
    /// The raw file was decompressed from the `.gz` archive that was already there.
    Decompressed,
    /// The archive was fetched from `url`: `bytes` compressed bytes.
    Downloaded {
        /// Where it came from.
        url: String,
        /// Its size as fetched (compressed).
        bytes: u64,
    },
}

/// What [`download`] did for one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileReport {
    /// The raw file's name.
    pub name: String,
    /// How it was made available.
    pub outcome: Outcome,
    /// Where it is now.
    pub path: PathBuf,
}

/// What [`download`] did, one entry per file, in the order of [`DownloadOptions::files`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DownloadReport {
    /// The files.
    pub files: Vec<FileReport>,
}

impl DownloadReport {
    /// The number of compressed bytes fetched over the network.
    pub fn downloaded_bytes(&self) -> u64 {
        self.files
            .iter()
            .map(|f| match f.outcome {
                Outcome::Downloaded { bytes, .. } => bytes,
                _ => 0,
            })
            .sum()
    }
}

/// Receives [`download`]'s progress. Every method does nothing by default; `()` implements
/// it for callers who want no progress.
pub trait DownloadProgress {
    /// An existing file is being checked (its digest computed).
    fn checking(&mut self, name: &str, path: &Path) {
        let _ = (name, path);
    }

    /// `url` is being fetched; `total` is its size in bytes if the server said.
    fn fetching(&mut self, name: &str, url: &str, total: Option<u64>) {
        let _ = (name, url, total);
    }

    /// `received` bytes of the file being fetched have arrived so far.
    fn received(&mut self, received: u64) {
        let _ = received;
    }

    /// An attempt failed (a mirror, or an archive already in the directory); `retrying` says
    /// whether another mirror will be tried (if not, [`download`] returns
    /// [`Error::DownloadFailed`] with every attempt's error).
    fn attempt_failed(&mut self, name: &str, error: &Error, retrying: bool) {
        let _ = (name, error, retrying);
    }

    /// The file is in place and verified.
    fn finished(&mut self, report: &FileReport) {
        let _ = report;
    }
}

impl DownloadProgress for () {}

/// Makes sure that `dir` holds every file of `options.files`, raw and verified, with its
/// `.gz` archive beside it, fetching what is missing from `options.mirrors` (see the module
/// docs). Creates `dir` if needed. Files already in place are only checked.
///
/// # Errors
///
/// * [`Error::BadOption`] for a bad mirror URL, file name or digest (before anything is
///   fetched);
/// * [`Error::Io`] if `dir` or a file in it cannot be created, read or written (at once,
///   without trying further mirrors);
/// * [`Error::DigestMismatch`] (with `discarded: false`) if a raw file already in `dir` does
///   not have the expected digest: it is left alone, never overwritten;
/// * [`Error::DownloadFailed`] naming the file when no mirror gave it, with every attempt's
///   error ([`Error::Http`] for connection failures, timeouts, HTTP errors and downloads cut
///   short, [`Error::DigestMismatch`] for a file that is not the expected one,
///   [`Error::Io`] for one that is not valid gzip).
///
/// Files completed before an error stay (they are complete and verified).
pub fn download(
    dir: impl AsRef<Path>,
    options: &DownloadOptions,
    progress: &mut dyn DownloadProgress,
) -> Result<DownloadReport> {
    let dir = dir.as_ref();
    options.validate()?;
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create the data directory", &e))?;
    let mut report = DownloadReport::default();
    for file in &options.files {
        let done = fetch_one(dir, file, options, progress)?;
        progress.finished(&done);
        report.files.push(done);
    }
    Ok(report)
}

/// Why an attempt failed: the source (a mirror, or an archive already in the directory), so
/// that the next mirror is worth trying; or this machine (the directory cannot be written),
/// which no mirror can fix.
enum Failed {
    Source(Error),
    Local(Error),
}

/// Makes one file available (steps 1 to 3 of the module docs).
fn fetch_one(
    dir: &Path,
    file: &RemoteFile,
    options: &DownloadOptions,
    progress: &mut dyn DownloadProgress,
) -> Result<FileReport> {
    let raw = dir.join(&file.name);
    let gz = dir.join(format!("{}.gz", file.name));
    let expected = file.sha256.to_ascii_lowercase();
    let report = |outcome| FileReport {
        name: file.name.clone(),
        outcome,
        path: raw.clone(),
    };

    if fs::metadata(&raw).is_ok() {
        progress.checking(&file.name, &raw);
        let actual = sha256_file(&raw)?;
        if actual != expected {
            return Err(Error::DigestMismatch {
                file: file.name.clone(),
                origin: raw.display().to_string(),
                expected,
                actual,
                discarded: false,
            });
        }
        return Ok(report(Outcome::Present));
    }

    let mut attempts = Vec::new();
    if gz.is_file() {
        progress.checking(&file.name, &gz);
        let origin = gz.display().to_string();
        let unpacked = File::open(&gz)
            .map_err(|e| Failed::Source(Error::io(&gz, "open", &e)))
            .and_then(|archive| unpack_verified(archive, &gz, &origin, &raw, file, &expected))
            .and_then(|out| commit(out, &raw).map_err(Failed::Local));
        match unpacked {
            Ok(()) => return Ok(report(Outcome::Decompressed)),
            Err(Failed::Local(e)) => return Err(e),
            Err(Failed::Source(e)) => {
                progress.attempt_failed(&file.name, &e, true);
                attempts.push(e);
            }
        }
    }

    for (i, mirror) in options.mirrors.iter().enumerate() {
        let url = file_url(mirror, &file.name);
        match fetch_from(&url, &gz, &raw, file, &expected, options, progress) {
            Ok(bytes) => return Ok(report(Outcome::Downloaded { url, bytes })),
            Err(Failed::Local(e)) => return Err(e),
            Err(Failed::Source(e)) => {
                progress.attempt_failed(&file.name, &e, i + 1 < options.mirrors.len());
                attempts.push(e);
            }
        }
    }
    Err(Error::DownloadFailed {
        file: format!("{}.gz", file.name),
        attempts,
    })
}

/// Fetches `url` into a temporary archive, decompresses and verifies it, and on success
/// renames both into place (`gz`, then `raw`). Returns the archive's size.
fn fetch_from(
    url: &str,
    gz: &Path,
    raw: &Path,
    file: &RemoteFile,
    expected: &str,
    options: &DownloadOptions,
    progress: &mut dyn DownloadProgress,
) -> Result<u64, Failed> {
    let http = |problem: String| {
        Failed::Source(Error::Http {
            url: url.to_string(),
            problem,
        })
    };
    let local =
        |path: &Path, operation, e: &io::Error| Failed::Local(Error::io(path, operation, e));
    // The temporary first: a directory that cannot be written fails before any request.
    let mut archive = AtomicFile::create(gz).map_err(|e| local(gz, "create", &e))?;
    let agent = agent(url, options);
    let response = agent.get(url).call().map_err(|e| http(describe(&e)))?;
    let total = response.body().content_length();
    progress.fetching(&file.name, url, total);

    let mut body = response.into_body().into_reader();
    let mut buf = vec![0u8; 1 << 16];
    let mut received = 0u64;
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(http(format!(
                    "the transfer failed after {received} bytes{}: {}",
                    of_total(total),
                    describe_io(&e)
                )));
            }
        };
        archive
            .write_all(&buf[..n])
            .map_err(|e| local(gz, "write", &e))?;
        received += n as u64;
        progress.received(received);
    }
    if let Some(total) = total
        && received != total
    {
        return Err(http(format!(
            "the connection ended after {received} of {total} bytes"
        )));
    }
    archive.flush().map_err(|e| local(gz, "write", &e))?;

    let tmp = archive.temporary_path().to_path_buf();
    let partial = File::open(&tmp).map_err(|e| local(&tmp, "open", &e))?;
    let out = unpack_verified(partial, Path::new(url), url, raw, file, expected)?;
    archive.commit().map_err(|e| local(gz, "write", &e))?;
    commit(out, raw).map_err(Failed::Local)?;
    Ok(received)
}

/// Decompresses `archive` (read from `source`, described as `origin` in errors) into a
/// temporary for `raw` and checks its digest; the temporary is removed on any error.
fn unpack_verified(
    archive: File,
    source: &Path,
    origin: &str,
    raw: &Path,
    file: &RemoteFile,
    expected: &str,
) -> Result<AtomicFile, Failed> {
    let mut out =
        AtomicFile::create(raw).map_err(|e| Failed::Local(Error::io(raw, "create", &e)))?;
    let mut hasher = Sha256::new();
    copy_gunzip(archive, &mut out, |chunk| hasher.update(chunk)).map_err(|e| match e {
        CopyError::Read(e) => Failed::Source(Error::io(source, "decompress", &e)),
        CopyError::Write(e) => Failed::Local(Error::io(raw, "write", &e)),
    })?;
    let actual = hex(&hasher.finalize());
    if actual != expected {
        return Err(Failed::Source(Error::DigestMismatch {
            file: file.name.clone(),
            origin: origin.to_string(),
            expected: expected.to_string(),
            actual,
            discarded: true,
        }));
    }
    Ok(out)
}

fn commit(out: AtomicFile, raw: &Path) -> Result<()> {
    out.commit().map_err(|e| Error::io(raw, "write", &e))
}

/// The SHA-256 of a file, as lowercase hexadecimal.
fn sha256_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(|e| Error::io(path, "open", &e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, "read", &e)),
        }
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(2 * bytes.len());
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `mirror` + `NAME.gz`, with one `/` between them.
fn file_url(mirror: &str, name: &str) -> String {
    if mirror.ends_with('/') {
        format!("{mirror}{name}.gz")
    } else {
        format!("{mirror}/{name}.gz")
    }
}

/// The host of an `http://` or `https://` URL (without port or brackets), if it has one.
fn host(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or("");
    let host = if let Some(bracketed) = authority.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    (!host.is_empty()).then_some(host)
}

/// An HTTP agent for `url`: the timeouts of `options`, no automatic decompression (the
/// archive is wanted as served), and no proxy for loopback addresses.
fn agent(url: &str, options: &DownloadOptions) -> ureq::Agent {
    let loopback = host(url).is_some_and(|h| {
        h.eq_ignore_ascii_case("localhost")
            || h.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    let mut config = ureq::Agent::config_builder()
        .timeout_resolve(Some(options.connect_timeout))
        .timeout_connect(Some(options.connect_timeout))
        .timeout_recv_response(Some(options.read_timeout))
        .timeout_per_read(Some(options.read_timeout))
        .user_agent(concat!("simdnet/", env!("CARGO_PKG_VERSION")));
    if loopback {
        config = config.proxy(None);
    }
    config.build().into()
}

/// A ureq error as a short sentence.
fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::StatusCode(code) => format!("the server answered HTTP {code}"),
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::Io(io) => describe_io(io),
        other => other.to_string(),
    }
}

/// An I/O error from the body reader, with the ureq error inside it when there is one.
fn describe_io(e: &io::Error) -> String {
    if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<ureq::Error>()) {
        return describe(inner);
    }
    match e.kind() {
        io::ErrorKind::UnexpectedEof => format!("the connection closed early ({e})"),
        _ => e.to_string(),
    }
}

fn of_total(total: Option<u64>) -> String {
    total.map(|t| format!(" of {t}")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_hosts() {
        assert_eq!(file_url("https://a.b/m/", "x"), "https://a.b/m/x.gz");
        assert_eq!(file_url("https://a.b/m", "x"), "https://a.b/m/x.gz");
        assert_eq!(host("https://a.b:443/m/"), Some("a.b"));
        assert_eq!(host("http://127.0.0.1:8080"), Some("127.0.0.1"));
        assert_eq!(host("http://[::1]:80/x"), Some("::1"));
        assert_eq!(host("http://user@h/x"), Some("h"));
        assert_eq!(host("ftp://h/x"), None);
        assert_eq!(host("https:///x"), None);
        assert_eq!(host("h/x"), None);
    }

    #[test]
    fn options_are_validated() {
        assert!(DownloadOptions::default().validate().is_ok());
        let bad_mirror = DownloadOptions::with_mirrors(["ftp://x/"]);
        assert!(matches!(
            bad_mirror.validate(),
            Err(Error::BadOption {
                option: "mirror",
                ..
            })
        ));
        let no_mirror = DownloadOptions::with_mirrors(Vec::<String>::new());
        assert!(no_mirror.validate().is_err());
        for name in ["", "..", "a/b"] {
            let options = DownloadOptions {
                files: vec![RemoteFile::new(name, "0".repeat(64))],
                ..DownloadOptions::default()
            };
            assert!(options.validate().is_err(), "{name:?}");
        }
        let short = DownloadOptions {
            files: vec![RemoteFile::new("x", "abc")],
            ..DownloadOptions::default()
        };
        assert!(short.validate().is_err());
    }

    #[test]
    fn hex_digest() {
        let d = Sha256::digest(b"abc");
        assert_eq!(
            hex(&d),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
