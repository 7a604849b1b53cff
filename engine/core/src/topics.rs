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

    /// `sprocket.webhooks`: webhook deliveries due (each event once per
    /// webhook that wants it, then each retry), keyed by webhook id.
    pub fn webhooks(&self) -> String {
        format!("{}webhooks", self.prefix)
    }

    /// `sprocket.webhooks.dlq`: deliveries given up on, with the reason.
    pub fn webhooks_dlq(&self) -> String {
        format!("{}webhooks.dlq", self.prefix)
    }

    /// `sprocket.recipes`: stored recipes, one record per version, keyed by
    /// the recipe's name; kept for ever (not compacted: every version stays).
    pub fn recipes(&self) -> String {
        format!("{}recipes", self.prefix)
    }

    /// Every topic Sprocket uses, events first.
    pub fn all(&self) -> Vec<String> {
        let mut v = vec![self.events(), self.cancellations()];
        for p in Phase::ALL {
            v.push(self.phase(p));
            v.push(self.retry(p));
            v.push(self.dlq(p));
        }
        v.push(self.webhooks());
        v.push(self.webhooks_dlq());
        v.push(self.recipes());
        v
    }

    /// Which phase's work topic this is, if any.
    pub fn phase_of(&self, topic: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| self.phase(*p) == topic)
    }

    /// The consumer group of a phase's workers: `sprocket-<phase>` under the
    /// default prefix. Groups carry the prefix (its trailing `.`, `-` or `_`
    /// dropped), so two environments with their own prefixes can share one
    /// cluster: prefix `staging.sprocket.` gives `staging.sprocket-render`.
    pub fn group(&self, phase: Phase) -> String {
        self.named(phase.as_str())
    }

    /// A name of Sprocket's own (a consumer group, a transactional id's stem)
    /// under this prefix: `sprocket-<name>` under the default one.
    pub fn named(&self, name: &str) -> String {
        let stem = self.prefix.trim_end_matches(['.', '-', '_']);
        let stem = if stem.is_empty() { "sprocket" } else { stem };
        format!("{stem}-{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_carry_the_prefix() {
        assert_eq!(Topics::default().group(Phase::Render), "sprocket-render");
        assert_eq!(
            Topics::new("staging.sprocket.").group(Phase::Ingest),
            "staging.sprocket-ingest"
        );
        assert_eq!(Topics::new("").group(Phase::Archive), "sprocket-archive");
        assert_eq!(Topics::new("a_").named("projector"), "a-projector");
    }
}
