//! The open-model schedule: *when* each record is meant to be sent.
//!
//! The fleet shares one global sequence of intended send times. Send `j` is due when the
//! integral of the target rate since the start reaches `j`: for a constant rate `r` that is
//! `start + j * 1e9 / r` nanoseconds, computed from `j` directly every time, so no rounding
//! accumulates however long the run. Agent `slot` of `of` takes the sends `j` with
//! `j % of == slot`, so the shares of a fleet always sum exactly to the total — for ramps and
//! staircases too — and a re-split while running starts a new partition at a global index.
//!
//! Pure and clock-free: callers pass nanosecond offsets from the run's start. No I/O here.

use std::time::Duration;

use crate::spec::{LoadSpec, LoadStep};

/// Rates are kept in milli-records per second so that fractional rates (`0.5/s`) stay exact
/// integers on the constant-rate path.
const MILLI: u128 = 1_000;
const NANOS_PER_SEC: u128 = 1_000_000_000;

/// One piece of the fleet-wide rate profile.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    /// `rate` records per second for `len`.
    Constant { rate: f64, len: Duration },
    /// From `from` to `to` records per second, linearly, over `len`.
    Ramp { from: f64, to: f64, len: Duration },
}

impl Segment {
    fn len_ns(&self) -> u128 {
        match self {
            Segment::Constant { len, .. } | Segment::Ramp { len, .. } => len.as_nanos(),
        }
    }

    /// Expected records in the first `t_ns` nanoseconds of this segment (the integral of its rate).
    fn integral(&self, t_ns: u128) -> f64 {
        let t = t_ns as f64 / 1e9;
        match *self {
            Segment::Constant { rate, .. } => rate * t,
            Segment::Ramp { from, to, len } => {
                let span = len.as_secs_f64();
                if span == 0.0 {
                    return 0.0;
                }
                from * t + (to - from) * t * t / (2.0 * span)
            }
        }
    }

    /// The part of this segment from local `lo_ns` to `hi_ns`.
    fn piece(&self, lo_ns: u128, hi_ns: u128) -> Segment {
        let len = duration_ns(hi_ns.saturating_sub(lo_ns));
        match *self {
            Segment::Constant { rate, .. } => Segment::Constant { rate, len },
            Segment::Ramp { .. } => Segment::Ramp {
                from: self.rate_at(lo_ns),
                to: self.rate_at(hi_ns),
                len,
            },
        }
    }

    fn rate_at(&self, t_ns: u128) -> f64 {
        match *self {
            Segment::Constant { rate, .. } => rate,
            Segment::Ramp { from, to, len } => {
                let span = len.as_nanos();
                if span == 0 {
                    return to;
                }
                from + (to - from) * (t_ns.min(span) as f64 / span as f64)
            }
        }
    }
}

/// The fleet-wide target rate over time: segments back to back from offset 0.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    segments: Vec<Segment>,
    /// First global send index due within each segment: the integral so far, rounded up.
    base_index: Vec<u64>,
    /// Exact (real-valued) integral at the start of each segment.
    base_integral: Vec<f64>,
    start_ns: Vec<u128>,
    end_ns: u128,
}

impl Profile {
    /// Builds a profile. Negative or non-finite rates are treated as zero: validation in
    /// `barrage-crds` rejects them long before they get here.
    pub fn new(segments: Vec<Segment>) -> Self {
        let segments: Vec<Segment> = segments
            .into_iter()
            .map(|s| match s {
                Segment::Constant { rate, len } => Segment::Constant {
                    rate: sane(rate),
                    len,
                },
                Segment::Ramp { from, to, len } => Segment::Ramp {
                    from: sane(from),
                    to: sane(to),
                    len,
                },
            })
            .collect();
        let mut base_index = Vec::with_capacity(segments.len());
        let mut base_integral = Vec::with_capacity(segments.len());
        let mut start_ns = Vec::with_capacity(segments.len());
        let mut at = 0u128;
        let mut integral = 0.0f64;
        for s in &segments {
            start_ns.push(at);
            base_integral.push(integral);
            base_index.push(ceil_index(integral));
            integral += s.integral(s.len_ns());
            at += s.len_ns();
        }
        Profile {
            segments,
            base_index,
            base_integral,
            start_ns,
            end_ns: at,
        }
    }

    /// The same profile with the target rate at 0 inside `spans` (`[from, until)` offsets in
    /// nanoseconds; `until` may be `u64::MAX` for a pause still open). The profile keeps its
    /// length: a pause is a stretch of the run without sends, and the load resumes at the rate
    /// the profile has where the pause ends. The sends before a span keep their indices and
    /// times; every agent that applies the same spans gets the same schedule.
    pub fn paused(&self, spans: &[(u64, u64)]) -> Profile {
        let spans: Vec<(u128, u128)> = spans
            .iter()
            .filter(|(from, until)| from < until)
            .map(|&(from, until)| (u128::from(from), u128::from(until)))
            .collect();
        if spans.is_empty() {
            return self.clone();
        }
        let mut out = Vec::with_capacity(self.segments.len() + 2 * spans.len());
        for (k, segment) in self.segments.iter().enumerate() {
            let (start, end) = (self.start_ns[k], self.start_ns[k] + segment.len_ns());
            let mut cuts: Vec<u128> = spans
                .iter()
                .flat_map(|&(from, until)| [from, until])
                .filter(|&t| start < t && t < end)
                .chain([start, end])
                .collect();
            cuts.sort_unstable();
            cuts.dedup();
            for piece in cuts.windows(2) {
                let (lo, hi) = (piece[0], piece[1]);
                let paused = spans.iter().any(|&(from, until)| from <= lo && hi <= until);
                out.push(match paused {
                    true => Segment::Constant {
                        rate: 0.0,
                        len: duration_ns(hi - lo),
                    },
                    false if (lo, hi) == (start, end) => segment.clone(),
                    false => segment.piece(lo - start, hi - start),
                });
            }
        }
        Profile::new(out)
    }

    /// A single constant segment.
    pub fn constant(rate: f64, len: Duration) -> Self {
        Profile::new(vec![Segment::Constant { rate, len }])
    }

    /// Total length of the profile.
    pub fn len(&self) -> Duration {
        Duration::from_nanos(u64::try_from(self.end_ns).unwrap_or(u64::MAX))
    }

    /// True when the profile has no time in it.
    pub fn is_empty(&self) -> bool {
        self.end_ns == 0
    }

    /// The segments, in order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Fleet-wide target rate at `offset_ns` (0 after the end).
    pub fn rate_at(&self, offset_ns: u64) -> f64 {
        let t = u128::from(offset_ns);
        match self.segment_at(t) {
            Some(k) => self.segments[k].rate_at(t - self.start_ns[k]),
            None => 0.0,
        }
    }

    /// Number of fleet-wide sends due strictly before `offset_ns` (capped at the profile's end).
    pub fn sends_before(&self, offset_ns: u64) -> u64 {
        let t = u128::from(offset_ns).min(self.end_ns);
        if t == self.end_ns {
            return self.total_sends();
        }
        let Some(k) = self.segment_at(t) else {
            return 0;
        };
        let local = t - self.start_ns[k];
        match self.segments[k] {
            Segment::Constant { rate, .. } => {
                let milli = milli_rate(rate);
                if milli == 0 {
                    return self.base_index[k];
                }
                // Sends at local times ceil-free: j is due at base + (j - base_index) * 1e12 / milli.
                // Count of j with due time < local.
                let first_due = self.first_due_offset(k);
                if local <= first_due {
                    return self.base_index[k];
                }
                let n = ((local - first_due) * milli).div_ceil(MILLI * NANOS_PER_SEC);
                self.base_index[k] + u64::try_from(n).unwrap_or(u64::MAX)
            }
            Segment::Ramp { .. } => {
                // j is due at the time the integral reaches j: count j < integral(t).
                let total = self.base_integral[k] + self.segments[k].integral(local);
                ceil_index(total).max(self.base_index[k])
            }
        }
    }

    /// Total fleet-wide sends in the whole profile.
    pub fn total_sends(&self) -> u64 {
        let total = self.base_integral.last().copied().unwrap_or(0.0)
            + self
                .segments
                .last()
                .map(|s| s.integral(s.len_ns()))
                .unwrap_or(0.0);
        ceil_index(total)
    }

    /// Intended offset (ns from the run's start) of fleet-wide send `j`, or `None` past the end.
    pub fn due_ns(&self, j: u64) -> Option<u64> {
        if j >= self.total_sends() {
            return None;
        }
        // The segment holding j: the last one whose base index is <= j and which has sends.
        let k = match self.base_index.partition_point(|&b| b <= j) {
            0 => return None,
            p => p - 1,
        };
        let k = self.nonempty_segment_for(k, j)?;
        let seg_start = self.start_ns[k];
        let local = match self.segments[k] {
            Segment::Constant { rate, .. } => {
                let milli = milli_rate(rate);
                if milli == 0 {
                    return None;
                }
                let first_due = self.first_due_offset(k);
                let i = u128::from(j - self.base_index[k]);
                first_due + (i * MILLI * NANOS_PER_SEC) / milli
            }
            Segment::Ramp { from, to, len } => {
                // Solve base_integral + from*t + a*t^2/2 = j for t, a = (to - from) / len.
                let need = (j as f64 - self.base_integral[k]).max(0.0);
                let span = len.as_secs_f64();
                let a = if span > 0.0 { (to - from) / span } else { 0.0 };
                let t = if a.abs() < 1e-12 {
                    if from > 0.0 { need / from } else { 0.0 }
                } else {
                    let disc = (from * from + 2.0 * a * need).max(0.0);
                    (disc.sqrt() - from) / a
                };
                ((t.max(0.0) * 1e9).round() as u128).min(len.as_nanos())
            }
        };
        u64::try_from(seg_start + local).ok()
    }

    /// Offset within constant segment `k` of its first send: the time at which the running
    /// integral reaches the next whole number.
    fn first_due_offset(&self, k: usize) -> u128 {
        let gap = self.base_index[k] as f64 - self.base_integral[k];
        if gap <= 1e-9 {
            return 0;
        }
        match self.segments[k] {
            Segment::Constant { rate, .. } if rate > 0.0 => (gap / rate * 1e9).round() as u128,
            _ => 0,
        }
    }

    fn nonempty_segment_for(&self, mut k: usize, j: u64) -> Option<usize> {
        // Several zero-rate or zero-length segments can share a base index; pick the one whose
        // integral actually covers j.
        while k < self.segments.len() {
            let end = self.base_integral[k] + self.segments[k].integral(self.segments[k].len_ns());
            if (j as f64) < end - 1e-9 || k + 1 == self.segments.len() {
                return Some(k);
            }
            k += 1;
        }
        None
    }

    fn segment_at(&self, t: u128) -> Option<usize> {
        if t >= self.end_ns {
            return None;
        }
        match self.start_ns.partition_point(|&s| s <= t) {
            0 => None,
            p => Some(p - 1),
        }
    }
}

/// Smallest whole number `>= x`, forgiving float noise on exact integers (1000/s for 10 s is
/// exactly 10 000 sends, not 10 001).
fn ceil_index(x: f64) -> u64 {
    let rounded = x.round();
    if (x - rounded).abs() < 1e-6 {
        rounded.max(0.0) as u64
    } else {
        x.ceil().max(0.0) as u64
    }
}

fn duration_ns(ns: u128) -> Duration {
    Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
}

fn sane(rate: f64) -> f64 {
    if rate.is_finite() && rate > 0.0 {
        rate
    } else {
        0.0
    }
}

fn milli_rate(rate: f64) -> u128 {
    (rate * MILLI as f64).round() as u128
}

/// This agent's place in the fleet: it takes the global sends `j` with
/// `(j - from_index) % of == slot`, from `from_index` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    pub slot: u32,
    pub of: u32,
    pub from_index: u64,
}

impl Share {
    /// The whole fleet's schedule in one agent.
    pub const ALL: Share = Share {
        slot: 0,
        of: 1,
        from_index: 0,
    };

    /// Agent `slot` of `of`, from the start.
    pub fn new(slot: u32, of: u32) -> Self {
        Share {
            slot,
            of: of.max(1),
            from_index: 0,
        }
    }

    /// Agent `slot` of `of` for the sends from fleet-wide index `from_index` on: a replacement
    /// or a newly added agent joining a running schedule.
    pub fn joining(slot: u32, of: u32, from_index: u64) -> Self {
        Share {
            slot,
            of: of.max(1),
            from_index,
        }
    }

    /// Member `position` of `of` under the fleet assignment in effect from `effective_ns`, for
    /// an agent that takes part from `join_ns` on. The split is the one the assignment's other
    /// members follow — its cycle starts at the first send due at `effective_ns` — so a
    /// replacement takes the dead member's residue class, never a survivor's, whatever its own
    /// clock; it only leaves out the sends due before `join_ns`, which nobody sent (the outage).
    pub fn under_assignment(
        profile: &Profile,
        position: u32,
        of: u32,
        effective_ns: u64,
        join_ns: u64,
    ) -> Self {
        let of = of.max(1);
        // The same residue class as a cycle starting at the assignment's first send.
        let cycle = profile.sends_before(effective_ns) % u64::from(of);
        let split = Share::joining(position, of, cycle);
        let first = split.first_at_or_after(profile.sends_before(join_ns));
        Share {
            from_index: first.saturating_sub(u64::from(split.slot)).max(cycle),
            ..split
        }
    }

    /// How many global indices below `n` belong to this share.
    pub fn owned_below(&self, n: u64) -> u64 {
        let start = self.from_index + u64::from(self.slot);
        if n <= start {
            0
        } else {
            (n - start).div_ceil(u64::from(self.of))
        }
    }

    /// First global index `>= j` that belongs to this share.
    fn first_at_or_after(&self, j: u64) -> u64 {
        let of = u64::from(self.of);
        let slot = u64::from(self.slot);
        let base = j.max(self.from_index);
        let rel = base - self.from_index;
        let rem = rel % of;
        let skip = if rem <= slot {
            slot - rem
        } else {
            of - rem + slot
        };
        base + skip
    }
}

/// Iterates one agent's intended send times. Holds only a cursor: memory is constant however
/// long the run.
#[derive(Debug, Clone)]
pub struct Schedule {
    profile: Profile,
    share: Share,
    /// A re-split announced for a global index this agent has not reached yet.
    pending: Option<Share>,
    /// A new profile and the offset it applies from, once the old one reaches it.
    /// Profiles waiting to take over, each from its offset, in the order announced.
    pending_profile: std::collections::VecDeque<(Profile, u64)>,
    next_global: u64,
    /// The current profile's send at `next_global`, once computed: the sender peeks and then
    /// takes the same send, and `due_ns` is not free (a segment search and wide arithmetic).
    memo: std::cell::Cell<Option<Due>>,
}

/// One intended send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// Fleet-wide sequence number of the send.
    pub global: u64,
    /// Intended offset from the run's start, nanoseconds.
    pub at_ns: u64,
}

impl Schedule {
    pub fn new(profile: Profile, share: Share) -> Self {
        let next_global = share.first_at_or_after(share.from_index);
        Schedule {
            profile,
            share,
            pending: None,
            pending_profile: std::collections::VecDeque::new(),
            next_global,
            memo: std::cell::Cell::new(None),
        }
    }

    /// The profile this schedule follows.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The current share.
    pub fn share(&self) -> Share {
        self.share
    }

    /// The next intended send, without consuming it.
    pub fn peek(&self) -> Option<Due> {
        match self.pending_profile.front() {
            // The old profile has run out before the switch: the new one's first send.
            Some((profile, at_ns)) if self.peek_current().is_none_or(|d| d.at_ns >= *at_ns) => {
                let share = Share {
                    from_index: profile.sends_before(*at_ns),
                    ..self.share
                };
                let global = share.first_at_or_after(share.from_index);
                profile.due_ns(global).map(|at_ns| Due { global, at_ns })
            }
            _ => self.peek_current(),
        }
    }

    /// True when, with nothing left to send, the run is paused to its end at `now_ns` (the
    /// profile followed, a pending one first, ends in a stretch at rate 0 that has not ended
    /// yet): a resume may still come, so the sender waits instead of finishing.
    pub fn paused_to_the_end(&self, now_ns: u64) -> bool {
        let profile = self
            .pending_profile
            .back()
            .map_or(&self.profile, |(p, _)| p);
        let end = u64::try_from(profile.len().as_nanos()).unwrap_or(u64::MAX);
        now_ns < end && profile.rate_at(end - 1) == 0.0
    }

    fn peek_current(&self) -> Option<Due> {
        if let Some(due) = self.memo.get()
            && due.global == self.next_global
        {
            return Some(due);
        }
        let due = self.profile.due_ns(self.next_global).map(|at_ns| Due {
            global: self.next_global,
            at_ns,
        });
        self.memo.set(due);
        due
    }

    /// Consumes and returns the next intended send.
    pub fn next_due(&mut self) -> Option<Due> {
        self.settle();
        let due = self.peek()?;
        self.next_global += u64::from(self.share.of);
        if let Some(next) = self.pending
            && self.next_global >= next.from_index
        {
            self.switch_to(next);
        }
        Some(due)
    }

    /// Re-splits the fleet from `at_ns` on: this agent becomes `slot` of `of`. Sends due before
    /// `at_ns` keep their old owner; from the first global send at or after `at_ns` the new
    /// partition applies. Every agent of the fleet applying the same `(at_ns, of)` keeps the
    /// sum of shares exactly equal to the total.
    ///
    /// The controller announces re-splits for an offset a little in the future. An agent that
    /// is behind keeps sending what it owes under the old split up to `at_ns` first. An agent
    /// already past `at_ns` switches at once, from its own position.
    pub fn reassign(&mut self, at_ns: u64, slot: u32, of: u32) {
        let next = Share::joining(slot, of, self.profile.sends_before(at_ns));
        // Everything this agent has taken so far lies below `taken_below`.
        let taken_below = self
            .next_global
            .saturating_sub(u64::from(self.share.of) - 1);
        if taken_below <= next.from_index {
            if self.next_global >= next.from_index {
                self.switch_to(next);
            } else {
                self.pending = Some(next);
            }
        } else {
            self.pending = None;
            self.share = next;
            self.next_global = next.first_at_or_after(self.next_global);
        }
    }

    fn switch_to(&mut self, next: Share) {
        self.pending = None;
        self.share = next;
        self.next_global = next.first_at_or_after(next.from_index);
    }

    /// Replaces the rate profile from `at_ns` on (a spec edit while running), keeping the
    /// share. Sends of the old profile due before `at_ns` are still made; from `at_ns` the new
    /// profile's schedule applies, split the same way.
    pub fn replace_profile(&mut self, profile: Profile, at_ns: u64) {
        // A change announced for an earlier offset than one still waiting replaces it.
        self.pending_profile.retain(|(_, at)| *at < at_ns);
        self.pending_profile.push_back((profile, at_ns));
        self.settle();
    }

    /// Switches to the waiting profiles whose offsets the current one has nothing left
    /// before, in order. The sender calls it when it finds nothing to send, so that a profile
    /// announced while it waits (a resume during a pause) follows the one before it.
    pub fn settle(&mut self) {
        while let Some(at_ns) = self.pending_profile.front().map(|(_, at)| *at) {
            let old_done = self.peek_current().is_none_or(|due| due.at_ns >= at_ns);
            if !old_done {
                return;
            }
            let Some((profile, at_ns)) = self.pending_profile.pop_front() else {
                return;
            };
            let from_index = profile.sends_before(at_ns);
            self.profile = profile;
            self.memo.set(None);
            self.pending = None;
            self.share.from_index = from_index;
            self.next_global = self.share.first_at_or_after(from_index);
        }
    }

    /// Sends of this agent's share due strictly before `offset_ns` that have not been taken
    /// yet: what would be dropped if the run stopped now.
    pub fn remaining_before(&self, offset_ns: u64) -> u64 {
        let end = self.profile.sends_before(offset_ns);
        if end <= self.next_global {
            return 0;
        }
        (end - self.next_global).div_ceil(u64::from(self.share.of))
    }

    /// Sends of this agent's share left in the whole profile.
    pub fn remaining(&self) -> u64 {
        let end = self.profile.total_sends();
        if end <= self.next_global {
            return 0;
        }
        (end - self.next_global).div_ceil(u64::from(self.share.of))
    }
}

/// The fleet-wide rate profile of a load spec. Staircases become constant stairs; a
/// `duration` longer than the steps holds the last rate; a shorter one cuts the steps.
pub fn profile(load: &LoadSpec) -> Profile {
    let total = load.total_duration();
    let mut segments = Vec::new();
    let mut at = Duration::ZERO;
    for step in &load.steps {
        if at >= total {
            break;
        }
        let room = total - at;
        match step {
            LoadStep::Constant(c) => {
                let len = c.duration.as_std().min(room);
                segments.push(Segment::Constant { rate: c.rate, len });
                at += len;
            }
            LoadStep::Ramp(r) => {
                let over = r.over.as_std();
                let len = over.min(room);
                let to = if len < over { step.rate_at(len) } else { r.to };
                segments.push(Segment::Ramp {
                    from: r.from,
                    to,
                    len,
                });
                at += len;
            }
            LoadStep::Staircase(s) => {
                for i in 0..s.stairs() {
                    if at >= total {
                        break;
                    }
                    let len = s.every.as_std().min(total - at);
                    segments.push(Segment::Constant {
                        rate: s.stair_rate(i),
                        len,
                    });
                    at += len;
                }
            }
        }
    }
    if at < total {
        let rate = load.steps.last().map_or(0.0, LoadStep::final_rate);
        segments.push(Segment::Constant {
            rate,
            len: total - at,
        });
    }
    Profile::new(segments)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadtest::LoadTest;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn a_paused_span_has_no_sends_and_the_sends_around_it_keep_their_times() {
        let profile = Profile::constant(100.0, Duration::from_secs(10));
        let paused = profile.paused(&[(3 * SEC, 5 * SEC)]);
        assert_eq!(paused.len(), profile.len());
        assert_eq!(paused.total_sends(), 800);
        let dues: Vec<u64> = (0..800).filter_map(|j| paused.due_ns(j)).collect();
        assert_eq!(dues.len(), 800);
        assert!(dues.iter().all(|&t| !(3 * SEC..5 * SEC).contains(&t)));
        for j in 0..300 {
            assert_eq!(
                paused.due_ns(j),
                profile.due_ns(j),
                "send {j} before the pause"
            );
        }
        // After the pause the rate is the profile's again: 100/s from 5 s on.
        assert_eq!(paused.due_ns(300), Some(5 * SEC));
        assert_eq!(paused.sends_before(6 * SEC), 400);
        assert_eq!(paused.rate_at(4 * SEC), 0.0);
        assert_eq!(paused.rate_at(5 * SEC), 100.0);
    }

    #[test]
    fn an_open_pause_sends_nothing_to_the_end_and_closing_it_changes_only_what_follows() {
        let profile = Profile::new(vec![
            Segment::Ramp {
                from: 10.0,
                to: 110.0,
                len: Duration::from_secs(10),
            },
            Segment::Constant {
                rate: 50.0,
                len: Duration::from_secs(10),
            },
        ]);
        let open = profile.paused(&[(4 * SEC, u64::MAX)]);
        let closed = profile.paused(&[(4 * SEC, 12 * SEC)]);
        assert_eq!(open.total_sends(), profile.sends_before(4 * SEC));
        assert_eq!(open.due_ns(open.total_sends()), None);
        for t in [0, SEC, 4 * SEC, 8 * SEC, 12 * SEC] {
            assert_eq!(open.sends_before(t), closed.sends_before(t), "at {t} ns");
        }
        assert_eq!(
            closed.total_sends() - closed.sends_before(12 * SEC),
            400,
            "50/s for the last 8 s"
        );
        // The ramp resumes where it stands when the pause ends (not where it was paused).
        let mid_ramp = profile.paused(&[(2 * SEC, 6 * SEC)]);
        assert!((mid_ramp.rate_at(6 * SEC) - 70.0).abs() < 1e-9);
        assert!((mid_ramp.rate_at(SEC) - 20.0).abs() < 1e-9);
        assert_eq!(profile.paused(&[]), profile);
    }

    #[test]
    fn a_resume_announced_during_a_pause_follows_it_and_sends_nothing_inside_it() {
        let profile = Profile::constant(200.0, Duration::from_secs(24));
        let (from, until) = (9 * SEC, 14 * SEC);
        let mut s = Schedule::new(profile.clone(), Share::new(0, 2));
        let mut out: Vec<Due> = (0..100).filter_map(|_| s.next_due()).collect();
        // The pause is announced ahead, as the fleet assignment is; the agent reaches it and
        // finds nothing to send; then the resume is announced.
        s.replace_profile(profile.paused(&[(from, u64::MAX)]), from);
        s.reassign(from, 0, 2);
        out.extend(std::iter::from_fn(|| s.next_due()));
        assert!(s.paused_to_the_end(10 * SEC));
        s.settle();
        s.replace_profile(profile.paused(&[(from, until)]), until);
        s.reassign(until, 0, 2);
        out.extend(std::iter::from_fn(|| s.next_due()));
        let inside = out
            .iter()
            .filter(|d| (from..until).contains(&d.at_ns))
            .count();
        assert_eq!(inside, 0, "sends inside the pause");
        // Its half of 200/s for 9 s before and for 10 s after.
        assert_eq!(out.iter().filter(|d| d.at_ns < from).count(), 900);
        assert_eq!(out.iter().filter(|d| d.at_ns >= until).count(), 1000);
        // Both announced before the pause is reached: the same schedule.
        let mut early = Schedule::new(profile.clone(), Share::new(0, 2));
        early.replace_profile(profile.paused(&[(from, u64::MAX)]), from);
        early.replace_profile(profile.paused(&[(from, until)]), until);
        let early: Vec<u64> = drain(early).iter().map(|d| d.at_ns).collect();
        assert_eq!(early, out.iter().map(|d| d.at_ns).collect::<Vec<_>>());
    }

    #[test]
    fn a_schedule_paused_to_its_end_waits_for_a_resume_and_an_ended_one_does_not() {
        let profile = Profile::constant(10.0, Duration::from_secs(10));
        let mut s = Schedule::new(profile.clone(), Share::new(0, 1));
        s.replace_profile(profile.paused(&[(3 * SEC, u64::MAX)]), 3 * SEC);
        let sent = drain(s.clone());
        assert_eq!(sent.len(), 30, "the sends before the pause");
        assert!(s.paused_to_the_end(SEC), "a pending open pause counts");
        let mut after = s.clone();
        for _ in 0..30 {
            after.next_due();
        }
        assert!(after.peek().is_none());
        assert!(after.paused_to_the_end(5 * SEC));
        assert!(!after.paused_to_the_end(10 * SEC), "the end of the run");
        let plain = Schedule::new(profile, Share::new(0, 1));
        assert!(!plain.paused_to_the_end(9 * SEC));
    }

    fn drain(mut s: Schedule) -> Vec<Due> {
        std::iter::from_fn(|| s.next_due()).collect()
    }

    /// Sends per second achieved over the sends made, measured like a stopwatch would: count
    /// divided by the time from the first intended send to one interval past the last.
    fn achieved_rate(dues: &[Due]) -> f64 {
        let n = dues.len() as f64;
        let first = dues.first().map(|d| d.at_ns).unwrap_or(0);
        let last = dues.last().map(|d| d.at_ns).unwrap_or(0);
        (n - 1.0) / ((last - first) as f64 / 1e9)
    }

    #[test]
    fn constant_rate_is_within_a_tenth_of_a_percent_over_a_million_sends() {
        for rate in [1_000.0, 7_919.0, 100_000.0, 1_234_567.0, 5_000_000.0] {
            let len = Duration::from_secs_f64(1_000_000.0 / rate);
            let s = Schedule::new(Profile::constant(rate, len), Share::ALL);
            let dues = drain(s);
            assert!(
                (dues.len() as i64 - 1_000_000).abs() <= 1,
                "rate {rate}: {} sends",
                dues.len()
            );
            let achieved = achieved_rate(&dues);
            assert!(
                (achieved / rate - 1.0).abs() < 0.001,
                "rate {rate}: achieved {achieved}"
            );
            assert!(dues.windows(2).all(|w| w[0].at_ns <= w[1].at_ns));
        }
    }

    #[test]
    fn constant_rate_due_times_are_exact_integer_nanoseconds() {
        let p = Profile::constant(3.0, Duration::from_secs(10));
        assert_eq!(p.total_sends(), 30);
        assert_eq!(p.due_ns(0), Some(0));
        assert_eq!(p.due_ns(1), Some(333_333_333));
        assert_eq!(p.due_ns(3), Some(SEC));
        assert_eq!(p.due_ns(29), Some(9 * SEC + 666_666_666));
        assert_eq!(p.due_ns(30), None);
    }

    #[test]
    fn ramp_sends_match_the_integral_of_the_rate() {
        // 0 → 10 000/s over 200 s: integral 1 000 000 sends.
        let p = Profile::new(vec![Segment::Ramp {
            from: 0.0,
            to: 10_000.0,
            len: Duration::from_secs(200),
        }]);
        assert_eq!(p.total_sends(), 1_000_000);
        let dues = drain(Schedule::new(p.clone(), Share::ALL));
        assert_eq!(dues.len(), 1_000_000);
        // Over each 10 s window the count matches the integral within 0.1 %.
        for w in 1..20u64 {
            let (a, b) = (w * 10 * SEC, (w + 1) * 10 * SEC);
            let got = dues.iter().filter(|d| d.at_ns >= a && d.at_ns < b).count() as f64;
            let t0 = (w * 10) as f64;
            let t1 = t0 + 10.0;
            let want = 10_000.0 * (t1 * t1 - t0 * t0) / (2.0 * 200.0);
            assert!(
                (got / want - 1.0).abs() < 0.001,
                "window {w}: {got} vs {want}"
            );
        }
        assert!(dues.windows(2).all(|w| w[0].at_ns <= w[1].at_ns));
    }

    #[test]
    fn staircase_as_constant_steps_keeps_each_step_rate() {
        let steps: Vec<Segment> = (1..=5)
            .map(|k| Segment::Constant {
                rate: 1_000.0 * k as f64,
                len: Duration::from_secs(60),
            })
            .collect();
        let p = Profile::new(steps);
        assert_eq!(p.total_sends(), 60 * 15_000);
        let dues = drain(Schedule::new(p, Share::ALL));
        for k in 0..5u64 {
            let (a, b) = (k * 60 * SEC, (k + 1) * 60 * SEC);
            let got = dues.iter().filter(|d| d.at_ns >= a && d.at_ns < b).count();
            assert_eq!(got as u64, 60 * 1_000 * (k + 1), "step {k}");
        }
    }

    #[test]
    fn fractional_boundaries_carry_over_between_segments() {
        // 1.5 sends in the first segment, 1.5 in the second: 3 sends in all, none lost.
        let p = Profile::new(vec![
            Segment::Constant {
                rate: 1.5,
                len: Duration::from_secs(1),
            },
            Segment::Constant {
                rate: 3.0,
                len: Duration::from_millis(500),
            },
        ]);
        assert_eq!(p.total_sends(), 3);
        let dues = drain(Schedule::new(p, Share::ALL));
        let at: Vec<u64> = dues.iter().map(|d| d.at_ns).collect();
        assert_eq!(at.len(), 3);
        assert_eq!(at[0], 0);
        assert_eq!(at[1], 666_666_666);
        // Integral reaches 2 at 1 s + (0.5 / 3) s.
        assert_eq!(at[2], SEC + 166_666_667);
    }

    #[test]
    fn shares_of_a_fleet_sum_exactly_to_the_total() {
        let p = Profile::new(vec![
            Segment::Ramp {
                from: 10.0,
                to: 5_000.0,
                len: Duration::from_secs(30),
            },
            Segment::Constant {
                rate: 3_333.3,
                len: Duration::from_secs(30),
            },
        ]);
        let total = p.total_sends();
        for of in [1u32, 2, 3, 7, 10] {
            let mut all: Vec<u64> = (0..of)
                .flat_map(|slot| drain(Schedule::new(p.clone(), Share::new(slot, of))))
                .map(|d| d.global)
                .collect();
            all.sort_unstable();
            assert_eq!(all.len() as u64, total, "fleet of {of}");
            assert!(all.iter().enumerate().all(|(i, &g)| i as u64 == g));
        }
    }

    #[test]
    fn a_resplit_while_running_keeps_the_sum_exact() {
        let p = Profile::constant(10_000.0, Duration::from_secs(10));
        let total = p.total_sends();
        let change_at = 4 * SEC + 123;
        // Three agents, then five from `change_at`: the two new ones start there.
        let mut got = Vec::new();
        for slot in 0..3u32 {
            let mut s = Schedule::new(p.clone(), Share::new(slot, 3));
            while let Some(d) = s.peek() {
                if d.at_ns >= change_at {
                    break;
                }
                got.push(s.next_due().map(|d| d.global));
            }
            s.reassign(change_at, slot, 5);
            got.extend(drain(s).into_iter().map(|d| Some(d.global)));
        }
        let from_index = p.sends_before(change_at);
        for slot in 3..5u32 {
            let s = Schedule::new(p.clone(), Share::joining(slot, 5, from_index));
            got.extend(drain(s).into_iter().map(|d| Some(d.global)));
        }
        let mut got: Vec<u64> = got.into_iter().flatten().collect();
        got.sort_unstable();
        assert_eq!(got.len() as u64, total);
        assert!(got.iter().enumerate().all(|(i, &g)| i as u64 == g));
    }

    /// Fleet-wide indices sent by a fleet of three from the start, member 1 dying at `kill_ns`
    /// and its replacement joining at `join_ns`; the indices that were never sent.
    fn kill_and_replace(p: &Profile, kill_ns: u64, join_ns: u64) -> (Vec<u64>, Vec<u64>) {
        let mut sent = Vec::new();
        for position in [0u32, 2] {
            sent.extend(globals(Schedule::new(p.clone(), Share::new(position, 3))));
        }
        let dead = Schedule::new(p.clone(), Share::new(1, 3));
        sent.extend(
            drain(dead)
                .into_iter()
                .filter(|d| d.at_ns < kill_ns)
                .map(|d| d.global),
        );
        let replacement = Share::under_assignment(p, 1, 3, 0, join_ns);
        sent.extend(globals(Schedule::new(p.clone(), replacement)));
        sent.sort_unstable();
        let missing = (0..p.total_sends())
            .filter(|j| sent.binary_search(j).is_err())
            .collect();
        (sent, missing)
    }

    fn globals(s: Schedule) -> Vec<u64> {
        drain(s).into_iter().map(|d| d.global).collect()
    }

    #[test]
    fn a_replacement_takes_the_dead_members_share_and_only_the_outage_is_missing() {
        let p = Profile::constant(300.0, Duration::from_secs(15));
        // Killed and joined at many points of the schedule: the residue of the joining index
        // takes every value.
        for k in 0..12u64 {
            let kill_ns = 2 * SEC + k * 337_000_000;
            let join_ns = kill_ns + 1_500_000_000 + k * 3_333_333;
            let (sent, missing) = kill_and_replace(&p, kill_ns, join_ns);
            let mut unique = sent.clone();
            unique.dedup();
            assert_eq!(unique.len(), sent.len(), "kill {k}: no index sent twice");
            let outage =
                |j: &u64| j % 3 == 1 && p.due_ns(*j).is_some_and(|t| t >= kill_ns && t < join_ns);
            assert!(missing.iter().all(outage), "kill {k}: missing {missing:?}");
            let share = Share::new(1, 3);
            let want = share.owned_below(p.sends_before(join_ns))
                - share.owned_below(p.sends_before(kill_ns));
            assert_eq!(missing.len() as u64, want, "kill {k}: exactly the outage");
        }
    }

    #[test]
    fn a_member_starting_before_its_assignment_takes_effect_sends_in_that_assignments_split() {
        // Started at 1 s under an assignment effective from 4 s (it was published during the
        // start lead): it sends from 1 s, in the split the other members switch to at 4 s.
        let p = Profile::constant(100.0, Duration::from_secs(10));
        let share = Share::under_assignment(&p, 2, 3, 4 * SEC, SEC);
        let sends: Vec<u64> = globals(Schedule::new(p.clone(), share));
        let (joined, effective) = (p.sends_before(SEC), p.sends_before(4 * SEC));
        assert!(sends[0] >= joined && sends[0] < joined + 3, "{}", sends[0]);
        assert!(
            sends.iter().all(|g| g % 3 == (effective + 2) % 3),
            "one residue class"
        );
        let after: Vec<u64> = globals(Schedule::new(p.clone(), Share::joining(2, 3, effective)));
        assert!(
            after.iter().all(|g| sends.contains(g)),
            "the same sends from 4 s on"
        );
    }

    #[test]
    fn remaining_counts_what_a_stop_would_drop() {
        let p = Profile::constant(100.0, Duration::from_secs(10));
        let mut s = Schedule::new(p, Share::new(1, 2));
        assert_eq!(s.remaining(), 500);
        for _ in 0..100 {
            s.next_due();
        }
        assert_eq!(s.remaining(), 400);
        // At 5 s the fleet has 500 sends due, this agent 250, of which it took 100.
        assert_eq!(s.remaining_before(5 * SEC), 150);
    }

    #[test]
    fn a_rate_change_while_running_applies_from_its_offset_for_the_whole_fleet() {
        // 1 000/s for 10 s, changed at 4 s to 3 000/s: 4 000 + 18 000 sends in all.
        let old = Profile::constant(1_000.0, Duration::from_secs(10));
        let new = Profile::constant(3_000.0, Duration::from_secs(10));
        let at = 4 * SEC;
        let mut all = Vec::new();
        for slot in 0..3u32 {
            let mut s = Schedule::new(old.clone(), Share::new(slot, 3));
            // Each agent hears of the change at a different moment before it applies.
            for _ in 0..(100 * (slot + 1)) {
                s.next_due();
            }
            let taken: Vec<Due> = {
                let mut s2 = Schedule::new(old.clone(), Share::new(slot, 3));
                (0..(100 * (slot + 1)))
                    .filter_map(|_| s2.next_due())
                    .collect()
            };
            s.replace_profile(new.clone(), at);
            all.extend(taken);
            all.extend(drain(s));
        }
        let before = all.iter().filter(|d| d.at_ns < at).count();
        let after = all.iter().filter(|d| d.at_ns >= at).count();
        assert_eq!(before, 4_000);
        assert_eq!(after, 18_000);
        let mut after_idx: Vec<u64> = all
            .iter()
            .filter(|d| d.at_ns >= at)
            .map(|d| d.global)
            .collect();
        after_idx.sort_unstable();
        after_idx.dedup();
        assert_eq!(after_idx.len(), 18_000, "no send twice after the change");
    }

    #[test]
    fn owned_counts_add_up_across_the_fleet() {
        for n in [0u64, 1, 2, 7, 100, 1_001] {
            let total: u64 = (0..7)
                .map(|slot| Share::joining(slot, 7, 3).owned_below(n))
                .sum();
            assert_eq!(total, n.saturating_sub(3), "n = {n}");
        }
    }

    #[test]
    fn zero_and_invalid_rates_send_nothing() {
        let p = Profile::new(vec![
            Segment::Constant {
                rate: 0.0,
                len: Duration::from_secs(5),
            },
            Segment::Constant {
                rate: f64::NAN,
                len: Duration::from_secs(5),
            },
        ]);
        assert_eq!(p.total_sends(), 0);
        assert_eq!(Schedule::new(p, Share::ALL).next_due(), None);
    }

    #[test]
    fn a_pause_segment_between_two_rates_shifts_nothing_else() {
        let p = Profile::new(vec![
            Segment::Constant {
                rate: 10.0,
                len: Duration::from_secs(1),
            },
            Segment::Constant {
                rate: 0.0,
                len: Duration::from_secs(1),
            },
            Segment::Constant {
                rate: 10.0,
                len: Duration::from_secs(1),
            },
        ]);
        let dues = drain(Schedule::new(p, Share::ALL));
        assert_eq!(dues.len(), 20);
        assert_eq!(dues[9].at_ns, 900_000_000);
        assert_eq!(dues[10].at_ns, 2 * SEC);
    }

    fn load(yaml: &str) -> LoadSpec {
        let text = format!(
            "apiVersion: barrage.dev/v1alpha1\nkind: LoadTest\nmetadata: {{name: t}}\nspec:\n  kafka: {{bootstrapServers: 'x:1'}}\n  topic: {{name: t}}\n  workload: {{kind: Produce}}\n  load:\n{yaml}"
        );
        match LoadTest::from_yaml(&text) {
            Ok(lt) => lt.spec.load,
            Err(e) => panic!("bad test spec: {e}"),
        }
    }

    #[test]
    fn the_profile_counts_the_same_records_as_the_spec() {
        for y in [
            "    steps: [{constant: {rate: 1000, for: 10s}}]",
            "    steps: [{ramp: {from: 0, to: 1000, over: 20s}}, {constant: {rate: 1000, for: 5s}}]",
            "    steps: [{staircase: {start: 100, step: 100, every: 2s, until: 500}}]",
            "    steps: [{constant: {rate: 300, for: 2s}}]\n    duration: 5s",
            "    steps: [{ramp: {from: 100, to: 1100, over: 10s}}]\n    duration: 5s",
        ] {
            let l = load(y);
            let p = profile(&l);
            assert_eq!(p.len(), l.total_duration(), "{y}");
            let diff = p.total_sends() as i64 - l.expected_records() as i64;
            assert!(
                diff.abs() <= 1,
                "{y}: {} vs {}",
                p.total_sends(),
                l.expected_records()
            );
        }
    }
}
