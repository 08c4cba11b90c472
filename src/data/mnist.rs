//! MNIST (or any pair of IDX image and label files) as cheap, shareable dataset views.
//!
//! [`Mnist::open`] reads a directory holding the four standard files and splits them the way
//! network2.py's `mnist_loader` does: training = the first `N - v` images of the training
//! file, validation = its last `v` (`v` = [`MnistOptions::validation_size`], 10,000 by
//! default, so 50,000 / 10,000 on MNIST's 60,000), test = the t10k files. The pixels stay
//! `u8`, where the file put them (memory-mapped by default); they become `f32` only when a
//! mini-batch is gathered ([`crate::data::batch`]).

use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

#[cfg(feature = "download")]
pub use crate::data::download::{DownloadOptions, download};
use crate::data::gz;
use crate::data::idx::{IdxProblem, IdxView};
use crate::data::mmap::{LoadMode, MappedFile};
use crate::error::{Error, Result};

/// The training images, 60,000 of 28x28 in MNIST.
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
/// The training labels.
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
/// The test images, 10,000 of 28x28 in MNIST.
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
/// The test labels.
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// How to open an MNIST directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MnistOptions {
    /// How many images at the end of the training file form the validation set (network2's
    /// loader: 10,000). At most the number of images in the training file.
    pub validation_size: usize,
    /// How to load the files.
    pub load: LoadMode,
}

impl Default for MnistOptions {
    /// network2's split (10,000 validation images), memory-mapped.
    fn default() -> Self {
        MnistOptions {
            validation_size: 10_000,
            load: LoadMode::Mmap,
        }
    }
}

/// The three datasets of an MNIST directory.
#[derive(Clone, Debug)]
pub struct Mnist {
    training: Dataset,
    validation: Dataset,
    test: Dataset,
}

impl Mnist {
    /// Opens the four standard files in `dir` (see [`TRAIN_IMAGES`] and the other constants)
    /// and splits them as network2's loader does (see the module docs).
    ///
    /// A file that is there only gzip-compressed (`NAME.gz`, as MNIST is distributed) is
    /// decompressed once into `NAME` beside it, or into the cache directory where `dir` is
    /// read-only (see [`crate::data::gz`]), and that copy is mapped.
    ///
    /// Images may have any size (rows x cols from the header). Labels are not checked against
    /// a number of classes here, since the network decides that: call
    /// [`Dataset::check_labels`].
    ///
    /// # Errors
    ///
    /// [`Error::MissingDirectory`], [`Error::MissingData`] (naming the file),
    /// [`Error::Io`], [`Error::Idx`] (bad magic, element type, dimensions or length),
    /// [`Error::CountMismatch`] between an image file and its label file, and
    /// [`Error::BadOption`] if the validation size exceeds the training file.
    pub fn open(dir: impl AsRef<Path>, options: &MnistOptions) -> Result<Mnist> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            // A path that exists but is not a directory gets the io error that says so.
            return Err(match std::fs::metadata(dir) {
                Ok(_) => Error::Io {
                    path: dir.to_path_buf(),
                    operation: "open the data directory",
                    kind: std::io::ErrorKind::NotADirectory,
                    message: "it is not a directory".to_string(),
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Error::MissingDirectory {
                    dir: dir.to_path_buf(),
                },
                Err(e) => Error::io(dir, "open the data directory", &e),
            });
        }
        let open = |file: &str| open_in(dir, file, options.load);
        let train = Dataset::from_files(open(TRAIN_IMAGES)?, open(TRAIN_LABELS)?)?;
        let test = Dataset::from_files(open(TEST_IMAGES)?, open(TEST_LABELS)?)?;

        let n = train.len();
        let v = options.validation_size;
        if v > n {
            return Err(Error::BadOption {
                option: "validation size",
                problem: format!(
                    "{v} is more than the {n} images in {}",
                    train.images_path().display()
                ),
            });
        }
        Ok(Mnist {
            training: train.slice(0..n - v),
            validation: train.slice(n - v..n),
            test,
        })
    }

    /// The training set: the first `N - validation_size` images of the training file.
    pub fn training(&self) -> &Dataset {
        &self.training
    }

    /// The validation set: the last `validation_size` images of the training file.
    pub fn validation(&self) -> &Dataset {
        &self.validation
    }

    /// The test set: all of the t10k files.
    pub fn test(&self) -> &Dataset {
        &self.test
    }

    /// Checks every dataset's labels against the number of classes of the output layer (see
    /// [`Dataset::check_labels`]).
    pub fn check_labels(&self, classes: usize) -> Result<()> {
        self.training.check_labels(classes)?;
        self.validation.check_labels(classes)?;
        self.test.check_labels(classes)
    }
}

/// Opens `dir/file`, or its decompressed copy when only `dir/file.gz` is there (see
/// [`crate::data::gz`]), turning "neither is there" into [`Error::MissingData`].
fn open_in(dir: &Path, file: &str, load: LoadMode) -> Result<MappedFile> {
    let missing = || Error::MissingData {
        dir: dir.to_path_buf(),
        file: file.to_string(),
    };
    let path = match gz::resolve(dir, file, gz::cache_dir().as_deref())? {
        Some(resolved) => resolved.path().to_path_buf(),
        None => return Err(missing()),
    };
    match MappedFile::open(path, load) {
        // Removed between the check and the open.
        Err(Error::Io {
            kind: std::io::ErrorKind::NotFound,
            ..
        }) => Err(missing()),
        other => other,
    }
}

/// A validated IDX image file.
#[derive(Debug)]
struct ImageFile {
    file: MappedFile,
    /// Where the pixels start in the file.
    offset: usize,
    count: usize,
    rows: usize,
    cols: usize,
}

/// A validated IDX label file.
#[derive(Debug)]
struct LabelFile {
    file: MappedFile,
    /// Where the labels start in the file.
    offset: usize,
}

/// A range of images with their labels: a cheap view (two `Arc`s and a range) into an image
/// file and a label file, so cloning and slicing copy nothing. `Send + Sync`.
///
/// Images are `rows x cols` bytes, row-major, one byte per pixel (0 = background).
#[derive(Clone)]
pub struct Dataset {
    images: Arc<ImageFile>,
    labels: Arc<LabelFile>,
    /// The view: items `range` of both files.
    range: Range<usize>,
}

impl Dataset {
    /// Opens any pair of IDX files as one dataset: an image file (3 dimensions: count x rows x
    /// cols, unsigned bytes) and a label file (1 dimension, unsigned bytes) with as many
    /// items.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] (which includes files not found), [`Error::Idx`] and
    /// [`Error::CountMismatch`].
    pub fn open(
        images: impl AsRef<Path>,
        labels: impl AsRef<Path>,
        load: LoadMode,
    ) -> Result<Dataset> {
        Dataset::from_files(
            MappedFile::open(images, load)?,
            MappedFile::open(labels, load)?,
        )
    }

    /// Validates an image file and a label file and views all of both.
    fn from_files(images: MappedFile, labels: MappedFile) -> Result<Dataset> {
        let idx_error = |file: &MappedFile, problem: IdxProblem| Error::Idx {
            path: file.path().to_path_buf(),
            problem,
        };

        let view = IdxView::parse(images.bytes()).map_err(|p| idx_error(&images, p))?;
        let &[count, rows, cols] = view.dims() else {
            return Err(idx_error(
                &images,
                IdxProblem::UnexpectedDimensions {
                    expected: 3,
                    found: view.shape().rank(),
                    shape: view.shape(),
                },
            ));
        };
        if rows == 0 || cols == 0 {
            return Err(idx_error(&images, IdxProblem::EmptyImages { rows, cols }));
        }
        // With no images the parser's size check says nothing about rows * cols.
        let (count, rows, cols) = (count as usize, rows as usize, cols as usize);
        if rows.checked_mul(cols).is_none() {
            return Err(idx_error(
                &images,
                IdxProblem::SizeOverflow {
                    shape: view.shape(),
                },
            ));
        }
        let offset = view.header_len();

        let view = IdxView::parse(labels.bytes()).map_err(|p| idx_error(&labels, p))?;
        view.expect_rank(1).map_err(|p| idx_error(&labels, p))?;
        let label_offset = view.header_len();
        let label_count = view.data().len();

        if count != label_count {
            return Err(Error::CountMismatch {
                images: images.path().to_path_buf(),
                labels: labels.path().to_path_buf(),
                image_count: count,
                label_count,
            });
        }
        Ok(Dataset {
            images: Arc::new(ImageFile {
                file: images,
                offset,
                count,
                rows,
                cols,
            }),
            labels: Arc::new(LabelFile {
                file: labels,
                offset: label_offset,
            }),
            range: 0..count,
        })
    }

    /// The number of images (and labels).
    pub fn len(&self) -> usize {
        self.range.len()
    }

    /// Whether the dataset has no images.
    pub fn is_empty(&self) -> bool {
        self.range.is_empty()
    }

    /// Rows per image.
    pub fn rows(&self) -> usize {
        self.images.rows
    }

    /// Columns per image.
    pub fn cols(&self) -> usize {
        self.images.cols
    }

    /// Pixels per image, `rows * cols`: the size the network's input layer must have. Never
    /// zero.
    pub fn input_size(&self) -> usize {
        self.images.rows * self.images.cols
    }

    /// Image `i`: `input_size()` bytes, row-major.
    ///
    /// # Panics
    ///
    /// If `i >= self.len()`, like slice indexing.
    pub fn image(&self, i: usize) -> &[u8] {
        let size = self.input_size();
        &self.pixels()[i * size..(i + 1) * size]
    }

    /// Label `i`.
    ///
    /// # Panics
    ///
    /// If `i >= self.len()`, like slice indexing.
    pub fn label(&self, i: usize) -> u8 {
        self.labels()[i]
    }

    /// Every image of the dataset, one after the other: `len() * input_size()` bytes.
    pub fn pixels(&self) -> &[u8] {
        let file = &*self.images;
        let size = self.input_size();
        let start = file.offset + self.range.start * size;
        &file.file.bytes()[start..start + self.len() * size]
    }

    /// Every label of the dataset: `len()` bytes.
    pub fn labels(&self) -> &[u8] {
        let file = &*self.labels;
        let start = file.offset + self.range.start;
        &file.file.bytes()[start..start + self.len()]
    }

    /// Images `range` of this dataset, as a new view of the same files; `None` if the range
    /// is not within `0..len()`.
    pub fn get(&self, range: Range<usize>) -> Option<Dataset> {
        (range.start <= range.end && range.end <= self.len()).then(|| self.slice(range))
    }

    /// [`get`](Dataset::get) for a range known to be valid.
    fn slice(&self, range: Range<usize>) -> Dataset {
        debug_assert!(range.start <= range.end && range.end <= self.len());
        Dataset {
            images: Arc::clone(&self.images),
            labels: Arc::clone(&self.labels),
            range: self.range.start + range.start..self.range.start + range.end,
        }
    }

    /// Which items of the files this dataset views (e.g. `50000..60000` for MNIST's
    /// validation set).
    pub fn file_range(&self) -> Range<usize> {
        self.range.clone()
    }

    /// The image file.
    pub fn images_path(&self) -> &Path {
        self.images.file.path()
    }

    /// The label file.
    pub fn labels_path(&self) -> &Path {
        self.labels.file.path()
    }

    /// Checks that every label is below `classes` (the size of the output layer), so that it
    /// names an output neuron. MNIST's labels are 0 to 9.
    ///
    /// # Errors
    ///
    /// [`Error::LabelOutOfRange`] for the first label that is not, with the label file's path
    /// and the label's index in that file.
    pub fn check_labels(&self, classes: usize) -> Result<()> {
        match self
            .labels()
            .iter()
            .position(|&label| usize::from(label) >= classes)
        {
            None => Ok(()),
            Some(i) => Err(Error::LabelOutOfRange {
                path: self.labels_path().to_path_buf(),
                index: self.range.start + i,
                label: self.labels()[i],
                classes,
            }),
        }
    }

    /// Checks that the images have as many pixels as the network has inputs.
    ///
    /// # Errors
    ///
    /// [`Error::InputSizeMismatch`], naming the image file and both sizes.
    pub fn check_input_size(&self, inputs: usize) -> Result<()> {
        if inputs == self.input_size() {
            Ok(())
        } else {
            Err(Error::InputSizeMismatch {
                path: self.images_path().to_path_buf(),
                rows: self.rows(),
                cols: self.cols(),
                inputs,
            })
        }
    }
}

impl fmt::Debug for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dataset")
            .field("images", &self.images_path())
            .field("labels", &self.labels_path())
            .field("range", &self.range)
            .field("of", &self.images.count)
            .field("rows", &self.rows())
            .field("cols", &self.cols())
            .finish()
    }
}
