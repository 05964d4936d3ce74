//! ipmpstat's command line.

use clap::{ArgGroup, Parser};

/// Display IPMP groups, interfaces, addresses and probe targets.
#[derive(Parser, Debug)]
#[command(name = "ipmpstat", version, about, long_about = None)]
#[command(group(ArgGroup::new("mode").args(["addresses", "groups", "interfaces", "probes", "targets", "metrics"])))]
pub struct Cli {
    /// Data addresses: where each is bound (INBOUND) and which members carry it out.
    #[arg(short = 'a')]
    pub addresses: bool,
    /// Groups: state, failure detection time, members.
    #[arg(short = 'g')]
    pub groups: bool,
    /// Member interfaces: active, flags, link, probe and state.
    #[arg(short = 'i')]
    pub interfaces: bool,
    /// Live probe results, until interrupted.
    ///
    /// One row per probe outcome of every probing member, IPv4 and IPv6
    /// alike (the TARGET tells the family). Columns TIME (seconds since
    /// ipmpstat started), INTERFACE, PROBE (sequence number), NETRTT, RTT,
    /// RTTAVG (smoothed), TARGET; RTTDEV with -o. A lost probe has empty RTT
    /// fields ("--"). When no member is probed: "probe-based failure
    /// detection is disabled", exit status 1. As in Solaris, NETRTT is the
    /// network round trip: from sending the probe to the time the kernel
    /// received the reply (its receive timestamp, SO_TIMESTAMPNS, on the
    /// member's probe socket; where a member has no probe socket, the time
    /// the data plane read the frame). RTT is the round trip as ipmpd saw
    /// it: to the moment its prober handled the reply, so it adds the
    /// daemon's own delay (the hand-off from the data plane and the control
    /// thread's scheduling), and NETRTT is never more than RTT. RTTAVG and
    /// RTTDEV, and the failure detection time, are computed from NETRTT, so
    /// a busy daemon does not raise its own FDT. A daemon serves at most 8
    /// such streams at once (a further one is refused with "too many probe
    /// watchers"); a stream that falls 256 KiB behind is closed.
    #[arg(short = 'p')]
    pub probes: bool,
    /// Probe targets of each member.
    #[arg(short = 't')]
    pub targets: bool,
    /// Numeric output (addresses are always shown numerically).
    ///
    /// Accepted for compatibility with Solaris; it changes nothing.
    #[arg(short = 'n')]
    pub numeric: bool,
    /// Output fields, comma-separated, case-insensitive ("all" for every one).
    ///
    /// Only these columns of the selected mode are printed, in this order.
    /// An unknown field is an error that lists the mode's fields.
    #[arg(short = 'o', value_name = "FIELD[,...]")]
    pub fields: Option<String>,
    /// Parsable output: no header, fields separated by ':' (needs -o).
    ///
    /// Empty fields are printed as nothing. When more than one field is
    /// printed, ':' and '\' inside a field are escaped with a '\'.
    #[arg(short = 'P', requires = "fields")]
    pub parsable: bool,
    /// Counters and states in Prometheus text format.
    ///
    /// Series: ipmpd_group_state (gauge, label state = ok, degraded, failed),
    /// ipmpd_group_failovers_total (members that left the active set by
    /// failing), ipmpd_member_active, ipmpd_member_state (label state = ok,
    /// failed, offline, unknown), ipmpd_member_rx_frames_total,
    /// ipmpd_member_rx_bytes_total (including what the kernel's inbound fast
    /// path delivered, also counted apart as
    /// ipmpd_member_rx_fast_frames_total and
    /// ipmpd_member_rx_fast_bytes_total; rx_fast_frames and rx_fast_bytes in
    /// --json), ipmpd_member_tx_frames_total,
    /// ipmpd_member_tx_bytes_total (tx counts include the gratuitous ARPs and
    /// probes the daemon sends, and what the kernel's outbound fast path
    /// sent, also counted apart as ipmpd_member_tx_fast_frames_total and
    /// ipmpd_member_tx_fast_bytes_total; tx_fast_frames and tx_fast_bytes in
    /// --json), ipmpd_member_drops_total (labels direction =
    /// rx, tx and reason; reason = tx_queue_full counts frames a member could
    /// not take at once, its socket buffer full or its queue discipline
    /// dropping: sends never wait, so a wedged member loses its own frames
    /// and the other members keep their rate) and
    /// ipmpd_member_probe_rtt_seconds (smoothed probe round-trip time, only
    /// for members that have one). Every series has the label group; member
    /// series also have interface.
    #[arg(long)]
    pub metrics: bool,
    /// Machine-readable JSON instead of the table; alone, without a mode,
    /// the whole status of every group.
    ///
    /// One JSON document, an array with one object per daemon socket in the
    /// run directory; alone or with any of -a, -g, -i, -t (the document is
    /// the same whatever the mode and -o): per group interface, group,
    /// state, fdt_ms, failovers, members (with name, active, flags, link,
    /// probe, state, probe_mode, test_address, targets, inactive, counters,
    /// rtt_us (the smoothed probe RTT, -p's RTTAVG), and ipv6 (probe_mode,
    /// test_address, targets) when the member is probed over IPv6) and
    /// addresses (address, state, inbound, outbound). The live probe log
    /// stays -p's.
    #[arg(long)]
    pub json: bool,
}
