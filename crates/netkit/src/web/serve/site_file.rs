//! `web serve --config site.toml`: the flags in a file, plus headers and
//! Cache-Control per path pattern. Every key is a flag's long name; a
//! flag given on the command line wins over the file's key, a repeatable
//! flag's list replacing the file's list. Relative paths in the file are
//! taken from the file's own directory. Every mistake is reported with
//! the file's name and the line, as `site.toml:12: ...`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use clap::ArgMatches;
use clap::parser::ValueSource;
use http::{HeaderName, HeaderValue};
use serde::Deserialize;
use toml::Spanned;
use web::path_rules::{self, PathPattern, PathRule};

use super::{LogFormat, ServeArgs};
use crate::duration;

/// The keys of a site file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct SiteFile {
    dir: Option<PathBuf>,
    bind: Option<Vec<SocketAddr>>,
    tls_bind: Option<Vec<SocketAddr>>,
    redirect_http_to_https: Option<bool>,
    hsts: Option<u64>,
    list: Option<bool>,
    hidden: Option<bool>,
    follow_symlinks: Option<bool>,
    header_timeout: Option<Spanned<String>>,
    send_timeout: Option<Spanned<String>>,
    max_connections: Option<Spanned<u32>>,
    max_connections_per_client: Option<Spanned<u32>>,
    max_connection_rate: Option<u32>,
    workers: Option<Spanned<u32>>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    self_signed: Option<bool>,
    #[serde(alias = "log")]
    access_log: Option<PathBuf>,
    quiet: Option<bool>,
    log_format: Option<LogFormat>,
    header: Option<Headers>,
    cache_control: Option<Spanned<String>>,
    cors: Option<bool>,
    cors_origin: Option<Vec<Spanned<String>>>,
    auth_file: Option<PathBuf>,
    realm: Option<String>,
    allow_insecure_auth: Option<bool>,
    spa: Option<bool>,
    fallback: Option<String>,
    error_page: Option<BTreeMap<Spanned<String>, String>>,
    grace: Option<Spanned<String>>,
    upload: Option<bool>,
    overwrite: Option<bool>,
    max_upload_size: Option<Spanned<String>>,
    #[serde(default)]
    path: Vec<PathSection>,
}

type Headers = BTreeMap<Spanned<String>, Spanned<String>>;

/// `[[path]]`: what responses for the paths matching `pattern` get.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct PathSection {
    pattern: Spanned<String>,
    header: Option<Headers>,
    cache_control: Option<Spanned<String>>,
}

/// A site file's text, to turn byte offsets into line numbers.
struct Source<'a> {
    name: String,
    text: &'a str,
}

impl Source<'_> {
    fn line(&self, span: &Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// `site.toml:12: message`.
    fn error(&self, span: &Range<usize>, message: impl std::fmt::Display) -> String {
        format!("{}:{}: {message}", self.name, self.line(span))
    }
}

/// The flags as `args` has them, with the file's keys filled in where
/// the command line did not give the flag, and the file's path rules.
/// `Err` is a message for the user (a usage error).
pub fn apply(
    args: &mut ServeArgs,
    given: &ArgMatches,
    path: &Path,
) -> Result<Vec<PathRule>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| format!("--config {}: {err}", path.display()))?;
    let source = Source {
        name: path.display().to_string(),
        text: &text,
    };
    let file: SiteFile = toml::from_str(&text).map_err(|err| {
        let span = err.span().unwrap_or(0..0);
        source.error(&span, err.message().trim_end())
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    merge(args, given, file, &source, base)
}

/// Whether the command line gave the flag whose argument id is `id`.
fn on_command_line(given: &ArgMatches, id: &str) -> bool {
    given.value_source(id) == Some(ValueSource::CommandLine)
}

fn merge(
    args: &mut ServeArgs,
    given: &ArgMatches,
    file: SiteFile,
    source: &Source,
    base: &Path,
) -> Result<Vec<PathRule>, String> {
    let free = |id: &str| !on_command_line(given, id);
    let relative = |path: PathBuf| base.join(path);
    let duration = |value: Spanned<String>| {
        duration::parse(value.get_ref()).map_err(|err| source.error(&value.span(), err))
    };
    macro_rules! take {
        ($key:ident, $target:expr, $convert:expr) => {
            if let Some(value) = file.$key {
                if free(stringify!($key)) {
                    $target = $convert(value)?;
                }
            }
        };
    }
    take!(dir, args.dir, |dir| some(relative(dir)));
    take!(bind, args.bind, same);
    take!(tls_bind, args.tls_bind, same);
    take!(redirect_http_to_https, args.redirect_http_to_https, same);
    take!(hsts, args.hsts, some);
    take!(list, args.list, same);
    take!(hidden, args.hidden, same);
    take!(follow_symlinks, args.follow_symlinks, same);
    take!(header_timeout, args.header_timeout, duration);
    take!(send_timeout, args.send_timeout, duration);
    let at_least_one = |value: Spanned<u32>| match *value.get_ref() {
        0 => Err(source.error(&value.span(), "must be at least 1")),
        n => Ok(n),
    };
    take!(max_connections, args.limits.max_connections, at_least_one);
    take!(
        max_connections_per_client,
        args.limits.max_connections_per_client,
        at_least_one
    );
    take!(max_connection_rate, args.limits.max_connection_rate, same);
    take!(
        workers,
        args.workers,
        |value: Spanned<u32>| match *value.get_ref() {
            1..=1024 => Ok(Some(*value.get_ref())),
            _ => Err(source.error(&value.span(), "workers is from 1 to 1024")),
        }
    );
    take!(tls_cert, args.tls.tls_cert, |path| some(relative(path)));
    take!(tls_key, args.tls.tls_key, |path| some(relative(path)));
    take!(self_signed, args.tls.self_signed, same);
    take!(access_log, args.access_log, |path| some(relative(path)));
    take!(quiet, args.quiet, same);
    take!(log_format, args.log_format, same);
    if let Some(headers) = file.header
        && free("headers")
    {
        args.headers = header_table(headers, source)?;
    }
    take!(cache_control, args.cache_control, |value: Spanned<
        String,
    >| {
        header_value(&value, source).map(Some)
    });
    take!(cors, args.cors, same);
    take!(cors_origin, args.cors_origin, |origins: Vec<
        Spanned<String>,
    >| {
        origins
            .iter()
            .map(|origin| header_value(origin, source))
            .collect::<Result<Vec<_>, _>>()
    });
    take!(auth_file, args.auth_file, |path| some(relative(path)));
    take!(realm, args.realm, same);
    take!(allow_insecure_auth, args.allow_insecure_auth, same);
    take!(spa, args.spa, same);
    take!(fallback, args.fallback, some);
    take!(error_page, args.error_page, |pages: BTreeMap<
        Spanned<String>,
        String,
    >| {
        pages
            .into_iter()
            .map(|(status, file)| {
                super::error_page_flag(&format!("{}={file}", status.get_ref()))
                    .map_err(|err| source.error(&status.span(), err))
            })
            .collect::<Result<Vec<_>, _>>()
    });
    take!(grace, args.grace.grace, duration);
    take!(upload, args.upload, same);
    take!(overwrite, args.overwrite, same);
    take!(max_upload_size, args.max_upload_size, |size: Spanned<
        String,
    >| {
        crate::size::parse(size.get_ref()).map_err(|err| source.error(&size.span(), err))
    });
    path_rules(file.path, source)
}

fn header_value(value: &Spanned<String>, source: &Source) -> Result<HeaderValue, String> {
    HeaderValue::from_str(value.get_ref()).map_err(|_| {
        source.error(
            &value.span(),
            format!("{:?} has characters a header cannot hold", value.get_ref()),
        )
    })
}

fn header_table(
    headers: Headers,
    source: &Source,
) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    headers
        .into_iter()
        .map(|(name, value)| {
            let parsed = HeaderName::from_bytes(name.get_ref().as_bytes()).map_err(|_| {
                source.error(
                    &name.span(),
                    format!("{:?} is not a valid header name", name.get_ref()),
                )
            })?;
            Ok((parsed, header_value(&value, source)?))
        })
        .collect()
}

/// The `[[path]]` sections as rules, refusing two that overlap and set
/// the same header.
fn path_rules(sections: Vec<PathSection>, source: &Source) -> Result<Vec<PathRule>, String> {
    let mut rules = Vec::new();
    let mut spans = Vec::new();
    for section in sections {
        let span = section.pattern.span();
        let pattern: PathPattern = section.pattern.get_ref().parse().map_err(|err| {
            source.error(
                &section.pattern.span(),
                format!("pattern {:?}: {err}", section.pattern.get_ref()),
            )
        })?;
        let headers = section
            .header
            .map(|headers| header_table(headers, source))
            .transpose()?
            .unwrap_or_default();
        if let Some((name, _)) = headers
            .iter()
            .find(|(name, _)| name == http::header::CACHE_CONTROL)
        {
            return Err(source.error(
                &span,
                format!("set {name} with the cache-control key of [[path]]"),
            ));
        }
        let cache_control = section
            .cache_control
            .map(|value| header_value(&value, source))
            .transpose()?;
        if headers.is_empty() && cache_control.is_none() {
            return Err(source.error(
                &span,
                format!("[[path]] {pattern} sets neither header nor cache-control"),
            ));
        }
        rules.push(PathRule {
            pattern,
            headers,
            cache_control,
        });
        spans.push(span);
    }
    path_rules::check(&rules).map_err(|conflict| {
        source.error(
            &spans[conflict.second],
            format!(
                "pattern {} overlaps {} (line {}): both set {} on paths such as {}",
                rules[conflict.second].pattern,
                rules[conflict.first].pattern,
                source.line(&spans[conflict.first]),
                conflict.header,
                conflict.example
            ),
        )
    })?;
    Ok(rules)
}

fn same<T>(value: T) -> Result<T, String> {
    Ok(value)
}

fn some<T>(value: T) -> Result<Option<T>, String> {
    Ok(Some(value))
}
