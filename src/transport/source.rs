//! Where a connection comes from, as the limits and penalties count it.
//!
//! Invariant: one machine is one source. An IPv4 client is its address; an IPv4 client
//! of a dual-stack listener (`::ffff:a.b.c.d`) is the same IPv4 address; an IPv6 client
//! is its /64 network, the block one machine or one home usually gets, since counting
//! single IPv6 addresses would let one machine be billions of sources.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Source(IpAddr);

impl Source {
    pub fn of(ip: IpAddr) -> Source {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let network = u128::from(v6) & !((1u128 << 64) - 1);
                Source(IpAddr::V6(Ipv6Addr::from(network)))
            }
            v4 => Source(v4),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(ip: &str) -> String {
        Source::of(ip.parse().unwrap()).to_string()
    }

    #[test]
    fn a_machine_is_one_source() {
        assert_eq!(source("127.0.0.2"), "127.0.0.2");
        assert_eq!(source("::ffff:127.0.0.2"), "127.0.0.2");
        assert_eq!(source("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(source("2001:db8:1:2:bbbb::9"), "2001:db8:1:2::/64");
        assert_ne!(source("2001:db8:1:3::1"), source("2001:db8:1:2::1"));
        assert_eq!(source("::1"), "::/64");
    }
}
