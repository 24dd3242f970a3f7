//! Request-target paths: whatever a client sends, an accepted path has only
//! segments that name something below the root (no `.`/`..`, separators,
//! NUL), and written back as a URL path it decodes to the same segments.
#![no_main]

use std::ffi::OsStr;

use libfuzzer_sys::fuzz_target;
use web::RequestPath;

fuzz_target!(|raw: &str| {
    let Ok(path) = RequestPath::parse(raw) else {
        return;
    };
    for segment in path.segments() {
        let bytes = segment.as_encoded_bytes();
        assert!(!bytes.is_empty(), "{raw:?}");
        assert!(segment != OsStr::new(".") && segment != OsStr::new(".."), "{raw:?}");
        assert!(!bytes.iter().any(|b| matches!(b, b'/' | b'\\' | 0)), "{raw:?}");
    }
    assert!(!path.relative().is_absolute(), "{raw:?}");
    let url = path.to_url_path(false);
    let again = RequestPath::parse(&url).expect("a written path parses");
    assert_eq!(again.segments(), path.segments(), "{raw:?} -> {url:?}");
});
