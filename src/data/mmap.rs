//! The bytes of a data file, memory-mapped read-only or read into memory.
//!
//! This is the only module of the data layer with `unsafe` code: one call that maps a file
//! (the contract that makes it sound is stated once, on [`MappedFile`]), a cache prefetch
//! hint for the pixels of a mapped file, and the typed view of an anonymous map
//! (`AnonArray`, large arrays filled once).

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use memmap2::{Mmap, MmapMut, MmapOptions};

use crate::error::{Error, Result};

/// How [`MappedFile::open`] brings a file's bytes into memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LoadMode {
    /// Map the file read-only into the address space (the default). Nothing is copied: the
    /// pages are the operating system's page cache, shared by every process that reads the
    /// file, and they are faulted in up front (`MAP_POPULATE` on Linux) so that the first
    /// training epoch does not pay for page faults. Subject to the memory-map contract on
    /// [`MappedFile`]. An empty file cannot be mapped and is read instead.
    #[default]
    Mmap,
    /// Read the whole file into an owned buffer. Costs a copy and the memory for it, and is
    /// immune to later changes of the file: the choice when the memory-map contract cannot be
    /// promised (a file on a network share that others write, say). The `train` binary's
    /// `--no-mmap` flag.
    Read,
}

/// The whole contents of one file, opened read-only: either a read-only memory map or an
/// owned buffer (see [`LoadMode`]).
///
/// # Safety: the memory-map contract
///
/// A memory map is not a copy: its bytes are the file's bytes, read through the page cache
/// each time they are touched. If anyone (this process or another) modifies the file while it
/// is mapped, the bytes behind the `&[u8]` that [`bytes`](MappedFile::bytes) hands out change
/// underneath it, which breaks Rust's guarantee that borrowed data does not change (undefined
/// behaviour); if the file is truncated, touching the lost pages kills the process with
/// `SIGBUS`. This is why mapping a file is `unsafe` in memmap2, and no library can rule it out.
///
/// simdnet therefore relies on this contract: **a file opened with [`LoadMode::Mmap`] is not
/// modified or truncated by anyone for as long as the `MappedFile` (or any dataset made from
/// it) is alive.** Data sets such as MNIST are written once and then only read, so the
/// contract holds in practice; the files are opened read-only and never written through the
/// map. Where it cannot be promised, use [`LoadMode::Read`], which copies the file once and
/// has no such requirement. (Replacing the file by renaming a new one over it is fine: the map
/// keeps the old file's contents alive.)
pub struct MappedFile {
    path: PathBuf,
    bytes: Bytes,
}

/// Where the bytes live.
enum Bytes {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl MappedFile {
    /// Opens `path` read-only and maps or reads all of it, as `mode` says.
    ///
    /// Fails with [`Error::Io`] (naming the path and what failed) if the file cannot be
    /// opened, is not a regular file, or cannot be mapped or read.
    pub fn open(path: impl AsRef<Path>, mode: LoadMode) -> Result<MappedFile> {
        let path = path.as_ref();
        let mut file = File::open(path).map_err(|e| Error::io(path, "open", &e))?;
        let meta = file
            .metadata()
            .map_err(|e| Error::io(path, "read the metadata of", &e))?;
        if !meta.is_file() {
            let (kind, message) = if meta.is_dir() {
                (io::ErrorKind::IsADirectory, "it is a directory")
            } else {
                (io::ErrorKind::InvalidInput, "it is not a regular file")
            };
            return Err(Error::Io {
                path: path.to_path_buf(),
                operation: "load",
                kind,
                message: message.to_string(),
            });
        }
        let bytes = match mode {
            // Mapping zero bytes is an error on every platform; an empty read costs nothing.
            LoadMode::Mmap if meta.len() > 0 => {
                // SAFETY: `MmapOptions::map` is unsafe only because the mapped file could be
                // modified or truncated while the map is alive. That is excluded by the
                // memory-map contract documented on `MappedFile` (the one place it is stated),
                // which every user of `LoadMode::Mmap` relies on; `LoadMode::Read` is the
                // alternative that needs no contract. The file is opened read-only and the map
                // is never written through (`Mmap` only hands out `&[u8]`).
                let map = unsafe { MmapOptions::new().populate().map(&file) }
                    .map_err(|e| Error::io(path, "memory-map", &e))?;
                Bytes::Mapped(map)
            }
            LoadMode::Mmap | LoadMode::Read => {
                let mut buf = Vec::new();
                // The size is only a hint (the file may change size before the read ends), but
                // an impossible one becomes an error rather than an allocation abort.
                let hint = usize::try_from(meta.len()).unwrap_or(usize::MAX);
                buf.try_reserve_exact(hint).map_err(|e| Error::Io {
                    path: path.to_path_buf(),
                    operation: "read",
                    kind: io::ErrorKind::OutOfMemory,
                    message: format!("cannot allocate {} bytes: {e}", meta.len()),
                })?;
                file.read_to_end(&mut buf)
                    .map_err(|e| Error::io(path, "read", &e))?;
                Bytes::Owned(buf)
            }
        };
        Ok(MappedFile {
            path: path.to_path_buf(),
            bytes,
        })
    }

    /// The file's contents.
    pub fn bytes(&self) -> &[u8] {
        match &self.bytes {
            Bytes::Mapped(map) => map,
            Bytes::Owned(buf) => buf,
        }
    }

    /// The path the file was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the bytes are memory-mapped (false after [`LoadMode::Read`], and for an empty
    /// file, which is never mapped).
    pub fn is_mapped(&self) -> bool {
        matches!(self.bytes, Bytes::Mapped(_))
    }
}

impl fmt::Debug for MappedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MappedFile")
            .field("path", &self.path)
            .field("len", &self.bytes().len())
            .field("mapped", &self.is_mapped())
            .finish()
    }
}

/// Asks the CPU to start loading `items` into its caches (every 64-byte line they touch) and
/// returns at once; a no-op except on x86-64. A gather in shuffled order otherwise waits on
/// memory at the start of every image.
#[inline]
pub(crate) fn prefetch<T>(items: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        /// Cache line size of every x86-64 CPU in use.
        const LINE: usize = 64;
        let Some(last) = std::mem::size_of_val(items).checked_sub(1) else {
            return;
        };
        let bytes = items.as_ptr().cast::<u8>();
        // Every LINE bytes, plus the last byte, whose line the stride can miss.
        for offset in (0..last).step_by(LINE).chain([last]) {
            // SAFETY: `_mm_prefetch` needs SSE, which is part of the x86-64 baseline (every
            // x86-64 CPU has it, and the target enables it). A prefetch is a hint: it never
            // faults and changes no state visible to the program, whatever the address; this
            // one is inside `items` anyway.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(bytes.wrapping_add(offset).cast()) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = items;
}

/// Element types of an [`AnonArray`]: plain 4-byte numbers, for which every bit pattern
/// (the zeros of a fresh map among them) is a valid value. Sealed: only `u32` and `f32`.
pub(crate) trait Plain: Copy + sealed::Sealed {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for u32 {}
    impl Sealed for f32 {}
}

impl Plain for u32 {}
impl Plain for f32 {}

/// An array of fixed capacity, filled once by appending, in anonymous memory that asks for
/// transparent huge pages (`MADV_HUGEPAGE` on Linux).
///
/// For arrays of tens of megabytes written once, such as the listed nonzero inputs of a
/// training set: in 4 KiB pages each page is a fault on first touch, and on the development
/// machine's virtual CPUs the 15,000 faults of 60 MB took about 70 ms, most of the listing's
/// time; in 2 MiB pages they are 30. Capacity that is never reached is address space only.
/// Where a map cannot be made, the array is an ordinary `Vec`.
pub(crate) struct AnonArray<T: Plain> {
    storage: Storage<T>,
}

enum Storage<T> {
    /// `len` values at the start of `map`, which has room for `capacity` of them.
    Mapped {
        map: MmapMut,
        len: usize,
        capacity: usize,
    },
    Heap(Vec<T>),
}

impl<T: Plain> AnonArray<T> {
    /// An empty array with room for `capacity` values.
    pub(crate) fn with_capacity(capacity: usize) -> AnonArray<T> {
        let bytes = capacity.checked_mul(size_of::<T>()).filter(|&b| b > 0);
        let map = bytes.and_then(|bytes| MmapMut::map_anon(bytes).ok());
        let storage = match map {
            Some(map) => {
                // A hint: without it, 4 KiB pages. (Miri maps memory but has no `madvise`.)
                #[cfg(all(target_os = "linux", not(miri)))]
                let _ = map.advise(memmap2::Advice::HugePage);
                Storage::Mapped {
                    map,
                    len: 0,
                    capacity,
                }
            }
            None => Storage::Heap(Vec::with_capacity(capacity)),
        };
        AnonArray { storage }
    }

    /// Appends `values`; `false` (and nothing appended) if they do not fit the capacity.
    pub(crate) fn extend_from_slice(&mut self, values: &[T]) -> bool {
        match &mut self.storage {
            Storage::Mapped { map, len, capacity } => {
                let Some(end) = len.checked_add(values.len()).filter(|&e| e <= *capacity) else {
                    return false;
                };
                // SAFETY: the map is page-aligned, so aligned for `T` (4 bytes), and holds
                // `capacity * size_of::<T>()` bytes (its length at creation), which the
                // slice covers exactly; every bit pattern is a `T` (`Plain`), and the map is
                // borrowed mutably for the slice's life, so nothing else reads or writes it.
                let all = unsafe {
                    std::slice::from_raw_parts_mut(map.as_mut_ptr().cast::<T>(), *capacity)
                };
                all[*len..end].copy_from_slice(values);
                *len = end;
                true
            }
            Storage::Heap(vec) => {
                if vec.capacity() - vec.len() < values.len() {
                    return false;
                }
                vec.extend_from_slice(values);
                true
            }
        }
    }

    /// The number of values there is room for.
    pub(crate) fn capacity(&self) -> usize {
        match &self.storage {
            Storage::Mapped { capacity, .. } => *capacity,
            Storage::Heap(vec) => vec.capacity(),
        }
    }

    /// The values appended so far.
    pub(crate) fn as_slice(&self) -> &[T] {
        match &self.storage {
            // SAFETY: as in `extend_from_slice`: aligned, within the map (`len <= capacity`),
            // every bit pattern a `T`; the map is borrowed shared for the slice's life.
            Storage::Mapped { map, len, .. } => unsafe {
                std::slice::from_raw_parts(map.as_ptr().cast::<T>(), *len)
            },
            Storage::Heap(vec) => vec,
        }
    }
}

impl<T: Plain> std::ops::Deref for AnonArray<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T: Plain + fmt::Debug> fmt::Debug for AnonArray<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnonArray")
            .field("len", &self.len())
            .field("mapped", &matches!(self.storage, Storage::Mapped { .. }))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODES: [LoadMode; 2] = [LoadMode::Mmap, LoadMode::Read];

    #[test]
    fn both_modes_give_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let content: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        for mode in MODES {
            let file = MappedFile::open(&path, mode).unwrap();
            assert_eq!(file.bytes(), &content[..]);
            assert_eq!(file.path(), path);
            assert_eq!(file.is_mapped(), mode == LoadMode::Mmap);
            let debug = format!("{file:?}");
            assert!(debug.contains("len: 10000"), "{debug}");
        }
        assert_eq!(LoadMode::default(), LoadMode::Mmap);
    }

    #[test]
    fn empty_file_is_read_not_mapped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty");
        std::fs::write(&path, b"").unwrap();
        for mode in MODES {
            let file = MappedFile::open(&path, mode).unwrap();
            assert!(file.bytes().is_empty());
            assert!(!file.is_mapped());
        }
    }

    #[test]
    fn missing_file_and_directory() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        for mode in MODES {
            let err = MappedFile::open(&missing, mode).unwrap_err();
            let Error::Io {
                path,
                operation,
                kind,
                ..
            } = &err
            else {
                panic!("{err:?}")
            };
            assert_eq!(
                (path, *operation, *kind),
                (&missing, "open", io::ErrorKind::NotFound)
            );
            assert!(err.to_string().starts_with("cannot open "), "{err}");

            let err = MappedFile::open(dir.path(), mode).unwrap_err();
            assert!(
                matches!(
                    &err,
                    Error::Io {
                        kind: io::ErrorKind::IsADirectory,
                        ..
                    }
                ),
                "{err:?}"
            );
            assert!(err.to_string().contains("it is a directory"), "{err}");
        }
    }
}
