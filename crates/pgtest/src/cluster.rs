//! A throwaway PostgreSQL cluster shared by the test binaries of one `cargo test` run.
//!
//! `cargo test` runs its test binaries one after another as children of one `cargo`
//! process, so the run is that parent process: the cluster lives in
//! `$TMPDIR/ward-test-postgres/run-<parent pid>-<parent start time>/`, the first binary that
//! needs it starts it under a lock file there, later binaries (and other threads) find its
//! port in the `state` file, and a small reaper process started with it waits for the
//! parent to exit, then stops the server and deletes the directory. Run directly from a
//! shell, a test binary's cluster lives until that shell exits.
//!
//! `initdb` refuses to run as root: as root, the server runs as the `postgres` system user
//! (the owner of the cluster's directory); otherwise as the current user. The server listens
//! on 127.0.0.1 only, with trust authentication, no Unix socket and no durability (a test
//! cluster is thrown away; fsync would only slow the suites down).
//!
//! Every start, use and removal is a line in `$TMPDIR/ward-test-postgres/events.log`.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where a binary directory is looked for instead of the system's.
pub const BIN_DIR_VAR: &str = "WARD_TEST_POSTGRES_BIN_DIR";

/// Longest wait for a new server to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running throwaway cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cluster {
    /// The loopback port it listens on.
    pub port: u16,
}

impl Cluster {
    /// URL of its `postgres` database as the `postgres` superuser (trust authentication).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

/// The directory holding every run's cluster and the events log.
pub fn base_dir() -> PathBuf {
    std::env::temp_dir().join("ward-test-postgres")
}

/// The log of every cluster start, use and removal.
pub fn events_log() -> PathBuf {
    base_dir().join("events.log")
}

/// The cluster of this test run, started if no binary of the run has started it yet.
/// `default_addr` is only named in errors (nothing answered there).
///
/// # Errors
/// One line saying what is missing (binaries, the `postgres` user) or what failed.
pub fn shared(default_addr: &str) -> Result<Cluster, String> {
    let binaries = Binaries::find().map_err(|missing| no_server(default_addr, &missing))?;
    let run = Run::current()?;
    let dir = base_dir().join(format!("run-{}-{}", run.pid, run.start));
    make_dir(&base_dir(), 0o755)?;
    make_dir(&dir, 0o755)?;
    let lock = File::create(dir.join("lock")).map_err(|e| io_error("create the lock file", e))?;
    lock.lock()
        .map_err(|e| io_error("lock the cluster directory", e))?;
    let state = dir.join("state");
    if let Some(cluster) = read_state(&state)
        && crate::answers(&format!("127.0.0.1:{}", cluster.port))
    {
        log_event(&format!(
            "used {} port {} by pid {}",
            dir.display(),
            cluster.port,
            std::process::id()
        ));
        return Ok(cluster);
    }
    let (cluster, server_pid) = start(&binaries, &dir)?;
    spawn_reaper(&run, server_pid, &dir)?;
    fs::write(&state, format!("{} {server_pid}\n", cluster.port))
        .map_err(|e| io_error("write the state file", e))?;
    log_event(&format!(
        "started {} port {} server pid {server_pid} for run {} by pid {}",
        dir.display(),
        cluster.port,
        run.pid,
        std::process::id()
    ));
    Ok(cluster)
}

/// The one line a PostgreSQL test fails with when there is no server and no binaries.
fn no_server(default_addr: &str, missing: &str) -> String {
    format!(
        "the PostgreSQL tests need a server: {var} is unset, nothing answers on {default_addr}, \
         and {missing}: install PostgreSQL (Debian/Ubuntu: `apt-get install postgresql`) or \
         point {var} at a database",
        var = crate::URL_VAR,
    )
}

/// `initdb` and `postgres` of one PostgreSQL installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binaries {
    /// Creates the cluster.
    pub initdb: PathBuf,
    /// The server.
    pub postgres: PathBuf,
}

impl Binaries {
    /// Looks in `$WARD_TEST_POSTGRES_BIN_DIR`, else the newest `/usr/lib/postgresql/*/bin`
    /// (Debian's layout), else `PATH`.
    ///
    /// # Errors
    /// What was not found, as a clause of one sentence.
    pub fn find() -> Result<Self, String> {
        if let Some(dir) = std::env::var_os(BIN_DIR_VAR) {
            return Self::in_dir(Path::new(&dir)).ok_or_else(|| {
                format!(
                    "no initdb and postgres in {} ({BIN_DIR_VAR})",
                    Path::new(&dir).display()
                )
            });
        }
        let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let major = e.file_name().to_str()?.parse::<u32>().ok()?;
                Some((major, e.path().join("bin")))
            })
            .collect();
        versions.sort();
        let from_path = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default();
        versions
            .into_iter()
            .rev()
            .map(|(_, dir)| dir)
            .chain(from_path)
            .find_map(|dir| Self::in_dir(&dir))
            .ok_or_else(|| {
                "no PostgreSQL server binaries (initdb, postgres) are installed".to_owned()
            })
    }

    fn in_dir(dir: &Path) -> Option<Self> {
        let initdb = dir.join("initdb");
        let postgres = dir.join("postgres");
        (initdb.is_file() && postgres.is_file()).then_some(Self { initdb, postgres })
    }
}

/// The process whose lifetime bounds the cluster: the test binary's parent.
struct Run {
    pid: u32,
    /// Its start time (clock ticks after boot), so a reused pid is not mistaken for it.
    start: u64,
}

impl Run {
    fn current() -> Result<Self, String> {
        let pid = std::os::unix::process::parent_id();
        let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_err(|e| io_error("read the parent process's start time", e))?;
        let start = start_time(&stat).ok_or("unreadable /proc/<pid>/stat")?;
        Ok(Self { pid, start })
    }
}

/// Field 22 (start time) of a `/proc/<pid>/stat` line. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted after its closing parenthesis.
fn start_time(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(") ")?;
    rest.split(' ').nth(19)?.parse().ok()
}

/// The user the server runs as: as root, the `postgres` system user (`initdb` and
/// `postgres` refuse root); otherwise whoever runs the tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ServerUser {
    uid: u32,
    gid: u32,
}

impl ServerUser {
    fn choose() -> Result<Option<Self>, String> {
        let root = fs::metadata("/proc/self")
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
            .unwrap_or(false);
        if !root {
            return Ok(None);
        }
        let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
        passwd
            .lines()
            .find_map(|line| Self::from_passwd(line, "postgres"))
            .map(Some)
            .ok_or_else(|| {
                "the tests run as root, which initdb refuses, and there is no `postgres` user to \
                 run the throwaway cluster as: run them as another user, or install PostgreSQL \
                 from the distribution (it creates the user)"
                    .to_owned()
            })
    }

    fn from_passwd(line: &str, name: &str) -> Option<Self> {
        let mut fields = line.split(':');
        (fields.next()? == name).then_some(())?;
        let _password = fields.next()?;
        Some(Self {
            uid: fields.next()?.parse().ok()?,
            gid: fields.next()?.parse().ok()?,
        })
    }

    fn apply(self, cmd: &mut Command) -> &mut Command {
        cmd.uid(self.uid).gid(self.gid)
    }
}

/// Creates the cluster in `dir/data` and starts its server; returns it and the server's pid.
fn start(binaries: &Binaries, dir: &Path) -> Result<(Cluster, u32), String> {
    let user = ServerUser::choose()?;
    let data = dir.join("data");
    if data.exists() {
        // A server of this run that died: start over.
        fs::remove_dir_all(&data).map_err(|e| io_error("remove a dead cluster", e))?;
    }
    make_dir(&data, 0o700)?;
    if let Some(u) = user {
        std::os::unix::fs::chown(&data, Some(u.uid), Some(u.gid))
            .map_err(|e| io_error("give the cluster directory to the postgres user", e))?;
    }
    let initdb_log = dir.join("initdb.log");
    let mut initdb = Command::new(&binaries.initdb);
    initdb
        .args(["-D"])
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "-N",
        ])
        .stdin(Stdio::null())
        .stdout(log_file(&initdb_log)?)
        .stderr(log_file(&initdb_log)?);
    if let Some(u) = user {
        u.apply(&mut initdb);
    }
    let status = initdb
        .status()
        .map_err(|e| io_error(&format!("run {}", binaries.initdb.display()), e))?;
    if !status.success() {
        return Err(format!(
            "initdb failed ({status}): {}",
            last_line(&initdb_log)
        ));
    }
    let port = free_port()?;
    let server_log = dir.join("postgres.log");
    let mut server = Command::new(&binaries.postgres);
    server
        .arg("-D")
        .arg(&data)
        .arg("-p")
        .arg(port.to_string())
        .args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "unix_socket_directories=",
            "-c",
            "max_connections=300",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ])
        .stdin(Stdio::null())
        .stdout(log_file(&server_log)?)
        .stderr(log_file(&server_log)?)
        // Its own process group: a Ctrl-C meant for the test run reaches the reaper's watch
        // (the run ends) rather than killing the server under running tests.
        .process_group(0);
    if let Some(u) = user {
        u.apply(&mut server);
    }
    let mut child = server
        .spawn()
        .map_err(|e| io_error(&format!("start {}", binaries.postgres.display()), e))?;
    let deadline = Instant::now() + START_TIMEOUT;
    while !ready(&data) || !crate::answers(&format!("127.0.0.1:{port}")) {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "the throwaway PostgreSQL server exited ({status}): {}",
                last_line(&server_log)
            ));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(format!(
                "the throwaway PostgreSQL server did not accept connections within {}s: {}",
                START_TIMEOUT.as_secs(),
                last_line(&server_log)
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((Cluster { port }, child.id()))
}

/// Whether the server says it accepts connections: the status line of `postmaster.pid`
/// (its eighth) reads `ready` (a port that accepts TCP while the server still starts up
/// answers "the database system is starting up").
fn ready(data: &Path) -> bool {
    fs::read_to_string(data.join("postmaster.pid"))
        .ok()
        .and_then(|pid| pid.lines().nth(7).map(|l| l.trim() == "ready"))
        .unwrap_or(false)
}

/// The reaper: a shell loop in a process group of its own that outlives the test binary,
/// waits for the run's process to end, stops the server (fast shutdown, then a kill after
/// 30 s) and deletes the run's directory.
const REAPER: &str = r#"
run_pid=$1 run_start=$2 server_pid=$3 dir=$4 log=$5
alive() { [ "$(sed 's/^.*) //' "/proc/$run_pid/stat" 2>/dev/null | cut -d' ' -f20)" = "$run_start" ]; }
while alive; do sleep 0.2; done
kill -INT "$server_pid" 2>/dev/null
i=0
while kill -0 "$server_pid" 2>/dev/null && [ "$i" -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
kill -KILL "$server_pid" 2>/dev/null
rm -rf "$dir"
echo "removed $dir" >> "$log"
"#;

fn spawn_reaper(run: &Run, server_pid: u32, dir: &Path) -> Result<(), String> {
    Command::new("sh")
        .arg("-c")
        .arg(REAPER)
        .arg("ward-test-postgres-reaper")
        .arg(run.pid.to_string())
        .arg(run.start.to_string())
        .arg(server_pid.to_string())
        .arg(dir)
        .arg(events_log())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map(drop)
        .map_err(|e| io_error("start the cluster's reaper (sh)", e))
}

fn read_state(path: &Path) -> Option<Cluster> {
    let text = fs::read_to_string(path).ok()?;
    let port = text.split_whitespace().next()?.parse().ok()?;
    Some(Cluster { port })
}

/// A loopback port nothing listens on right now.
fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| io_error("find a free port", e))
}

fn make_dir(path: &Path, mode: u32) -> Result<(), String> {
    fs::create_dir_all(path).map_err(|e| io_error(&format!("create {}", path.display()), e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| io_error(&format!("set the mode of {}", path.display()), e))
}

fn log_file(path: &Path) -> Result<File, String> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| io_error(&format!("open {}", path.display()), e))
}

fn log_event(line: &str) {
    if let Ok(mut f) = log_file(&events_log()) {
        let _ = writeln!(f, "{line}");
    }
}

fn last_line(path: &Path) -> String {
    fs::read_to_string(path)
        .ok()
        .and_then(|t| {
            t.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| format!("(see {})", path.display()))
}

fn io_error(what: &str, e: std::io::Error) -> String {
    format!("could not {what} for the throwaway PostgreSQL cluster: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_counted_after_the_command_name() {
        let stat = "4242 (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 \
                    987654 1000 10 18446744073709551615";
        assert_eq!(start_time(stat), Some(987_654));
        assert_eq!(start_time("garbage"), None);
    }

    #[test]
    fn the_postgres_user_is_read_from_a_passwd_line() {
        let line = "postgres:x:101:104:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash";
        assert_eq!(
            ServerUser::from_passwd(line, "postgres"),
            Some(ServerUser { uid: 101, gid: 104 })
        );
        assert_eq!(ServerUser::from_passwd(line, "post"), None);
        assert_eq!(
            ServerUser::from_passwd("postgres:x:abc:1", "postgres"),
            None
        );
    }

    #[test]
    fn without_binaries_the_failure_is_one_line_naming_what_to_install() {
        let line = no_server(
            "127.0.0.1:5432",
            "no PostgreSQL server binaries are installed",
        );
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("apt-get install postgresql"), "{line}");
        assert!(line.contains("WARD_TEST_DATABASE_URL"), "{line}");
        assert!(line.contains("127.0.0.1:5432"), "{line}");
    }

    #[test]
    fn binaries_are_found_only_where_both_exist() {
        let dir = std::env::temp_dir().join(format!("ward-pgtest-bins-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        assert_eq!(Binaries::in_dir(&dir), None);
        fs::write(dir.join("initdb"), "").unwrap();
        assert_eq!(Binaries::in_dir(&dir), None);
        fs::write(dir.join("postgres"), "").unwrap();
        assert_eq!(
            Binaries::in_dir(&dir),
            Some(Binaries {
                initdb: dir.join("initdb"),
                postgres: dir.join("postgres"),
            })
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
