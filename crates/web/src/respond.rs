//! From a request to a response: method and size limits, path safety,
//! representation choice (content coding), preconditions, and ranges.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::header::{
    ACCEPT, ACCEPT_ENCODING, ACCEPT_RANGES, ALLOW, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE,
    CONTENT_TYPE, ETAG, HOST, LAST_MODIFIED, LOCATION, RANGE, VARY,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version};
use tracing::warn;

use crate::body::{Body, Part};
use crate::conditional::{self, Precondition, Validators};
use crate::files::{Entity, OpenError, RequestPath, Resolved, Site, Sort};
use crate::negotiate::{self, Coding};
use crate::pages;
use crate::range::{self, RangeRequest};

/// Request targets longer than this get 414: no file path is this long,
/// and the limit keeps logs and lookups cheap.
pub const MAX_URI_LEN: usize = 8 * 1024;

/// Request headers (names and values together) larger than this get 431.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Files up to this size are read in one go and sent as one buffer, which
/// lets hyper write head and body with one system call.
const SMALL_FILE: u64 = 64 * 1024;

/// Smaller bodies are not worth compressing: the saving is less than the
/// cost, and the coding's own overhead may make them larger.
const MIN_COMPRESS: u64 = 1024;

pub fn respond<B>(site: &Site, request: &Request<B>) -> Response<Body> {
    let method = request.method();
    if method != Method::GET && method != Method::HEAD {
        let mut response = pages::error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("This server only serves files: {method} is not supported, GET and HEAD are."),
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let response = match check_request(request) {
        Err(response) => response,
        Ok(path) => match site.resolve(&path) {
            Ok(Resolved::File { entity, path: file }) => serve_file(site, request, entity, &file),
            Ok(Resolved::Listing(listing)) => {
                let sort = Sort::from_query(request.uri().query());
                if wants_json(request) {
                    listing_response("application/json", listing.to_json(sort))
                } else {
                    listing_response(
                        "text/html; charset=utf-8",
                        listing.to_html(sort, site.upload().is_some()),
                    )
                }
            }
            Ok(Resolved::Redirect(mut location)) => {
                if let Some(query) = request.uri().query() {
                    location.push('?');
                    location.push_str(query);
                }
                redirect(&location)
            }
            Err(OpenError::NotFound) => not_found(request.uri().path()),
            Err(OpenError::Forbidden) => pages::error(
                StatusCode::FORBIDDEN,
                "You do not have permission to access this path.",
            ),
            Err(OpenError::Io(err)) => {
                warn!(path = request.uri().path(), %err, "cannot read file");
                pages::error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The file could not be read.",
                )
            }
        },
    };
    if method == Method::HEAD {
        return without_body(response);
    }
    response
}

/// The checks every request passes before the file system is consulted.
#[allow(clippy::result_large_err)]
fn check_request<B>(request: &Request<B>) -> Result<RequestPath, Response<Body>> {
    let uri = request.uri();
    let target_len = uri.path_and_query().map_or(0, |pq| pq.as_str().len());
    if target_len > MAX_URI_LEN {
        return Err(pages::error(
            StatusCode::URI_TOO_LONG,
            &format!("The request target is longer than {MAX_URI_LEN} bytes."),
        ));
    }
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Err(pages::error(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            &format!("The request headers are larger than {MAX_HEADER_BYTES} bytes."),
        ));
    }
    // HTTP/1.1 requires exactly one Host (RFC 9112 §3.2); HTTP/2 uses
    // :authority instead.
    if request.version() == Version::HTTP_11 && request.headers().get_all(HOST).iter().count() != 1
    {
        return Err(pages::error(
            StatusCode::BAD_REQUEST,
            "An HTTP/1.1 request needs exactly one Host header.",
        ));
    }
    RequestPath::parse(uri.path())
        .map_err(|err| pages::error(StatusCode::BAD_REQUEST, &format!("Bad path: {err}.")))
}

fn not_found(raw_path: &str) -> Response<Body> {
    let shown = percent_encoding::percent_decode_str(raw_path).decode_utf8_lossy();
    pages::error(
        StatusCode::NOT_FOUND,
        &format!("The requested path {shown} was not found on this server."),
    )
}

fn redirect(location: &str) -> Response<Body> {
    let mut response = pages::error(
        StatusCode::MOVED_PERMANENTLY,
        &format!("This is a directory; its address is {location}"),
    );
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// Whether the client prefers JSON to HTML (`Accept: application/json`,
/// as scripts send): JSON is named and HTML is not, or ranks higher.
fn wants_json<B>(request: &Request<B>) -> bool {
    let Some(accept) = conditional::list_header(request.headers(), ACCEPT) else {
        return false;
    };
    let quality = |wanted: &str| {
        accept
            .split(',')
            .filter_map(|item| {
                let mut parts = item.split(';');
                let media = parts.next()?.trim();
                if !media.eq_ignore_ascii_case(wanted) {
                    return None;
                }
                let q = parts
                    .filter_map(|p| p.trim().strip_prefix("q="))
                    .find_map(|q| q.parse::<f32>().ok())
                    .unwrap_or(1.0);
                Some(q)
            })
            .fold(0.0f32, f32::max)
    };
    let json = quality("application/json");
    json > 0.0 && json > quality("text/html")
}

fn listing_response(content_type: &'static str, text: String) -> Response<Body> {
    Response::builder()
        .header(CONTENT_TYPE, content_type)
        .header(CONTENT_LENGTH, text.len())
        .header(VARY, HeaderValue::from_static("Accept"))
        .body(Body::full(text))
        .expect("valid parts")
}

/// A HEAD response is the GET response with its body left out; the
/// headers, Content-Length included, stay as they are.
fn without_body(response: Response<Body>) -> Response<Body> {
    let (parts, _) = response.into_parts();
    Response::from_parts(parts, Body::Empty)
}

/// How the chosen representation is produced.
enum Coded {
    Identity(Entity),
    /// A precompressed sibling file.
    Precompressed(Entity, Coding),
    /// Compressed while sending; the length is not known ahead.
    OnTheFly(Entity, Coding, Validators),
}

fn serve_file<B>(
    site: &Site,
    request: &Request<B>,
    entity: Entity,
    file: &std::path::Path,
) -> Response<Body> {
    let headers = request.headers();
    let coded = choose_coding(site, request, entity, file);
    let validators = match &coded {
        Coded::Identity(entity) | Coded::Precompressed(entity, _) => &entity.validators,
        Coded::OnTheFly(_, _, validators) => validators,
    };
    let mut builder = Head::new()
        .header(ETAG, validators.etag_header.clone())
        .header(LAST_MODIFIED, validators.last_modified.clone())
        .header(VARY, HeaderValue::from_static("Accept-Encoding"));
    match conditional::evaluate(request.method(), headers, validators) {
        Precondition::Proceed => {}
        Precondition::NotModified => {
            return builder.status(StatusCode::NOT_MODIFIED).body(Body::Empty);
        }
        Precondition::Failed => {
            let mut response = pages::error(
                StatusCode::PRECONDITION_FAILED,
                "The resource does not match the request's preconditions.",
            );
            response
                .headers_mut()
                .insert(ETAG, validators.etag_header.clone());
            return response;
        }
    }
    match coded {
        Coded::OnTheFly(entity, coding, _) => {
            let body = if request.method() == Method::HEAD {
                Body::Empty
            } else {
                Body::compressed(entity.content, entity.len, coding)
            };
            builder
                .header(CONTENT_TYPE, entity.content_type)
                .header(CONTENT_ENCODING, HeaderValue::from_static(coding.token()))
                .header(ACCEPT_RANGES, HeaderValue::from_static("bytes"))
                .body(body)
        }
        Coded::Precompressed(entity, coding) => {
            builder = builder
                .header(CONTENT_ENCODING, HeaderValue::from_static(coding.token()))
                .header(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            whole(builder, entity, request.method() == Method::HEAD)
        }
        Coded::Identity(entity) => {
            builder = builder.header(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            let wants_range = request.method() == Method::GET
                && conditional::if_range_holds(headers, &entity.validators);
            let range = headers
                .get(RANGE)
                .filter(|_| wants_range)
                .and_then(|value| value.to_str().ok())
                .map_or(RangeRequest::Whole, |value| range::parse(value, entity.len));
            match range {
                RangeRequest::Whole => whole(builder, entity, request.method() == Method::HEAD),
                RangeRequest::Unsatisfiable => {
                    let mut response = pages::error(
                        StatusCode::RANGE_NOT_SATISFIABLE,
                        "None of the requested ranges overlap the file.",
                    );
                    response.headers_mut().insert(
                        CONTENT_RANGE,
                        header_value(&format!("bytes */{}", entity.len)),
                    );
                    response
                }
                RangeRequest::Ranges(ranges) if ranges.len() == 1 => {
                    let range = ranges.into_iter().next().expect("one range");
                    builder
                        .status(StatusCode::PARTIAL_CONTENT)
                        .header(CONTENT_TYPE, entity.content_type)
                        .header(
                            CONTENT_RANGE,
                            header_value(&range::content_range(&range, entity.len)),
                        )
                        .header(CONTENT_LENGTH, range.end - range.start)
                        .body(Body::range(entity.content, range))
                }
                RangeRequest::Ranges(ranges) => multipart(builder, entity, ranges),
            }
        }
    }
}

/// Picks the representation: a precompressed sibling or on-the-fly
/// compression when the client accepts it, identity otherwise. A request
/// for a range always gets identity, so ranges and codings never mix.
fn choose_coding<B>(
    site: &Site,
    request: &Request<B>,
    entity: Entity,
    file: &std::path::Path,
) -> Coded {
    let headers = request.headers();
    let Some(accept) = conditional::list_header(headers, ACCEPT_ENCODING) else {
        return Coded::Identity(entity);
    };
    if headers.contains_key(RANGE) {
        return Coded::Identity(entity);
    }
    let accepted = negotiate::accepted(&accept);
    for &coding in &accepted {
        if let Some(sibling) = site.precompressed(file, &entity, coding) {
            return Coded::Precompressed(sibling, coding);
        }
    }
    let compressible = entity.len >= MIN_COMPRESS
        && entity
            .content_type
            .to_str()
            .is_ok_and(negotiate::is_compressible);
    match accepted.first() {
        Some(&coding) if compressible => {
            let validators = entity.validators.with_coding(coding.extension());
            Coded::OnTheFly(entity, coding, validators)
        }
        _ => Coded::Identity(entity),
    }
}

fn whole(builder: Head, entity: Entity, head: bool) -> Response<Body> {
    let body = if head {
        Body::Empty
    } else if entity.len <= SMALL_FILE {
        match entity.content.read_all(entity.len) {
            Ok(bytes) => Body::full(bytes),
            Err(err) => {
                warn!(%err, "cannot read file");
                return pages::error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The file could not be read.",
                );
            }
        }
    } else {
        Body::range(entity.content, 0..entity.len)
    };
    builder
        .header(CONTENT_TYPE, entity.content_type)
        .header(CONTENT_LENGTH, entity.len)
        .body(body)
}

/// `multipart/byteranges` (RFC 9110 §14.6): each range with its own
/// Content-Type and Content-Range, between boundary delimiters.
fn multipart(builder: Head, entity: Entity, ranges: Vec<std::ops::Range<u64>>) -> Response<Body> {
    let boundary = boundary();
    let content_type = entity
        .content_type
        .to_str()
        .unwrap_or("application/octet-stream");
    let mut parts = VecDeque::with_capacity(ranges.len() * 2 + 1);
    let mut len = 0u64;
    for (i, range) in ranges.into_iter().enumerate() {
        let head = format!(
            "{}--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: {}\r\n\r\n",
            if i == 0 { "" } else { "\r\n" },
            range::content_range(&range, entity.len)
        );
        len += head.len() as u64 + (range.end - range.start);
        parts.push_back(Part::Bytes(Bytes::from(head)));
        parts.push_back(Part::Range(entity.content.clone(), range));
    }
    let close = format!("\r\n--{boundary}--\r\n");
    len += close.len() as u64;
    parts.push_back(Part::Bytes(Bytes::from(close)));
    builder
        .status(StatusCode::PARTIAL_CONTENT)
        .header(
            CONTENT_TYPE,
            header_value(&format!("multipart/byteranges; boundary={boundary}")),
        )
        .header(CONTENT_LENGTH, len)
        .body(Body::parts(parts))
}

/// A boundary that will not occur in the file by chance: a per-process
/// random-ish seed (the address of a stack value and the clock) mixed with
/// a counter.
fn boundary() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let seed = *SEED.get_or_init(|| {
        let local = 0u8;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        nanos ^ (&local as *const u8 as u64).rotate_left(32)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mixed = (seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    format!("netkit-{mixed:016x}{n:x}")
}

/// A response's status and headers as they are put together: `http`'s
/// builder without its `Result` threaded through every header, and with
/// room for the site's own headers, which would otherwise regrow the map on
/// every response.
struct Head {
    status: StatusCode,
    headers: HeaderMap,
}

impl Head {
    fn new() -> Self {
        Head {
            status: StatusCode::OK,
            headers: HeaderMap::with_capacity(12),
        }
    }

    fn header(mut self, name: HeaderName, value: impl Into<HeaderValue>) -> Self {
        self.headers.append(name, value.into());
        self
    }

    fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    fn body(self, body: Body) -> Response<Body> {
        let mut response = Response::new(body);
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        response
    }
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static(""))
}
