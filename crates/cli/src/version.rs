//! What `ward --version` prints: the version, the git commit it was built from (`build.rs`)
//! and the build's features, so a bug report or an audit names the exact build.

/// Whether aws-lc-rs was built as its FIPS 140-3 validated module (the `fips` feature, which
/// needs CMake and Go to build).
#[cfg(feature = "fips")]
macro_rules! fips {
    () => {
        "FIPS 140-3 module: yes"
    };
}
#[cfg(not(feature = "fips"))]
macro_rules! fips {
    () => {
        "FIPS 140-3 module: no"
    };
}

/// `ward --version`: e.g. `ward 0.1.0 (commit 1a2b3c4d5e6f, FIPS 140-3 module: no)`.
pub(crate) const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("WARD_GIT_COMMIT"),
    ", ",
    fips!(),
    ")"
);
