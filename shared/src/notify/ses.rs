//! E-mail through Amazon SES v2 `SendEmail` (simple content, text and optional HTML).

use aws_sdk_sesv2::error::ProvideErrorMetadata;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};

use super::NotifyError;

/// Sends mail from `MAIL_FROM`.
pub struct SesMailer {
    client: aws_sdk_sesv2::Client,
    from: String,
}

fn content(data: &str) -> Result<Content, NotifyError> {
    Content::builder()
        .data(data)
        .charset("UTF-8")
        .build()
        .map_err(|e| NotifyError::Permanent(format!("mail content: {e}")))
}

impl SesMailer {
    pub fn new(client: aws_sdk_sesv2::Client, from: &str) -> Self {
        SesMailer {
            client,
            from: from.to_owned(),
        }
    }

    /// Sends one message. Throttling and account-level pauses are transient (the message waits in
    /// the queue); a rejected message or address is permanent.
    pub async fn send(
        &self,
        to: &str,
        subject: &str,
        text: &str,
        html: Option<&str>,
    ) -> Result<(), NotifyError> {
        let mut body = Body::builder().text(content(text)?);
        if let Some(h) = html {
            body = body.html(content(h)?);
        }
        let message = Message::builder()
            .subject(content(subject)?)
            .body(body.build())
            .build();
        let result = self
            .client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(to).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                let code = e.code().unwrap_or_default().to_owned();
                let detail = format!(
                    "SES {code}: {}",
                    aws_sdk_sesv2::error::DisplayErrorContext(&e)
                );
                if is_permanent(&code) {
                    Err(NotifyError::Permanent(detail))
                } else {
                    Err(NotifyError::Transient(detail))
                }
            }
        }
    }
}

/// Whether an SES v2 `SendEmail` error code means this message will not go out however often it
/// is retried: a rejected or malformed message, a missing identity, or an account that cannot
/// send until an operator acts (suspended, sending paused, MAIL FROM domain unverified) — retrying
/// those would only storm SES and then dead-letter anyway. Throttling (`TooManyRequestsException`,
/// `LimitExceededException`), internal and unknown errors are transient: SQS redelivers after the
/// visibility timeout, which is the back-off.
fn is_permanent(code: &str) -> bool {
    matches!(
        code,
        "MessageRejected"
            | "BadRequestException"
            | "NotFoundException"
            | "MailFromDomainNotVerifiedException"
            | "AccountSuspendedException"
            | "SendingPausedException"
    )
}

#[cfg(test)]
mod tests {
    use super::is_permanent;

    #[test]
    fn account_level_refusals_are_permanent_and_throttling_is_retried() {
        for code in [
            "AccountSuspendedException",
            "SendingPausedException",
            "MailFromDomainNotVerifiedException",
            "MessageRejected",
        ] {
            assert!(is_permanent(code), "{code}");
        }
        for code in [
            "TooManyRequestsException",
            "LimitExceededException",
            "InternalFailure",
            "",
        ] {
            assert!(!is_permanent(code), "{code}");
        }
    }
}
