//! simdnet as a Rust backend: `simdnet::sgemm` in place of `matrixmultiply::sgemm` (same
//! signature, one import changed), the safe strided API, and inference on a saved network.
//!
//! `cargo run --release --example backend`

use simdnet::network::{Cost, Init, Network};
use simdnet::{Gemm, MatMut, MatRef, Matrix, Parallelism};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (m, k, n) = (100, 784, 100);
    let a = Matrix::from_fn(m, k, |i, j| ((i * 7 + j * 3) % 17) as f32 / 17.0 - 0.5);
    let b = Matrix::from_fn(k, n, |i, j| ((i * 5 + j * 11) % 13) as f32 / 13.0 - 0.5);

    // 1. The raw drop-in: `use matrixmultiply::sgemm;` becomes `use simdnet::sgemm;` and every
    //    call stays as it is (row and column strides in elements, alpha, beta).
    let mut c_mm = vec![0.0f32; m * n];
    let mut c_simd = vec![0.0f32; m * n];
    // SAFETY: A is m x k and B k x n, dense row-major; C is m x n row-major, distinct from both.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_slice().as_ptr(),
            k as isize,
            1,
            b.as_slice().as_ptr(),
            n as isize,
            1,
            0.0,
            c_mm.as_mut_ptr(),
            n as isize,
            1,
        );
        simdnet::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_slice().as_ptr(),
            k as isize,
            1,
            b.as_slice().as_ptr(),
            n as isize,
            1,
            0.0,
            c_simd.as_mut_ptr(),
            n as isize,
            1,
        );
    }
    let max_diff = c_mm
        .iter()
        .zip(&c_simd)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    println!("sgemm ({m},{k},{n}): simdnet vs matrixmultiply, max |difference| {max_diff:.2e}");
    assert!(max_diff < 1e-3);

    // 2. The safe API: checked views, shapes verified, errors instead of undefined behaviour.
    //    A column-major C is just another stride; C^T = B^T A^T costs no copy either.
    let mut c_col = vec![0.0f32; m * n];
    let gemm = Gemm::new().with_parallelism(Parallelism::Sequential);
    gemm.run(
        1.0,
        a.view(),
        b.view(),
        0.0,
        MatMut::from_col_major(&mut c_col, m, n)?,
    )?;
    let c_col = MatRef::from_col_major(&c_col, m, n)?;
    assert!((0..m).all(|i| (0..n).all(|j| (c_col.get(i, j) - c_simd[i * n + j]).abs() < 1e-4)));
    let wrong = gemm.run(1.0, a.view(), a.view(), 0.0, Matrix::zeros(m, n).view_mut());
    println!(
        "safe API: column-major C agrees; a bad shape gives: {}",
        wrong.unwrap_err()
    );

    // 3. Inference: load a network2 JSON model, run a batch, predict classes.
    let dir = std::env::temp_dir().join(format!("simdnet-backend-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("net.json");
    Network::new(&[784, 30, 10], Cost::CrossEntropy, Init::Default, 1)?.save(&path)?;
    let net = Network::load(&path)?;
    let rows = 4;
    let inputs: Vec<f32> = (0..rows * 784).map(|i| (i % 255) as f32 / 255.0).collect();
    let mut outputs = vec![0.0f32; rows * net.outputs()];
    net.feedforward_batch(&inputs, rows, &mut outputs)?;
    let mut classes = vec![0u32; rows];
    net.predict_batch(&inputs, rows, &mut classes)?;
    println!(
        "inference: {rows} rows of {} inputs -> classes {classes:?}",
        net.inputs()
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
