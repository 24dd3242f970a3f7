//! Uploads, as miniserve takes them: the listing page's form posts
//! `multipart/form-data` to the directory's own URL; each file part is
//! stored (`files::store`) and the browser is sent back to the listing
//! (303). Only the site's own pages may post (a cross-origin form could
//! otherwise write into the site), and the body is bounded.

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, HOST, LOCATION, ORIGIN};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use tracing::{info, warn};

use crate::body::Body;
use crate::files::{RequestPath, Site, StoreError, UploadPolicy};
use crate::pages;

/// Whether `request` is an upload for a site that takes them.
pub fn is_upload<B>(site: &Site, request: &Request<B>) -> bool {
    site.upload().is_some() && request.method() == Method::POST
}

/// Receives the files of one form and answers: 303 to the listing once
/// all are stored, or the error that stopped it (files stored before it
/// stay).
pub async fn receive<B>(site: &Site, head: &Request<()>, body: B) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let Some(policy) = site.upload() else {
        return pages::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "This site takes no uploads.",
        );
    };
    match store_all(site, policy, head, body).await {
        Ok((dir, names)) => {
            let location = dir.to_url_path(true);
            let mut response = pages::error(
                StatusCode::SEE_OTHER,
                &format!("Stored {}; the listing is at {location}", names.join(", ")),
            );
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(LOCATION, value);
            }
            response
        }
        Err(response) => response,
    }
}

#[allow(clippy::result_large_err)]
async fn store_all<B>(
    site: &Site,
    policy: UploadPolicy,
    head: &Request<()>,
    body: B,
) -> Result<(RequestPath, Vec<String>), Response<Body>>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let dir = RequestPath::parse(head.uri().path())
        .map_err(|err| pages::error(StatusCode::BAD_REQUEST, &format!("Bad path: {err}.")))?;
    if !dir.has_trailing_slash() {
        let mut response = pages::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Files are uploaded to a directory's URL, which ends in `/`.",
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Err(response);
    }
    if !same_origin(head) {
        return Err(pages::error(
            StatusCode::FORBIDDEN,
            "Uploads are taken from this site's own pages only.",
        ));
    }
    let boundary = head
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| multer::parse_boundary(value).ok())
        .ok_or_else(|| {
            pages::error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Send files as multipart/form-data, as the listing's form does.",
            )
        })?;
    let declared = head
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > policy.max_size) {
        return Err(too_large(policy));
    }
    let limits = multer::SizeLimit::new().whole_stream(policy.max_size);
    let mut form = multer::Multipart::with_constraints(
        body.into_data_stream(),
        boundary,
        multer::Constraints::new().size_limit(limits),
    );
    let mut names = Vec::new();
    while let Some(mut field) = form
        .next_field()
        .await
        .map_err(|err| bad_form(err, policy))?
    {
        // Other fields, and a file input left empty, carry no file.
        let Some(name) = field.file_name().filter(|name| !name.is_empty()) else {
            continue;
        };
        let name = name.to_owned();
        let mut file = site
            .create(&dir, &name, policy.overwrite)
            .map_err(|err| refused(&name, err))?;
        while let Some(chunk) = field.chunk().await.map_err(|err| bad_form(err, policy))? {
            file.write(&chunk)
                .map_err(|err| refused(&name, StoreError::Io(err)))?;
        }
        let bytes = file.written();
        let overwrite = policy.overwrite;
        tokio::task::spawn_blocking(move || file.commit(overwrite))
            .await
            .map_err(|err| refused(&name, StoreError::Io(std::io::Error::other(err))))?
            .map_err(|err| refused(&name, err))?;
        info!(dir = %dir.to_url_path(true), file = %name, bytes, "upload stored");
        names.push(name);
    }
    if names.is_empty() {
        return Err(pages::error(
            StatusCode::BAD_REQUEST,
            "The form held no file.",
        ));
    }
    Ok((dir, names))
}

/// Whether the request comes from a page of this site: browsers send
/// `Origin` with every form POST, and it must name the host the request
/// went to. Clients that send no `Origin` (curl, scripts) are no page.
fn same_origin(head: &Request<()>) -> bool {
    let Some(origin) = head.headers().get(ORIGIN) else {
        return true;
    };
    let host = head
        .uri()
        .authority()
        .map(|authority| authority.as_str().as_bytes())
        .or_else(|| head.headers().get(HOST).map(HeaderValue::as_bytes));
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|origin| origin.split_once("://"))
        .map(|(_, host)| host.as_bytes());
    matches!((origin_host, host), (Some(a), Some(b)) if a.eq_ignore_ascii_case(b))
}

fn too_large(policy: UploadPolicy) -> Response<Body> {
    pages::error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("Uploads are limited to {} bytes.", policy.max_size),
    )
}

fn bad_form(err: multer::Error, policy: UploadPolicy) -> Response<Body> {
    match err {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => {
            too_large(policy)
        }
        err => pages::error(
            StatusCode::BAD_REQUEST,
            &format!("The form could not be read: {err}."),
        ),
    }
}

fn refused(name: &str, err: StoreError) -> Response<Body> {
    match err {
        StoreError::NotFound => pages::error(StatusCode::NOT_FOUND, "There is no such directory."),
        StoreError::Forbidden => pages::error(
            StatusCode::FORBIDDEN,
            "This directory does not take uploads.",
        ),
        StoreError::BadName(why) => pages::error(
            StatusCode::BAD_REQUEST,
            &format!("{name} cannot be stored: {why}."),
        ),
        StoreError::Exists => pages::error(
            StatusCode::CONFLICT,
            &format!("{name} exists already; it is not replaced."),
        ),
        StoreError::Io(err) => {
            warn!(file = %name, %err, "cannot store an upload");
            pages::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The file could not be stored.",
            )
        }
    }
}
