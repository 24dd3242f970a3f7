//! The first two layers of path safety: turning the path of a request target
//! into segments that can only name something below the served directory,
//! and hiding dotfiles. The third layer, containment on the real file system
//! (symlinks), is in `open.rs`.
//!
//! Every trick is refused here, before the file system is touched: `..` in
//! any spelling (`%2e%2e`, `.%2E`), encoded slashes and backslashes (which
//! would let one segment smuggle a separator), NUL bytes (which truncate C
//! strings), and Windows drive letters. Absolute paths cannot arise: the
//! segments are split on `/` and joined relative to the root, and empty
//! segments from `//` are dropped.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use percent_encoding::percent_decode;

/// Why a request path was refused. All of these are answered with 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path does not start with `/`")]
    NotAbsolute,
    #[error("the path contains a `..` segment")]
    DotDot,
    #[error("the path contains an encoded `/` or `\\`")]
    EncodedSeparator,
    #[error("the path contains a backslash")]
    Backslash,
    #[error("the path contains a NUL byte")]
    Nul,
    #[error("the path starts with a drive letter")]
    DriveLetter,
    #[error("the path has a malformed percent-encoding")]
    BadEscape,
}

/// A request path reduced to plain segments, none empty, `.` or `..`, and
/// none holding a separator or NUL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPath {
    segments: Vec<OsString>,
    /// `/docs/` rather than `/docs`: the client asked for a directory.
    trailing_slash: bool,
}

impl RequestPath {
    /// Parses the (still percent-encoded) path of a request target.
    pub fn parse(raw: &str) -> Result<Self, PathError> {
        let rest = raw.strip_prefix('/').ok_or(PathError::NotAbsolute)?;
        let mut segments = Vec::new();
        for raw_segment in rest.split('/') {
            if let Some(segment) = decode_segment(raw_segment)? {
                if segments.is_empty() && is_drive_letter(&segment) {
                    return Err(PathError::DriveLetter);
                }
                segments.push(segment);
            }
        }
        Ok(Self {
            segments,
            trailing_slash: rest.is_empty() || rest.ends_with('/'),
        })
    }

    pub fn segments(&self) -> &[OsString] {
        &self.segments
    }

    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    pub fn has_trailing_slash(&self) -> bool {
        self.trailing_slash
    }

    /// Layer two: a segment starting with `.` names a dotfile or a file in
    /// a dot-directory (`.git/config`, `.env`).
    pub fn is_hidden(&self) -> bool {
        self.segments
            .iter()
            .any(|segment| segment.as_bytes().first() == Some(&b'.'))
    }

    /// The path relative to the served directory (`.` for the root).
    pub fn relative(&self) -> PathBuf {
        if self.segments.is_empty() {
            return PathBuf::from(".");
        }
        self.segments.iter().collect()
    }

    /// The canonical URL path for this request, percent-encoded, always
    /// starting with exactly one `/`, so it is safe to send in `Location`
    /// (a path starting `//` would redirect to another host).
    pub fn to_url_path(&self, trailing_slash: bool) -> String {
        let mut url = String::from("/");
        for (i, segment) in self.segments.iter().enumerate() {
            if i > 0 {
                url.push('/');
            }
            url.push_str(&encode_segment(segment.as_bytes()));
        }
        if trailing_slash && !self.segments.is_empty() {
            url.push('/');
        }
        url
    }
}

/// Decodes one segment; `None` for segments that name nothing (empty, `.`).
fn decode_segment(raw: &str) -> Result<Option<OsString>, PathError> {
    if raw.contains('\\') {
        return Err(PathError::Backslash);
    }
    check_escapes(raw.as_bytes())?;
    let bytes: Vec<u8> = percent_decode(raw.as_bytes()).collect();
    match bytes.as_slice() {
        b"" | b"." => return Ok(None),
        b".." => return Err(PathError::DotDot),
        _ => {}
    }
    if bytes.contains(&0) {
        return Err(PathError::Nul);
    }
    if bytes.contains(&b'/') {
        return Err(PathError::EncodedSeparator);
    }
    if bytes.contains(&b'\\') {
        return Err(PathError::EncodedSeparator);
    }
    Ok(Some(OsString::from_vec(bytes)))
}

/// `%` must be followed by two hex digits: `percent_decode` would pass a
/// malformed escape through literally, hiding what the client meant.
fn check_escapes(raw: &[u8]) -> Result<(), PathError> {
    let mut i = 0;
    while let Some(at) = raw[i..].iter().position(|&b| b == b'%') {
        let start = i + at;
        let digits = raw.get(start + 1..start + 3).ok_or(PathError::BadEscape)?;
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return Err(PathError::BadEscape);
        }
        i = start + 3;
    }
    Ok(())
}

/// `C:` or `c:anything`: harmless on Linux, but never a name we serve, and
/// refusing it keeps the server's behaviour the same on every platform.
fn is_drive_letter(segment: &OsStr) -> bool {
    let bytes = segment.as_bytes();
    bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':'
}

/// Percent-encodes a path segment for a URL: everything but unreserved
/// characters and a few sub-delimiters that are safe in paths.
pub fn encode_segment(bytes: &[u8]) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_encode};
    const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~')
        .remove(b'!')
        .remove(b'$')
        .remove(b'(')
        .remove(b')')
        .remove(b'*')
        .remove(b'+')
        .remove(b',')
        .remove(b';')
        .remove(b'=')
        .remove(b':')
        .remove(b'@');
    percent_encode(bytes, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(raw: &str) -> RequestPath {
        RequestPath::parse(raw).unwrap_or_else(|err| panic!("{raw}: {err}"))
    }

    fn err(raw: &str) -> PathError {
        RequestPath::parse(raw).expect_err(raw)
    }

    #[test]
    fn plain_paths() {
        assert!(ok("/").is_root());
        assert!(ok("/").has_trailing_slash());
        let path = ok("/docs/a%20b.txt");
        assert_eq!(path.relative(), PathBuf::from("docs/a b.txt"));
        assert!(!path.has_trailing_slash());
        assert!(ok("/docs/").has_trailing_slash());
        assert_eq!(ok("/a/./b").relative(), PathBuf::from("a/b"));
        assert_eq!(ok("/caf%C3%A9").relative(), PathBuf::from("café"));
        // Non-UTF-8 names exist on Linux and are served as bytes.
        assert_eq!(ok("/%FF").segments()[0].as_bytes(), b"\xff");
    }

    #[test]
    fn dot_dot_in_every_spelling() {
        for raw in [
            "/..",
            "/../etc/passwd",
            "/a/../../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/%2E%2E/etc/passwd",
            "/.%2e/etc/passwd",
            "/%2e./etc/passwd",
            "/a/%2e%2e",
            "/a/..",
        ] {
            assert_eq!(err(raw), PathError::DotDot, "{raw}");
        }
        // Names that merely contain dots are files like any other.
        assert_eq!(ok("/a..b").relative(), PathBuf::from("a..b"));
        assert_eq!(ok("/...").relative(), PathBuf::from("..."));
    }

    #[test]
    fn encoded_separators() {
        for raw in [
            "/%2f",
            "/%2F",
            "/..%2fetc%2fpasswd",
            "/%2e%2e%2fetc",
            "/a%2fb",
            "/a%5cb",
            "/..%5c..%5cetc",
        ] {
            let got = err(raw);
            assert!(
                matches!(got, PathError::EncodedSeparator | PathError::DotDot),
                "{raw}: {got:?}"
            );
        }
    }

    #[test]
    fn backslashes_nul_drives_escapes() {
        assert_eq!(err("/..\\..\\etc\\passwd"), PathError::Backslash);
        assert_eq!(err("/a\\b"), PathError::Backslash);
        assert_eq!(err("/index.html%00.png"), PathError::Nul);
        assert_eq!(err("/%00"), PathError::Nul);
        assert_eq!(err("/C:/Windows/win.ini"), PathError::DriveLetter);
        assert_eq!(err("/c:"), PathError::DriveLetter);
        assert_eq!(err("/%43:/x"), PathError::DriveLetter);
        assert_eq!(err("/%zz"), PathError::BadEscape);
        assert_eq!(err("/a%2"), PathError::BadEscape);
        assert_eq!(err("relative"), PathError::NotAbsolute);
        assert_eq!(err("*"), PathError::NotAbsolute);
        // A colon later in a path is an ordinary character.
        assert_eq!(ok("/notes/c:d").relative(), PathBuf::from("notes/c:d"));
    }

    #[test]
    fn absolute_paths_stay_relative() {
        // `//etc/passwd` must not become `/etc/passwd` when joined.
        assert_eq!(ok("//etc/passwd").relative(), PathBuf::from("etc/passwd"));
        assert_eq!(ok("///etc//passwd").relative(), PathBuf::from("etc/passwd"));
        assert!(ok("//etc/passwd").relative().is_relative());
    }

    #[test]
    fn hidden() {
        assert!(ok("/.env").is_hidden());
        assert!(ok("/.git/config").is_hidden());
        assert!(ok("/%2egit/config").is_hidden());
        assert!(ok("/a/.hidden/b").is_hidden());
        assert!(!ok("/a/b.c").is_hidden());
        assert!(!ok("/").is_hidden());
    }

    #[test]
    fn url_path_round_trip() {
        let path = ok("//evil.example/a%20b/");
        assert_eq!(path.to_url_path(true), "/evil.example/a%20b/");
        assert_eq!(ok("/").to_url_path(true), "/");
        assert_eq!(ok("/%3Cx%3E").to_url_path(false), "/%3Cx%3E");
    }

    proptest! {
        #[test]
        fn arbitrary_paths_never_escape(raw in "/[a-zA-Z0-9%./\\\\:_-]{0,40}") {
            if let Ok(path) = RequestPath::parse(&raw) {
                let relative = path.relative();
                prop_assert!(relative.is_relative());
                for component in relative.components() {
                    prop_assert!(matches!(
                        component,
                        std::path::Component::Normal(_) | std::path::Component::CurDir
                    ));
                }
                // The canonical form parses back to the same segments.
                let again = RequestPath::parse(&path.to_url_path(false)).unwrap();
                prop_assert_eq!(again.segments(), path.segments());
            }
        }

        #[test]
        fn arbitrary_strings_never_panic(raw in "\\PC*") {
            let _ = RequestPath::parse(&raw);
        }
    }
}
