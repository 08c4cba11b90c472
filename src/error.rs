//! The crate's one error type.

use crate::isa::Isa;

/// Everything that can go wrong in simdnet, with enough context to act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `SIMDNET_ISA` (or a `--isa` flag) named something that is not an instruction set.
    #[error("unknown instruction set {value:?}: expected one of scalar, avx2, avx512, neon")]
    UnknownIsa {
        /// The text that was given.
        value: String,
    },
    /// An instruction set was asked for that this CPU (or this build target) does not have.
    #[error(
        "instruction set {isa} was requested but this CPU does not support it (available: {available})"
    )]
    IsaUnavailable {
        /// The instruction set that was requested.
        isa: Isa,
        /// The instruction sets this CPU does support, comma separated.
        available: String,
    },
    /// A matrix view does not fit the buffer it was made from, or its strides are invalid.
    #[error("invalid matrix view: {reason}")]
    InvalidView {
        /// What is wrong with the view.
        reason: String,
    },
    /// The operands of a matrix product do not have compatible shapes.
    #[error(
        "shape mismatch in {op}: A is {a_rows}x{a_cols}, B is {b_rows}x{b_cols}, C is {c_rows}x{c_cols}"
    )]
    ShapeMismatch {
        /// The operation that was attempted.
        op: &'static str,
        /// Rows of A.
        a_rows: usize,
        /// Columns of A.
        a_cols: usize,
        /// Rows of B.
        b_rows: usize,
        /// Columns of B.
        b_cols: usize,
        /// Rows of C.
        c_rows: usize,
        /// Columns of C.
        c_cols: usize,
    },
}

/// `Result` with [`Error`] as its error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
