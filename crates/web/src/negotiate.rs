//! Content-coding negotiation (`Accept-Encoding`, RFC 9110 §12.5.3) and the
//! choice of what is worth compressing.

/// The codings the server can produce, in order of preference on a tie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Brotli,
    Zstd,
    Gzip,
}

impl Coding {
    /// The token in `Content-Encoding`.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Zstd => "zstd",
            Coding::Gzip => "gzip",
        }
    }

    /// The extension of a precompressed sibling file.
    pub fn extension(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Zstd => "zst",
            Coding::Gzip => "gz",
        }
    }
}

/// The codings the client accepts, best first, leaving out those it
/// refuses with `q=0`. Codings the server does not produce are ignored;
/// `*` stands for any coding not named.
pub fn accepted(header: &str) -> Vec<Coding> {
    let mut brotli = None;
    let mut zstd = None;
    let mut gzip = None;
    let mut any = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim();
        let mut q = 1000;
        for param in parts {
            if let Some((key, value)) = param.split_once('=')
                && key.trim().eq_ignore_ascii_case("q")
            {
                q = quality(value.trim()).unwrap_or(0);
            }
        }
        if name.eq_ignore_ascii_case("br") {
            brotli = Some(q);
        } else if name.eq_ignore_ascii_case("zstd") {
            zstd = Some(q);
        } else if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(q);
        } else if name == "*" {
            any = Some(q);
        }
    }
    let mut choices: Vec<(u16, Coding)> = [
        (brotli.or(any), Coding::Brotli),
        (zstd.or(any), Coding::Zstd),
        (gzip.or(any), Coding::Gzip),
    ]
    .into_iter()
    .filter_map(|(q, coding)| q.filter(|&q| q > 0).map(|q| (q, coding)))
    .collect();
    // Stable: on equal quality brotli, then zstd, then gzip.
    choices.sort_by_key(|&(q, _)| std::cmp::Reverse(q));
    choices.into_iter().map(|(_, coding)| coding).collect()
}

/// A q-value in thousandths: `1`, `0.5`, `0.125`; at most three decimals.
fn quality(text: &str) -> Option<u16> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths: u16 = format!("{fraction:0<3}").parse().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// Whether a media type is worth compressing: text, and the structured
/// formats that are text underneath. Images, archives and video are
/// already compressed.
pub fn is_compressible(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.starts_with("text/")
        || matches!(
            essence,
            "application/javascript"
                | "application/json"
                | "application/xml"
                | "application/xhtml+xml"
                | "application/wasm"
                | "application/manifest+json"
                | "image/svg+xml"
                | "image/x-icon"
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn q_values_are_honoured() {
        use Coding::*;
        assert_eq!(accepted("gzip, deflate, br"), vec![Brotli, Gzip]);
        assert_eq!(accepted("gzip"), vec![Gzip]);
        assert_eq!(accepted("br;q=0.5, gzip;q=0.8"), vec![Gzip, Brotli]);
        assert_eq!(accepted("br;q=0, gzip"), vec![Gzip]);
        assert_eq!(accepted("*"), vec![Brotli, Zstd, Gzip]);
        assert_eq!(accepted("*;q=0.1, gzip;q=0.2"), vec![Gzip, Brotli, Zstd]);
        assert_eq!(
            accepted("gzip, deflate, br, zstd"),
            vec![Brotli, Zstd, Gzip]
        );
        assert_eq!(accepted("zstd, br;q=0.9"), vec![Zstd, Brotli]);
        assert_eq!(accepted("*;q=0"), vec![]);
        assert_eq!(accepted("identity"), vec![]);
        assert_eq!(accepted(""), vec![]);
        assert_eq!(accepted("GZIP;Q=1.0"), vec![Gzip]);
        assert_eq!(accepted("gzip;q=2"), vec![]);
        assert_eq!(accepted("gzip;q=0.0001"), vec![]);
        assert_eq!(accepted("gzip;q=0.001"), vec![Gzip]);
    }

    #[test]
    fn compressible_types() {
        assert!(is_compressible("text/html; charset=utf-8"));
        assert!(is_compressible("application/javascript"));
        assert!(is_compressible("image/svg+xml"));
        assert!(!is_compressible("image/png"));
        assert!(!is_compressible("application/octet-stream"));
        assert!(!is_compressible("application/gzip"));
    }

    proptest! {
        #[test]
        fn arbitrary_headers_never_panic(header in "\\PC*") {
            let codings = accepted(&header);
            // Each of the three codings at most once.
            prop_assert!(codings.len() <= 3);
            for (i, coding) in codings.iter().enumerate() {
                prop_assert!(!codings[i + 1..].contains(coding));
            }
        }
    }
}
