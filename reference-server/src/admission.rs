//! Which TCP connections the server takes: at most
//! [`Limits::max_connections`](crate::Limits::max_connections) at once, and
//! at most
//! [`Limits::max_connections_per_ip`](crate::Limits::max_connections_per_ip)
//! from one address (IPv6 addresses count per /64, the block one host
//! usually holds). A connection counts from its accept, through its HTTP
//! upgrade, to the end of its WebSocket session: what it costs is a file
//! descriptor all along.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The server holds its limit of connections (HTTP 503).
    Busy,
    /// The address holds its limit (HTTP 429).
    PerAddress,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// Counts open connections against the limits.
pub(crate) struct Admission {
    max_total: usize,
    max_per_address: usize,
    counts: Arc<Mutex<Counts>>,
}

/// An admitted connection; the count goes down when it is dropped.
pub(crate) struct Ticket {
    address: IpAddr,
    counts: Arc<Mutex<Counts>>,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket")
            .field("address", &self.address)
            .finish()
    }
}

/// The address a connection counts against: the IPv4 address, or the /64
/// of an IPv6 one.
fn counted(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

impl Admission {
    /// At most `max_total` connections, `max_per_address` from one address.
    pub(crate) fn new(max_total: usize, max_per_address: usize) -> Admission {
        Admission {
            max_total: max_total.max(1),
            max_per_address: max_per_address.max(1),
            counts: Arc::new(Mutex::new(Counts::default())),
        }
    }

    /// Takes a connection from `ip`, or says why not.
    pub(crate) fn admit(&self, ip: IpAddr) -> Result<Ticket, Refusal> {
        let address = counted(ip);
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if counts.total >= self.max_total {
            return Err(Refusal::Busy);
        }
        let from_address = counts.per_address.entry(address).or_insert(0);
        if *from_address >= self.max_per_address {
            return Err(Refusal::PerAddress);
        }
        *from_address += 1;
        counts.total += 1;
        Ok(Ticket {
            address,
            counts: self.counts.clone(),
        })
    }

    /// Connections open now.
    pub(crate) fn open(&self) -> usize {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).total
    }
}

impl Ticket {
    /// The address the connection counts against (an IPv6 one's /64).
    pub(crate) fn address(&self) -> IpAddr {
        self.address
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                counts.per_address.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse()
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }

    #[test]
    fn one_address_is_held_to_its_share_and_others_still_get_in() {
        let admission = Admission::new(10, 2);
        let a1 = admission.admit(ip("10.0.0.1"));
        let a2 = admission.admit(ip("10.0.0.1"));
        assert!(a1.is_ok() && a2.is_ok());
        assert_eq!(
            admission.admit(ip("10.0.0.1")).err(),
            Some(Refusal::PerAddress)
        );
        assert!(admission.admit(ip("10.0.0.2")).is_ok());
        drop(a1);
        assert!(
            admission.admit(ip("10.0.0.1")).is_ok(),
            "a closed one frees its place"
        );
    }

    #[test]
    fn the_server_is_held_to_its_total() {
        let admission = Admission::new(2, 5);
        let held: Vec<_> = ["10.0.0.1", "10.0.0.2"]
            .iter()
            .map(|a| admission.admit(ip(a)))
            .collect();
        assert!(held.iter().all(Result::is_ok));
        assert_eq!(admission.admit(ip("10.0.0.3")).err(), Some(Refusal::Busy));
        assert_eq!(admission.open(), 2);
        drop(held);
        assert_eq!(admission.open(), 0);
    }

    #[test]
    fn ipv6_addresses_count_per_64_block() {
        let admission = Admission::new(10, 1);
        let _first = admission.admit(ip("2001:db8:1:2::1"));
        assert_eq!(
            admission.admit(ip("2001:db8:1:2::ffff")).err(),
            Some(Refusal::PerAddress)
        );
        assert!(admission.admit(ip("2001:db8:1:3::1")).is_ok());
    }
}
