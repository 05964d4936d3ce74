//! The round-trip estimator of one probe target (Jacobson/Karels, as
//! in.mpathd): when a probe counts as lost, and whether the path is too
//! slow for the configured failure detection time.

use std::time::Duration;

/// Jacobson/Karels round-trip estimate, in microseconds, as in.mpathd.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rtt {
    sa: i64,
    sv: i64,
    samples: u32,
}

impl Rtt {
    pub fn sample(&mut self, m: Duration) {
        let m = (m.as_micros() as i64).max(1);
        if self.samples == 0 {
            self.sa = m << 3;
            self.sv = m << 1;
        } else {
            let err = m - (self.sa >> 3);
            self.sa += err;
            self.sv += err.abs() - (self.sv >> 2);
        }
        self.samples += 1;
    }

    /// The smoothed mean deviation.
    pub fn dev(&self) -> Option<Duration> {
        (self.samples > 0).then(|| Duration::from_micros(((self.sv >> 2).max(0)) as u64))
    }

    /// The smoothed average.
    pub fn srtt(&self) -> Option<Duration> {
        (self.samples > 0).then(|| Duration::from_micros((self.sa >> 3).max(0) as u64))
    }

    /// The conservative RTT: smoothed average plus deviation.
    pub fn crtt(&self) -> Option<Duration> {
        (self.samples > 0).then(|| Duration::from_micros(((self.sa >> 3) + self.sv).max(0) as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtt_estimator_follows_jacobson() {
        let mut r = Rtt::default();
        assert_eq!(r.crtt(), None);
        r.sample(Duration::from_micros(1000));
        assert_eq!(r.crtt(), Some(Duration::from_micros(3000)));
        for _ in 0..50 {
            r.sample(Duration::from_micros(1000));
        }
        let c = r.crtt().unwrap();
        assert!(
            c >= Duration::from_micros(1000) && c < Duration::from_micros(1100),
            "{c:?}"
        );
    }
}
