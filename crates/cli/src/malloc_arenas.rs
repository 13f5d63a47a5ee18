//! A long-running `ward serve` bounds glibc's malloc arenas.
//!
//! glibc gives every thread that allocates under contention an arena of its own (up to eight
//! per core) and rarely hands their free pages back, so a server whose requests hop between
//! tokio's worker threads and SQLite's blocking threads kept growing for as long as a soak
//! ran: +92 % resident memory in 15 minutes and still rising, where the same soak with
//! `MALLOC_ARENA_MAX=2` levelled off after eight minutes (BENCHMARKS.md "Load soak"; mimalloc
//! instead grew faster still). glibc reads that variable only when a process starts, and
//! `unsafe` (for `mallopt`) is forbidden in this workspace, so `ward serve` started without
//! it executes itself again, same pid and arguments, with it set. An operator's own
//! `MALLOC_ARENA_MAX` is respected, and elsewhere than glibc nothing happens.
//!
//! The same restart fixes glibc's mmap threshold at 128 KiB. By default glibc raises that
//! threshold to the size of every large block freed (up to 32 MiB), so after the first big
//! response or dump buffer, later ones come from the heap instead of their own mappings and
//! stay there when freed: resident memory then swings by tens of MiB with the traffic's
//! largest answers. Fixed, a large block is mapped and unmapped with its use, and a freed
//! heap top above the (equally fixed) 128 KiB trim threshold goes back to the system.

/// Arenas for `ward serve`: one per core of the machines Ward is sized for, so allocation
/// from the two tokio workers does not contend while the heap stays compact.
const ARENAS: &str = "2";

/// Blocks from this size up get a mapping of their own, returned when freed (glibc's
/// starting value, kept instead of raised: see the module doc).
const MMAP_THRESHOLD: &str = "131072";

/// Replaces this process with itself under `MALLOC_ARENA_MAX=2` (and a fixed mmap
/// threshold, unless the operator chose one) unless `MALLOC_ARENA_MAX` is already set.
/// Returns (only) when that did not happen, with the reason when it was tried and failed;
/// the server then runs with glibc's defaults.
pub(crate) fn bound_for_serve() -> Option<std::io::Error> {
    if !cfg!(all(target_os = "linux", target_env = "gnu"))
        || std::env::var_os("MALLOC_ARENA_MAX").is_some()
    {
        return None;
    }
    reexec()
}

#[cfg(unix)]
fn reexec() -> Option<std::io::Error> {
    use std::os::unix::process::CommandExt as _;
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return Some(e),
    };
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new(exe);
    if let Some(name) = args.next() {
        command.arg0(name);
    }
    command.args(args).env("MALLOC_ARENA_MAX", ARENAS);
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        command.env("MALLOC_MMAP_THRESHOLD_", MMAP_THRESHOLD);
    }
    Some(command.exec())
}

#[cfg(not(unix))]
fn reexec() -> Option<std::io::Error> {
    None
}
