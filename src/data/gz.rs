//! gzip-compressed IDX files (`NAME.gz`), read as if they were the raw files.
//!
//! MNIST is distributed as four `.gz` files. The reader maps raw files (see
//! [`crate::data::mmap`]), so a directory that holds only `NAME.gz` is decompressed once, the
//! first time it is opened:
//!
//! * into `NAME` beside the archive, written atomically (a temporary sibling, renamed when
//!   complete), so that every later run maps it directly;
//! * or, where that directory cannot be written (it has no write permission bits, or creating
//!   a file in it fails with a permission or read-only-file-system error), into the cache
//!   directory [`cache_dir`]: `$SIMDNET_CACHE_DIR`, else `$XDG_CACHE_HOME/simdnet`, else
//!   `$HOME/.cache/simdnet`, under `mnist/<key>/NAME`, where the key is a hash of the
//!   archive's absolute path, length and modification time (a replaced archive is
//!   decompressed again).
//!
//! Decompression checks the gzip CRC and length; the result is then validated as IDX by the
//! reader like any raw file. No digest is checked here: that is for downloads (see
//! `simdnet::data::download`, feature `download`), since a `.gz` directory may hold any IDX
//! data. gzip is decoded by `flate2` (pure Rust backend), always built.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use crate::atomic::AtomicFile;
use crate::error::{Error, Result};

/// The environment variable that overrides the cache directory (see [`cache_dir`]).
pub const CACHE_ENV_VAR: &str = "SIMDNET_CACHE_DIR";

/// Where a raw file came from, as [`resolve`] found or made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved {
    /// The raw file was already there.
    Raw(PathBuf),
    /// The raw file was decompressed from `NAME.gz` beside it (now, or in an earlier run).
    Decompressed(PathBuf),
    /// The directory could not be written: the raw file is in the cache directory
    /// (decompressed now, or found there from an earlier run).
    Cached(PathBuf),
}

impl Resolved {
    /// The raw file to map.
    pub fn path(&self) -> &Path {
        match self {
            Resolved::Raw(p) | Resolved::Decompressed(p) | Resolved::Cached(p) => p,
        }
    }
}

/// simdnet's cache directory: `$SIMDNET_CACHE_DIR` if set and not empty, else
/// `$XDG_CACHE_HOME/simdnet` (an absolute `XDG_CACHE_HOME` only, as the XDG specification
/// asks), else `$HOME/.cache/simdnet`; `None` if none of these is set.
pub fn cache_dir() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var(CACHE_ENV_VAR) {
        return Some(PathBuf::from(dir));
    }
    if let Some(xdg) = var("XDG_CACHE_HOME").map(PathBuf::from)
        && xdg.is_absolute()
    {
        return Some(xdg.join("simdnet"));
    }
    var("HOME").map(|home| PathBuf::from(home).join(".cache").join("simdnet"))
}

/// The raw file `dir/name` for the reader: `dir/name` itself if it exists; else, if
/// `dir/name.gz` exists, its decompressed copy (made now if needed) beside it or, where `dir`
/// cannot be written, under `cache` (see the module docs); `Ok(None)` if neither exists.
///
/// `cache` is the cache root ([`cache_dir`] for the reader); `None` means there is none, and a
/// read-only directory is then an error.
///
/// # Errors
///
/// [`Error::Io`]: the archive cannot be read or is not valid gzip (operation `"decompress"`),
/// or the decompressed file cannot be written beside it nor in the cache.
pub fn resolve(dir: &Path, name: &str, cache: Option<&Path>) -> Result<Option<Resolved>> {
    let raw = dir.join(name);
    if fs::metadata(&raw).is_ok() {
        // A directory in its place is the reader's error to report.
        return Ok(Some(Resolved::Raw(raw)));
    }
    let gz = dir.join(format!("{name}.gz"));
    if !gz.is_file() {
        return Ok(None);
    }
    if !read_only(dir) {
        match AtomicFile::create(&raw) {
            Ok(out) => {
                decompress_into(&gz, out)?;
                return Ok(Some(Resolved::Decompressed(raw)));
            }
            Err(e) if !cannot_write(&e) => {
                return Err(Error::io(&raw, "create", &e));
            }
            Err(_) => {}
        }
    }
    let Some(cache) = cache else {
        return Err(Error::Io {
            path: raw,
            operation: "decompress into",
            kind: io::ErrorKind::PermissionDenied,
            message: format!(
                "the directory is read-only and there is no cache directory to use instead \
                 (set {CACHE_ENV_VAR}, XDG_CACHE_HOME or HOME)"
            ),
        });
    };
    let cached = cached_path(&gz, cache)?;
    if cached.is_file() {
        return Ok(Some(Resolved::Cached(cached)));
    }
    if let Some(parent) = cached.parent() {
        fs::create_dir_all(parent).map_err(|e| Error::io(parent, "create", &e))?;
    }
    let out = AtomicFile::create(&cached).map_err(|e| Error::io(&cached, "create", &e))?;
    decompress_into(&gz, out)?;
    Ok(Some(Resolved::Cached(cached)))
}

/// Where [`resolve`] puts the decompressed copy of the archive `gz` under the cache root
/// `cache`: `cache/mnist/<key>/NAME`, the key a hash of `gz`'s absolute path, length and
/// modification time.
///
/// # Errors
///
/// [`Error::Io`] if `gz` cannot be found or examined.
pub fn cached_path(gz: &Path, cache: &Path) -> Result<PathBuf> {
    let absolute = fs::canonicalize(gz).map_err(|e| Error::io(gz, "find", &e))?;
    let meta = fs::metadata(&absolute).map_err(|e| Error::io(gz, "examine", &e))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let mut key = Fnv1a::default();
    key.write(absolute.as_os_str().as_encoded_bytes());
    key.write(&[0]);
    key.write(&meta.len().to_le_bytes());
    key.write(&mtime.to_le_bytes());
    let name = absolute
        .file_stem()
        .ok_or_else(|| Error::Io {
            path: gz.to_path_buf(),
            operation: "find",
            kind: io::ErrorKind::InvalidInput,
            message: "the path does not name a file".to_string(),
        })?
        .to_owned();
    Ok(cache
        .join("mnist")
        .join(format!("{:016x}", key.0))
        .join(name))
}

/// Decompresses the gzip file `gz` into `raw`, atomically (a complete file or none), and
/// returns the number of bytes written.
///
/// # Errors
///
/// [`Error::Io`] naming `gz` (operation `"decompress"`) if it cannot be read or is not valid,
/// complete gzip, or naming `raw` if it cannot be written; `raw` is then left as it was.
pub fn decompress(gz: &Path, raw: &Path) -> Result<u64> {
    let out = AtomicFile::create(raw).map_err(|e| Error::io(raw, "create", &e))?;
    decompress_into(gz, out)
}

/// Decompresses `gz` into `out` and commits it.
fn decompress_into(gz: &Path, mut out: AtomicFile) -> Result<u64> {
    let file = File::open(gz).map_err(|e| Error::io(gz, "open", &e))?;
    let written = copy_gunzip(file, &mut out, |_| {}).map_err(|e| match e {
        CopyError::Read(e) => Error::io(gz, "decompress", &e),
        CopyError::Write(e) => Error::io(out.target(), "write", &e),
    })?;
    let target = out.target().to_path_buf();
    out.commit().map_err(|e| Error::io(&target, "write", &e))?;
    Ok(written)
}

/// Which side of a copy failed.
#[derive(Debug)]
pub(crate) enum CopyError {
    /// Reading or decoding the input.
    Read(io::Error),
    /// Writing the output.
    Write(io::Error),
}

/// Decodes the gzip stream `input` into `out`, handing every decoded chunk to `inspect` (a
/// digest, say) before writing it; returns the number of decoded bytes. A stream that ends
/// early, or whose CRC or length does not match its trailer, is a read error.
pub(crate) fn copy_gunzip(
    input: impl Read,
    out: &mut impl Write,
    mut inspect: impl FnMut(&[u8]),
) -> Result<u64, CopyError> {
    let mut decoder = MultiGzDecoder::new(BufReader::with_capacity(1 << 16, input));
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = match decoder.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        inspect(&buf[..n]);
        out.write_all(&buf[..n]).map_err(CopyError::Write)?;
        total += n as u64;
    }
    if total == 0 {
        // An empty input is not a gzip stream (flate2 reads it as zero members).
        return Err(CopyError::Read(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "empty or truncated gzip stream",
        )));
    }
    out.flush().map_err(CopyError::Write)?;
    Ok(total)
}

/// Whether the directory has no write permission bits at all (then it is left alone even by
/// a user, such as root, whom the permissions would not stop).
fn read_only(dir: &Path) -> bool {
    fs::metadata(dir).is_ok_and(|m| m.permissions().readonly())
}

/// Whether a failure to create a file means "this directory cannot be written".
fn cannot_write(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
    )
}

/// FNV-1a, 64 bits: a stable hash for cache keys (not for integrity).
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}
