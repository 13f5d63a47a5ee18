//! Free space where the data lives: SQLite cannot commit on a full disk, and Ward fails
//! closed (a read whose audit event cannot be written is refused).

use crate::{Context, Finding};

const MIB: u64 = 1024 * 1024;

/// Fails below 1 % or 256 MiB free, warns below 5 % or 2 GiB.
pub(crate) fn check(ctx: &Context) -> Finding {
    const NAME: &str = "disk_space";
    let Some(dir) = &ctx.setup.data_dir else {
        return Finding::ok(NAME, "no data directory is configured");
    };
    let stat = match rustix::fs::statvfs(dir) {
        Ok(s) => s,
        Err(e) => {
            return Finding::fail(
                NAME,
                format!("the free space of {} cannot be read: {e}", dir.display()),
                "check that the data directory exists and is readable",
            );
        }
    };
    let free = stat.f_bavail.saturating_mul(stat.f_frsize);
    let total = stat.f_blocks.saturating_mul(stat.f_frsize).max(1);
    let percent = free.saturating_mul(100) / total;
    let said = format!(
        "{} MiB free of {} MiB ({percent} %) on the file system of {}",
        free / MIB,
        total / MIB,
        dir.display()
    );
    let fix = "free space or grow the file system: when it fills, every write and every audited \
               read is refused";
    if free < 256 * MIB || percent < 1 {
        Finding::fail(NAME, said, fix)
    } else if free < 2048 * MIB || percent < 5 {
        Finding::warn(NAME, said, fix)
    } else {
        Finding::ok(NAME, said)
    }
}
