//! Whole-file writes: a file is replaced by a complete new version or left as it was, never
//! half-written (a saved network, a metrics file).

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The temporary file [`write_file`] writes before renaming it over `path`: a hidden sibling
/// in the same directory (so that the rename cannot cross file systems), named after `path`
/// and this process.
///
/// # Errors
///
/// [`io::ErrorKind::InvalidInput`] if `path` does not end in a file name.
pub fn temporary_sibling(path: &Path) -> io::Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "the path does not name a file")
    })?;
    let mut tmp = OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".tmp-{}", std::process::id()));
    Ok(path.with_file_name(tmp))
}

/// Writes `bytes` to `path` atomically: to [`temporary_sibling`]`(path)` first, flushed to
/// disk, then renamed over `path`, and the rename made durable where the platform allows.
///
/// # Errors
///
/// The first I/O error; the temporary file is then removed and `path` is untouched.
pub fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = temporary_sibling(path)?;
    let written = File::create(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    // Best effort: not every platform can sync a directory.
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
