//! Everything the sink says that does not depend on the client's input, in
//! one place: each answer a reply code (RFC 5321 §4.2), an enhanced status
//! (RFC 3463) and its text.

use crate::reply::{Reply, ReplyCode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Answer {
    Ok,
    SenderOk,
    RecipientOk,
    CannotVerify,
    Help,
    Bye,
    ReadyForTls,
    StartData,
    AuthContinue,
    AuthSuccessful,
    ShuttingDown,
    /// The server is full and this session was the one idle longest.
    IdleReclaimed,
    IdleTooLong,
    TooManyErrors,
    TooManyAuthFailures,
    TooManyMessages,
    TransferTooLong,
    CannotStore,
    TooManyRecipients,
    LineTooLong,
    NotRecognized,
    NeedHostName,
    MailSyntax,
    RcptSyntax,
    BadSize,
    AuthCancelled,
    EmptyRecipient,
    NoStartTls,
    SendEhloFirst,
    TlsActive,
    AlreadyAuthenticated,
    SenderGiven,
    NeedMail,
    NeedMailBeforeData,
    UnknownMechanism,
    AuthRequired,
    AuthInvalid,
    EncryptionRequired,
    TooBig,
    DataLineTooLong,
    NoRecipients,
}

impl Answer {
    pub fn reply(self) -> Reply {
        use ReplyCode as C;
        let (code, status, text) = match self {
            Self::Ok => (C::OK, "2.0.0", "OK"),
            Self::SenderOk => (C::OK, "2.1.0", "OK"),
            Self::RecipientOk => (C::OK, "2.1.5", "OK"),
            Self::CannotVerify => (
                C::CANNOT_VERIFY,
                "2.5.0",
                "Cannot verify, but will accept the message",
            ),
            Self::Help => (
                C::HELP,
                "2.0.0",
                "EHLO HELO STARTTLS AUTH MAIL RCPT DATA RSET NOOP VRFY QUIT",
            ),
            Self::Bye => (C::CLOSING, "2.0.0", "Bye"),
            Self::ReadyForTls => (C::SERVICE_READY, "2.0.0", "Ready to start TLS"),
            // Neither carries a status: 354 and the SASL challenge are not
            // outcomes (RFC 3463 §1, RFC 4954 §4).
            Self::StartData => {
                return Reply::new(
                    C::START_DATA,
                    vec!["End data with <CR><LF>.<CR><LF>".into()],
                );
            }
            Self::AuthContinue => return Reply::new(C::AUTH_CONTINUE, vec![String::new()]),
            Self::AuthSuccessful => (C::AUTH_SUCCESSFUL, "2.7.0", "Authentication successful"),
            Self::ShuttingDown => (C::SERVICE_NOT_AVAILABLE, "4.3.2", "Service shutting down"),
            Self::IdleReclaimed => (
                C::SERVICE_NOT_AVAILABLE,
                "4.3.2",
                "Too many connections, closing idle ones",
            ),
            Self::IdleTooLong => (
                C::SERVICE_NOT_AVAILABLE,
                "4.4.2",
                "Idle for too long, closing connection",
            ),
            Self::TooManyErrors => (
                C::SERVICE_NOT_AVAILABLE,
                "4.7.0",
                "Too many errors, closing connection",
            ),
            Self::TooManyAuthFailures => (
                C::SERVICE_NOT_AVAILABLE,
                "4.7.0",
                "Too many authentication failures",
            ),
            Self::TooManyMessages => (
                C::SERVICE_NOT_AVAILABLE,
                "4.7.0",
                "Too many messages in one session, closing connection",
            ),
            Self::TransferTooLong => (
                C::SERVICE_NOT_AVAILABLE,
                "4.7.0",
                "Message transfer took too long, closing connection",
            ),
            Self::CannotStore => (
                C::LOCAL_ERROR,
                "4.3.0",
                "Cannot store the message, try again later",
            ),
            Self::TooManyRecipients => (C::INSUFFICIENT_STORAGE, "4.5.3", "Too many recipients"),
            Self::LineTooLong => (C::SYNTAX_ERROR, "5.5.2", "Line too long"),
            Self::NotRecognized => (C::SYNTAX_ERROR, "5.5.1", "Command not recognized"),
            Self::NeedHostName => (C::PARAMETER_SYNTAX_ERROR, "5.5.4", "Give your host name"),
            Self::MailSyntax => (
                C::PARAMETER_SYNTAX_ERROR,
                "5.5.4",
                "Syntax: MAIL FROM:<address>",
            ),
            Self::RcptSyntax => (
                C::PARAMETER_SYNTAX_ERROR,
                "5.5.4",
                "Syntax: RCPT TO:<address>",
            ),
            Self::BadSize => (C::PARAMETER_SYNTAX_ERROR, "5.5.4", "Bad SIZE value"),
            Self::AuthCancelled => (
                C::PARAMETER_SYNTAX_ERROR,
                "5.7.0",
                "Authentication cancelled",
            ),
            Self::EmptyRecipient => (C::PARAMETER_SYNTAX_ERROR, "5.1.3", "Empty recipient"),
            Self::NoStartTls => (C::NOT_IMPLEMENTED, "5.5.1", "STARTTLS not available"),
            Self::SendEhloFirst => (C::BAD_SEQUENCE, "5.5.1", "Send EHLO first"),
            Self::TlsActive => (C::BAD_SEQUENCE, "5.5.1", "TLS already active"),
            Self::AlreadyAuthenticated => (C::BAD_SEQUENCE, "5.5.1", "Already authenticated"),
            Self::SenderGiven => (C::BAD_SEQUENCE, "5.5.1", "Sender already given"),
            Self::NeedMail => (C::BAD_SEQUENCE, "5.5.1", "Need MAIL before RCPT"),
            Self::NeedMailBeforeData => (C::BAD_SEQUENCE, "5.5.1", "Need MAIL before DATA"),
            Self::UnknownMechanism => (
                C::PARAMETER_NOT_IMPLEMENTED,
                "5.5.4",
                "Unrecognized authentication type",
            ),
            Self::AuthRequired => (C::AUTH_REQUIRED, "5.7.0", "Authentication required"),
            Self::AuthInvalid => (
                C::AUTH_INVALID,
                "5.7.8",
                "Authentication credentials invalid",
            ),
            Self::EncryptionRequired => (
                C::ENCRYPTION_REQUIRED,
                "5.7.11",
                "Encryption required for requested authentication mechanism",
            ),
            Self::TooBig => (
                C::EXCEEDED_STORAGE,
                "5.3.4",
                "Message size exceeds fixed limit",
            ),
            Self::DataLineTooLong => (C::EXCEEDED_STORAGE, "5.3.4", "Line too long in message"),
            Self::NoRecipients => (C::TRANSACTION_FAILED, "5.5.1", "No valid recipients"),
        };
        Reply::enhanced(code, status, text)
    }
}

#[cfg(test)]
mod tests {
    use super::Answer;

    #[test]
    fn answers_keep_their_wire_form() {
        assert_eq!(Answer::Ok.reply().to_wire(), "250 2.0.0 OK\r\n");
        assert_eq!(Answer::AuthContinue.reply().to_wire(), "334 \r\n");
        assert_eq!(
            Answer::StartData.reply().to_wire(),
            "354 End data with <CR><LF>.<CR><LF>\r\n"
        );
        assert_eq!(
            Answer::TooManyRecipients.reply().to_wire(),
            "452 4.5.3 Too many recipients\r\n"
        );
        // The class of every answer agrees with its enhanced status.
        for answer in [Answer::Ok, Answer::ShuttingDown, Answer::TooBig] {
            let reply = answer.reply();
            let class = reply.code.value() / 100;
            assert!(reply.lines[0].starts_with(&class.to_string()), "{reply}");
        }
    }
}
