//! Owned row-major matrices and strided, borrowed views.
//!
//! A view addresses element `(i, j)` at `offset + i * row_stride + j * col_stride` in the slice
//! it borrows, with strides in elements (not bytes) that may be negative. Row-major,
//! column-major, transposed ([`MatRef::t`]) and padded-leading-dimension layouts are all just
//! strides, so the GEMM reads any of them without a copy. Constructors check once that every
//! element lies inside the slice; mutable views also check that no two elements share an
//! address, which is what makes writing them from several threads sound.

use std::marker::PhantomData;

use crate::error::{Error, Result};

fn invalid(reason: String) -> Error {
    Error::InvalidView { reason }
}

/// Checks that a `rows x cols` view at `offset` with the given strides stays inside a buffer
/// of `len` elements. Returns the offset as `isize`.
fn check_bounds(
    len: usize,
    offset: usize,
    rows: usize,
    cols: usize,
    row_stride: isize,
    col_stride: isize,
) -> Result<()> {
    if rows == 0 || cols == 0 {
        return if offset <= len {
            Ok(())
        } else {
            Err(invalid(format!(
                "offset {offset} is past the end of a buffer of {len} elements"
            )))
        };
    }
    // The extreme addresses are reached at the corners; compute them in i128 so that no
    // combination of usize and isize inputs can overflow.
    let extent = |n: usize, stride: isize| (n as i128 - 1) * stride as i128;
    let (r, c) = (extent(rows, row_stride), extent(cols, col_stride));
    let base = offset as i128;
    let lo = base + r.min(0) + c.min(0);
    let hi = base + r.max(0) + c.max(0);
    if lo < 0 || hi >= len as i128 {
        return Err(invalid(format!(
            "a {rows}x{cols} view at offset {offset} with strides ({row_stride}, {col_stride}) \
             reaches elements {lo}..={hi} of a buffer of {len} elements"
        )));
    }
    Ok(())
}

/// Checks that distinct `(i, j)` of a view map to distinct addresses: with the strides sorted
/// by magnitude, the inner dimension must fit between two steps of the outer one.
fn check_no_overlap(rows: usize, cols: usize, row_stride: isize, col_stride: isize) -> Result<()> {
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    // Sort the two (stride, length) pairs by stride; dimensions of length 1 never step.
    let row = (row_stride.unsigned_abs() as u128, rows as u128);
    let col = (col_stride.unsigned_abs() as u128, cols as u128);
    let overlapping = match (row.1 > 1, col.1 > 1) {
        (false, false) => false,
        (true, false) => row.0 == 0,
        (false, true) => col.0 == 0,
        (true, true) => {
            let ((inner_stride, inner_n), (outer_stride, _)) = if row.0 <= col.0 {
                (row, col)
            } else {
                (col, row)
            };
            inner_stride == 0 || inner_stride * inner_n > outer_stride
        }
    };
    if overlapping {
        return Err(invalid(format!(
            "a mutable {rows}x{cols} view with strides ({row_stride}, {col_stride}) would give \
             several elements the same address"
        )));
    }
    Ok(())
}

fn checked_len(rows: usize, cols: usize) -> Result<usize> {
    rows.checked_mul(cols)
        .ok_or_else(|| invalid(format!("{rows}x{cols} elements overflow usize")))
}

fn check_dense_len(len: usize, rows: usize, cols: usize) -> Result<()> {
    let want = checked_len(rows, cols)?;
    if len != want {
        return Err(invalid(format!(
            "a {rows}x{cols} matrix needs {want} elements, the buffer has {len}"
        )));
    }
    Ok(())
}

/// A borrowed, read-only, strided view of an f32 matrix.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    ptr: *const f32,
    rows: usize,
    cols: usize,
    row_stride: isize,
    col_stride: isize,
    _borrow: PhantomData<&'a [f32]>,
}

// SAFETY: a MatRef is a shared borrow of `[f32]` (the PhantomData records it), so it may be
// sent and shared between threads exactly as `&[f32]` may.
unsafe impl Send for MatRef<'_> {}
// SAFETY: as above; it only ever reads through its pointer.
unsafe impl Sync for MatRef<'_> {}

impl<'a> MatRef<'a> {
    /// A dense row-major view: `data.len()` must equal `rows * cols`.
    pub fn from_row_major(data: &'a [f32], rows: usize, cols: usize) -> Result<Self> {
        check_dense_len(data.len(), rows, cols)?;
        Self::from_strided(data, 0, rows, cols, cols as isize, 1)
    }

    /// A dense column-major view: `data.len()` must equal `rows * cols`.
    pub fn from_col_major(data: &'a [f32], rows: usize, cols: usize) -> Result<Self> {
        check_dense_len(data.len(), rows, cols)?;
        Self::from_strided(data, 0, rows, cols, 1, rows as isize)
    }

    /// A general strided view: element `(i, j)` is `data[offset + i*row_stride + j*col_stride]`.
    /// Fails unless every element lies inside `data`. Strides may be zero (broadcast) or
    /// negative.
    pub fn from_strided(
        data: &'a [f32],
        offset: usize,
        rows: usize,
        cols: usize,
        row_stride: isize,
        col_stride: isize,
    ) -> Result<Self> {
        check_bounds(data.len(), offset, rows, cols, row_stride, col_stride)?;
        Ok(MatRef {
            ptr: data.as_ptr().wrapping_add(offset),
            rows,
            cols,
            row_stride,
            col_stride,
            _borrow: PhantomData,
        })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Distance in elements between `(i, j)` and `(i + 1, j)`.
    pub fn row_stride(&self) -> isize {
        self.row_stride
    }
    /// Distance in elements between `(i, j)` and `(i, j + 1)`.
    pub fn col_stride(&self) -> isize {
        self.col_stride
    }
    /// Pointer to element `(0, 0)`.
    pub fn as_ptr(&self) -> *const f32 {
        self.ptr
    }

    /// The transposed view (swaps shape and strides; no copy).
    pub fn t(self) -> MatRef<'a> {
        MatRef {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    /// Element `(i, j)`.
    ///
    /// # Panics
    ///
    /// If `i >= rows` or `j >= cols`.
    pub fn get(&self, i: usize, j: usize) -> f32 {
        assert!(
            i < self.rows && j < self.cols,
            "index ({i}, {j}) out of a {}x{} view",
            self.rows,
            self.cols
        );
        let at = i as isize * self.row_stride + j as isize * self.col_stride;
        // SAFETY: the constructor checked that every (i, j) inside the shape addresses an
        // element of the borrowed slice, and the assert above keeps (i, j) inside the shape.
        unsafe { *self.ptr.offset(at) }
    }

    /// The view's elements copied into an owned row-major matrix.
    pub fn to_matrix(&self) -> Matrix {
        let mut data = Vec::with_capacity(self.rows * self.cols);
        for i in 0..self.rows {
            data.extend((0..self.cols).map(|j| self.get(i, j)));
        }
        Matrix {
            data,
            rows: self.rows,
            cols: self.cols,
        }
    }
}

/// A borrowed, writable, strided view of an f32 matrix whose elements have distinct addresses.
#[derive(Debug)]
pub struct MatMut<'a> {
    ptr: *mut f32,
    rows: usize,
    cols: usize,
    row_stride: isize,
    col_stride: isize,
    _borrow: PhantomData<&'a mut [f32]>,
}

// SAFETY: a MatMut is an exclusive borrow of `[f32]` (the PhantomData records it), so it may
// move to another thread exactly as `&mut [f32]` may.
unsafe impl Send for MatMut<'_> {}
// SAFETY: shared access to a MatMut only allows reads (`&self` methods), as with `&mut [f32]`.
unsafe impl Sync for MatMut<'_> {}

impl<'a> MatMut<'a> {
    /// A dense row-major view: `data.len()` must equal `rows * cols`.
    pub fn from_row_major(data: &'a mut [f32], rows: usize, cols: usize) -> Result<Self> {
        check_dense_len(data.len(), rows, cols)?;
        Self::from_strided(data, 0, rows, cols, cols as isize, 1)
    }

    /// A dense column-major view: `data.len()` must equal `rows * cols`.
    pub fn from_col_major(data: &'a mut [f32], rows: usize, cols: usize) -> Result<Self> {
        check_dense_len(data.len(), rows, cols)?;
        Self::from_strided(data, 0, rows, cols, 1, rows as isize)
    }

    /// A general strided view, as [`MatRef::from_strided`], that must also give every element
    /// its own address (no zero strides on a dimension longer than 1, no interleaving).
    pub fn from_strided(
        data: &'a mut [f32],
        offset: usize,
        rows: usize,
        cols: usize,
        row_stride: isize,
        col_stride: isize,
    ) -> Result<Self> {
        check_bounds(data.len(), offset, rows, cols, row_stride, col_stride)?;
        check_no_overlap(rows, cols, row_stride, col_stride)?;
        Ok(MatMut {
            ptr: data.as_mut_ptr().wrapping_add(offset),
            rows,
            cols,
            row_stride,
            col_stride,
            _borrow: PhantomData,
        })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Distance in elements between `(i, j)` and `(i + 1, j)`.
    pub fn row_stride(&self) -> isize {
        self.row_stride
    }
    /// Distance in elements between `(i, j)` and `(i, j + 1)`.
    pub fn col_stride(&self) -> isize {
        self.col_stride
    }
    /// Pointer to element `(0, 0)`.
    pub fn as_mut_ptr(&mut self) -> *mut f32 {
        self.ptr
    }

    /// A read-only view of the same elements.
    pub fn as_ref(&self) -> MatRef<'_> {
        MatRef {
            ptr: self.ptr,
            rows: self.rows,
            cols: self.cols,
            row_stride: self.row_stride,
            col_stride: self.col_stride,
            _borrow: PhantomData,
        }
    }

    /// A shorter-lived mutable view of the same elements.
    pub fn reborrow(&mut self) -> MatMut<'_> {
        MatMut {
            _borrow: PhantomData,
            ..*self
        }
    }

    /// The transposed view (swaps shape and strides; no copy).
    pub fn t(self) -> MatMut<'a> {
        MatMut {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    /// Element `(i, j)`.
    ///
    /// # Panics
    ///
    /// If `i >= rows` or `j >= cols`.
    pub fn get(&self, i: usize, j: usize) -> f32 {
        self.as_ref().get(i, j)
    }

    /// Sets element `(i, j)`.
    ///
    /// # Panics
    ///
    /// If `i >= rows` or `j >= cols`.
    pub fn set(&mut self, i: usize, j: usize, value: f32) {
        assert!(
            i < self.rows && j < self.cols,
            "index ({i}, {j}) out of a {}x{} view",
            self.rows,
            self.cols
        );
        let at = i as isize * self.row_stride + j as isize * self.col_stride;
        // SAFETY: the constructor checked that every (i, j) inside the shape addresses an
        // element of the exclusively borrowed slice; the assert keeps (i, j) inside the shape.
        unsafe { *self.ptr.offset(at) = value }
    }
}

/// An owned, dense, row-major f32 matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    data: Vec<f32>,
    rows: usize,
    cols: usize,
}

impl Matrix {
    /// A `rows x cols` matrix of zeros.
    ///
    /// # Panics
    ///
    /// If `rows * cols` overflows `usize`.
    pub fn zeros(rows: usize, cols: usize) -> Matrix {
        let len = checked_len(rows, cols).expect("matrix size overflows usize");
        Matrix {
            data: vec![0.0; len],
            rows,
            cols,
        }
    }

    /// Wraps row-major data; `data.len()` must equal `rows * cols`.
    pub fn from_vec(rows: usize, cols: usize, data: Vec<f32>) -> Result<Matrix> {
        check_dense_len(data.len(), rows, cols)?;
        Ok(Matrix { data, rows, cols })
    }

    /// A matrix whose element `(i, j)` is `f(i, j)`.
    pub fn from_fn(rows: usize, cols: usize, mut f: impl FnMut(usize, usize) -> f32) -> Matrix {
        let mut m = Matrix::zeros(rows, cols);
        for i in 0..rows {
            for j in 0..cols {
                m.data[i * cols + j] = f(i, j);
            }
        }
        m
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// The row-major elements.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }
    /// The row-major elements, writable.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.data
    }
    /// The row-major elements, by value.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }
    /// Row `i` as a slice.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// A read-only view of the whole matrix.
    pub fn view(&self) -> MatRef<'_> {
        MatRef::from_row_major(&self.data, self.rows, self.cols)
            .expect("a Matrix always holds rows*cols elements")
    }

    /// A writable view of the whole matrix.
    pub fn view_mut(&mut self) -> MatMut<'_> {
        let (rows, cols) = (self.rows, self.cols);
        MatMut::from_row_major(&mut self.data, rows, cols)
            .expect("a Matrix always holds rows*cols elements")
    }
}

impl std::ops::Index<(usize, usize)> for Matrix {
    type Output = f32;
    fn index(&self, (i, j): (usize, usize)) -> &f32 {
        assert!(
            i < self.rows && j < self.cols,
            "index ({i}, {j}) out of bounds"
        );
        &self.data[i * self.cols + j]
    }
}

impl std::ops::IndexMut<(usize, usize)> for Matrix {
    fn index_mut(&mut self, (i, j): (usize, usize)) -> &mut f32 {
        assert!(
            i < self.rows && j < self.cols,
            "index ({i}, {j}) out of bounds"
        );
        &mut self.data[i * self.cols + j]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_bounds_are_checked() {
        let data = vec![0.0; 12];
        assert!(MatRef::from_strided(&data, 0, 3, 4, 4, 1).is_ok());
        assert!(MatRef::from_strided(&data, 1, 3, 4, 4, 1).is_err());
        assert!(MatRef::from_strided(&data, 11, 3, 4, -4, -1).is_ok());
        assert!(MatRef::from_strided(&data, 10, 3, 4, -4, -1).is_err());
        assert!(MatRef::from_strided(&data, 12, 0, 4, 4, 1).is_ok());
        assert!(MatRef::from_strided(&data, 13, 0, 4, 4, 1).is_err());
        assert!(MatRef::from_strided(&data, 0, 5, 4, 0, 1).is_ok());
        assert!(MatRef::from_strided(&data, 0, 3, 4, isize::MAX, 1).is_err());
    }

    #[test]
    fn mutable_views_reject_aliasing() {
        let mut data = vec![0.0; 12];
        assert!(MatMut::from_strided(&mut data, 0, 3, 4, 4, 1).is_ok());
        assert!(MatMut::from_strided(&mut data, 0, 3, 4, 1, 3).is_ok());
        assert!(MatMut::from_strided(&mut data, 0, 3, 4, 3, 1).is_err());
        assert!(MatMut::from_strided(&mut data, 0, 2, 4, 0, 1).is_err());
        assert!(MatMut::from_strided(&mut data, 0, 1, 4, 0, 1).is_ok());
        assert!(MatMut::from_strided(&mut data, 0, 3, 2, 2, 1).is_ok());
        assert!(MatMut::from_strided(&mut data, 0, 3, 0, 0, 0).is_ok());
    }

    #[test]
    fn dense_constructors_check_length() {
        let data = vec![0.0; 6];
        assert!(MatRef::from_row_major(&data, 2, 3).is_ok());
        assert!(MatRef::from_row_major(&data, 2, 4).is_err());
        assert!(MatRef::from_col_major(&data, 3, 2).is_ok());
        assert!(Matrix::from_vec(usize::MAX, 2, vec![]).is_err());
    }

    #[test]
    fn transpose_swaps_indices() {
        let m = Matrix::from_fn(2, 3, |i, j| (10 * i + j) as f32);
        let t = m.view().t();
        assert_eq!((t.rows(), t.cols()), (3, 2));
        assert_eq!(t.get(2, 1), 12.0);
        assert_eq!(t.to_matrix().view().t().to_matrix(), m);
    }
}
