//! Pure logic of the outbound batch: the frames read from the TAP in one
//! turn are grouped by member (order kept within each member, hence within
//! each flow: a flow maps to one member), and a member's group goes out
//! with as few sendmmsg(2) calls as its queue allows.

use super::buckets::Slot;
use crate::sys::packet::SendError;

/// Takes the frames of the first member still waiting in `dest` (a frame's
/// member, or None once it was taken or dropped): writes their indices in
/// order to `group`, marks them taken and returns the member's slot; None
/// when no frame waits.
pub fn take_group(dest: &mut [Option<Slot>], group: &mut Vec<usize>) -> Option<Slot> {
    group.clear();
    let first = dest.iter().position(Option::is_some)?;
    let slot = dest[first];
    for (i, d) in dest.iter_mut().enumerate().skip(first) {
        if *d == slot {
            group.push(i);
            *d = None;
        }
    }
    slot
}

/// Sends frames `0..n` of one member through `send`, which sends frames
/// `from..` with one call and returns how many of them left (at least one)
/// or the error of frame `from`. Reports each frame once to `note`, in
/// order. Never waits and never sends a frame twice (after a partial send
/// the refused frame is offered again only to learn its error: it did not
/// leave): a full socket buffer (EAGAIN) drops the frame that met it and
/// every later frame of the batch (it will not have drained by the next
/// call); any other error, the qdisc refusing one frame (ENOBUFS) included,
/// drops only its frame and the rest goes on. At most `n` calls to `send`.
pub fn send_group(
    n: usize,
    mut send: impl FnMut(usize) -> Result<usize, SendError>,
    mut note: impl FnMut(usize, Result<(), &SendError>),
) {
    let mut from = 0;
    while from < n {
        match send(from) {
            // A count past the frames offered is clamped; zero (which
            // sendmmsg(2) never returns for a non-empty batch) is a full queue.
            Ok(k) if k > 0 => {
                let end = from.saturating_add(k).min(n);
                for i in from..end {
                    note(i, Ok(()));
                }
                from = end;
            }
            Ok(_) => {
                let e = SendError::QueueFull;
                for i in from..n {
                    note(i, Err(&e));
                }
                return;
            }
            Err(e @ SendError::QueueFull) => {
                for i in from..n {
                    note(i, Err(&e));
                }
                return;
            }
            Err(e @ (SendError::Io(_) | SendError::Refused)) => {
                note(from, Err(&e));
                from += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[derive(Debug, PartialEq)]
    enum Seen {
        Sent,
        Full,
        Io,
    }

    fn seen(r: Result<(), &SendError>) -> Seen {
        match r {
            Ok(()) => Seen::Sent,
            Err(SendError::QueueFull | SendError::Refused) => Seen::Full,
            Err(SendError::Io(_)) => Seen::Io,
        }
    }

    /// Runs send_group over a script of answers; returns what each frame
    /// became and the `from` of every call.
    fn run(n: usize, answers: Vec<Result<usize, SendError>>) -> (Vec<(usize, Seen)>, Vec<usize>) {
        let mut answers = answers.into_iter();
        let mut calls = Vec::new();
        let mut notes = Vec::new();
        send_group(
            n,
            |from| {
                calls.push(from);
                answers.next().expect("no more calls expected")
            },
            |i, r| notes.push((i, seen(r))),
        );
        (notes, calls)
    }

    fn io(errno: i32) -> SendError {
        SendError::Io(io::Error::from_raw_os_error(errno))
    }

    #[test]
    fn groups_keep_read_order_per_member() {
        let mut dest = [Some(1), Some(0), Some(1), None, Some(2), Some(0), Some(1)];
        let mut g = Vec::new();
        assert_eq!(take_group(&mut dest, &mut g), Some(1));
        assert_eq!(g, [0, 2, 6]);
        assert_eq!(take_group(&mut dest, &mut g), Some(0));
        assert_eq!(g, [1, 5]);
        assert_eq!(take_group(&mut dest, &mut g), Some(2));
        assert_eq!(g, [4]);
        assert_eq!(take_group(&mut dest, &mut g), None);
        assert!(g.is_empty());
        assert!(dest.iter().all(Option::is_none));
    }

    #[test]
    fn every_frame_is_taken_exactly_once() {
        // All 4^6 assignments of 6 frames to 3 members or none.
        for code in 0..4usize.pow(6) {
            let mut dest = [None; 6];
            for (i, d) in dest.iter_mut().enumerate() {
                let v = (code / 4usize.pow(i as u32)) % 4;
                *d = (v < 3).then_some(v as Slot);
            }
            let orig = dest;
            let mut g = Vec::new();
            let mut taken = [false; 6];
            while let Some(slot) = take_group(&mut dest, &mut g) {
                assert!(g.windows(2).all(|w| w[0] < w[1]), "{orig:?}: order {g:?}");
                for &i in &g {
                    assert_eq!(orig[i], Some(slot));
                    assert!(!taken[i]);
                    taken[i] = true;
                }
            }
            for i in 0..6 {
                assert_eq!(taken[i], orig[i].is_some(), "{orig:?}");
            }
        }
    }

    #[test]
    fn a_whole_batch_in_one_call() {
        let (notes, calls) = run(4, vec![Ok(4)]);
        assert_eq!(calls, [0]);
        assert_eq!(notes.len(), 4);
        assert!(notes.iter().enumerate().all(|(i, n)| *n == (i, Seen::Sent)));
    }

    #[test]
    fn a_full_queue_drops_the_rest_at_once_without_retrying() {
        // Two frames left, then the queue was full: the next call tells it,
        // and no third call is made.
        let (notes, calls) = run(5, vec![Ok(2), Err(SendError::QueueFull)]);
        assert_eq!(calls, [0, 2]);
        assert_eq!(
            notes,
            [
                (0, Seen::Sent),
                (1, Seen::Sent),
                (2, Seen::Full),
                (3, Seen::Full),
                (4, Seen::Full)
            ]
        );
    }

    #[test]
    fn another_error_drops_only_its_frame() {
        let (notes, calls) = run(4, vec![Ok(1), Err(io(libc::EMSGSIZE)), Ok(2)]);
        assert_eq!(calls, [0, 1, 2]);
        assert_eq!(
            notes,
            [(0, Seen::Sent), (1, Seen::Io), (2, Seen::Sent), (3, Seen::Sent)]
        );
    }

    #[test]
    fn a_frame_the_qdisc_refuses_drops_only_itself() {
        // ENOBUFS (fq's per-flow limit, a tc rule): the other flows' frames
        // of the batch still go.
        let (notes, calls) = run(4, vec![Ok(1), Err(SendError::Refused), Ok(2)]);
        assert_eq!(calls, [0, 1, 2]);
        assert_eq!(
            notes,
            [(0, Seen::Sent), (1, Seen::Full), (2, Seen::Sent), (3, Seen::Sent)]
        );
    }

    #[test]
    fn an_absurd_count_is_bounded() {
        // More than offered: clamped; zero: counted as a full queue.
        let (notes, _) = run(3, vec![Ok(99)]);
        assert_eq!(notes.len(), 3);
        let (notes, calls) = run(3, vec![Ok(0)]);
        assert_eq!(calls, [0]);
        assert_eq!(notes, [(0, Seen::Full), (1, Seen::Full), (2, Seen::Full)]);
    }

    #[test]
    fn errors_on_every_frame_end_after_n_calls() {
        let (notes, calls) = run(3, (0..3).map(|_| Err(io(libc::ENETDOWN))).collect());
        assert_eq!(calls, [0, 1, 2]);
        assert_eq!(notes, [(0, Seen::Io), (1, Seen::Io), (2, Seen::Io)]);
        let (notes, _) = run(0, vec![]);
        assert!(notes.is_empty());
    }
}
