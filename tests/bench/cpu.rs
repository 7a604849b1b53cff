//! CPU time over a measured stretch, from `/proc`: this process (workers or
//! relays, clients, the observer; and the embedded broker when it is the one),
//! the Kafka node's JVM, and the whole machine — on two cores, whether a row
//! is bound by CPU or by waiting shows here.

use std::path::PathBuf;
use std::time::Instant;

use crate::broker::Broker;

/// CPU seconds used over a stretch of wall-clock time.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuUse {
    pub wall_s: f64,
    /// This process.
    pub this_s: f64,
    /// The Kafka node; `None` for the embedded broker (counted in `this_s`).
    pub broker_s: Option<f64>,
    /// Every process on the machine (`/proc/stat`), all cores together.
    pub machine_s: f64,
}

impl CpuUse {
    /// CPU ms per item, this process and the broker.
    pub fn per_item_ms(&self, items: usize) -> (f64, Option<f64>) {
        let per = |s: f64| s * 1000.0 / items as f64;
        (per(self.this_s), self.broker_s.map(per))
    }

    /// CPU ms per second of wall time, this process and the broker.
    pub fn per_s_ms(&self) -> (f64, Option<f64>) {
        let per = |s: f64| s * 1000.0 / self.wall_s;
        (per(self.this_s), self.broker_s.map(per))
    }

    /// The machine's cores busy on average (of `nproc`).
    pub fn cores_busy(&self) -> f64 {
        self.machine_s / self.wall_s
    }

    pub fn add(&mut self, other: CpuUse) {
        self.wall_s += other.wall_s;
        self.this_s += other.this_s;
        self.broker_s = match (self.broker_s, other.broker_s) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
        };
        self.machine_s += other.machine_s;
    }
}

/// A reading at the start of a stretch.
pub struct Cpu {
    at: Instant,
    this: f64,
    broker_pid: Option<PathBuf>,
    broker: Option<f64>,
    machine: f64,
}

impl Cpu {
    pub fn start(broker: &Broker) -> Cpu {
        let broker_pid = broker.pid_file();
        Cpu {
            at: Instant::now(),
            this: process_s("self").unwrap_or(0.0),
            broker: broker_pid.as_ref().and_then(pid_s),
            broker_pid,
            machine: machine_s().unwrap_or(0.0),
        }
    }

    pub fn stop(&self) -> CpuUse {
        CpuUse {
            wall_s: self.at.elapsed().as_secs_f64(),
            this_s: process_s("self").unwrap_or(0.0) - self.this,
            broker_s: self
                .broker_pid
                .as_ref()
                .and_then(|f| Some(pid_s(f)? - self.broker?)),
            machine_s: machine_s().unwrap_or(0.0) - self.machine,
        }
    }
}

fn ticks_per_s() -> f64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as f64
}

/// User + system CPU seconds of the process whose pid `file` holds.
fn pid_s(file: &PathBuf) -> Option<f64> {
    process_s(std::fs::read_to_string(file).ok()?.trim())
}

/// User + system CPU seconds of `/proc/<pid>` (`self` for this process).
fn process_s(pid: &str) -> Option<f64> {
    stat_s(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// User + system CPU seconds of every process now running whose command
/// name is `comm` (as `/proc/<pid>/stat` gives it, e.g. `postgres`).
#[allow(dead_code)]
pub fn named_s(comm: &str) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let head = format!("({comm}");
    dir.filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("stat")).ok())
        .filter(|stat| {
            stat.rsplit_once(')')
                .is_some_and(|(h, _)| h.ends_with(&head))
        })
        .filter_map(|stat| stat_s(&stat))
        .sum()
}

/// User + system CPU seconds from the text of a `/proc/<pid>/stat`.
fn stat_s(stat: &str) -> Option<f64> {
    // The fields after the command name (which may hold spaces), from field 3.
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: f64 = rest.get(11)?.parse().ok()?;
    let stime: f64 = rest.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks_per_s())
}

/// Busy CPU seconds of the whole machine since boot (all but idle and iowait).
fn machine_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: f64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4)?;
    Some((total - idle) / ticks_per_s())
}
