//! The PostgreSQL database the test suites run on, on any machine.
//!
//! [`database_url`] answers, in order:
//! 1. `WARD_TEST_DATABASE_URL`, when set;
//! 2. `postgres://postgres@127.0.0.1:5432/test`, when something answers on that address
//!    (`WARD_TEST_POSTGRES_DEFAULT_ADDR` moves the address, so a test can pretend the
//!    machine runs no server);
//! 3. otherwise a private, throwaway cluster started from the system's PostgreSQL binaries
//!    ([`cluster`]): `initdb` and `postgres` on a free loopback port in a temporary directory,
//!    shared by every test binary of one `cargo test` run and removed when that run ends.
//!
//! When none of these can be had, every PostgreSQL test fails with one line that says what
//! to install. Nothing is skipped silently.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cluster;

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::OnceLock;
use std::time::Duration;

/// Names the database to use instead of looking for one.
pub const URL_VAR: &str = "WARD_TEST_DATABASE_URL";

/// Test-only override of the address where a running server is looked for.
pub const DEFAULT_ADDR_VAR: &str = "WARD_TEST_POSTGRES_DEFAULT_ADDR";

/// Where a PostgreSQL server usually listens.
pub const DEFAULT_ADDR: &str = "127.0.0.1:5432";

/// The URL of the PostgreSQL database of the suites; starts the shared throwaway cluster the
/// first time it is needed.
///
/// # Panics
/// With one line naming what to install or set, when there is no server and no PostgreSQL
/// binaries to start one (or the cluster fails to start). Every test asking after that
/// panics with the same line.
pub fn database_url() -> String {
    static URL: OnceLock<Result<String, String>> = OnceLock::new();
    match URL.get_or_init(resolve) {
        Ok(url) => url.clone(),
        Err(why) => panic!("{why}"),
    }
}

fn resolve() -> Result<String, String> {
    if let Ok(url) = std::env::var(URL_VAR) {
        return Ok(url);
    }
    let addr = std::env::var(DEFAULT_ADDR_VAR).unwrap_or_else(|_| DEFAULT_ADDR.to_owned());
    if answers(&addr) {
        return Ok(format!("postgres://postgres@{addr}/test"));
    }
    cluster::shared(&addr).map(|c| c.url())
}

/// Whether a TCP connection to `addr` succeeds within a second.
pub(crate) fn answers(addr: &str) -> bool {
    let addrs: Vec<SocketAddr> = match addr.to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(_) => return false,
    };
    addrs
        .iter()
        .any(|a| TcpStream::connect_timeout(a, Duration::from_secs(1)).is_ok())
}
