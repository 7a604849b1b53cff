//! Sprocket as separate processes: the `sprocket` binary, child processes that
//! never outlive the test (killed with SIGKILL when their guard drops, and sent
//! SIGKILL by the kernel if the test process dies first), and their logs.
//! Starting them is here ([`Launcher`]); a running or finished one is
//! [`child`]'s.

mod child;

pub use child::{tail, Finished, Proc};

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The `sprocket` binary built next to this test executable
/// (`target/debug/deps/<test>` → `target/debug/sprocket`).
pub fn sprocket_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable lives in target/<profile>/deps");
    let bin = profile_dir.join(format!("sprocket{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build -p sprocket --bin sprocket` first",
        bin.display()
    );
    bin
}

/// The long options the `sprocket` command that `args` names accepts (its
/// subcommands followed as far as `args` names them), read from the CLI's
/// own definition.
fn options_of(args: &[&str]) -> Vec<String> {
    use clap::CommandFactory;
    let mut cmd = sprocket::cli::Cli::command();
    for a in args {
        match cmd.find_subcommand(a) {
            Some(sub) => cmd = sub.clone(),
            None => break,
        }
    }
    cmd.get_arguments()
        .filter_map(|a| a.get_long().map(str::to_owned))
        .collect()
}

/// Starts `sprocket` commands with a fixed set of leading arguments, writing each
/// process's stdout and stderr to `<logs>/<name>.{stdout,stderr}`. When dropped
/// during a panic it prints the tail of every log, so a failing test shows what
/// each process said.
pub struct Launcher {
    bin: PathBuf,
    logs: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
}

impl Launcher {
    /// `logs` must exist.
    pub fn new(logs: &Path) -> Launcher {
        Launcher {
            bin: sprocket_bin(),
            logs: logs.to_owned(),
            args: Vec::new(),
            envs: vec![("SPROCKET_LOG".into(), log_filter())],
        }
    }

    /// Adds an option given to every command that takes it (`--kafka`,
    /// `--database`, `--config`, …: server commands take what they read).
    pub fn arg(&mut self, flag: &str, value: &str) -> &mut Self {
        self.args.extend([flag.to_owned(), value.to_owned()]);
        self
    }

    /// Gives a leading argument another value; returns the old one.
    pub fn replace_arg(&mut self, flag: &str, value: &str) -> Option<String> {
        let i = self.args.iter().position(|a| a == flag)?;
        Some(std::mem::replace(&mut self.args[i + 1], value.to_owned()))
    }

    /// Adds an environment variable set for every command.
    pub fn env(&mut self, key: &str, value: &str) -> &mut Self {
        self.envs.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn logs(&self) -> &Path {
        &self.logs
    }

    /// The same leading arguments and environment, logging into `logs`.
    pub fn with_logs(&self, logs: &Path) -> Launcher {
        Launcher {
            bin: self.bin.clone(),
            logs: logs.to_owned(),
            args: self.args.clone(),
            envs: self.envs.clone(),
        }
    }

    /// A command for `sprocket <args> <the options it takes>` that sees no
    /// `SPROCKET…` configuration from the test's own environment.
    fn command(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(&self.bin);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("SPROCKET") {
                cmd.env_remove(key);
            }
        }
        cmd.args(args).stdin(Stdio::null());
        let takes = options_of(args);
        for pair in self.args.chunks(2) {
            if takes.iter().any(|t| pair[0].strip_prefix("--") == Some(t)) {
                cmd.args(pair);
            }
        }
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        die_with_parent(&mut cmd);
        cmd
    }

    fn log_files(&self, name: &str) -> (PathBuf, PathBuf) {
        (
            self.logs.join(format!("{name}.stdout")),
            self.logs.join(format!("{name}.stderr")),
        )
    }

    /// Starts a long-running `sprocket` process; `name` names its logs.
    pub fn spawn(&self, name: &str, args: &[&str]) -> Proc {
        self.spawn_env(name, args, &[])
    }

    /// Like `spawn`, with extra environment variables for this process only.
    pub fn spawn_env(&self, name: &str, args: &[&str], env: &[(&str, &str)]) -> Proc {
        self.spawn_command(name, args, self.command(args, env))
    }

    /// Like `spawn_env`, with the process — and whatever it starts, ffmpeg
    /// included — allowed to run only on `cpus` (as a replica limited to that
    /// many CPUs would be).
    pub fn spawn_pinned(
        &self,
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
        cpus: &[usize],
    ) -> Proc {
        let mut cmd = self.command(args, env);
        pin_to_cpus(&mut cmd, cpus);
        self.spawn_command(name, args, cmd)
    }

    fn spawn_command(&self, name: &str, args: &[&str], mut cmd: Command) -> Proc {
        let (out_path, err_path) = self.log_files(name);
        let stderr = File::create(&err_path).expect("stderr log");
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("starting sprocket {args:?}: {e}"));
        // Copy stdout to its log, and hand each line to whoever waits for one.
        let stdout = child.stdout.take().expect("piped stdout");
        let (lines_tx, lines) = mpsc::channel();
        let mut out_log = File::create(&out_path).expect("stdout log");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(out_log, "{line}");
                let _ = lines_tx.send(line);
            }
        });
        Proc {
            name: name.to_owned(),
            child: Some(child),
            lines,
            stderr: err_path,
        }
    }

    /// Runs a `sprocket` command to its end, killing it after `timeout`.
    /// Polls, so it can be awaited on the test's own thread.
    pub async fn run(&self, name: &str, args: &[&str], timeout: Duration) -> Finished {
        self.run_env(name, args, &[], timeout).await
    }

    /// Like [`run`](Self::run), with extra environment variables.
    pub async fn run_env(
        &self,
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
        timeout: Duration,
    ) -> Finished {
        let (out_path, err_path) = self.log_files(name);
        let mut child = self
            .command(args, env)
            .stdout(File::create(&out_path).expect("stdout log"))
            .stderr(File::create(&err_path).expect("stderr log"))
            .spawn()
            .unwrap_or_else(|e| panic!("starting sprocket {args:?}: {e}"));
        let start = Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().expect("waiting on a child") {
                break Some(st);
            }
            if start.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let fin = Finished {
            command: format!("sprocket {}", args.join(" ")),
            status,
            stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
            stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
        };
        assert!(
            fin.status.is_some(),
            "`{}` ran past {timeout:?}\n{fin}",
            fin.command
        );
        fin
    }
}

impl Drop for Launcher {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let mut logs: Vec<PathBuf> = std::fs::read_dir(&self.logs)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        logs.sort();
        for log in logs {
            let tail = tail(&log, 40);
            if !tail.trim().is_empty() {
                eprintln!("──── {} (last lines) ────\n{tail}", log.display());
            }
        }
    }
}

/// The log filter for children: `SPROCKET_LOG` if the test was given one.
fn log_filter() -> String {
    std::env::var("SPROCKET_LOG").unwrap_or_else(|_| "info,rdkafka=warn".into())
}

/// Asks the kernel to SIGKILL the child when the thread that started it ends, so
/// children cannot outlive a test process that is itself killed.
fn die_with_parent(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The CPUs this process may run on, in order.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; the kernel fills it in.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    if unsafe { libc::sched_getaffinity(0, size, &mut set) } != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

/// Restricts the child (and its children) to `cpus`.
fn pin_to_cpus(cmd: &mut Command, cpus: &[usize]) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: sched_setaffinity is async-signal-safe and only reads `set`, a
    // copy owned by the closure.
    unsafe {
        cmd.pre_exec(move || {
            let size = std::mem::size_of::<libc::cpu_set_t>();
            if libc::sched_setaffinity(0, size, &set) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
