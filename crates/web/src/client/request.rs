//! A request as the caller describes it, and as hyper sends it: the head in
//! origin, absolute or HTTP/2 form, and a body streamed from memory or a
//! file.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_LENGTH, HOST, USER_AGENT};
use http::{HeaderMap, HeaderValue, Method, Request, Version};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use tokio::io::{AsyncRead, ReadBuf};
use url::Url;

use super::connect::Target;
use super::{ClientError, DEFAULT_USER_AGENT, RequestHead};

/// What hyper sends as a request body.
pub type Body = BoxBody<Bytes, io::Error>;

/// A file is read and sent this much at a time, so an upload of any size
/// holds about this much in memory.
const FILE_CHUNK: usize = 256 * 1024;

/// A request body that can be sent again (after a 307 or 308, or a retry).
#[derive(Debug, Clone, Default)]
pub enum RequestBody {
    #[default]
    Empty,
    Bytes(Bytes),
    /// A file streamed from disk, with the length it had when opened.
    File {
        path: PathBuf,
        length: u64,
    },
}

impl RequestBody {
    pub fn len(&self) -> u64 {
        match self {
            RequestBody::Empty => 0,
            RequestBody::Bytes(bytes) => bytes.len() as u64,
            RequestBody::File { length, .. } => *length,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The body for one sending; `uploaded` counts the bytes handed on.
    pub(super) async fn open(&self, uploaded: &Arc<AtomicU64>) -> Result<Body, ClientError> {
        uploaded.store(0, Ordering::Relaxed);
        Ok(match self {
            RequestBody::Empty => http_body_util::Empty::new()
                .map_err(|never| match never {})
                .boxed(),
            RequestBody::Bytes(bytes) => {
                uploaded.store(bytes.len() as u64, Ordering::Relaxed);
                http_body_util::Full::new(bytes.clone())
                    .map_err(|never| match never {})
                    .boxed()
            }
            RequestBody::File { path, length } => {
                let file =
                    tokio::fs::File::open(path)
                        .await
                        .map_err(|source| ClientError::ReadBody {
                            path: path.clone(),
                            source,
                        })?;
                FileBody {
                    file,
                    buffer: vec![0; FILE_CHUNK],
                    remaining: *length,
                    uploaded: uploaded.clone(),
                }
                .boxed()
            }
        })
    }
}

/// A request: method, URL, extra headers (which replace the defaults of
/// the same name) and a body.
#[derive(Debug, Clone)]
pub struct ClientRequest {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: RequestBody,
    /// Body bytes handed to the connection so far, for a progress bar.
    pub uploaded: Arc<AtomicU64>,
}

impl ClientRequest {
    pub fn get(url: Url) -> Self {
        Self::new(Method::GET, url)
    }

    pub fn new(method: Method, url: Url) -> Self {
        Self {
            method,
            url,
            headers: HeaderMap::new(),
            body: RequestBody::Empty,
            uploaded: Arc::default(),
        }
    }
}

/// A file read a chunk at a time as the connection asks for more.
struct FileBody {
    file: tokio::fs::File,
    buffer: Vec<u8>,
    remaining: u64,
    uploaded: Arc<AtomicU64>,
}

impl http_body::Body for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let this = &mut *self;
        let want = this.buffer.len().min(this.remaining as usize);
        let mut read = ReadBuf::new(&mut this.buffer[..want]);
        ready!(Pin::new(&mut this.file).poll_read(cx, &mut read))?;
        let filled = read.filled();
        if filled.is_empty() {
            return Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was being sent",
            ))));
        }
        this.remaining -= filled.len() as u64;
        this.uploaded
            .fetch_add(filled.len() as u64, Ordering::Relaxed);
        Poll::Ready(Some(Ok(Frame::data(Bytes::copy_from_slice(filled)))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// The request as hyper sends it, and its head as shown in transcripts.
pub(super) fn build(
    request: &ClientRequest,
    target: &Target,
    h2: bool,
    absolute_form: bool,
    body: Body,
) -> Result<(Request<Body>, RequestHead), ClientError> {
    let url = &request.url;
    let mut origin_form = url.path().to_owned();
    if let Some(query) = url.query() {
        origin_form.push('?');
        origin_form.push_str(query);
    }
    let mut without_fragment = url.clone();
    without_fragment.set_fragment(None);
    let (uri, version) = if h2 {
        (without_fragment.to_string(), Version::HTTP_2)
    } else if absolute_form {
        (without_fragment.to_string(), Version::HTTP_11)
    } else {
        (origin_form, Version::HTTP_11)
    };
    let mut headers = HeaderMap::new();
    if !h2 {
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or(&target.host)),
            None => url.host_str().unwrap_or(&target.host).to_owned(),
        };
        headers.insert(
            HOST,
            HeaderValue::from_str(&host)
                .map_err(|err| ClientError::InvalidRequest(err.to_string()))?,
        );
    }
    headers.insert(USER_AGENT, HeaderValue::from_static(DEFAULT_USER_AGENT));
    headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
    // Shown in transcripts as curl shows it; hyper would add it anyway.
    if !request.body.is_empty() || matches!(request.method, Method::POST | Method::PUT) {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(request.body.len()));
    }
    for name in request.headers.keys() {
        if h2 && name == HOST {
            continue;
        }
        headers.remove(name);
        for value in request.headers.get_all(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    let mut builder = Request::builder()
        .method(request.method.clone())
        .uri(&uri)
        .version(version);
    *builder.headers_mut().expect("a fresh builder") = headers.clone();
    let http_request = builder
        .body(body)
        .map_err(|err| ClientError::InvalidRequest(err.to_string()))?;
    Ok((
        http_request,
        RequestHead {
            method: request.method.clone(),
            target: uri,
            version,
            headers,
        },
    ))
}
