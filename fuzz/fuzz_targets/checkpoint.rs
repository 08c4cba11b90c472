//! The checkpoint loader on arbitrary bytes.
//!
//! [`Checkpoint::from_bytes`] must never panic, nor allocate more than the input could hold
//! (libFuzzer's memory limit turns an over-allocation into a crash). Most random inputs fail
//! the magic, the length or the checksum; the corpus holds real checkpoints, and this target
//! also re-stamps the checksum of every input that has the magic, so that mutations of the
//! header and the parameters reach the parser behind it. On `Ok`:
//!
//! * the network and the state fit each other: every parameter is finite, the optimizer
//!   state has one array per weight and bias array per moment the optimizer keeps, and the
//!   position lies inside the run;
//! * it round-trips: [`Checkpoint::to_bytes`] gives bytes that decode to an equal checkpoint
//!   and encode to the same bytes again;
//! * the network runs on an input of its size.
//!
//! Any disagreement panics, which libFuzzer reports as a crash.

#![no_main]

use libfuzzer_sys::fuzz_target;
use simdnet::network::checkpoint::{Checkpoint, MAGIC};

/// CRC-32 (IEEE), bit by bit: independent of the library's (flate2's) implementation.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn check(bytes: &[u8]) {
    let checkpoint = match Checkpoint::from_bytes(bytes) {
        Ok(c) => c,
        Err(problem) => {
            assert!(!problem.is_empty());
            return;
        }
    };
    let net = &checkpoint.network;
    let state = &checkpoint.state;
    assert!(net.layers() >= 1);
    for l in 0..net.layers() {
        assert!(net.weights_row_major(l).iter().all(|v| v.is_finite()));
        assert!(net.biases(l).iter().all(|v| v.is_finite()));
    }
    assert!(state.epochs_done() <= checkpoint.config.epochs);
    assert_eq!(state.summary().epochs.len(), state.epochs_done());
    assert!(state.training_examples() > 0);

    let again_bytes = checkpoint.to_bytes();
    let again = Checkpoint::from_bytes(&again_bytes)
        .unwrap_or_else(|e| panic!("a re-encoded checkpoint does not load: {e}"));
    assert_eq!(again, checkpoint);
    assert_eq!(again.to_bytes(), again_bytes);

    let input = vec![0.5f32; net.inputs()];
    let out = net.feedforward(&input).expect("an input of the right size");
    assert_eq!(out.len(), net.outputs());
}

fuzz_target!(|bytes: &[u8]| {
    check(bytes);
    // The same bytes with a correct checksum, to get past it.
    if bytes.len() >= 24 && bytes.starts_with(MAGIC) {
        let mut fixed = bytes.to_vec();
        let body = fixed.len() - 4;
        let crc = crc32(&fixed[..body]);
        fixed[body..].copy_from_slice(&crc.to_le_bytes());
        check(&fixed);
    }
});
