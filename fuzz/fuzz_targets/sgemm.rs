//! Differential fuzzing of `C <- alpha * A * B + beta * C` against a naive f64 reference.
//!
//! The input bytes decode to a shape (small, sometimes with a zero dimension, sometimes wide
//! enough to make the driver pack A, sometimes deep enough to cross a KC block), a strided
//! layout for each operand (row- or column-major, padded, strided, negative strides, and for A
//! and B zero strides), alpha and beta, an instruction set from `Isa::available()`, an entry
//! point, and the data. Every check failure panics, which libFuzzer reports as a crash:
//!
//! * each element of C is within `8 (k + 2) eps (|alpha| sum |a b| + |beta c0|) + 1e-30` of
//!   the f64 reference (`+ 2` covers the roundings of the alpha and beta products, so that
//!   `k = 0` is allowed one rounding of `beta * c0` and no more);
//! * `beta == 0` overwrites C even where it held NaN or infinity, and `alpha == 0` or `k == 0`
//!   gives exactly `beta * c0` (exactly 0 when `beta == 0`);
//! * nothing outside C's elements is written: C lives inside guard bands, and its padding,
//!   guards and the whole of A's and B's buffers must keep their bits;
//! * A's and B's padding holds NaN, so a kernel that reads and uses a padding element (rather
//!   than only loading and discarding it) produces NaN and fails the comparison. The buffers of
//!   A and B span exactly their elements, so AddressSanitizer catches reads past either end.

#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use simdnet::{Gemm, Isa, Parallelism};

/// Elements written around C: a kernel that writes past either end of C changes one of them.
const GUARD: usize = 16;
/// The bit pattern of guards and padding around C: a NaN with a payload no arithmetic yields.
const C_GUARD_BITS: u32 = 0x7fc0_dead;
/// The bit pattern of padding inside A and B.
const AB_PAD_BITS: u32 = 0x7fc0_beef;

/// Where the elements of one `rows x cols` operand live inside its buffer.
#[derive(Clone, Copy, Debug)]
struct Layout {
    rs: isize,
    cs: isize,
    /// Index of element (0, 0) in the buffer.
    base: usize,
    /// Length of the buffer: exactly the span from the lowest to the highest element.
    len: usize,
}

impl Layout {
    /// Decodes a layout. `distinct` (for C) rules out zero strides, which would make several
    /// elements share an address.
    fn decode(u: &mut Unstructured, rows: usize, cols: usize, distinct: bool) -> Result<Layout> {
        let kinds = if distinct { 4 } else { 6 };
        let kind = u.int_in_range(0..=kinds - 1)?;
        let pad = u.int_in_range(0..=3u8)? as usize;
        let step = u.int_in_range(1..=3u8)? as usize;
        let (rs, cs) = match kind {
            // Row-major, with padded leading dimension when pad > 0.
            0 => (cols + pad, 1),
            // Column-major: a transposed row-major matrix read through swapped strides.
            1 => (1, rows + pad),
            // Row-major with a gap between the columns of a row.
            2 => (cols * step + pad, step),
            // Column-major with a gap between the rows of a column.
            3 => (step, rows * step + pad),
            // One row repeated (A and B may alias themselves).
            4 => (0, step),
            // One column repeated.
            _ => (step, 0),
        };
        let (mut rs, mut cs) = (rs as isize, cs as isize);
        if u.ratio(1, 4)? {
            rs = -rs;
        }
        if u.ratio(1, 4)? {
            cs = -cs;
        }
        Ok(Layout::new(rows, cols, rs, cs))
    }

    fn new(rows: usize, cols: usize, rs: isize, cs: isize) -> Layout {
        if rows == 0 || cols == 0 {
            // No elements: a one-element buffer gives a valid pointer that must not be read.
            return Layout {
                rs,
                cs,
                base: 0,
                len: 1,
            };
        }
        let last_r = (rows - 1) as isize * rs;
        let last_c = (cols - 1) as isize * cs;
        let lo = last_r.min(0) + last_c.min(0);
        let hi = last_r.max(0) + last_c.max(0);
        Layout {
            rs,
            cs,
            base: (-lo) as usize,
            len: (hi - lo + 1) as usize,
        }
    }

    /// Buffer index of element (i, j).
    fn at(&self, i: usize, j: usize) -> usize {
        (self.base as isize + i as isize * self.rs + j as isize * self.cs) as usize
    }
}

/// Scales of the data: powers of two keep products exact, the others make rounding happen.
const SCALES: [f32; 6] = [0.125, 0.1, 1.0 / 3.0, 3.0, 1.0e-3, 37.0];

/// Small finite floats: a byte as a signed integer times the input's scale.
fn value(u: &mut Unstructured, scale: f32) -> Result<f32> {
    Ok(f32::from(u.arbitrary::<i8>()?) * scale)
}

/// alpha and beta: mostly the special values, sometimes anything small and finite.
fn coefficient(u: &mut Unstructured) -> Result<f32> {
    const SPECIAL: [f32; 8] = [0.0, 1.0, -1.0, 0.5, 2.0, -0.75, 1.3, 1.0e-3];
    Ok(if u.ratio(3, 4)? {
        SPECIAL[u.choose_index(SPECIAL.len())?]
    } else {
        f32::from(u.arbitrary::<i8>()?) / 16.0
    })
}

/// (m, k, n).
fn shape(u: &mut Unstructured) -> Result<(usize, usize, usize)> {
    fn dim(u: &mut Unstructured, hi: usize) -> Result<usize> {
        u.int_in_range(0..=hi)
    }
    let mode = u.int_in_range(0..=9u8)?;
    Ok(match mode {
        // Several column tiles of every kernel, so the driver packs A (avx512: n > 64).
        7 => (
            u.int_in_range(0..=32)?,
            u.int_in_range(1..=24)?,
            u.int_in_range(33..=80)?,
        ),
        // Deeper than one KC block (192 or 256) of every kernel.
        8 => (
            u.int_in_range(1..=12)?,
            u.int_in_range(150..=600)?,
            u.int_in_range(1..=12)?,
        ),
        // One dimension zero.
        9 => {
            let (m, k, n) = (dim(u, 48)?, dim(u, 48)?, dim(u, 48)?);
            match u.int_in_range(0..=2u8)? {
                0 => (0, k, n),
                1 => (m, 0, n),
                _ => (m, k, 0),
            }
        }
        _ => (dim(u, 48)?, dim(u, 48)?, dim(u, 48)?),
    })
}

fn run(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    let (m, k, n) = shape(&mut u)?;
    let la = Layout::decode(&mut u, m, k, false)?;
    let lb = Layout::decode(&mut u, k, n, false)?;
    let lc = Layout::decode(&mut u, m, n, true)?;
    let alpha = coefficient(&mut u)?;
    let beta = coefficient(&mut u)?;
    let isas = Isa::available();
    let isa = isas[u.choose_index(isas.len())?];
    let entry = u.int_in_range(0..=2u8)?;
    let scale = SCALES[u.choose_index(SCALES.len())?];

    let pad_a = f32::from_bits(AB_PAD_BITS);
    let mut a = vec![pad_a; la.len];
    let mut b = vec![pad_a; lb.len];
    for i in 0..m {
        for p in 0..k {
            a[la.at(i, p)] = value(&mut u, scale)?;
        }
    }
    for p in 0..k {
        for j in 0..n {
            b[lb.at(p, j)] = value(&mut u, scale)?;
        }
    }
    // With beta == 0, C must be overwritten without being read: seed it with NaN and inf.
    let mut c = vec![f32::from_bits(C_GUARD_BITS); GUARD + lc.len + GUARD];
    let mut is_c = vec![false; c.len()];
    for i in 0..m {
        for j in 0..n {
            let at = GUARD + lc.at(i, j);
            c[at] = if beta != 0.0 {
                value(&mut u, scale)?
            } else {
                [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][(i + j) % 3]
            };
            is_c[at] = true;
        }
    }
    let (a0, b0, c0) = (a.clone(), b.clone(), c.clone());

    let a_ptr = a.as_ptr().wrapping_add(la.base);
    let b_ptr = b.as_ptr().wrapping_add(lb.base);
    let c_ptr = c.as_mut_ptr().wrapping_add(GUARD + lc.base);
    // SAFETY: every element (i, j) of A, B and C lies inside its buffer (the layouts span
    // exactly their elements, and C sits between guard bands in its own buffer); C's layouts
    // have no zero stride, so its elements have distinct addresses; the three buffers are
    // separate allocations; `isa` comes from `Isa::available()`.
    unsafe {
        match entry {
            0 | 1 => {
                let parallelism = if entry == 0 {
                    Parallelism::Sequential
                } else {
                    Parallelism::Rayon
                };
                let gemm = Gemm::new()
                    .with_isa(isa)
                    .expect("an available ISA is accepted")
                    .with_parallelism(parallelism);
                gemm.run_raw(
                    m, k, n, alpha, a_ptr, la.rs, la.cs, b_ptr, lb.rs, lb.cs, beta, c_ptr, lc.rs,
                    lc.cs,
                );
            }
            _ => simdnet::sgemm(
                m, k, n, alpha, a_ptr, la.rs, la.cs, b_ptr, lb.rs, lb.cs, beta, c_ptr, lc.rs, lc.cs,
            ),
        }
    }

    let case = || {
        format!(
            "isa {isa}, entry {entry}, m {m} k {k} n {n}, alpha {alpha:e} beta {beta:e}, \
             scale {scale}, A {la:?}, B {lb:?}, C {lc:?}"
        )
    };
    let same_bits = |x: &[f32], y: &[f32]| x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits());
    assert!(same_bits(&a, &a0), "A was written: {}", case());
    assert!(same_bits(&b, &b0), "B was written: {}", case());
    for (idx, (now, before)) in c.iter().zip(&c0).enumerate() {
        assert!(
            is_c[idx] || now.to_bits() == before.to_bits(),
            "buffer index {idx} outside C changed from {before} to {now}: {}",
            case()
        );
    }

    for i in 0..m {
        for j in 0..n {
            let got = c[GUARD + lc.at(i, j)];
            let c_in = c0[GUARD + lc.at(i, j)];
            let (mut dot, mut mag) = (0.0f64, 0.0f64);
            for p in 0..k {
                let prod = f64::from(a[la.at(i, p)]) * f64::from(b[lb.at(p, j)]);
                dot += prod;
                mag += prod.abs();
            }
            let (scaled_c, want) = if beta == 0.0 {
                (0.0, f64::from(alpha) * dot)
            } else {
                let bc = f64::from(beta) * f64::from(c_in);
                (bc, f64::from(alpha) * dot + bc)
            };
            if k == 0 || alpha == 0.0 {
                // C <- beta * C, one f32 product (or an exact 0 when beta == 0).
                let exact = if beta == 0.0 { 0.0 } else { beta * c_in };
                assert!(
                    got == exact,
                    "C({i},{j}) = {got:e}, want beta * c0 = {exact:e}: {}",
                    case()
                );
                continue;
            }
            let bound = f64::from(alpha).abs() * mag + scaled_c.abs();
            let tol = 8.0 * (k + 2) as f64 * f64::from(f32::EPSILON) * bound + 1e-30;
            let err = (f64::from(got) - want).abs();
            assert!(
                err <= tol,
                "C({i},{j}) = {got:e}, want {want:e} (error {err:e} > tolerance {tol:e}), \
                 c0 {c_in:e}: {}",
                case()
            );
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    // Running out of bytes is not an error: Unstructured then yields zeros and range starts.
    let _ = run(data);
});
