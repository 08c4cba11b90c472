//! Helpers shared by the integration tests.

use simdnet::Isa;

/// The instruction sets CI says this machine has (`SIMDNET_EXPECT_ISAS`, comma separated);
/// scalar alone when unset. A test fails if one of them was not exercised.
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
