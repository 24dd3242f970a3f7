//! Flags that need more than clap to read: rates, `--resolve`,
//! `--connect-to`, `-H` lines, and credentials (never from argv).

use anyhow::{Context, bail};
use base64::Engine;
use http::{HeaderMap, HeaderName, HeaderValue};
use web::{ConnectTo, Resolve};

pub fn parse_rate(text: &str) -> Result<u64, String> {
    let (number, unit) = match text.char_indices().last() {
        Some((at, unit)) if unit.is_ascii_alphabetic() => (&text[..at], unit),
        _ => (text, 'b'),
    };
    let scale: u64 = match unit.to_ascii_lowercase() {
        'b' => 1,
        'k' => 1 << 10,
        'm' => 1 << 20,
        'g' => 1 << 30,
        _ => {
            return Err(format!(
                "`{text}`: use a number of bytes, or with k, M or G"
            ));
        }
    };
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a rate"))?;
    let rate = (number * scale as f64) as u64;
    if rate == 0 {
        return Err("the rate must be more than 0".to_owned());
    }
    Ok(rate)
}

/// `Authorization: Basic` for `-u USER`, the password from the environment
/// or the terminal.
pub fn basic_auth(user: &str) -> anyhow::Result<HeaderValue> {
    if user.contains(':') {
        bail!(
            "-u takes USER only: a password on the command line can be read by every user of \
             this machine; set NETKIT_HTTP_PASSWORD or type it when asked"
        );
    }
    let password = match std::env::var("NETKIT_HTTP_PASSWORD") {
        Ok(password) => password,
        Err(_) => crate::prompt::hidden(&format!("Enter host password for user '{user}':"))
            .context("no password: set NETKIT_HTTP_PASSWORD or run on a terminal")?,
    };
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))?;
    value.set_sensitive(true);
    Ok(value)
}

/// A secret from `@FILE`, `@-` or `env:VARIABLE`, never the command line.
pub fn secret(source: &str) -> anyhow::Result<String> {
    let text = if let Some(path) = source.strip_prefix('@') {
        if path == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_line(&mut text)
                .context("cannot read the token from stdin")?;
            text
        } else {
            std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?
        }
    } else if let Some(name) = source.strip_prefix("env:") {
        std::env::var(name).with_context(|| format!("${name} is not set"))?
    } else {
        bail!(
            "--oauth2-bearer takes @FILE, @- or env:VARIABLE: a token on the command line can \
             be read by every user of this machine"
        );
    };
    let token = text.trim().to_owned();
    if token.is_empty() {
        bail!("the bearer token from {source} is empty");
    }
    Ok(token)
}

pub fn parse_resolve(text: &str) -> anyhow::Result<Resolve> {
    let mut parts = text.splitn(3, ':');
    let (Some(host), Some(port), Some(addrs)) = (parts.next(), parts.next(), parts.next()) else {
        bail!("--resolve `{text}` is not HOST:PORT:ADDR");
    };
    let port = port
        .parse()
        .with_context(|| format!("--resolve `{text}`: bad port"))?;
    let addrs = addrs
        .split(',')
        .map(|addr| {
            addr.trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .with_context(|| format!("--resolve `{text}`: `{addr}` is not an IP address"))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Resolve {
        host: host.to_owned(),
        port,
        addrs,
    })
}

pub fn parse_connect_to(text: &str) -> anyhow::Result<ConnectTo> {
    // Hosts may be bracketed IPv6 addresses, so split outside brackets.
    let mut fields = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (at, c) in text.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ':' if depth == 0 => {
                fields.push(&text[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    fields.push(&text[start..]);
    let [from_host, from_port, to_host, to_port] = fields[..] else {
        bail!("--connect-to `{text}` is not HOST1:PORT1:HOST2:PORT2");
    };
    let host = |h: &str| (!h.is_empty()).then(|| h.to_owned());
    let port = |p: &str| -> anyhow::Result<Option<u16>> {
        if p.is_empty() {
            Ok(None)
        } else {
            Ok(Some(p.parse().with_context(|| {
                format!("--connect-to `{text}`: bad port `{p}`")
            })?))
        }
    };
    Ok(ConnectTo {
        from_host: host(from_host),
        from_port: port(from_port)?,
        to_host: host(to_host),
        to_port: port(to_port)?,
    })
}

pub fn parse_headers(lines: &[String]) -> anyhow::Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            bail!("header `{line}` is not 'Name: value'");
        };
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .with_context(|| format!("`{}` is not a valid header name", name.trim()))?;
        let value = HeaderValue::from_str(value.trim())
            .with_context(|| format!("invalid value for header {name}"))?;
        headers.append(name, value);
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_from_the_command_line() {
        let headers = parse_headers(&["X-One: 1".into(), "Accept:text/html ".into()]).unwrap();
        assert_eq!(headers["x-one"], "1");
        assert_eq!(headers["accept"], "text/html");
        assert!(parse_headers(&["no colon".into()]).is_err());
        assert!(parse_headers(&["bad name: x".into()]).is_err());
    }

    #[test]
    fn rates_resolves_and_connect_tos() {
        assert_eq!(parse_rate("100k"), Ok(100 * 1024));
        assert_eq!(parse_rate("1.5M"), Ok(3 << 19));
        assert_eq!(parse_rate("200"), Ok(200));
        assert!(parse_rate("fast").is_err());
        let resolve = parse_resolve("example.com:443:127.0.0.1,[::1]").unwrap();
        assert_eq!(resolve.port, 443);
        assert_eq!(resolve.addrs.len(), 2);
        assert!(parse_resolve("example.com:443").is_err());
        let to = parse_connect_to("example.com:80:[::1]:8080").unwrap();
        assert_eq!(to.to_host.as_deref(), Some("[::1]"));
        assert_eq!(to.to_port, Some(8080));
        let any = parse_connect_to("::127.0.0.1:").unwrap();
        assert_eq!(
            (any.from_host, any.from_port, any.to_port),
            (None, None, None)
        );
    }

    #[test]
    fn secrets_never_from_the_command_line() {
        assert!(secret("hunter2").is_err());
        assert!(basic_auth("user:hunter2").is_err());
    }
}
