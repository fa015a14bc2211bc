//! Drives `make up` / `make down` with a test's own port, run directory, databases and
//! broker settings, and stops what it started when dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A system started through the Makefile, as a user would.
pub struct MakeSystem {
    env: Vec<(String, String)>,
    run_dir: PathBuf,
    pub port: u16,
}

impl MakeSystem {
    /// `env` is added to what `make` sees; this adds RUN_DIR, GATEWAY_PORT, a dev build,
    /// the native path and a cheap bcrypt.
    pub fn new(mut env: Vec<(String, String)>) -> MakeSystem {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let run_dir =
            std::env::temp_dir().join(format!("shop-make-{}", uuid::Uuid::new_v4().simple()));
        env.extend([
            ("RUN_DIR".to_owned(), run_dir.display().to_string()),
            ("GATEWAY_PORT".to_owned(), port.to_string()),
            ("BUILD_PROFILE".to_owned(), "dev".to_owned()),
            ("SHOP_NATIVE".to_owned(), "1".to_owned()),
            ("BCRYPT_COST".to_owned(), "4".to_owned()),
        ]);
        MakeSystem { env, run_dir, port }
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// Runs `make -s <target>` in the workspace.
    pub fn make(&self, target: &str) -> Output {
        Command::new("make")
            .arg("-s")
            .arg(target)
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("run make")
    }

    /// Pids recorded by `make up`.
    pub fn pids(&self) -> Vec<i32> {
        std::fs::read_dir(self.run_dir.join("pids"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .filter_map(|p| p.trim().parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn log(&self, process: &str) -> String {
        std::fs::read_to_string(self.run_dir.join("logs").join(format!("{process}.log")))
            .unwrap_or_default()
    }
}

impl Drop for MakeSystem {
    fn drop(&mut self) {
        // Whatever happened, stop what we started.
        let _ = self.make("down");
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

/// Whether a process is alive (and not a zombie).
pub fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

/// stdout and stderr of a finished command, for messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
