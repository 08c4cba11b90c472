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

/// A file written piece by piece that appears at its path only when [`commit`] is called:
/// until then the bytes go to a hidden temporary sibling (named like
/// [`temporary_sibling`]'s, plus a per-process counter so that two writers of the same path
/// in one process do not collide). Dropping it without committing removes the temporary, so
/// an interrupted or rejected write (a download cut short, a digest mismatch) leaves nothing
/// behind that could be mistaken for the finished file.
///
/// [`commit`]: AtomicFile::commit
#[derive(Debug)]
pub struct AtomicFile {
    target: PathBuf,
    tmp: PathBuf,
    /// `None` once committed (or after a failed commit, which removed the temporary).
    file: Option<io::BufWriter<File>>,
}

impl AtomicFile {
    /// Creates the temporary file for `path` (replacing a stale one of the same name).
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] if `path` does not end in a file name, or the error of
    /// creating the temporary (e.g. [`io::ErrorKind::PermissionDenied`] in a read-only
    /// directory).
    pub fn create(path: &Path) -> io::Result<AtomicFile> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let mut tmp = temporary_sibling(path)?.into_os_string();
        tmp.push(format!("-{}", NEXT.fetch_add(1, Ordering::Relaxed)));
        let tmp = PathBuf::from(tmp);
        let file = File::create(&tmp)?;
        Ok(AtomicFile {
            target: path.to_path_buf(),
            tmp,
            file: Some(io::BufWriter::with_capacity(1 << 16, file)),
        })
    }

    /// The path the file will have once committed.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The temporary file the bytes are written to until the commit. After a
    /// [`flush`](Write::flush), another handle opened on it reads everything written so far.
    pub fn temporary_path(&self) -> &Path {
        &self.tmp
    }

    /// Flushes and syncs the bytes to disk, renames the temporary over the target, and makes
    /// the rename durable where the platform allows.
    ///
    /// # Errors
    ///
    /// The first I/O error; the temporary is then removed and the target is untouched.
    pub fn commit(mut self) -> io::Result<()> {
        let Some(writer) = self.file.take() else {
            return Err(io::Error::other("the file was already committed"));
        };
        let synced = writer
            .into_inner()
            .map_err(io::IntoInnerError::into_error)
            .and_then(|file| file.sync_all());
        if let Err(e) = synced.and_then(|()| fs::rename(&self.tmp, &self.target)) {
            let _ = fs::remove_file(&self.tmp);
            return Err(e);
        }
        let dir = match self.target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    fn writer(&mut self) -> io::Result<&mut io::BufWriter<File>> {
        self.file
            .as_mut()
            .ok_or_else(|| io::Error::other("the file was already committed"))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer()?.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.writer()?.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer()?.flush()
    }
}

impl Drop for AtomicFile {
    /// Removes the temporary unless the file was committed.
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every entry of `dir` whose name marks a temporary of this module.
    fn temporaries(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect()
    }

    #[test]
    fn write_file_replaces_the_target_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        fs::write(&path, "old").unwrap();
        write_file(&path, b"new").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert!(temporaries(dir.path()).is_empty());
    }

    #[test]
    fn write_file_into_a_missing_directory_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/dir/out.json");
        let err = write_file(&path, b"new").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
        assert!(!path.exists());
        assert!(temporary_sibling(Path::new("/")).is_err());
    }

    /// A full disk: the temporary is made a symbolic link to `/dev/full`, whose writes fail
    /// with `ENOSPC`, so the write itself (not the creation of the file) fails. The target
    /// must keep its old contents and the temporary (the link) must be gone.
    #[cfg(target_os = "linux")]
    #[test]
    fn write_file_on_a_full_disk_leaves_the_target_alone() {
        let full = Path::new("/dev/full");
        if !full.exists() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("net.json");
        fs::write(&path, "old").unwrap();
        let tmp = temporary_sibling(&path).unwrap();
        std::os::unix::fs::symlink(full, &tmp).unwrap();
        let err = write_file(&path, &[b'x'; 100_000]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull, "{err}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "old");
        assert!(temporaries(dir.path()).is_empty());
        assert!(full.exists(), "only the link may be removed");
    }

    #[test]
    fn atomic_file_appears_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        let mut file = AtomicFile::create(&path).unwrap();
        file.write_all(b"abc").unwrap();
        assert!(!path.exists());
        drop(file);
        assert!(!path.exists() && temporaries(dir.path()).is_empty());

        let mut file = AtomicFile::create(&path).unwrap();
        assert_eq!(file.target(), path);
        file.write_all(b"abc").unwrap();
        file.commit().unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"abc");
        assert!(temporaries(dir.path()).is_empty());
    }
}
