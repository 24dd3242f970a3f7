//! Extra header fields given on the command line as `Name: value`.

use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraHeader {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("`{0}` is not a header: write it as 'Name: value'")]
    Shape(String),
    #[error("`{0}` is not a header name: use letters, digits and `-`")]
    Name(String),
    #[error("the value of header `{0}` contains a line break or control character")]
    Value(String),
    #[error("Bcc is never written into the message; use --bcc to add blind recipients")]
    Bcc,
}

impl FromStr for ExtraHeader {
    type Err = HeaderError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let (name, value) = input
            .split_once(':')
            .ok_or_else(|| HeaderError::Shape(input.to_owned()))?;
        let name = name.trim();
        let valid_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid_name {
            return Err(HeaderError::Name(name.to_owned()));
        }
        if name.eq_ignore_ascii_case("bcc") {
            return Err(HeaderError::Bcc);
        }
        let value = value.trim();
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(HeaderError::Value(name.to_owned()));
        }
        Ok(Self {
            name: name.to_owned(),
            value: value.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let header: ExtraHeader = "X-Campaign:  spring 2026 ".parse().unwrap();
        assert_eq!(header.name, "X-Campaign");
        assert_eq!(header.value, "spring 2026");
        assert!("no colon".parse::<ExtraHeader>().is_err());
        assert!("Bad Name: x".parse::<ExtraHeader>().is_err());
        assert!(
            "X-Inject: a\r\nBcc: evil@example.org"
                .parse::<ExtraHeader>()
                .is_err()
        );
        assert_eq!(
            "bcc: someone@example.org".parse::<ExtraHeader>(),
            Err(HeaderError::Bcc)
        );
    }
}
