//! A throwaway PostgreSQL server for a test: `initdb` in a temp dir, `pg_ctl`
//! on a free loopback port, one database `cctv`. Stopped (immediately) and
//! removed when dropped.
//!
//! `initdb` refuses to run as root, so as root the server runs as the
//! `postgres` user the Debian package adds, in a directory it owns.

use std::path::PathBuf;
use std::process::{Command, Output};

pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

impl Postgres {
    /// Starts a server for a test (no fsync: a test's data need not
    /// survive a power cut), or panics saying what is missing.
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// Starts a server that syncs as a production one does, for a
    /// benchmark.
    pub fn start_durable() -> Self {
        Self::start_with(true)
    }

    fn start_with(durable: bool) -> Self {
        let bin = bin_dir().expect(
            "PostgreSQL is not installed (scripts/install-deps.sh installs the `postgresql` package)",
        );
        let dir = tempfile::Builder::new()
            .prefix("cctv-pg")
            .tempdir()
            .unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let owner = as_root().then(postgres_ids).flatten();
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
            std::os::unix::fs::chown(&data, Some(uid), Some(gid)).unwrap();
        }
        let mut pg = Self { dir, bin, port: 0 };
        pg.run(
            "initdb",
            &["-D", &pg.data(), "-A", "trust", "-U", "cctv", "-E", "UTF8"],
        );
        // A port is free when bound; another process may take it between
        // here and the server's start, so try a few.
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let fsync = if durable { "" } else { " -c fsync=off" };
            let options = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1{fsync}",
                pg.data()
            );
            let log = pg.dir.path().join("log");
            let out = pg.output(
                "pg_ctl",
                &[
                    "-D",
                    &pg.data(),
                    "-o",
                    &options,
                    "-l",
                    &log.to_string_lossy(),
                    "-w",
                    "start",
                ],
            );
            if out.status.success() {
                pg.port = port;
                pg.run(
                    "createdb",
                    &[
                        "-h",
                        "127.0.0.1",
                        "-p",
                        &port.to_string(),
                        "-U",
                        "cctv",
                        "cctv",
                    ],
                );
                return pg;
            }
            last = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        panic!("PostgreSQL did not start: {last}");
    }

    /// The URL a panel's `database` setting takes.
    pub fn url(&self) -> String {
        format!("postgres://cctv@127.0.0.1:{}/cctv", self.port)
    }

    /// A fresh, empty database on this server, and its URL.
    pub fn new_database(&self, name: &str) -> String {
        self.run(
            "createdb",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "cctv",
                name,
            ],
        );
        format!("postgres://cctv@127.0.0.1:{}/{name}", self.port)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").to_string_lossy().into_owned()
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let out = self.output(tool, args);
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn output(&self, tool: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(tool);
        let mut cmd = if as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        // Run from a directory the server's user can enter.
        cmd.args(args).current_dir(self.dir.path());
        cmd.output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self.output("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }
}

/// Debian keeps the server's programs in /usr/lib/postgresql/VERSION/bin.
fn bin_dir() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| Some(e.ok()?.path().join("bin")))
        .filter(|b| b.join("initdb").exists())
        .collect();
    found.sort();
    found.pop()
}

fn as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

fn postgres_ids() -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&"postgres")).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
