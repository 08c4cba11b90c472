use simdnet::*;
fn main() {
    for isa in Isa::available() {
        let g = Gemm::new().with_isa(isa).unwrap();
        let mut worst = 0f64;
        for &(m, k, n) in &[
            (1, 1, 1),
            (10, 784, 30),
            (7, 3, 5),
            (100, 784, 100),
            (33, 300, 70),
            (784, 10, 30),
            (30, 10, 784),
            (300, 600, 500),
            (1000, 300, 1000),
        ] {
            for (ta, tb, tc) in [
                (false, false, false),
                (true, false, false),
                (false, true, false),
                (true, true, true),
            ] {
                let a = Matrix::from_fn(m, k, |i, j| ((i * 7 + j * 3) % 11) as f32 - 5.0);
                let at = a.view().t().to_matrix();
                let b = Matrix::from_fn(k, n, |i, j| ((i * 5 + j * 2) % 13) as f32 - 6.0);
                let bt = b.view().t().to_matrix();
                let av = if ta { at.view().t() } else { a.view() };
                let bv = if tb { bt.view().t() } else { b.view() };
                let mut c = Matrix::from_fn(m, n, |_, _| f32::NAN);
                let mut ct = Matrix::from_fn(n, m, |_, _| f32::NAN);
                if tc {
                    g.run(1.0, av, bv, 0.0, ct.view_mut().t()).unwrap();
                    c = ct.view().t().to_matrix();
                } else {
                    g.run(1.0, av, bv, 0.0, c.view_mut()).unwrap();
                }
                for i in 0..m {
                    for j in 0..n {
                        let r: f64 = (0..k).map(|p| a[(i, p)] as f64 * b[(p, j)] as f64).sum();
                        let d = (c[(i, j)] as f64 - r).abs();
                        if !(d <= worst) {
                            worst = d;
                            if d > 0.0 {
                                println!(
                                    "{isa} {m} {k} {n} {ta}{tb}{tc} ({i},{j}) got {} want {r}",
                                    c[(i, j)]
                                );
                            }
                        }
                    }
                }
            }
        }
        println!("{isa}: worst {worst}");
    }
}
