//! A pure parser of the IDX format (LeCun's MNIST container), over `&[u8]`.
//!
//! An IDX file is a header followed by a dense, row-major array:
//!
//! ```text
//! offset  size   content
//! 0       2      0x00 0x00                 (magic: two zero bytes)
//! 2       1      element type code          (0x08 = unsigned byte; the only one accepted)
//! 3       1      number of dimensions r     (1 ..= 4 here: 1 for labels, 3 for images)
//! 4       4 * r  the dimensions, each a big-endian u32
//! 4 + 4r  ...    product(dimensions) elements
//! ```
//!
//! [`IdxView::parse`] checks all of it, including that the file is *exactly* as long as the
//! header says, and returns the dimensions with the payload as a borrowed `&[u8]` (no copy).
//! It has no `unsafe`, allocates nothing, and never panics, whatever the input: it is meant to
//! be a fuzz target. Errors are [`IdxProblem`]s, which carry no path; the callers that know
//! the path wrap them in [`Error::Idx`](crate::Error::Idx).

use std::fmt;

/// The largest number of dimensions [`IdxView::parse`] accepts.
pub const MAX_DIMS: usize = 4;

/// The IDX type code of unsigned bytes, the only element type supported.
pub const TYPE_U8: u8 = 0x08;

/// The dimensions of an IDX array (1 to [`MAX_DIMS`] of them), stored inline.
///
/// Displays as the dimensions joined by `x`, e.g. `60000x28x28`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shape {
    rank: u8,
    dims: [u32; MAX_DIMS],
}

impl Shape {
    /// A shape with the given dimensions, or `None` unless there are 1 to [`MAX_DIMS`].
    pub fn new(dims: &[u32]) -> Option<Shape> {
        if dims.is_empty() || dims.len() > MAX_DIMS {
            return None;
        }
        let mut shape = Shape {
            rank: dims.len() as u8,
            dims: [0; MAX_DIMS],
        };
        shape.dims[..dims.len()].copy_from_slice(dims);
        Some(shape)
    }

    /// The dimensions, outermost (the item count) first.
    pub fn dims(&self) -> &[u32] {
        &self.dims[..usize::from(self.rank)]
    }

    /// The number of dimensions.
    pub fn rank(&self) -> usize {
        usize::from(self.rank)
    }

    /// The length of the IDX header that declares this shape: 4 bytes of magic plus 4 per
    /// dimension.
    pub fn header_len(&self) -> usize {
        4 + 4 * self.rank()
    }

    /// The number of elements (the product of the dimensions), or `None` if it overflows
    /// `usize`.
    pub fn element_count(&self) -> Option<usize> {
        self.dims()
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(usize::try_from(d).ok()?))
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.dims().iter().enumerate() {
            if i > 0 {
                f.write_str("x")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Shape({self})")
    }
}

/// What is wrong with the bytes of an IDX file. [`Error::Idx`](crate::Error::Idx) pairs one
/// with the file's path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdxProblem {
    /// The file has no bytes at all.
    #[error("empty file: an IDX file has at least a 4-byte magic number")]
    Empty,
    /// The file ends inside the header.
    #[error("truncated IDX header: the header needs {needed} bytes, the file has {actual}")]
    HeaderTruncated {
        /// The bytes the header needs (as far as it could be read).
        needed: usize,
        /// The length of the file.
        actual: usize,
    },
    /// The first two bytes are not zero, so this is not an IDX file.
    #[error(
        "not an IDX file: it starts with bytes {:02x} {:02x} {:02x} {:02x}, but an IDX file starts with 00 00{}",
        .magic[0], .magic[1], .magic[2], .magic[3], gzip_hint(.magic)
    )]
    BadMagic {
        /// The first four bytes of the file.
        magic: [u8; 4],
    },
    /// The element type is a valid IDX type, or an unknown one, but not unsigned bytes.
    #[error(
        "unsupported IDX element type 0x{code:02x} ({}): only 0x08 (unsigned byte) is supported",
        type_name(*.code)
    )]
    UnsupportedType {
        /// The type code found in byte 2 of the header.
        code: u8,
    },
    /// The header declares no dimensions, or more than [`MAX_DIMS`].
    #[error("the IDX header declares {found} dimensions; 1 to 4 are supported")]
    DimensionCount {
        /// The dimension count found in byte 3 of the header.
        found: u8,
    },
    /// The header is valid IDX, but not the number of dimensions this file must have
    /// (1 for a label file, 3 for an image file).
    #[error(
        "expected an IDX file with {expected} dimension(s) ({}), but the header declares {found} ({shape})",
        layout(*.expected)
    )]
    UnexpectedDimensions {
        /// The number of dimensions required.
        expected: usize,
        /// The number of dimensions found.
        found: usize,
        /// The shape the header declares.
        shape: Shape,
    },
    /// An image file whose images have no pixels (zero rows or zero columns).
    #[error("the IDX header declares images of {rows}x{cols} pixels, which are empty")]
    EmptyImages {
        /// Rows per image.
        rows: u32,
        /// Columns per image.
        cols: u32,
    },
    /// The product of the dimensions does not fit in memory (`usize`).
    #[error("the IDX header declares {shape} elements, which overflows the address space")]
    SizeOverflow {
        /// The shape the header declares.
        shape: Shape,
    },
    /// The file is shorter than the header says.
    #[error(
        "truncated IDX file: header says {shape} = {expected} bytes with the {header}-byte header, file has {actual} bytes",
        header = .shape.header_len()
    )]
    Truncated {
        /// The shape the header declares.
        shape: Shape,
        /// The length the file should have, header included.
        expected: usize,
        /// The length it has.
        actual: usize,
    },
    /// The file is longer than the header says.
    #[error(
        "IDX file has {extra} trailing bytes: header says {shape} = {expected} bytes with the {header}-byte header, file has {actual} bytes",
        extra = .actual - .expected,
        header = .shape.header_len()
    )]
    TrailingBytes {
        /// The shape the header declares.
        shape: Shape,
        /// The length the file should have, header included.
        expected: usize,
        /// The length it has.
        actual: usize,
    },
}

/// The name of an IDX element type code, for messages.
fn type_name(code: u8) -> &'static str {
    match code {
        0x08 => "unsigned byte",
        0x09 => "signed byte",
        0x0B => "16-bit integer",
        0x0C => "32-bit integer",
        0x0D => "32-bit float",
        0x0E => "64-bit float",
        _ => "not an IDX type",
    }
}

/// What the dimensions of a file with `rank` dimensions mean, for messages.
fn layout(rank: usize) -> &'static str {
    match rank {
        1 => "a label file: count",
        3 => "an image file: count x rows x cols",
        _ => "count x ...",
    }
}

/// A hint for the most common bad magic: a file that is still gzip-compressed.
fn gzip_hint(magic: &[u8; 4]) -> &'static str {
    if magic[..2] == [0x1f, 0x8b] {
        " (this looks like a gzip file: decompress it first, e.g. with gunzip)"
    } else {
        ""
    }
}

/// A validated IDX file: its shape and its payload, borrowed from the file's bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct IdxView<'a> {
    shape: Shape,
    data: &'a [u8],
}

impl<'a> IdxView<'a> {
    /// Parses and validates a whole IDX file of unsigned bytes.
    ///
    /// Checks, in order: the magic (two zero bytes), the element type (0x08 only), the number
    /// of dimensions (1 to [`MAX_DIMS`]), that the header is complete, that the number of
    /// elements fits in `usize`, and that the file is exactly header + elements long. Never
    /// panics.
    pub fn parse(bytes: &'a [u8]) -> Result<IdxView<'a>, IdxProblem> {
        let Some(&[m0, m1, code, rank]) = bytes.first_chunk::<4>() else {
            return Err(if bytes.is_empty() {
                IdxProblem::Empty
            } else {
                IdxProblem::HeaderTruncated {
                    needed: 4,
                    actual: bytes.len(),
                }
            });
        };
        if m0 != 0 || m1 != 0 {
            return Err(IdxProblem::BadMagic {
                magic: [m0, m1, code, rank],
            });
        }
        if code != TYPE_U8 {
            return Err(IdxProblem::UnsupportedType { code });
        }
        if rank == 0 || usize::from(rank) > MAX_DIMS {
            return Err(IdxProblem::DimensionCount { found: rank });
        }
        let rank = usize::from(rank);
        let header_len = 4 + 4 * rank;
        let Some(dim_bytes) = bytes.get(4..header_len) else {
            return Err(IdxProblem::HeaderTruncated {
                needed: header_len,
                actual: bytes.len(),
            });
        };
        let mut dims = [0u32; MAX_DIMS];
        for (dim, &be) in dims.iter_mut().zip(dim_bytes.as_chunks::<4>().0) {
            *dim = u32::from_be_bytes(be);
        }
        let shape = Shape {
            rank: rank as u8,
            dims,
        };
        let Some(expected) = shape
            .element_count()
            .and_then(|n| n.checked_add(header_len))
        else {
            return Err(IdxProblem::SizeOverflow { shape });
        };
        let actual = bytes.len();
        if actual < expected {
            return Err(IdxProblem::Truncated {
                shape,
                expected,
                actual,
            });
        }
        if actual > expected {
            return Err(IdxProblem::TrailingBytes {
                shape,
                expected,
                actual,
            });
        }
        Ok(IdxView {
            shape,
            data: &bytes[header_len..],
        })
    }

    /// The shape the header declares.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// The dimensions, outermost (the item count) first.
    pub fn dims(&self) -> &[u32] {
        self.shape.dims()
    }

    /// The length of the header; the payload starts at this offset in the file.
    pub fn header_len(&self) -> usize {
        self.shape.header_len()
    }

    /// The payload: every element, row-major, exactly `product(dims)` bytes.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Checks that the file has exactly `rank` dimensions.
    pub fn expect_rank(&self, rank: usize) -> Result<(), IdxProblem> {
        if self.shape.rank() == rank {
            Ok(())
        } else {
            Err(IdxProblem::UnexpectedDimensions {
                expected: rank,
                found: self.shape.rank(),
                shape: self.shape,
            })
        }
    }
}

impl fmt::Debug for IdxView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdxView")
            .field("shape", &self.shape)
            .field("data_len", &self.data.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An IDX file with the given type code, dimensions and payload.
    fn idx(code: u8, dims: &[u32], payload: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0, 0, code, dims.len() as u8];
        for d in dims {
            bytes.extend_from_slice(&d.to_be_bytes());
        }
        bytes.extend_from_slice(payload);
        bytes
    }

    fn shape(dims: &[u32]) -> Shape {
        Shape::new(dims).unwrap()
    }

    #[test]
    fn parses_labels_and_images() {
        let labels = idx(0x08, &[3], &[5, 0, 4]);
        let view = IdxView::parse(&labels).unwrap();
        assert_eq!(view.dims(), &[3]);
        assert_eq!(view.header_len(), 8);
        assert_eq!(view.data(), &[5, 0, 4]);
        view.expect_rank(1).unwrap();

        let pixels: Vec<u8> = (0..2 * 3 * 4).map(|i| i as u8).collect();
        let images = idx(0x08, &[2, 3, 4], &pixels);
        let view = IdxView::parse(&images).unwrap();
        assert_eq!(view.dims(), &[2, 3, 4]);
        assert_eq!(view.shape().to_string(), "2x3x4");
        assert_eq!(view.header_len(), 16);
        assert_eq!(view.data(), &pixels[..]);
        assert_eq!(
            view.expect_rank(1),
            Err(IdxProblem::UnexpectedDimensions {
                expected: 1,
                found: 3,
                shape: shape(&[2, 3, 4])
            })
        );
    }

    #[test]
    fn zero_items_and_four_dimensions_are_valid() {
        let bytes = idx(0x08, &[0, 28, 28], &[]);
        let view = IdxView::parse(&bytes).unwrap();
        assert_eq!(view.dims(), &[0, 28, 28]);
        assert!(view.data().is_empty());
        let bytes = idx(0x08, &[1, 2, 1, 2], &[1, 2, 3, 4]);
        let view = IdxView::parse(&bytes).unwrap();
        assert_eq!(view.data(), &[1, 2, 3, 4]);
    }

    #[test]
    fn empty_and_short_headers() {
        assert_eq!(IdxView::parse(&[]), Err(IdxProblem::Empty));
        assert_eq!(
            IdxView::parse(&[0, 0, 8]),
            Err(IdxProblem::HeaderTruncated {
                needed: 4,
                actual: 3
            })
        );
        // Three dimensions declared, only two present.
        assert_eq!(
            IdxView::parse(&[0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 2]),
            Err(IdxProblem::HeaderTruncated {
                needed: 16,
                actual: 12
            })
        );
    }

    #[test]
    fn bad_magic_and_gzip_hint() {
        let err = IdxView::parse(&[0, 1, 8, 1, 0, 0, 0, 0]).unwrap_err();
        assert_eq!(
            err,
            IdxProblem::BadMagic {
                magic: [0, 1, 8, 1]
            }
        );
        assert!(!err.to_string().contains("gzip"), "{err}");
        let err = IdxView::parse(&[0x1f, 0x8b, 8, 8, 0, 0, 0, 0]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("1f 8b 08 08") && msg.contains("gzip"), "{msg}");
    }

    #[test]
    fn unsupported_types_are_named() {
        for (code, name) in [
            (0x09, "signed byte"),
            (0x0B, "16-bit integer"),
            (0x0C, "32-bit integer"),
            (0x0D, "32-bit float"),
            (0x0E, "64-bit float"),
            (0x42, "not an IDX type"),
        ] {
            let err = IdxView::parse(&idx(code, &[1], &[0; 4])).unwrap_err();
            assert_eq!(err, IdxProblem::UnsupportedType { code });
            let msg = err.to_string();
            assert!(
                msg.contains(&format!("0x{code:02x}")) && msg.contains(name),
                "{msg}"
            );
        }
    }

    #[test]
    fn dimension_counts() {
        assert_eq!(
            IdxView::parse(&[0, 0, 8, 0]),
            Err(IdxProblem::DimensionCount { found: 0 })
        );
        assert_eq!(
            IdxView::parse(&idx(0x08, &[1, 1, 1, 1, 1], &[0])),
            Err(IdxProblem::DimensionCount { found: 5 })
        );
    }

    #[test]
    fn truncated_and_trailing() {
        let err = IdxView::parse(&idx(0x08, &[60000, 28, 28], &[0; 984])).unwrap_err();
        assert_eq!(
            err,
            IdxProblem::Truncated {
                shape: shape(&[60000, 28, 28]),
                expected: 47_040_016,
                actual: 1000
            }
        );
        assert_eq!(
            err.to_string(),
            "truncated IDX file: header says 60000x28x28 = 47040016 bytes with the 16-byte \
             header, file has 1000 bytes"
        );
        let err = IdxView::parse(&idx(0x08, &[2], &[1, 2, 3])).unwrap_err();
        assert_eq!(
            err,
            IdxProblem::TrailingBytes {
                shape: shape(&[2]),
                expected: 10,
                actual: 11
            }
        );
        assert!(err.to_string().starts_with("IDX file has 1 trailing bytes"));
    }

    #[test]
    fn overflowing_sizes() {
        let err = IdxView::parse(&idx(0x08, &[u32::MAX; 4], &[])).unwrap_err();
        assert_eq!(
            err,
            IdxProblem::SizeOverflow {
                shape: shape(&[u32::MAX; 4])
            }
        );
        // The largest product with the header added must not overflow either.
        if usize::BITS == 32 {
            let err = IdxView::parse(&idx(0x08, &[u32::MAX], &[])).unwrap_err();
            assert!(matches!(err, IdxProblem::SizeOverflow { .. }));
        } else {
            let err = IdxView::parse(&idx(0x08, &[u32::MAX, u32::MAX], &[])).unwrap_err();
            assert!(matches!(err, IdxProblem::Truncated { .. }));
        }
    }

    #[test]
    fn shape_constructor() {
        assert_eq!(Shape::new(&[]), None);
        assert_eq!(Shape::new(&[1; 5]), None);
        let s = shape(&[7, 2]);
        assert_eq!(
            (s.rank(), s.header_len(), s.element_count()),
            (2, 12, Some(14))
        );
        assert_eq!(format!("{s:?}"), "Shape(7x2)");
    }

    /// Every input of up to 8 bytes (a whole 1-dimensional header) drawn from a small
    /// alphabet of interesting bytes.
    #[test]
    fn never_panics_on_short_inputs() {
        const ALPHABET: [u8; 6] = [0, 1, 2, 8, 0x0D, 0xff];
        let mut buf = Vec::new();
        for len in 0..=8u32 {
            for mut code in 0..ALPHABET.len().pow(len) {
                buf.clear();
                for _ in 0..len {
                    buf.push(ALPHABET[code % ALPHABET.len()]);
                    code /= ALPHABET.len();
                }
                let _ = IdxView::parse(&buf);
            }
        }
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = IdxView::parse(&bytes);
        }

        /// A valid header with a payload that is too short, exact or too long: parse succeeds
        /// exactly when the length is right, and reports the right lengths otherwise.
        #[test]
        fn length_is_checked_exactly(
            dims in proptest::collection::vec(0u32..5, 1..=4),
            delta in -3i64..=3,
        ) {
            let count: usize = dims.iter().map(|&d| d as usize).product();
            let len = (count as i64 + delta).max(0) as usize;
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let bytes = idx(0x08, &dims, &payload);
            let expected = 4 + 4 * dims.len() + count;
            let shape = shape(&dims);
            match IdxView::parse(&bytes) {
                Ok(view) => {
                    prop_assert_eq!(len, count);
                    prop_assert_eq!(view.dims(), &dims[..]);
                    prop_assert_eq!(view.data(), &payload[..]);
                }
                Err(IdxProblem::Truncated { shape: s, expected: e, actual }) => {
                    prop_assert!(len < count);
                    prop_assert_eq!((s, e, actual), (shape, expected, bytes.len()));
                }
                Err(IdxProblem::TrailingBytes { shape: s, expected: e, actual }) => {
                    prop_assert!(len > count);
                    prop_assert_eq!((s, e, actual), (shape, expected, bytes.len()));
                }
                Err(other) => prop_assert!(false, "unexpected {other:?}"),
            }
        }
    }
}
