//! Drain URLs, parsed strictly, and the SSRF rule on the addresses they resolve to.
//!
//! A URL is only ever split into scheme, credentials, host, port and
//! path here; nothing of it reaches a shell or a command line. The host is
//! checked twice: when the drain is added, and at every connect (DNS may
//! have changed since), and corrald connects to exactly the addresses it
//! checked, so a name cannot resolve to something else in between.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The longest drain URL accepted.
pub(crate) const MAX_URL_LEN: usize = 2048;

/// How a drain delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// `syslog://`: RFC 5424 over TCP, octet-counted (RFC 6587).
    Syslog,
    /// `syslog+tls://`: the same over TLS.
    SyslogTls,
    /// `https://`: POSTs of `application/logplex-1` batches.
    Https,
    /// `http://`: the same in the clear (only if the operator allows it).
    Http,
}

impl Scheme {
    fn default_port(self) -> u16 {
        match self {
            Self::Syslog => 514,
            Self::SyslogTls => 6514,
            Self::Https => 443,
            Self::Http => 80,
        }
    }

    /// Whether it speaks TLS.
    pub(crate) fn tls(self) -> bool {
        matches!(self, Self::SyslogTls | Self::Https)
    }
}

/// A drain URL's host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Host {
    /// A DNS name, lowercase.
    Name(String),
    /// An address literal.
    Ip(IpAddr),
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Name(n) => f.write_str(n),
            Self::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Self::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// A parsed, valid drain URL.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct DrainUrl {
    /// The scheme.
    pub scheme: Scheme,
    /// `user:password` for HTTP basic auth, percent-decoded (HTTP only).
    pub credentials: Option<(String, String)>,
    /// The host.
    pub host: Host,
    /// The port (the scheme's default when the URL names none).
    pub port: u16,
    /// Whether the URL named the port.
    pub explicit_port: bool,
    /// Path and query for HTTP (`/` at least); empty for syslog.
    pub path: String,
}

impl std::fmt::Debug for DrainUrl {
    // Credentials stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DrainUrl")
            .field("scheme", &self.scheme)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Why a URL is not a usable drain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UrlError(pub String);

fn bad(message: impl Into<String>) -> UrlError {
    UrlError(message.into())
}

/// Decodes `%XX` escapes; the result must be UTF-8.
pub(crate) fn percent_decode(s: &str) -> Result<String, UrlError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| bad("The URL has a malformed %-escape."))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad("The URL's credentials are not UTF-8."))
}

fn parse_name(host: &str) -> Result<String, UrlError> {
    let host = host.to_ascii_lowercase();
    let host = host.strip_suffix('.').unwrap_or(&host).to_owned();
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    if ok {
        Ok(host)
    } else {
        Err(bad(format!(
            "{host:?} is not a valid host name; use a DNS name like logs.example.com or an IP address."
        )))
    }
}

impl DrainUrl {
    /// Parses `url`; `allow_http` says whether plain `http://` is allowed.
    pub(crate) fn parse(url: &str, allow_http: bool) -> Result<Self, UrlError> {
        if url.len() > MAX_URL_LEN {
            return Err(bad(format!(
                "A drain URL must be at most {MAX_URL_LEN} characters."
            )));
        }
        if url.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err(bad(
                "A drain URL must be printable ASCII without spaces (percent-encode the rest).",
            ));
        }
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            bad("A drain URL looks like syslog://host:port, syslog+tls://host:port or https://host/path.")
        })?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "syslog" => Scheme::Syslog,
            "syslog+tls" => Scheme::SyslogTls,
            "https" => Scheme::Https,
            "http" if allow_http => Scheme::Http,
            "http" => {
                return Err(bad(
                    "Plain http:// drains are turned off on this host; use https://.",
                ))
            }
            other => {
                return Err(bad(format!(
                    "Drains speak syslog://, syslog+tls:// or https://, not {other}://."
                )))
            }
        };
        if rest.contains('#') {
            return Err(bad("A drain URL cannot have a #fragment."));
        }
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let http = matches!(scheme, Scheme::Https | Scheme::Http);
        let credentials = match userinfo {
            None => None,
            Some(_) if !http => {
                return Err(bad(
                    "A syslog drain URL cannot carry a user name or password.",
                ))
            }
            Some(u) => {
                let (user, password) = u.split_once(':').unwrap_or((u, ""));
                Some((percent_decode(user)?, percent_decode(password)?))
            }
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (ip, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("An IPv6 host must be written [addr]."))?;
            let ip: Ipv6Addr = ip
                .parse()
                .map_err(|_| bad(format!("{ip:?} is not an IPv6 address.")))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("Unexpected text after the IPv6 host."))?,
                ),
            };
            (Host::Ip(IpAddr::V6(ip)), port)
        } else {
            let (h, p) = match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            };
            let host = match h.parse::<Ipv4Addr>() {
                Ok(ip) => Host::Ip(IpAddr::V4(ip)),
                Err(_) => Host::Name(parse_name(h)?),
            };
            (host, p)
        };
        let (port, explicit_port) = match port {
            None => (scheme.default_port(), false),
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => (n, true),
                _ => return Err(bad(format!("{p:?} is not a port (1-65535)."))),
            },
        };
        let path = if http {
            match path {
                "" => "/".to_owned(),
                p if p.starts_with('?') => format!("/{p}"),
                p => p.to_owned(),
            }
        } else {
            if !matches!(path, "" | "/") {
                return Err(bad(
                    "A syslog drain URL is syslog://host:port, without a path.",
                ));
            }
            String::new()
        };
        Ok(Self {
            scheme,
            credentials,
            host,
            port,
            explicit_port,
            path,
        })
    }

    /// The `Host` header's value.
    pub(crate) fn host_header(&self) -> String {
        if self.explicit_port && self.port != self.scheme.default_port() {
            format!("{}:{}", self.host, self.port)
        } else {
            self.host.to_string()
        }
    }
}

/// Which addresses drains may reach (the operator's `[logs]` switches).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct AddressPolicy {
    /// Loopback, link-local, unspecified, multicast and broadcast.
    pub allow_local: bool,
    /// RFC 1918, carrier-grade NAT and IPv6 unique-local addresses.
    pub allow_private_network: bool,
}

impl AddressPolicy {
    /// Why `ip` is refused, or `None` when a drain may connect to it.
    pub(crate) fn refusal(&self, ip: IpAddr) -> Option<&'static str> {
        // An IPv4-mapped IPv6 address reaches the IPv4 one.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let local = match ip {
            IpAddr::V4(v4) => {
                if v4.is_loopback() {
                    Some("a loopback address")
                } else if v4.is_link_local() {
                    Some("a link-local address")
                } else if v4.is_unspecified() || v4.octets()[0] == 0 {
                    Some("an unspecified address")
                } else if v4.is_multicast() || v4.is_broadcast() {
                    Some("a multicast or broadcast address")
                } else {
                    None
                }
            }
            IpAddr::V6(v6) => {
                if v6.is_loopback() {
                    Some("a loopback address")
                } else if v6.segments()[0] & 0xffc0 == 0xfe80 {
                    Some("a link-local address")
                } else if v6.is_unspecified() {
                    Some("an unspecified address")
                } else if v6.is_multicast() {
                    Some("a multicast address")
                } else {
                    None
                }
            }
        };
        if local.is_some() && !self.allow_local {
            return local;
        }
        let private = match ip {
            IpAddr::V4(v4) => {
                let o = v4.octets();
                v4.is_private() || (o[0] == 100 && (o[1] & 0xc0) == 64)
            }
            IpAddr::V6(v6) => v6.segments()[0] & 0xfe00 == 0xfc00,
        };
        if private && !self.allow_private_network {
            return Some("a private network address");
        }
        None
    }

    /// `addrs` if every one of them is allowed, else why not. All must
    /// pass: a name that also resolves to a refused address is refused,
    /// so round-robin DNS cannot smuggle one in.
    pub(crate) fn check(
        &self,
        host: &Host,
        addrs: Vec<SocketAddr>,
    ) -> Result<Vec<SocketAddr>, UrlError> {
        if addrs.is_empty() {
            return Err(bad(format!("{host} does not resolve to any address.")));
        }
        for addr in &addrs {
            if let Some(why) = self.refusal(addr.ip()) {
                return Err(bad(format!(
                    "{host} resolves to {}, {why}; drains may not reach this host's own or link-local services. An operator can allow it with [logs] allow-local-drains (or allow-private-network-drains) in corrald.toml.",
                    addr.ip()
                )));
            }
        }
        Ok(addrs)
    }
}

/// Resolves the URL's host and applies `policy`: the addresses to
/// connect to.
pub(crate) async fn resolve(
    url: &DrainUrl,
    policy: AddressPolicy,
) -> Result<Vec<SocketAddr>, UrlError> {
    let addrs = match &url.host {
        Host::Ip(ip) => vec![SocketAddr::new(*ip, url.port)],
        Host::Name(name) => tokio::net::lookup_host((name.as_str(), url.port))
            .await
            .map_err(|e| bad(format!("Cannot resolve {name}: {e}.")))?
            .collect(),
    };
    policy.check(&url.host, addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<DrainUrl, UrlError> {
        DrainUrl::parse(url, false)
    }

    #[test]
    fn parses_supported_schemes_with_default_ports() {
        let u = parse("syslog://logs.example.com:12345").expect("syslog");
        assert_eq!(
            (u.scheme, &u.host, u.port),
            (
                Scheme::Syslog,
                &Host::Name("logs.example.com".into()),
                12345
            )
        );
        assert_eq!(
            parse("syslog+tls://Logs.Example.com").expect("tls").port,
            6514
        );
        assert_eq!(parse("syslog://10.0.0.1/").expect("slash").port, 514);
        let u = parse("https://user:p%40ss@example.com/logs?x=1").expect("https");
        assert_eq!(u.credentials, Some(("user".into(), "p@ss".into())));
        assert_eq!((u.port, u.path.as_str()), (443, "/logs?x=1"));
        assert_eq!(u.host_header(), "example.com");
        let u = parse("https://[2001:db8::1]:8443").expect("v6");
        assert_eq!(u.host, Host::Ip("2001:db8::1".parse().expect("ip")));
        assert_eq!(
            (u.path.as_str(), u.host_header().as_str()),
            ("/", "[2001:db8::1]:8443")
        );
        assert!(DrainUrl::parse("http://example.com/", true).is_ok());
    }

    #[test]
    fn refuses_malformed_or_unsafe_urls() {
        for url in [
            "http://example.com/",
            "ftp://example.com",
            "example.com:514",
            "syslog://user@example.com:514",
            "syslog://example.com:514/path",
            "syslog://example.com:0",
            "syslog://example.com:65536",
            "syslog://example.com:+1",
            "syslog://exa mple.com",
            "syslog://exa_mple.com:514",
            "syslog://-bad.example.com",
            "syslog://",
            "https://example.com/#frag",
            "https://example.com/\n",
            "syslog://[::1",
            "syslog://example.com;rm -rf /:514",
            "https://u:%zz@example.com/",
        ] {
            assert!(parse(url).is_err(), "{url} was accepted");
        }
        assert!(parse(&format!("https://example.com/{}", "a".repeat(MAX_URL_LEN))).is_err());
    }

    #[test]
    fn refuses_local_addresses_unless_allowed() {
        let strict = AddressPolicy {
            allow_local: false,
            allow_private_network: true,
        };
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            let ip: IpAddr = ip.parse().expect("ip");
            assert!(strict.refusal(ip).is_some(), "{ip} allowed");
        }
        for ip in [
            "93.184.216.34",
            "10.1.2.3",
            "192.168.1.1",
            "2001:db8::1",
            "fd00::1",
        ] {
            let ip: IpAddr = ip.parse().expect("ip");
            assert_eq!(strict.refusal(ip), None, "{ip} refused");
        }
        let no_private = AddressPolicy::default();
        for ip in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "fd00::1",
        ] {
            let ip: IpAddr = ip.parse().expect("ip");
            assert!(no_private.refusal(ip).is_some(), "{ip} allowed");
        }
        let open = AddressPolicy {
            allow_local: true,
            allow_private_network: true,
        };
        assert_eq!(open.refusal("127.0.0.1".parse().expect("ip")), None);
        let host = Host::Name("evil.example".into());
        let mixed = vec![
            SocketAddr::from(([93, 184, 216, 34], 514)),
            SocketAddr::from(([127, 0, 0, 1], 514)),
        ];
        let err = strict.check(&host, mixed).expect_err("one local address");
        assert!(err.0.contains("127.0.0.1") && err.0.contains("allow-local-drains"));
        assert!(strict.check(&host, Vec::new()).is_err());
    }
}
