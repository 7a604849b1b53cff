use crate::Phase;

/// Topic names. The names are a public contract; only the prefix is configurable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    prefix: String,
}

impl Default for Topics {
    fn default() -> Self {
        Topics::new("sprocket.")
    }
}

impl Topics {
    pub fn new(prefix: impl Into<String>) -> Self {
        Topics {
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `sprocket.events`: every transition of every job.
    pub fn events(&self) -> String {
        format!("{}events", self.prefix)
    }

    /// `sprocket.<phase>`: work due for a phase (`sprocket.ingest` is the intake).
    pub fn phase(&self, phase: Phase) -> String {
        format!("{}{}", self.prefix, phase)
    }

    pub fn retry(&self, phase: Phase) -> String {
        format!("{}{}.retry", self.prefix, phase)
    }

    pub fn dlq(&self, phase: Phase) -> String {
        format!("{}{}.dlq", self.prefix, phase)
    }

    /// `sprocket.cancellations`: compacted, keyed by job id; a job's cancellation
    /// request, which every worker reads from the start.
    pub fn cancellations(&self) -> String {
        format!("{}cancellations", self.prefix)
    }

    /// Every topic Sprocket uses, events first.
    pub fn all(&self) -> Vec<String> {
        let mut v = vec![self.events(), self.cancellations()];
        for p in Phase::ALL {
            v.push(self.phase(p));
            v.push(self.retry(p));
            v.push(self.dlq(p));
        }
        v
    }

    /// Which phase's work topic this is, if any.
    pub fn phase_of(&self, topic: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| self.phase(*p) == topic)
    }

    /// The consumer group of a phase's workers.
    pub fn group(phase: Phase) -> String {
        format!("sprocket-{phase}")
    }
}
