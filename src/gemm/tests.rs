//! Unit tests that drive each micro-kernel through every packing plan. Tests whose names
//! start with `miri_` are small enough for Miri, which is where CI executes the AVX-512 kernel
//! on machines without AVX-512 (Miri answers feature detection from `-C target-feature`).

use super::driver::{Plan, Problem};
use super::*;

/// The arch entry point of `isa`, if this target has one.
fn entry(isa: Isa) -> Option<unsafe fn(&Problem, Plan)> {
    match isa {
        Isa::Scalar => Some(scalar::gemm),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => Some(avx2::gemm),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => Some(avx512::gemm),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => Some(neon::gemm),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

const PLANS: [Plan; 4] = [
    Plan {
        pack_a: false,
        pack_b: false,
        dot: false,
    },
    Plan {
        pack_a: true,
        pack_b: false,
        dot: false,
    },
    Plan {
        pack_a: false,
        pack_b: true,
        dot: false,
    },
    Plan {
        pack_a: true,
        pack_b: true,
        dot: false,
    },
];

/// Small integers, so every product and sum is exact in f32.
fn int_value(seed: usize) -> f32 {
    ((seed.wrapping_mul(2654435761) >> 7) % 9) as f32 - 4.0
}

/// Runs `m x k x n` with A column-major when `a_col_major` (row-major otherwise), B row-major
/// (the in-place path needs unit column stride), C padded row-major inside guard bands, and
/// checks exact equality with an integer reference and untouched guards.
fn check_exact(isa: Isa, plan: Plan, (m, k, n): (usize, usize, usize), a_col_major: bool) {
    let run = entry(isa).expect("available isa has an entry");
    let a: Vec<f32> = (0..m * k).map(|x| int_value(x + 1)).collect();
    let b: Vec<f32> = (0..k * n).map(|x| int_value(x + 7)).collect();
    let (rsa, csa) = if a_col_major {
        (1, m as isize)
    } else {
        (k as isize, 1)
    };
    let a_at = |i: usize, p: usize| a[(i as isize * rsa + p as isize * csa) as usize];
    let ldc = n + 3;
    let guard = 7777.0;
    let mut c = vec![guard; 2 + m * ldc + 2];
    for i in 0..m {
        for j in 0..n {
            c[2 + i * ldc + j] = (i + j) as f32;
        }
    }
    let (alpha, beta) = (2.0, -1.0);
    let problem = Problem {
        m,
        k,
        n,
        alpha,
        a: a.as_ptr(),
        rsa,
        csa,
        b: b.as_ptr(),
        rsb: n as isize,
        csb: 1,
        beta,
        c: c.as_mut_ptr().wrapping_add(2),
        rsc: ldc as isize,
        csc: 1,
    };
    // SAFETY: `isa` is available (the callers iterate `Isa::available()`), A is m x k with
    // the strides above inside `a`, B is k x n row-major, C is m x n with row stride ldc
    // starting at offset 2 of a buffer of 4 + m*ldc floats.
    unsafe { run(&problem, plan) };
    for i in 0..m {
        for j in 0..n {
            let dot: f32 = (0..k).map(|p| a_at(i, p) * b[p * n + j]).sum();
            let want = alpha * dot + beta * (i + j) as f32;
            let got = c[2 + i * ldc + j];
            assert_eq!(got, want, "{isa} {plan:?} {m}x{k}x{n} at ({i},{j})");
        }
        for pad in n..ldc {
            if 2 + i * ldc + pad < c.len() - 2 {
                assert_eq!(c[2 + i * ldc + pad], guard, "{isa} padding written");
            }
        }
    }
    assert_eq!(&c[..2], &[guard, guard]);
    assert_eq!(&c[c.len() - 2..], &[guard, guard]);
}

/// The inner-product path (A rows and B columns contiguous) against an integer reference:
/// every tile shape, k tails shorter than a vector, beta zero (C full of NaN, never read)
/// and not, and guard bands around padded A, B and C.
fn check_dot_exact(isa: Isa, (m, k, n): (usize, usize, usize), beta: f32) {
    let run = entry(isa).expect("available isa has an entry");
    let (lda, ldb, ldc) = (k + 1, k + 2, n + 3);
    let a: Vec<f32> = (0..m * lda).map(|x| int_value(x + 3)).collect();
    let b: Vec<f32> = (0..n * ldb).map(|x| int_value(x + 11)).collect();
    let guard = 7777.0;
    let mut c = vec![guard; 2 + m * ldc + 2];
    let start = |i: usize, j: usize| {
        if beta == 0.0 {
            f32::NAN
        } else {
            (i * 3 + j) as f32
        }
    };
    for i in 0..m {
        for j in 0..n {
            c[2 + i * ldc + j] = start(i, j);
        }
    }
    let alpha = -3.0;
    let problem = Problem {
        m,
        k,
        n,
        alpha,
        a: a.as_ptr(),
        rsa: lda as isize,
        csa: 1,
        b: b.as_ptr(),
        rsb: 1,
        csb: ldb as isize,
        beta,
        c: c.as_mut_ptr().wrapping_add(2),
        rsc: ldc as isize,
        csc: 1,
    };
    let plan = Plan {
        pack_a: false,
        pack_b: false,
        dot: true,
    };
    // SAFETY: `isa` is available; A is m x k with row stride lda inside `a`, B is k x n with
    // column stride ldb inside `b`, C is m x n with row stride ldc from offset 2 of a buffer
    // of 4 + m*ldc floats; k >= 1.
    unsafe { run(&problem, plan) };
    for i in 0..m {
        for j in 0..n {
            let dot: f32 = (0..k).map(|p| a[i * lda + p] * b[j * ldb + p]).sum();
            let prior = if beta == 0.0 { 0.0 } else { beta * start(i, j) };
            let want = alpha * dot + prior;
            let got = c[2 + i * ldc + j];
            assert_eq!(got, want, "{isa} dot {m}x{k}x{n} beta {beta} at ({i},{j})");
        }
        for pad in n..ldc {
            if 2 + i * ldc + pad < c.len() - 2 {
                assert_eq!(c[2 + i * ldc + pad], guard, "{isa} dot: padding written");
            }
        }
    }
    assert_eq!(&c[..2], &[guard, guard]);
    assert_eq!(&c[c.len() - 2..], &[guard, guard]);
}

#[test]
fn miri_dot_path_exact() {
    for isa in Isa::available() {
        for (m, n) in [(1, 1), (3, 4), (4, 5), (7, 9)] {
            // k: shorter than any vector, one AVX2 vector, ragged for every width.
            for k in [1, 8, 17, 33] {
                check_dot_exact(isa, (m, k, n), 0.0);
                check_dot_exact(isa, (m, k, n), 0.5);
            }
        }
    }
}

/// The trainer's forward shape takes the inner-product path on SIMD ISAs.
#[test]
fn dot_path_is_planned_for_short_products_with_transposed_b() {
    let p = |m: usize, k: usize, rsb: isize, csb: isize| Problem {
        m,
        k,
        n: 30,
        alpha: 1.0,
        a: std::ptr::null(),
        rsa: k as isize,
        csa: 1,
        b: std::ptr::null(),
        rsb,
        csb,
        beta: 0.0,
        c: std::ptr::null_mut(),
        rsc: 30,
        csc: 1,
    };
    #[cfg(target_arch = "x86_64")]
    {
        assert!(Plan::new::<avx2::Avx2Kernel>(&p(10, 784, 1, 784)).dot);
        assert!(!Plan::new::<avx2::Avx2Kernel>(&p(10, 784, 30, 1)).dot);
        assert!(!Plan::new::<avx2::Avx2Kernel>(&p(100, 784, 1, 784)).dot);
        assert!(!Plan::new::<avx2::Avx2Kernel>(&p(10, 10, 1, 10)).dot);
    }
    assert!(!Plan::new::<scalar::ScalarKernel>(&p(10, 784, 1, 784)).dot);
}

#[test]
fn miri_every_kernel_every_plan_exact() {
    for isa in Isa::available() {
        for plan in PLANS {
            // Ragged in every direction for every kernel's MR and NR.
            check_exact(isa, plan, (15, 3, 35), false);
            check_exact(isa, plan, (5, 2, 9), true);
            check_exact(isa, plan, (1, 1, 1), false);
        }
    }
}

#[test]
fn miri_beta_zero_overwrites_nan() {
    for isa in Isa::available() {
        let gemm = Gemm::new()
            .with_isa(isa)
            .unwrap()
            .with_parallelism(Parallelism::Sequential);
        let a = crate::Matrix::from_fn(3, 2, |i, j| (i + j) as f32);
        let b = crate::Matrix::from_fn(2, 17, |i, j| (i * j) as f32);
        let mut c = crate::Matrix::from_fn(3, 17, |_, _| f32::NAN);
        gemm.run(
            1.0,
            a.view(),
            b.view().t().to_matrix().view().t(),
            0.0,
            c.view_mut(),
        )
        .unwrap();
        assert!(c.as_slice().iter().all(|x| x.is_finite()), "{isa}");
        assert_eq!(c[(2, 16)], 2.0 * 0.0 + 3.0 * 16.0);
    }
}

#[test]
fn blocked_sizes_cross_every_loop_exact() {
    // Crosses KC, MC and the NR edges of every kernel, packed and in place.
    for isa in Isa::available() {
        for plan in PLANS {
            check_exact(isa, plan, (350, 400, 70), plan.pack_a);
        }
    }
}

#[test]
fn plan_packs_only_when_it_pays() {
    let problem = |m, k, n, csb| Problem {
        m,
        k,
        n,
        alpha: 1.0,
        a: std::ptr::null(),
        rsa: k as isize,
        csa: 1,
        b: std::ptr::null(),
        rsb: if csb == 1 { n as isize } else { 1 },
        csb,
        beta: 0.0,
        c: std::ptr::null_mut(),
        rsc: n as isize,
        csc: 1,
    };
    let plan = |m, k, n, csb| Plan::new::<scalar::ScalarKernel>(&problem(m, k, n, csb));
    // The trainer's forward product with row-major weights^T: B is read in place; and with
    // at most two column tiles (scalar NR = 4) A is not worth packing either.
    assert!(!plan(10, 784, 30, 1).pack_b);
    assert_eq!(plan(10, 784, 8, 1), PLANS[0]);
    // A big square product packs both.
    assert_eq!(plan(1024, 1024, 1024, 1), PLANS[3]);
    // A transposed B must be packed to give the kernel contiguous rows.
    assert!(plan(10, 784, 30, 784).pack_b);
}
