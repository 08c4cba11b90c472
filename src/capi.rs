//! The C ABI (cargo feature `capi`): `cblas_sgemm` with the standard CBLAS signature, a
//! status-returning twin `simdnet_sgemm`, and an inference API over network2 JSON models.
//! `include/simdnet.h` declares all of it for C and C++.
//!
//! Build the shared and static libraries with `cargo build --release --features capi`
//! (`target/release/libsimdnet.so` and `libsimdnet.a`). The feature is off by default so that
//! a Rust program that links simdnet next to a CBLAS (OpenBLAS, MKL) gets no clashing
//! `cblas_sgemm` symbol.
//!
//! # Errors across the boundary
//!
//! No panic crosses into C: every exported function runs its body under
//! [`std::panic::catch_unwind`] and turns a panic into [`SIMDNET_ERR_INTERNAL`]. Every
//! function that can fail records what went wrong in a thread-local message that
//! [`simdnet_last_error`] returns, and every call that succeeds clears it, so after a
//! `void` [`cblas_sgemm`] a caller can tell success (`simdnet_last_error() == NULL`) from
//! a rejected argument. Functions returning `int` return one of the `SIMDNET_*` codes.
//!
//! # The CBLAS mapping
//!
//! A column-major matrix is the row-major storage of its transpose, and a transposed operand
//! is the same storage read with swapped strides, so every combination of layout and
//! transposes becomes one call of the strided GEMM ([`crate::Gemm::run_raw`]) with element
//! `(i, j)` of `op(A)` at `A + i * rsa + j * csa`: nothing is copied. The raw form is used
//! rather than [`crate::MatRef`] slices on purpose: CBLAS callers routinely pass blocks of
//! one array (LAPACK's trailing update `A22 -= A21 * A12` has A, B and C inside the same
//! `lda`-strided array), where a slice spanning C's rows would overlap A's elements.

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char, c_int};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use crate::error::Error;
use crate::gemm::Gemm;
use crate::network::Network;

/// Success.
pub const SIMDNET_OK: c_int = 0;
/// A pointer that the call must dereference is NULL.
pub const SIMDNET_ERR_NULL_POINTER: c_int = 1;
/// An argument is out of its domain: an unknown layout or transpose, a negative dimension, a
/// leading dimension below its minimum.
pub const SIMDNET_ERR_BAD_ARGUMENT: c_int = 2;
/// A buffer's length does not match the shape the call needs, or a size overflows.
pub const SIMDNET_ERR_SIZE: c_int = 3;
/// A file cannot be read.
pub const SIMDNET_ERR_IO: c_int = 4;
/// A file is not a usable network2 model.
pub const SIMDNET_ERR_MODEL: c_int = 5;
/// `SIMDNET_ISA` names an unknown instruction set or one this CPU lacks.
pub const SIMDNET_ERR_ISA: c_int = 6;
/// A bug in simdnet (a panic, caught at the boundary).
pub const SIMDNET_ERR_INTERNAL: c_int = 7;

/// `CblasRowMajor`.
pub const CBLAS_ROW_MAJOR: c_int = 101;
/// `CblasColMajor`.
pub const CBLAS_COL_MAJOR: c_int = 102;
/// `CblasNoTrans`.
pub const CBLAS_NO_TRANS: c_int = 111;
/// `CblasTrans`.
pub const CBLAS_TRANS: c_int = 112;
/// `CblasConjTrans` (the same as `CblasTrans` for real matrices).
pub const CBLAS_CONJ_TRANS: c_int = 113;

thread_local! {
    /// The message of the last failed call on this thread; `None` after a successful one.
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

/// Why a call failed: a `SIMDNET_ERR_*` code and a message.
struct Failure {
    code: c_int,
    message: String,
}

impl Failure {
    fn new(code: c_int, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        let code = match e {
            Error::Io { .. } => SIMDNET_ERR_IO,
            Error::Model { .. } | Error::InvalidNetwork { .. } => SIMDNET_ERR_MODEL,
            Error::UnknownIsa { .. } | Error::IsaUnavailable { .. } => SIMDNET_ERR_ISA,
            Error::ShapeMismatch { .. } | Error::InvalidView { .. } => SIMDNET_ERR_SIZE,
            _ => SIMDNET_ERR_INTERNAL,
        };
        Failure::new(code, e.to_string())
    }
}

fn set_last_error(message: String) {
    // A message with an interior NUL (a path holding one cannot be opened anyway) is cut there.
    let message = CString::new(message).unwrap_or_else(|e| {
        let end = e.nul_position();
        let mut bytes = e.into_vec();
        bytes.truncate(end);
        CString::new(bytes).expect("truncated before the first NUL")
    });
    LAST_ERROR.with(|last| *last.borrow_mut() = Some(message));
}

fn clear_last_error() {
    LAST_ERROR.with(|last| {
        if let Ok(mut last) = last.try_borrow_mut()
            && last.is_some()
        {
            *last = None;
        }
    });
}

/// The text of a panic payload.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(no message)"
    }
}

/// Runs `body` at the boundary: catches panics, records or clears the last error, and returns
/// the body's value or `on_error` with the failure's code.
fn boundary<T>(
    function: &str,
    on_error: impl FnOnce(c_int) -> T,
    body: impl FnOnce() -> Result<T, Failure>,
) -> T {
    let failure = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => {
            clear_last_error();
            return value;
        }
        Ok(Err(failure)) => failure,
        Err(payload) => Failure::new(
            SIMDNET_ERR_INTERNAL,
            format!(
                "internal error (a bug in simdnet): {}",
                panic_text(&*payload)
            ),
        ),
    };
    // Formatting and storing the message could itself panic only on allocation failure, which
    // aborts rather than unwinds; guard anyway so that nothing can escape.
    let code = failure.code;
    let _ = catch_unwind(AssertUnwindSafe(|| {
        set_last_error(format!("{function}: {}", failure.message));
    }));
    on_error(code)
}

// ---------------------------------------------------------------------------------------------
// GEMM

/// The arguments of `cblas_sgemm`, as received.
struct SgemmArgs {
    layout: c_int,
    trans_a: c_int,
    trans_b: c_int,
    m: c_int,
    n: c_int,
    k: c_int,
    alpha: f32,
    a: *const f32,
    lda: c_int,
    b: *const f32,
    ldb: c_int,
    beta: f32,
    c: *mut f32,
    ldc: c_int,
}

/// A CBLAS argument error, naming the parameter by its 1-based position as `xerbla` does.
fn bad(position: u32, message: String) -> Failure {
    Failure::new(
        SIMDNET_ERR_BAD_ARGUMENT,
        format!("parameter {position} {message}"),
    )
}

fn transposed(value: c_int, position: u32, name: &str) -> Result<bool, Failure> {
    match value {
        CBLAS_NO_TRANS => Ok(false),
        CBLAS_TRANS | CBLAS_CONJ_TRANS => Ok(true),
        _ => Err(bad(
            position,
            format!(
                "({name} = {value}) must be CblasNoTrans (111), CblasTrans (112) or \
                 CblasConjTrans (113)"
            ),
        )),
    }
}

fn dimension(value: c_int, position: u32, name: &str) -> Result<usize, Failure> {
    usize::try_from(value)
        .map_err(|_| bad(position, format!("({name} = {value}) must not be negative")))
}

/// Checks a leading dimension against `max(1, min)`; returns it as a stride.
fn leading(
    value: c_int,
    min: usize,
    position: u32,
    name: &str,
    why: impl FnOnce() -> String,
) -> Result<isize, Failure> {
    if i64::from(value) < min.max(1) as i64 {
        return Err(bad(
            position,
            format!("({name} = {value}) must be >= max(1, {min}): {}", why()),
        ));
    }
    // A c_int always fits an isize on the 32- and 64-bit targets Rust supports for this.
    isize::try_from(value).map_err(|_| bad(position, format!("({name} = {value}) is too large")))
}

/// The strides `(row, column)` of element `(i, j)` of `op(X)` for a matrix stored in `layout`
/// with leading dimension `ld`, transposed or not.
fn strides(row_major: bool, trans: bool, ld: isize) -> (isize, isize) {
    // Element (r, s) of the stored matrix is at r * ld + s (row-major) or r + s * ld.
    let stored = if row_major { (ld, 1) } else { (1, ld) };
    if trans { (stored.1, stored.0) } else { stored }
}

/// An element that stands in for A and B when they are not read (alpha = 0 or k = 0), so that
/// a NULL pointer, which CBLAS allows then, never reaches the engine.
static UNREAD: f32 = 0.0;

/// Validates CBLAS arguments in the reference implementation's order and runs the product.
///
/// # Safety
///
/// The pointers satisfy `cblas_sgemm`'s contract (see [`cblas_sgemm`]).
unsafe fn sgemm_checked(p: &SgemmArgs) -> Result<(), Failure> {
    let row_major = match p.layout {
        CBLAS_ROW_MAJOR => true,
        CBLAS_COL_MAJOR => false,
        other => {
            return Err(bad(
                1,
                format!("(layout = {other}) must be CblasRowMajor (101) or CblasColMajor (102)"),
            ));
        }
    };
    let trans_a = transposed(p.trans_a, 2, "TransA")?;
    let trans_b = transposed(p.trans_b, 3, "TransB")?;
    let m = dimension(p.m, 4, "M")?;
    let n = dimension(p.n, 5, "N")?;
    let k = dimension(p.k, 6, "K")?;
    let layout = if row_major {
        "row-major"
    } else {
        "column-major"
    };
    // The stored shapes: op(A) is m x k, so A is m x k or (transposed) k x m; likewise B.
    // The leading dimension spans the contiguous direction: a stored row in row-major, a
    // stored column in column-major.
    let (a_rows, a_cols) = if trans_a { (k, m) } else { (m, k) };
    let (b_rows, b_cols) = if trans_b { (n, k) } else { (k, n) };
    let pick = |rows: usize, cols: usize| if row_major { cols } else { rows };
    let shape = |what: &str, rows: usize, cols: usize, t: bool| {
        format!(
            "{what} is stored {layout} as {rows} x {cols}{}",
            if t { " (transposed)" } else { "" }
        )
    };
    let lda = leading(p.lda, pick(a_rows, a_cols), 9, "lda", || {
        shape("A", a_rows, a_cols, trans_a)
    })?;
    let ldb = leading(p.ldb, pick(b_rows, b_cols), 11, "ldb", || {
        shape("B", b_rows, b_cols, trans_b)
    })?;
    let ldc = leading(p.ldc, pick(m, n), 14, "ldc", || shape("C", m, n, false))?;

    // Quick returns, as the reference: nothing to compute, or C = 1 * C.
    let reads_ab = p.alpha != 0.0 && k > 0;
    if m == 0 || n == 0 || (!reads_ab && p.beta == 1.0) {
        return Ok(());
    }
    if p.c.is_null() {
        return Err(Failure::new(
            SIMDNET_ERR_NULL_POINTER,
            "parameter 13 (C) is NULL",
        ));
    }
    let (mut a, (mut rsa, mut csa)) = (p.a, strides(row_major, trans_a, lda));
    let (mut b, (mut rsb, mut csb)) = (p.b, strides(row_major, trans_b, ldb));
    if reads_ab {
        if a.is_null() {
            return Err(Failure::new(
                SIMDNET_ERR_NULL_POINTER,
                "parameter 8 (A) is NULL",
            ));
        }
        if b.is_null() {
            return Err(Failure::new(
                SIMDNET_ERR_NULL_POINTER,
                "parameter 10 (B) is NULL",
            ));
        }
    } else {
        (a, rsa, csa) = (&UNREAD, 0, 0);
        (b, rsb, csb) = (&UNREAD, 0, 0);
    }
    let (rsc, csc) = strides(row_major, false, ldc);
    let gemm = Gemm::try_new()?;
    // SAFETY: the caller of `cblas_sgemm` promises that A, B and C hold the matrices its
    // arguments describe; the strides above address exactly those elements (the leading
    // dimensions were checked to be at least the contiguous extent, so C's elements have
    // distinct addresses), and A and B are only read when they are real (otherwise they point
    // at `UNREAD` with zero strides). C not overlapping A or B is part of the CBLAS contract.
    unsafe {
        gemm.run_raw(
            m, k, n, p.alpha, a, rsa, csa, b, rsb, csb, p.beta, p.c, rsc, csc,
        );
    }
    Ok(())
}

/// `C <- alpha * op(A) * op(B) + beta * C`, the standard CBLAS `cblas_sgemm`.
///
/// `op(A)` is `M x K`, `op(B)` is `K x N`, `C` is `M x N`, all stored in `layout`
/// (`CblasRowMajor` = 101 or `CblasColMajor` = 102) with leading dimensions `lda`, `ldb`,
/// `ldc`; `trans_a` / `trans_b` are `CblasNoTrans` (111), `CblasTrans` (112) or
/// `CblasConjTrans` (113, the same as `CblasTrans` for real numbers). When `beta == 0`, C is
/// written without being read (NaN in C does not propagate); when `alpha == 0` or `K == 0`,
/// A and B are not read (they may be NULL) and C becomes `beta * C`.
///
/// Bad arguments (an unknown enum value, a negative dimension, a leading dimension below its
/// minimum, a NULL pointer that would be dereferenced) leave C untouched and set the message
/// returned by [`simdnet_last_error`]; a call that succeeds clears it. [`simdnet_sgemm`] is
/// the same call returning a status code.
///
/// # Safety
///
/// As for any CBLAS: unless the call returns early, A must hold the stored `op(A)` (rows of
/// `lda` elements in row-major, columns in column-major), B likewise with `ldb`, and C must
/// be writable likewise with `ldc`; C must not overlap A or B. C must not be written by
/// another thread during the call.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn cblas_sgemm(
    layout: c_int,
    trans_a: c_int,
    trans_b: c_int,
    m: c_int,
    n: c_int,
    k: c_int,
    alpha: f32,
    a: *const f32,
    lda: c_int,
    b: *const f32,
    ldb: c_int,
    beta: f32,
    c: *mut f32,
    ldc: c_int,
) {
    let args = SgemmArgs {
        layout,
        trans_a,
        trans_b,
        m,
        n,
        k,
        alpha,
        a,
        lda,
        b,
        ldb,
        beta,
        c,
        ldc,
    };
    // SAFETY: the pointer requirements are this function's contract, passed on unchanged.
    boundary("cblas_sgemm", |_| (), || unsafe { sgemm_checked(&args) })
}

/// [`cblas_sgemm`] returning [`SIMDNET_OK`] or an error code ([`SIMDNET_ERR_BAD_ARGUMENT`],
/// [`SIMDNET_ERR_NULL_POINTER`], [`SIMDNET_ERR_ISA`], [`SIMDNET_ERR_INTERNAL`]); on error C is
/// untouched and [`simdnet_last_error`] describes the problem.
///
/// # Safety
///
/// As [`cblas_sgemm`].
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn simdnet_sgemm(
    layout: c_int,
    trans_a: c_int,
    trans_b: c_int,
    m: c_int,
    n: c_int,
    k: c_int,
    alpha: f32,
    a: *const f32,
    lda: c_int,
    b: *const f32,
    ldb: c_int,
    beta: f32,
    c: *mut f32,
    ldc: c_int,
) -> c_int {
    let args = SgemmArgs {
        layout,
        trans_a,
        trans_b,
        m,
        n,
        k,
        alpha,
        a,
        lda,
        b,
        ldb,
        beta,
        c,
        ldc,
    };
    boundary(
        "simdnet_sgemm",
        |code| code,
        // SAFETY: the pointer requirements are this function's contract, passed on unchanged.
        || unsafe { sgemm_checked(&args) }.map(|()| SIMDNET_OK),
    )
}

/// The message of the last call on this thread that failed, or NULL if the last call into
/// simdnet on this thread succeeded (or none was made). The text is UTF-8, owned by simdnet
/// and valid until the next call into simdnet on this thread; copy it to keep it.
#[unsafe(no_mangle)]
pub extern "C" fn simdnet_last_error() -> *const c_char {
    catch_unwind(|| {
        LAST_ERROR.with(|last| {
            last.try_borrow()
                .ok()
                .and_then(|last| last.as_ref().map(|s| s.as_ptr()))
                .unwrap_or(std::ptr::null())
        })
    })
    .unwrap_or(std::ptr::null())
}

// ---------------------------------------------------------------------------------------------
// Inference

/// An opaque handle to a loaded network (`simdnet_network` in C). It is immutable: any number
/// of threads may run it at once.
#[allow(non_camel_case_types)]
pub struct simdnet_network {
    net: Network,
}

fn not_null<T>(ptr: *const T, what: &str) -> Result<(), Failure> {
    if ptr.is_null() {
        Err(Failure::new(
            SIMDNET_ERR_NULL_POINTER,
            format!("{what} is NULL"),
        ))
    } else {
        Ok(())
    }
}

/// `rows * cols`, or a size error naming the buffer.
fn elements(rows: usize, cols: usize, what: &str) -> Result<usize, Failure> {
    rows.checked_mul(cols)
        .filter(|&n| n <= isize::MAX as usize / size_of::<f32>())
        .ok_or_else(|| {
            Failure::new(
                SIMDNET_ERR_SIZE,
                format!("{what} of {rows} x {cols} elements is too large"),
            )
        })
}

/// Checks that every layer's buffer for `rows` examples has a representable size (a row
/// count that overflows one would otherwise reach the allocator).
fn check_rows(net: &Network, rows: usize) -> Result<(), Failure> {
    let widest = net.sizes().iter().copied().max().unwrap_or(0);
    elements(rows, widest, "a layer's buffer").map(|_| ())
}

/// Loads a network saved by network2.py's `save` (or simdnet's `Network::save`, or the `train`
/// binary's `--save`). Returns NULL on error (see [`simdnet_last_error`]). Free the handle
/// with [`simdnet_network_free`].
///
/// # Safety
///
/// `path` is NULL or a NUL-terminated string (a file name in the platform's encoding).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simdnet_network_load(path: *const c_char) -> *mut simdnet_network {
    boundary(
        "simdnet_network_load",
        |_| std::ptr::null_mut(),
        || {
            not_null(path, "path")?;
            // SAFETY: non-NULL (checked) and NUL-terminated (the caller's contract).
            let path = unsafe { CStr::from_ptr(path) };
            let path = os_path(path)?;
            let net = Network::load(path)?;
            Ok(Box::into_raw(Box::new(simdnet_network { net })))
        },
    )
}

#[cfg(unix)]
fn os_path(path: &CStr) -> Result<&Path, Failure> {
    use std::os::unix::ffi::OsStrExt;
    Ok(Path::new(std::ffi::OsStr::from_bytes(path.to_bytes())))
}

#[cfg(not(unix))]
fn os_path(path: &CStr) -> Result<&Path, Failure> {
    path.to_str().map(Path::new).map_err(|_| {
        Failure::new(
            SIMDNET_ERR_BAD_ARGUMENT,
            "path is not valid UTF-8".to_string(),
        )
    })
}

/// Frees a network from [`simdnet_network_load`]; NULL is ignored.
///
/// # Safety
///
/// `net` is NULL or a handle from [`simdnet_network_load`] not yet freed, and no other thread
/// is using it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simdnet_network_free(net: *mut simdnet_network) {
    boundary(
        "simdnet_network_free",
        |_| (),
        || {
            if !net.is_null() {
                // SAFETY: a live handle made by `Box::into_raw` in `simdnet_network_load`,
                // freed once (the caller's contract).
                drop(unsafe { Box::from_raw(net) });
            }
            Ok(())
        },
    )
}

/// The handle's network, or a NULL-pointer failure.
///
/// # Safety
///
/// `net` is NULL or a live handle from [`simdnet_network_load`].
unsafe fn network<'a>(net: *const simdnet_network) -> Result<&'a Network, Failure> {
    not_null(net, "net")?;
    // SAFETY: non-NULL (checked) and live (the caller's contract); only shared access is made.
    Ok(unsafe { &(*net).net })
}

/// The size of the network's input layer (floats per input row); 0 if `net` is NULL.
///
/// # Safety
///
/// `net` is NULL or a live handle from [`simdnet_network_load`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simdnet_network_inputs(net: *const simdnet_network) -> usize {
    // SAFETY: the handle's validity is this function's contract.
    boundary(
        "simdnet_network_inputs",
        |_| 0,
        || Ok(unsafe { network(net) }?.inputs()),
    )
}

/// The size of the network's output layer (floats per output row, the number of classes); 0
/// if `net` is NULL.
///
/// # Safety
///
/// `net` is NULL or a live handle from [`simdnet_network_load`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simdnet_network_outputs(net: *const simdnet_network) -> usize {
    // SAFETY: the handle's validity is this function's contract.
    boundary(
        "simdnet_network_outputs",
        |_| 0,
        || Ok(unsafe { network(net) }?.outputs()),
    )
}

/// Feeds `rows` inputs forward: `x` is row-major `rows x inputs`, `out` receives row-major
/// `rows x outputs` activations and must hold exactly `out_len = rows * outputs` floats.
/// Returns [`SIMDNET_OK`] or an error code (nothing is written to `out` on error). `rows = 0`
/// does nothing (the pointers may then be NULL).
///
/// # Safety
///
/// `net` is NULL or a live handle; `x` is NULL or points to `rows * inputs` readable floats;
/// `out` is NULL or points to `out_len` writable floats that do not overlap `x`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simdnet_network_feedforward(
    net: *const simdnet_network,
    x: *const f32,
    rows: usize,
    out: *mut f32,
    out_len: usize,
) -> c_int {
    boundary(
        "simdnet_network_feedforward",
        |code| code,
        || {
            // SAFETY: the handle's validity is this function's contract.
            let net = unsafe { network(net) }?;
            let in_len = elements(rows, net.inputs(), "the input")?;
            let want = elements(rows, net.outputs(), "the output")?;
            check_rows(net, rows)?;
            if out_len != want {
                return Err(Failure::new(
                    SIMDNET_ERR_SIZE,
                    format!(
                        "out_len is {out_len}, but {rows} rows of {} outputs need {want}",
                        net.outputs()
                    ),
                ));
            }
            if rows == 0 {
                return Ok(SIMDNET_OK);
            }
            not_null(x, "x")?;
            not_null(out, "out")?;
            // SAFETY: non-NULL (checked); `in_len` and `out_len` floats readable and writable
            // and not overlapping (the caller's contract); sizes checked not to overflow.
            let (x, out) = unsafe {
                (
                    std::slice::from_raw_parts(x, in_len),
                    std::slice::from_raw_parts_mut(out, out_len),
                )
            };
            net.feedforward_batch(x, rows, out)?;
            Ok(SIMDNET_OK)
        },
    )
}

/// Classifies `rows` inputs (`x` row-major `rows x inputs`): `classes[i]` receives the index
/// of the most active output neuron for row `i`, the first one on ties (numpy's `argmax`).
/// Returns [`SIMDNET_OK`] or an error code (nothing is written on error). `rows = 0` does
/// nothing (the pointers may then be NULL).
///
/// # Safety
///
/// `net` is NULL or a live handle; `x` is NULL or points to `rows * inputs` readable floats;
/// `classes` is NULL or points to `rows` writable `uint32_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simdnet_network_predict(
    net: *const simdnet_network,
    x: *const f32,
    rows: usize,
    classes: *mut u32,
) -> c_int {
    boundary(
        "simdnet_network_predict",
        |code| code,
        || {
            // SAFETY: the handle's validity is this function's contract.
            let net = unsafe { network(net) }?;
            let in_len = elements(rows, net.inputs(), "the input")?;
            check_rows(net, rows)?;
            if rows == 0 {
                return Ok(SIMDNET_OK);
            }
            not_null(x, "x")?;
            not_null(classes, "classes")?;
            // SAFETY: non-NULL (checked); `in_len` floats readable and `rows` u32 writable
            // (the caller's contract; `rows <= in_len` so its size cannot overflow).
            let (x, classes) = unsafe {
                (
                    std::slice::from_raw_parts(x, in_len),
                    std::slice::from_raw_parts_mut(classes, rows),
                )
            };
            net.predict_batch(x, rows, classes)?;
            Ok(SIMDNET_OK)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last_error() -> Option<String> {
        let p = simdnet_last_error();
        // SAFETY: a non-NULL result is a NUL-terminated string owned by this thread's state,
        // read before the next call.
        (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    }

    /// Naive reference: op(A) m x k and op(B) k x n through CBLAS indexing.
    #[allow(clippy::too_many_arguments)]
    fn naive(
        row_major: bool,
        ta: bool,
        tb: bool,
        m: usize,
        n: usize,
        k: usize,
        alpha: f32,
        a: &[f32],
        lda: usize,
        b: &[f32],
        ldb: usize,
        beta: f32,
        c: &mut [f32],
        ldc: usize,
    ) {
        let at = |x: &[f32], ld: usize, t: bool, i: usize, j: usize| {
            let (r, s) = if t { (j, i) } else { (i, j) };
            if row_major {
                x[r * ld + s]
            } else {
                x[r + s * ld]
            }
        };
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k)
                    .map(|p| f64::from(at(a, lda, ta, i, p)) * f64::from(at(b, ldb, tb, p, j)))
                    .sum();
                let idx = if row_major { i * ldc + j } else { i + j * ldc };
                let old = if beta == 0.0 { 0.0 } else { beta * c[idx] };
                c[idx] = (f64::from(alpha) * dot) as f32 + old;
            }
        }
    }

    #[test]
    fn every_layout_and_transpose_matches_the_naive_loop() {
        let (m, n, k) = (7usize, 5usize, 9usize);
        for row_major in [true, false] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let (ar, ac) = if ta { (k, m) } else { (m, k) };
                let (br, bc) = if tb { (n, k) } else { (k, n) };
                let pad = 3;
                let lda = if row_major { ac } else { ar } + pad;
                let ldb = if row_major { bc } else { br } + pad;
                let ldc = if row_major { n } else { m } + pad;
                let a: Vec<f32> = (0..lda * ar.max(ac))
                    .map(|i| (i % 7) as f32 - 3.0)
                    .collect();
                let b: Vec<f32> = (0..ldb * br.max(bc))
                    .map(|i| (i % 5) as f32 - 2.0)
                    .collect();
                let c0: Vec<f32> = (0..ldc * m.max(n)).map(|i| (i % 3) as f32).collect();
                let mut want = c0.clone();
                naive(
                    row_major, ta, tb, m, n, k, 2.0, &a, lda, &b, ldb, 0.5, &mut want, ldc,
                );
                let mut got = c0.clone();
                // SAFETY: the buffers hold the stored matrices with these leading dimensions.
                unsafe {
                    cblas_sgemm(
                        if row_major { 101 } else { 102 },
                        if ta { 112 } else { 111 },
                        if tb { 113 } else { 111 },
                        m as c_int,
                        n as c_int,
                        k as c_int,
                        2.0,
                        a.as_ptr(),
                        lda as c_int,
                        b.as_ptr(),
                        ldb as c_int,
                        0.5,
                        got.as_mut_ptr(),
                        ldc as c_int,
                    );
                }
                assert_eq!(last_error(), None);
                assert_eq!(got, want, "row_major {row_major} ta {ta} tb {tb}");
            }
        }
    }

    #[test]
    fn bad_arguments_leave_c_untouched_and_say_why() {
        let a = [1.0f32; 6];
        let b = [1.0f32; 6];
        let mut c = [7.0f32; 4];
        let call = |layout, ta, m, k, lda, a: *const f32, c: *mut f32| {
            // SAFETY: every call here is rejected before any pointer is read.
            unsafe {
                simdnet_sgemm(
                    layout,
                    ta,
                    111,
                    m,
                    2,
                    k,
                    1.0,
                    a,
                    lda,
                    b.as_ptr(),
                    2,
                    0.0,
                    c,
                    2,
                )
            }
        };
        let cp = c.as_mut_ptr();
        assert_eq!(
            call(100, 111, 2, 3, 3, a.as_ptr(), cp),
            SIMDNET_ERR_BAD_ARGUMENT
        );
        assert!(last_error().unwrap().contains("parameter 1"));
        assert_eq!(
            call(101, 114, 2, 3, 3, a.as_ptr(), cp),
            SIMDNET_ERR_BAD_ARGUMENT
        );
        assert!(last_error().unwrap().contains("parameter 2"));
        assert_eq!(
            call(101, 111, -1, 3, 3, a.as_ptr(), cp),
            SIMDNET_ERR_BAD_ARGUMENT
        );
        assert!(last_error().unwrap().contains("parameter 4"));
        // Row-major A, 2 x 3: lda must be >= 3.
        assert_eq!(
            call(101, 111, 2, 3, 2, a.as_ptr(), cp),
            SIMDNET_ERR_BAD_ARGUMENT
        );
        let msg = last_error().unwrap();
        assert!(
            msg.contains("parameter 9 (lda = 2) must be >= max(1, 3)"),
            "{msg}"
        );
        // B is 3 x 2 row-major with ldb 2: fine; a NULL A with alpha != 0 is not.
        assert_eq!(
            call(101, 111, 2, 3, 3, std::ptr::null(), cp),
            SIMDNET_ERR_NULL_POINTER
        );
        assert!(last_error().unwrap().contains("parameter 8 (A) is NULL"));
        assert_eq!(c, [7.0; 4]);
        // A good call clears the message.
        assert_eq!(
            call(101, 111, 2, 3, 3, a.as_ptr(), c.as_mut_ptr()),
            SIMDNET_OK
        );
        assert_eq!(last_error(), None);
        assert_eq!(c, [3.0; 4]);
    }

    #[test]
    fn beta_zero_overwrites_nan_and_alpha_zero_ignores_null_operands() {
        let a = [1.0f32, 2.0];
        let b = [3.0f32, 4.0];
        let mut c = [f32::NAN];
        // SAFETY: 1 x 2 by 2 x 1 row-major operands, 1 x 1 C.
        unsafe {
            cblas_sgemm(
                101,
                111,
                111,
                1,
                1,
                2,
                1.0,
                a.as_ptr(),
                2,
                b.as_ptr(),
                1,
                0.0,
                c.as_mut_ptr(),
                1,
            )
        };
        assert_eq!(c, [11.0]);
        // SAFETY: alpha = 0: A and B are not read, so NULL is allowed.
        let rc = unsafe {
            simdnet_sgemm(
                101,
                111,
                111,
                1,
                1,
                2,
                0.0,
                std::ptr::null(),
                2,
                std::ptr::null(),
                1,
                2.0,
                c.as_mut_ptr(),
                1,
            )
        };
        assert_eq!((rc, c), (SIMDNET_OK, [22.0]));
        // m = 0: a quick return that touches nothing.
        // SAFETY: nothing is dereferenced for an empty C.
        let rc = unsafe {
            simdnet_sgemm(
                102,
                111,
                111,
                0,
                1,
                2,
                1.0,
                std::ptr::null(),
                1,
                std::ptr::null(),
                2,
                0.0,
                std::ptr::null_mut(),
                1,
            )
        };
        assert_eq!(rc, SIMDNET_OK);
    }

    #[test]
    fn inference_handles_reject_null_and_wrong_sizes() {
        // SAFETY: NULL handles and pointers are part of the contract.
        unsafe {
            assert!(simdnet_network_load(std::ptr::null()).is_null());
            assert!(last_error().unwrap().contains("path is NULL"));
            let missing = CString::new("/nonexistent/simdnet-model.json").unwrap();
            assert!(simdnet_network_load(missing.as_ptr()).is_null());
            assert!(
                last_error()
                    .unwrap()
                    .contains("/nonexistent/simdnet-model.json")
            );
            assert_eq!(simdnet_network_inputs(std::ptr::null()), 0);
            assert_eq!(
                simdnet_network_predict(
                    std::ptr::null(),
                    std::ptr::null(),
                    1,
                    std::ptr::null_mut()
                ),
                SIMDNET_ERR_NULL_POINTER
            );
            simdnet_network_free(std::ptr::null_mut());
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("net.json");
        let net = Network::new(
            &[3, 4, 2],
            crate::network::Cost::CrossEntropy,
            crate::network::Init::Default,
            1,
        )
        .unwrap();
        net.save(&path).unwrap();
        let cpath = CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: a valid path; the handle is used while live and freed once.
        unsafe {
            let h = simdnet_network_load(cpath.as_ptr());
            assert!(!h.is_null());
            assert_eq!(
                (simdnet_network_inputs(h), simdnet_network_outputs(h)),
                (3, 2)
            );
            let x = [0.1f32, 0.2, 0.3, 0.9, 0.8, 0.7];
            let mut out = [0.0f32; 4];
            assert_eq!(
                simdnet_network_feedforward(h, x.as_ptr(), 2, out.as_mut_ptr(), 3),
                SIMDNET_ERR_SIZE
            );
            assert!(last_error().unwrap().contains("out_len is 3"));
            assert_eq!(
                simdnet_network_feedforward(h, x.as_ptr(), 2, out.as_mut_ptr(), 4),
                SIMDNET_OK
            );
            let mut want = [0.0f32; 4];
            net.feedforward_batch(&x, 2, &mut want).unwrap();
            assert_eq!(out, want);
            let mut classes = [9u32; 2];
            assert_eq!(
                simdnet_network_predict(h, x.as_ptr(), 2, classes.as_mut_ptr()),
                SIMDNET_OK
            );
            for (r, &class) in classes.iter().enumerate() {
                let row = &want[2 * r..2 * r + 2];
                assert_eq!(class, u32::from(row[1] > row[0]));
            }
            simdnet_network_free(h);
        }
    }
}
