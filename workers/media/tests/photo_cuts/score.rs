//! Precision, recall and F1 of a cut list against the true transitions: a
//! found cut matches a hard cut at most one frame away, or a dissolve when it
//! lies inside the dissolve's blended frames widened by one frame each side.
//! Each transition matches at most one cut; a second cut inside one dissolve
//! is a false cut.

use super::corpus::Transition;

/// The counts behind precision, recall and F1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub hits: usize,
    pub false_cuts: usize,
    pub missed: usize,
}

impl Counts {
    pub fn precision(&self) -> f64 {
        ratio(self.hits, self.hits + self.false_cuts)
    }

    pub fn recall(&self) -> f64 {
        ratio(self.hits, self.hits + self.missed)
    }

    /// `2·hits / (2·hits + false + missed)`; 1 when there is nothing to find
    /// and nothing was found.
    pub fn f1(&self) -> f64 {
        ratio(2 * self.hits, 2 * self.hits + self.false_cuts + self.missed)
    }

    pub fn add(&mut self, other: Counts) {
        self.hits += other.hits;
        self.false_cuts += other.false_cuts;
        self.missed += other.missed;
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

/// Matches `found` (ascending) against `truth` with ±1 frame of tolerance.
pub fn score(found: &[u64], truth: &[Transition]) -> Counts {
    let mut taken = vec![false; truth.len()];
    let mut counts = Counts::default();
    for &cut in found {
        let hit = truth
            .iter()
            .enumerate()
            .filter(|(i, t)| !taken[*i] && t.from.saturating_sub(1) <= cut && cut <= t.to + 1)
            .min_by_key(|(_, t)| t.from.abs_diff(cut).min(t.to.abs_diff(cut)))
            .map(|(i, _)| i);
        match hit {
            Some(i) => {
                taken[i] = true;
                counts.hits += 1;
            }
            None => counts.false_cuts += 1,
        }
    }
    counts.missed = taken.iter().filter(|t| !**t).count();
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(at: u64) -> Transition {
        Transition { from: at, to: at }
    }

    #[test]
    fn cuts_match_within_a_frame_and_dissolves_within_their_window() {
        let truth = [cut(100), Transition { from: 200, to: 224 }];
        let perfect = score(&[101, 210], &truth);
        assert_eq!(
            perfect,
            Counts {
                hits: 2,
                false_cuts: 0,
                missed: 0
            }
        );
        assert_eq!(perfect.f1(), 1.0);
        // 98 is two frames early; 199 and 225 are the dissolve's edges ±1;
        // a second cut in one dissolve is false.
        assert_eq!(
            score(&[98, 199, 225], &truth),
            Counts {
                hits: 1,
                false_cuts: 2,
                missed: 1
            }
        );
        let none = score(&[], &truth);
        assert_eq!((none.missed, none.f1(), none.precision()), (2, 0.0, 1.0));
        let half = score(&[100, 150], &truth);
        assert_eq!(
            (half.precision(), half.recall(), half.f1()),
            (0.5, 0.5, 0.5)
        );
    }
}
