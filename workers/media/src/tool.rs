//! Running ffmpeg and ffprobe as supervised child processes.
//!
//! stdout is read line by line as it comes (ffprobe's JSON, ffmpeg's `-progress`
//! blocks), the tail of stderr is kept for error messages, and the child is killed
//! and reaped when the work is cancelled, runs past its deadline or falls silent,
//! so no ffmpeg outlives its job and none is left a zombie.

use crate::MediaError;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often the cancel flag and deadlines are checked while the child is silent.
const POLL: Duration = Duration::from_millis(50);
/// How much of stderr is kept for error messages.
const STDERR_TAIL_BYTES: usize = 4096;

/// Limits on how long a child may run.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Deadlines {
    /// Kill the child when it has run this long.
    pub total: Option<Duration>,
    /// Kill the child when it has written nothing to stdout for this long.
    pub idle: Option<Duration>,
}

/// How a supervised child ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// It exited on its own.
    Exited {
        status: ExitStatus,
        stderr_tail: String,
    },
    /// The cancel flag was raised; the child was killed and reaped.
    Cancelled,
    /// A deadline passed; the child was killed and reaped. The text says which.
    TimedOut(String),
}

/// A running ffmpeg/ffprobe. Dropping it kills and reaps the child if it still runs.
pub(crate) struct Supervised {
    tool: &'static str,
    path: PathBuf,
    child: Child,
    lines: Receiver<String>,
    stdout_reader: Option<JoinHandle<()>>,
    stderr_reader: Option<JoinHandle<String>>,
}

/// A path as an ffmpeg URL that is always read as a local file, even when the
/// name starts with `-` or holds a `:` that would otherwise select a protocol.
pub(crate) fn file_url(path: &Path) -> OsString {
    let mut url = OsString::from("file:");
    url.push(path.as_os_str());
    url
}

impl Supervised {
    /// Starts `command` with stdin closed and stdout/stderr captured. A failure to
    /// start the tool at all is [`MediaError::Tool`] (retryable: the machine, not
    /// the media, is at fault).
    pub fn spawn(
        tool: &'static str,
        path: &Path,
        mut command: Command,
    ) -> Result<Self, MediaError> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|e| MediaError::Tool {
            tool,
            path: path.to_path_buf(),
            message: format!("could not start {tool}: {e}"),
        })?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, lines) = mpsc::channel();
        let stdout_reader = std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf);
                        if tx
                            .send(line.trim_end_matches(['\n', '\r']).to_owned())
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            }
        });
        let stderr_reader = std::thread::spawn(move || read_tail(stderr));
        Ok(Supervised {
            tool,
            path: path.to_path_buf(),
            child,
            lines,
            stdout_reader: Some(stdout_reader),
            stderr_reader: Some(stderr_reader),
        })
    }

    /// The child's process id.
    #[cfg(test)]
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Feeds each stdout line to `on_line` until the child exits, the cancel flag
    /// is raised or a deadline passes. The flag is checked at least every 50 ms.
    pub fn wait(
        &mut self,
        cancel: Option<&CancellationToken>,
        deadlines: Deadlines,
        on_line: &mut dyn FnMut(&str),
    ) -> Result<Ended, MediaError> {
        let started = Instant::now();
        let mut last_output = started;
        let mut stdout_open = true;
        // Once stdout has closed the child is about to exit: look again soon,
        // then less often (a fixed 50 ms here cost a short run like a
        // poster a fifth of its time).
        let mut reap_after = Duration::from_millis(1);
        loop {
            if cancel.is_some_and(|c| c.is_cancelled()) {
                self.kill_and_reap();
                return Ok(Ended::Cancelled);
            }
            if let Some(total) = deadlines.total.filter(|t| started.elapsed() > *t) {
                self.kill_and_reap();
                let secs = total.as_secs_f64();
                return Ok(Ended::TimedOut(format!("still running after {secs:.0} s")));
            }
            if let Some(idle) = deadlines.idle.filter(|t| last_output.elapsed() > *t) {
                self.kill_and_reap();
                let secs = idle.as_secs_f64();
                return Ok(Ended::TimedOut(format!("no progress for {secs:.0} s")));
            }
            if stdout_open {
                match self.lines.recv_timeout(POLL) {
                    Ok(line) => {
                        on_line(&line);
                        last_output = Instant::now();
                        continue;
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => stdout_open = false,
                }
            } else {
                std::thread::sleep(reap_after);
                reap_after = (reap_after * 2).min(POLL);
            }
            let exited = self
                .child
                .try_wait()
                .map_err(|e| self.error(format!("wait: {e}")))?;
            if let Some(status) = exited {
                // The pipe is closed now: take whatever was still buffered.
                for line in self.lines.iter() {
                    on_line(&line);
                }
                let stderr_tail = self.join_readers();
                return Ok(Ended::Exited {
                    status,
                    stderr_tail,
                });
            }
        }
    }

    /// The stderr tail of a run that exited successfully; how any other
    /// ending of it reads as an error.
    pub fn succeeded(&self, ended: Ended) -> Result<String, MediaError> {
        match ended {
            Ended::Exited {
                status,
                stderr_tail,
            } if status.success() => Ok(stderr_tail),
            Ended::Exited {
                status,
                stderr_tail,
            } => Err(self.error(format!("{status}: {}", last_line(&stderr_tail)))),
            Ended::Cancelled => Err(MediaError::Cancelled),
            Ended::TimedOut(why) => Err(self.error(why)),
        }
    }

    /// A [`MediaError::Tool`] for this run.
    pub fn error(&self, message: String) -> MediaError {
        MediaError::Tool {
            tool: self.tool,
            path: self.path.clone(),
            message,
        }
    }

    fn kill_and_reap(&mut self) {
        // SIGKILL: the output is thrown away anyway, and it cannot be ignored.
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.join_readers();
    }

    fn join_readers(&mut self) -> String {
        if let Some(h) = self.stdout_reader.take() {
            let _ = h.join();
        }
        self.stderr_reader
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill_and_reap();
        }
    }
}

/// Reads `stream` to its end and returns its last few KiB as text.
fn read_tail(mut stream: impl Read) -> String {
    let mut tail: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                tail.extend_from_slice(&chunk[..n]);
                if tail.len() > 2 * STDERR_TAIL_BYTES {
                    tail.drain(..tail.len() - STDERR_TAIL_BYTES);
                }
            }
        }
    }
    if tail.len() > STDERR_TAIL_BYTES {
        tail.drain(..tail.len() - STDERR_TAIL_BYTES);
    }
    String::from_utf8_lossy(&tail).trim().to_owned()
}

/// The last non-empty line of a stderr tail, for short human messages.
pub(crate) fn last_line(text: &str) -> &str {
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c").arg(script);
        c
    }

    fn is_gone(pid: u32) -> bool {
        // A zombie keeps its /proc entry until reaped; a reaped child has none.
        !Path::new(&format!("/proc/{pid}")).exists()
    }

    #[test]
    fn lines_and_stderr_tail_are_collected() {
        let mut run = Supervised::spawn(
            "sh",
            Path::new("x"),
            sh("echo one; echo two; echo oops >&2; exit 3"),
        )
        .unwrap();
        let mut lines = Vec::new();
        let ended = run
            .wait(None, Deadlines::default(), &mut |l| {
                lines.push(l.to_owned())
            })
            .unwrap();
        assert_eq!(lines, ["one", "two"]);
        match ended {
            Ended::Exited {
                status,
                stderr_tail,
            } => {
                assert_eq!(status.code(), Some(3));
                assert_eq!(stderr_tail, "oops");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn cancel_kills_and_reaps_quickly() {
        let mut run = Supervised::spawn("sh", Path::new("x"), sh("exec sleep 30")).unwrap();
        let pid = run.id();
        let cancel = CancellationToken::new();
        cancel.cancel();
        let t = Instant::now();
        let ended = run
            .wait(Some(&cancel), Deadlines::default(), &mut |_| {})
            .unwrap();
        assert!(matches!(ended, Ended::Cancelled));
        assert!(t.elapsed() < Duration::from_secs(1));
        assert!(is_gone(pid), "child {pid} still present");
    }

    #[test]
    fn deadlines_kill_and_reap() {
        let mut run = Supervised::spawn("sh", Path::new("x"), sh("exec sleep 30")).unwrap();
        let pid = run.id();
        let idle = Deadlines {
            total: None,
            idle: Some(Duration::from_millis(200)),
        };
        let ended = run.wait(None, idle, &mut |_| {}).unwrap();
        assert!(
            matches!(ended, Ended::TimedOut(ref m) if m.contains("no progress")),
            "{ended:?}"
        );
        assert!(is_gone(pid));

        let mut run = Supervised::spawn(
            "sh",
            Path::new("x"),
            sh("while true; do echo tick; sleep 0.05; done"),
        )
        .unwrap();
        let total = Deadlines {
            total: Some(Duration::from_millis(300)),
            idle: Some(Duration::from_secs(5)),
        };
        let ended = run.wait(None, total, &mut |_| {}).unwrap();
        assert!(
            matches!(ended, Ended::TimedOut(ref m) if m.contains("still running")),
            "{ended:?}"
        );
    }

    #[test]
    fn missing_program_is_a_retryable_tool_error() {
        let err = Supervised::spawn(
            "nope",
            Path::new("x"),
            Command::new("/nonexistent/sprocket-tool"),
        )
        .err()
        .unwrap();
        assert!(matches!(err, MediaError::Tool { .. }));
        assert!(err.retryable());
    }

    #[test]
    fn file_url_and_last_line() {
        assert_eq!(
            file_url(Path::new("/a:b/-c.mp4")),
            OsString::from("file:/a:b/-c.mp4")
        );
        assert_eq!(last_line("a\nb: bad thing\n\n"), "b: bad thing");
    }
}
