//! Helpers shared by the integration tests.

use simdnet::Isa;

/// The instruction sets CI says this machine has (`SIMDNET_EXPECT_ISAS`, comma separated);
/// scalar alone when unset. A test fails if one of them was not exercised.
#[allow(dead_code)]
pub fn expected_isas() -> Vec<Isa> {
    match std::env::var("SIMDNET_EXPECT_ISAS") {
        Ok(list) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse()
                    .unwrap_or_else(|e| panic!("SIMDNET_EXPECT_ISAS: {e}"))
            })
            .collect(),
        Err(_) => vec![Isa::Scalar],
    }
}

/// The real MNIST directory: `MNIST_DIR`, else the checkout's `data/mnist` when it holds the
/// training images (where `train --download` puts MNIST); or `None` after a notice on stderr
/// (written past the test harness's capture, so that a skipped check is seen).
#[allow(dead_code)]
pub fn mnist_dir(test: &str) -> Option<std::path::PathBuf> {
    use std::io::Write;
    match std::env::var_os("MNIST_DIR") {
        Some(dir) if !dir.is_empty() => Some(dir.into()),
        _ => {
            let downloaded = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
            if downloaded.join("train-images-idx3-ubyte").is_file() {
                return Some(downloaded);
            }
            let _ = writeln!(
                std::io::stderr(),
                "NOTICE {test}: MNIST_DIR is not set (nor is MNIST in data/mnist); skipping \
                 this real-MNIST test"
            );
            None
        }
    }
}

/// The bytes of an IDX file: the magic (two zero bytes, the element type `code`, the rank),
/// the big-endian dimensions, then `payload`. `code` 0x08 is unsigned bytes, as in MNIST.
#[allow(dead_code)]
pub fn idx(code: u8, dims: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, code, dims.len() as u8];
    for d in dims {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(payload);
    bytes
}
