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
                match code.as_str() {
                    "MessageRejected"
                    | "BadRequestException"
                    | "NotFoundException"
                    | "MailFromDomainNotVerifiedException" => Err(NotifyError::Permanent(detail)),
                    _ => Err(NotifyError::Transient(detail)),
                }
            }
        }
    }
}
