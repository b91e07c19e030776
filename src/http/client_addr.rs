//! Which address a request comes from, for rate limits and connection caps.
//!
//! Behind proxies the TCP peer is the nearest proxy, and the client is found in
//! X-Forwarded-For. Each proxy appends the address it received the request from, so only the
//! right-most entries are trustworthy: everything left of what our own proxies wrote was written
//! by the client and can be forged. With `trusted_proxies` hops in front of the server, the
//! client is the entry that many places from the right.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

/// The client's address: the TCP peer when no proxy is trusted, else the X-Forwarded-For
/// entry `trusted_proxies` places from the right.
pub(super) fn client_addr(headers: &HeaderMap, peer: SocketAddr, trusted_proxies: usize) -> IpAddr {
    if trusted_proxies == 0 {
        return peer.ip();
    }
    // Several X-Forwarded-For headers form one list, in order (RFC 9110 §5.3).
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|hop| !hop.is_empty())
        .collect();
    forwarded_client(&hops, trusted_proxies).unwrap_or_else(|| peer.ip())
}

/// The hop `trusted_proxies` places from the right of `hops`. A shorter list means the request
/// passed fewer proxies than configured (every entry was then written by one of ours), so the
/// left-most is the client. `None` when there is no usable entry: the peer is all we know.
fn forwarded_client(hops: &[&str], trusted_proxies: usize) -> Option<IpAddr> {
    let index = hops.len().saturating_sub(trusted_proxies);
    parse_hop(hops.get(index)?)
}

/// Parses `192.0.2.1`, `2001:db8::1`, and the forms with a port some proxies write
/// (`192.0.2.1:4711`, `[2001:db8::1]:4711`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|addr| addr.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    const PEER: &str = "10.0.0.2:5000";

    fn client(values: &[&str], trusted_proxies: usize) -> String {
        client_addr(&headers(values), PEER.parse().unwrap(), trusted_proxies).to_string()
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        assert_eq!(client(&["198.51.100.9"], 0), "10.0.0.2");
    }

    #[test]
    fn one_proxy_means_the_right_most_hop() {
        assert_eq!(client(&["6.6.6.6, 198.51.100.9"], 1), "198.51.100.9");
        assert_eq!(client(&["198.51.100.9"], 1), "198.51.100.9");
    }

    #[test]
    fn a_forged_left_most_hop_is_never_taken() {
        assert_eq!(
            client(&["1.1.1.1, 2.2.2.2, 198.51.100.9"], 1),
            "198.51.100.9"
        );
        assert_eq!(client(&["1.1.1.1", "198.51.100.9"], 1), "198.51.100.9");
    }

    #[test]
    fn two_proxies_skip_the_nearest_one() {
        assert_eq!(
            client(&["6.6.6.6, 198.51.100.9, 10.0.0.1"], 2),
            "198.51.100.9"
        );
        assert_eq!(client(&["198.51.100.9", "10.0.0.1"], 2), "198.51.100.9");
    }

    #[test]
    fn fewer_hops_than_proxies_take_the_left_most() {
        assert_eq!(client(&["198.51.100.9"], 3), "198.51.100.9");
    }

    #[test]
    fn ports_and_ipv6_are_understood() {
        assert_eq!(client(&["198.51.100.9:4711"], 1), "198.51.100.9");
        assert_eq!(client(&["[2001:db8::1]:4711"], 1), "2001:db8::1");
        assert_eq!(client(&["2001:db8::1"], 1), "2001:db8::1");
    }

    #[test]
    fn a_missing_or_garbled_hop_falls_back_to_the_peer() {
        assert_eq!(client(&[], 1), "10.0.0.2");
        assert_eq!(client(&["1.1.1.1, not-an-address"], 1), "10.0.0.2");
    }
}
