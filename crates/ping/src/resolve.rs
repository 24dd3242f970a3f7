//! Names in and out, as ping shows them: `getaddrinfo` with the canonical
//! name for the target, and `getnameinfo` for the addresses replies and
//! errors come from.

use std::ffi::{CStr, CString};
use std::net::{IpAddr, SocketAddr};

use socket2::SockAddr;

use crate::socket::control::parse_sockaddr;
use crate::{Error, Family};

/// A target as given and as resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// What was asked for.
    pub input: String,
    /// The canonical name, for a name (iputils titles IPv4 output with it).
    pub canonical: Option<String>,
    pub addr: IpAddr,
    /// The interface of a link-local IPv6 address (`fe80::1%eth0`).
    pub scope_id: u32,
    /// The target was an address, so ping prints addresses without names.
    pub numeric: bool,
}

impl Resolved {
    pub fn family(&self) -> Family {
        Family::of(&self.addr)
    }
}

/// glibc's text for EAI_ADDRFAMILY, which the libc crate does not name.
const WRONG_FAMILY: &str = "Address family for hostname not supported";

/// Resolves `host` to its first address of `family` (either when `None`).
pub fn lookup(host: &str, family: Option<Family>) -> Result<Resolved, Error> {
    if let Ok(addr) = host.parse::<IpAddr>() {
        if family.is_some_and(|family| family != Family::of(&addr)) {
            return Err(Error::Resolve {
                host: host.to_owned(),
                reason: WRONG_FAMILY.to_owned(),
            });
        }
        return Ok(Resolved {
            input: host.to_owned(),
            canonical: None,
            addr,
            scope_id: 0,
            numeric: true,
        });
    }
    let failed = |reason: String| Error::Resolve {
        host: host.to_owned(),
        reason,
    };
    let name = CString::new(host).map_err(|_| failed("Name contains a NUL byte".to_owned()))?;
    // Asked of either family and then filtered, as iputils does: a name
    // known only in the other family is then said to be so, and looking
    // for it never goes on to the DNS.
    let (canonical, addrs) = getaddrinfo(&name).map_err(|rc| failed(gai_error(rc)))?;
    let found = match family {
        None => addrs.first().copied(),
        Some(family) => match addrs.iter().find(|addr| Family::of(&addr.ip()) == family) {
            Some(&addr) => Some(addr),
            None if !addrs.is_empty() => return Err(failed(WRONG_FAMILY.to_owned())),
            None => None,
        },
    };
    let addr = found.ok_or_else(|| failed("No address associated with hostname".to_owned()))?;
    Ok(Resolved {
        input: host.to_owned(),
        canonical,
        addr: addr.ip(),
        scope_id: match addr {
            SocketAddr::V6(v6) => v6.scope_id(),
            SocketAddr::V4(_) => 0,
        },
        numeric: false,
    })
}

/// The canonical name and the addresses `getaddrinfo` gives for `name`, in
/// its order, or its error code.
fn getaddrinfo(name: &CStr) -> Result<(Option<String>, Vec<SocketAddr>), i32> {
    // SAFETY: addrinfo is plain data; all-zero is valid hints.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = libc::AF_UNSPEC;
    hints.ai_socktype = libc::SOCK_DGRAM;
    hints.ai_protocol = libc::IPPROTO_UDP;
    hints.ai_flags = libc::AI_CANONNAME;
    let mut list: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: name and hints outlive the call; list receives an allocation
    // we free below.
    let rc = unsafe { libc::getaddrinfo(name.as_ptr(), std::ptr::null(), &hints, &mut list) };
    if rc != 0 {
        return Err(rc);
    }
    let mut canonical = None;
    let mut addrs = Vec::new();
    let mut entry = list;
    while !entry.is_null() {
        // SAFETY: entry is a node of the list getaddrinfo returned, which
        // stays allocated until freeaddrinfo.
        let info = unsafe { &*entry };
        if canonical.is_none() && !info.ai_canonname.is_null() {
            // SAFETY: ai_canonname is a NUL-terminated string owned by the list.
            let text = unsafe { CStr::from_ptr(info.ai_canonname) };
            canonical = Some(text.to_string_lossy().into_owned());
        }
        if !info.ai_addr.is_null() {
            // SAFETY: ai_addr points to ai_addrlen bytes of socket address.
            let bytes = unsafe {
                std::slice::from_raw_parts(info.ai_addr.cast::<u8>(), info.ai_addrlen as usize)
            };
            addrs.extend(parse_sockaddr(bytes));
        }
        entry = info.ai_next;
    }
    // SAFETY: list came from a successful getaddrinfo and is freed once.
    unsafe { libc::freeaddrinfo(list) };
    Ok((canonical, addrs))
}

/// The name of `addr` as `getnameinfo` finds it, or the address itself when
/// it has none (iputils then prints `10.0.0.1 (10.0.0.1)`).
pub fn reverse(addr: IpAddr) -> String {
    let sockaddr = SockAddr::from(SocketAddr::new(addr, 0));
    let mut host = [0u8; libc::NI_MAXHOST as usize];
    // SAFETY: sockaddr is a valid socket address of the stated length and
    // host is a writable buffer of the stated length.
    let rc = unsafe {
        libc::getnameinfo(
            sockaddr.as_ptr().cast(),
            sockaddr.len(),
            host.as_mut_ptr().cast(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            0,
        )
    };
    if rc != 0 {
        return addr.to_string();
    }
    CStr::from_bytes_until_nul(&host)
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|_| addr.to_string())
}

/// The name of the interface with this index (`eth0` for a scope id).
pub fn interface_name(index: u32) -> Option<String> {
    let mut name = [0u8; libc::IF_NAMESIZE];
    // SAFETY: name is a writable buffer of IF_NAMESIZE bytes, as
    // if_indextoname requires.
    let found = unsafe { libc::if_indextoname(index, name.as_mut_ptr().cast()) };
    if found.is_null() {
        return None;
    }
    CStr::from_bytes_until_nul(&name)
        .ok()
        .map(|name| name.to_string_lossy().into_owned())
}

fn gai_error(code: i32) -> String {
    if code == libc::EAI_SYSTEM {
        return std::io::Error::last_os_error().to_string();
    }
    // SAFETY: gai_strerror returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(libc::gai_strerror(code)) }
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn addresses_are_numeric() {
        let resolved = lookup("127.0.0.1", None).unwrap();
        assert!(resolved.numeric);
        assert_eq!(resolved.addr, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(resolved.canonical, None);
        assert_eq!(
            lookup("::1", None).unwrap().addr,
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        );
    }

    #[test]
    fn family_must_match() {
        let err = lookup("::1", Some(Family::V4)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "::1: Address family for hostname not supported"
        );
    }

    #[test]
    fn a_name_only_in_the_other_family_says_so() {
        // localhost is IPv4 in every /etc/hosts; ::1 is often missing.
        if lookup("localhost", Some(Family::V6)).is_ok() {
            return;
        }
        let err = lookup("localhost", Some(Family::V6)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "localhost: Address family for hostname not supported"
        );
    }

    #[test]
    fn localhost_has_a_canonical_name() {
        let resolved = lookup("localhost", Some(Family::V4)).unwrap();
        assert_eq!(resolved.addr, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert!(!resolved.numeric);
        assert!(resolved.canonical.is_some());
    }

    #[test]
    fn unknown_names_fail_clearly() {
        let err = lookup("no-such-host.invalid", None).unwrap_err();
        assert!(
            err.to_string().starts_with("no-such-host.invalid: "),
            "{err}"
        );
    }

    #[test]
    fn loopback_interface_has_a_name() {
        assert_eq!(interface_name(1).as_deref(), Some("lo"));
        assert_eq!(interface_name(0), None);
    }

    #[test]
    fn reverse_falls_back_to_the_address() {
        assert!(!reverse(IpAddr::V4(Ipv4Addr::LOCALHOST)).is_empty());
    }
}
