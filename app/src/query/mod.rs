//! The filter/rule grammar (PocketBase's "fexpr") and what is built from it.

pub mod collections;
pub mod compile;
pub mod fexpr;

/// The property tests' configuration: a fixed seed unless `PROPTEST_RNG_SEED` is set, so
/// every run of the suite tries the same inputs and a failure reproduces (set the variable to
/// explore other seeds).
#[cfg(test)]
pub(crate) fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    let mut c = proptest::test_runner::Config::with_cases(cases);
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        c.rng_seed = proptest::test_runner::RngSeed::Fixed(1);
    }
    c
}
