//! A child process once started: running ([`Proc`]: its output lines,
//! signals, exit) or run to its end ([`Finished`]), and the tails of logs.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A finished command: its exit status (`None`: killed at its timeout) and output.
#[derive(Debug)]
pub struct Finished {
    pub command: String,
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// Panics unless the command exited 0; returns its stdout.
    pub fn expect_success(&self) -> &str {
        assert!(self.success(), "`{}` failed\n{self}", self.command);
        &self.stdout
    }
}

impl std::fmt::Display for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status: {:?}\n── stdout ──\n{}\n── stderr (tail) ──\n{}",
            self.status,
            self.stdout,
            last_lines(&self.stderr, 40)
        )
    }
}

/// A running child process; dropping it kills it (SIGKILL) and reaps it.
pub struct Proc {
    pub(super) name: String,
    pub(super) child: Option<Child>,
    pub(super) lines: mpsc::Receiver<String>,
    pub(super) stderr: PathBuf,
}

impl Proc {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn id(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Waits for a stdout line starting with `prefix` and returns the rest of it.
    /// Panics (with the process's stderr) if the process exits or stays silent.
    pub fn wait_for_line(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .lines
                .recv_timeout(left.min(Duration::from_millis(200)))
            {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return rest.to_owned();
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) if left > Duration::ZERO => {
                    if let Some(st) = self.exit_status() {
                        panic!(
                            "{} exited ({st}) before printing {prefix:?}\n{}",
                            self.name,
                            self.stderr_tail(40)
                        );
                    }
                }
                _ => panic!(
                    "{} did not print {prefix:?} within {timeout:?}\n{}",
                    self.name,
                    self.stderr_tail(40)
                ),
            }
        }
    }

    /// The exit status if the process has ended.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().expect("waiting on a child"))
    }

    /// Panics (with its stderr) if the process has ended.
    pub fn assert_running(&mut self) {
        if let Some(st) = self.exit_status() {
            panic!(
                "{} is not running ({st})\n{}",
                self.name,
                self.stderr_tail(40)
            );
        }
    }

    pub fn stderr_tail(&self, lines: usize) -> String {
        tail(&self.stderr, lines)
    }

    /// The `/metrics` URL a process started with `SPROCKET__METRICS__ADDR`
    /// printed on stderr ("metrics on URL"), once it has.
    pub fn metrics_url(&self) -> Option<String> {
        self.stderr_tail(200)
            .lines()
            .find_map(|l| l.strip_prefix("metrics on ").map(|u| u.trim().to_owned()))
    }

    /// Freezes the process (SIGSTOP): it holds its sockets and does nothing,
    /// as a process stalled by a long GC pause or a hung host would.
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Lets a frozen process run on (SIGCONT).
    pub fn thaw(&self) {
        self.signal(libc::SIGCONT);
    }

    /// Asks the process to stop (SIGTERM), as an orchestrator does.
    pub fn terminate(&self) {
        self.signal(libc::SIGTERM);
    }

    /// Waits for the process to exit; `None` if it still runs after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.exit_status() {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal(&self, sig: libc::c_int) {
        if let Some(c) = &self.child {
            // SAFETY: kill(2) on our own child's pid; the child is not reaped
            // while `self.child` holds it, so the pid is not reused.
            let rc = unsafe { libc::kill(c.id() as libc::pid_t, sig) };
            assert_eq!(rc, 0, "signal {sig} to {}", self.name);
        }
    }

    /// SIGKILLs the process and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last `n` lines of a file (its last 64 KiB at most).
pub fn tail(path: &Path, n: usize) -> String {
    let Ok(mut f) = File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    last_lines(&String::from_utf8_lossy(&buf), n)
}

pub(super) fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
