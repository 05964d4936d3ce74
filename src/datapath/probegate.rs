//! What the inbound thread lets through to the prober, per member: requests
//! for a test address under a token bucket, answers to our probes once each.
//! Pure: the caller passes the time.

use super::counters::DropReason;
use super::plan::Divert;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

/// Echo requests to a test address answered per second, per member, and
/// the burst allowed: an administrator's ping or a monitoring system, not
/// a flood (Linux's own icmp_ratelimit is 1000/s for errors only).
pub const ECHO_ANSWER_RATE: u32 = 100;
pub const ECHO_ANSWER_BURST: u32 = 20;
/// ARP requests for a test address answered per second, per member: a
/// neighbour asks once per reachable time; the burst covers several at once.
pub const ARP_ANSWER_RATE: u32 = 100;
pub const ARP_ANSWER_BURST: u32 = 20;
/// Answers to our probes remembered per member to drop duplicates: more
/// than the probes outstanding and in the prober's history.
pub const RECENT_ANSWERS: usize = 64;
/// ARP replies from probe targets passed to the prober per second (and the
/// burst): well above the fastest ARP probing (5 targets at the 100 ms
/// minimum FDT send about 70 a second), so a flood of forged replies can
/// never fill the member's queue and crowd out its echo replies.
pub const TARGET_ARP_RATE: u32 = 200;
pub const TARGET_ARP_BURST: u32 = 40;
/// MLD queries passed to the prober per second (and the burst): a querier
/// sends one general query a QQI (125 s by default) plus a few specific
/// ones; each makes the member report, so a flood must not become one.
pub const MLD_QUERY_RATE: u32 = 10;
pub const MLD_QUERY_BURST: u32 = 5;

/// A token bucket in whole tokens, refilled by elapsed time.
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    rate: u32,
    burst: u32,
    tokens: u32,
    /// Time the tokens were last counted up to.
    at: Option<Instant>,
}

impl TokenBucket {
    pub fn new(rate: u32, burst: u32) -> TokenBucket {
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            at: None,
        }
    }

    /// Takes one token if there is one.
    pub fn allow(&mut self, now: Instant) -> bool {
        let at = *self.at.get_or_insert(now);
        let elapsed = now.saturating_duration_since(at);
        let earned = elapsed.as_nanos() * u128::from(self.rate) / 1_000_000_000;
        if earned > 0 {
            self.tokens = (u128::from(self.tokens) + earned).min(u128::from(self.burst)) as u32;
            // Keep the remainder: advance only by the time the earned tokens took.
            let used = Duration::from_nanos((earned * 1_000_000_000 / u128::from(self.rate.max(1))) as u64);
            self.at = Some(if self.tokens == self.burst { now } else { at + used });
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

/// The inbound thread's per-member state for probe traffic.
#[derive(Debug, Clone)]
pub struct ProbeGate {
    echo: TokenBucket,
    arp: TokenBucket,
    tee: TokenBucket,
    query: TokenBucket,
    recent: [(u64, IpAddr); RECENT_ANSWERS],
    filled: usize,
    next: usize,
}

impl Default for ProbeGate {
    fn default() -> Self {
        ProbeGate {
            echo: TokenBucket::new(ECHO_ANSWER_RATE, ECHO_ANSWER_BURST),
            arp: TokenBucket::new(ARP_ANSWER_RATE, ARP_ANSWER_BURST),
            tee: TokenBucket::new(TARGET_ARP_RATE, TARGET_ARP_BURST),
            query: TokenBucket::new(MLD_QUERY_RATE, MLD_QUERY_BURST),
            recent: [(0, IpAddr::V4(Ipv4Addr::UNSPECIFIED)); RECENT_ANSWERS],
            filled: 0,
            next: 0,
        }
    }
}

impl ProbeGate {
    /// Whether a frame `divert` sent to the control side may go there.
    pub fn admit(&mut self, d: Divert, now: Instant) -> Result<(), DropReason> {
        match d {
            Divert::Request { arp: false } => {
                self.echo.allow(now).then_some(()).ok_or(DropReason::RateLimited)
            }
            Divert::Request { arp: true } => self.arp.allow(now).then_some(()).ok_or(DropReason::RateLimited),
            Divert::Answer { counter, from } => {
                // (counter, source): the answers to one discovery echo share
                // a counter but come from different hosts.
                if self.recent[..self.filled].contains(&(counter, from)) {
                    return Err(DropReason::Replayed);
                }
                self.recent[self.next] = (counter, from);
                self.next = (self.next + 1) % RECENT_ANSWERS;
                self.filled = (self.filled + 1).min(RECENT_ANSWERS);
                Ok(())
            }
            Divert::Tee | Divert::Resolved => {
                self.tee.allow(now).then_some(()).ok_or(DropReason::RateLimited)
            }
            Divert::Query => self.query.allow(now).then_some(()).ok_or(DropReason::RateLimited),
            Divert::No | Divert::Discard => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_the_burst_then_the_rate() {
        let mut b = TokenBucket::new(100, 20);
        let t0 = Instant::now();
        assert_eq!((0..1000).filter(|_| b.allow(t0)).count(), 20);
        // One second later: 100 more at most (burst caps at 20 per instant).
        let mut n = 0;
        for ms in 1..=1000u64 {
            let now = t0 + Duration::from_millis(ms);
            n += (0..10).filter(|_| b.allow(now)).count();
        }
        assert!((99..=101).contains(&n), "{n}");
        // A long pause refills only up to the burst.
        let later = t0 + Duration::from_secs(100);
        assert_eq!((0..1000).filter(|_| b.allow(later)).count(), 20);
    }

    #[test]
    fn target_arp_replies_are_limited_apart_from_echo_answers() {
        let mut g = ProbeGate::default();
        let t0 = Instant::now();
        let passed = (0..1000).filter(|_| g.admit(Divert::Tee, t0).is_ok()).count();
        assert_eq!(passed, TARGET_ARP_BURST as usize);
        let a = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(g.admit(Divert::Answer { counter: 1, from: a }, t0), Ok(()));
        assert_eq!(g.admit(Divert::Request { arp: true }, t0), Ok(()));
    }

    #[test]
    fn answers_pass_once_requests_are_limited() {
        let mut g = ProbeGate::default();
        let t0 = Instant::now();
        let a = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let b = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
        assert_eq!(g.admit(Divert::Answer { counter: 7, from: a }, t0), Ok(()));
        assert_eq!(
            g.admit(Divert::Answer { counter: 7, from: a }, t0),
            Err(DropReason::Replayed)
        );
        assert_eq!(g.admit(Divert::Answer { counter: 7, from: b }, t0), Ok(()));
        // The memory is bounded: very old answers fall out of it (the prober
        // still refuses them: their probes left its history).
        for c in 100..100 + RECENT_ANSWERS as u64 {
            assert_eq!(g.admit(Divert::Answer { counter: c, from: a }, t0), Ok(()));
        }
        assert_eq!(g.admit(Divert::Answer { counter: 7, from: a }, t0), Ok(()));
        let echo = (0..1000)
            .filter(|_| g.admit(Divert::Request { arp: false }, t0).is_ok())
            .count();
        assert_eq!(echo, ECHO_ANSWER_BURST as usize);
        // ARP has its own bucket: an echo flood does not starve it.
        assert_eq!(g.admit(Divert::Request { arp: true }, t0), Ok(()));
        assert_eq!(g.admit(Divert::Tee, t0), Ok(()));
    }

    #[test]
    fn neighbour_solicitations_and_mld_queries_starve_no_answer() {
        let mut g = ProbeGate::default();
        let t0 = Instant::now();
        // A flood of NS for the test address and of MLD queries...
        let ns = (0..1000)
            .filter(|_| g.admit(Divert::Request { arp: true }, t0).is_ok())
            .count();
        let q = (0..1000).filter(|_| g.admit(Divert::Query, t0).is_ok()).count();
        assert_eq!((ns, q), (ARP_ANSWER_BURST as usize, MLD_QUERY_BURST as usize));
        // ...leaves the targets' answers their own room.
        assert_eq!(g.admit(Divert::Resolved, t0), Ok(()));
        assert_eq!(g.admit(Divert::Tee, t0), Ok(()));
    }
}
