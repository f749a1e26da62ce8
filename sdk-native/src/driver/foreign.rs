//! A server that does not speak the protocol: its adapter, and its HTTP
//! requests run on tasks of their own, answers fed back to the session.

use super::*;

/// An HTTP answer from a foreign server: what it answers, and the status
/// and body, or why there is none.
pub(super) type Fetched = (FetchId, ForeignRequest, Result<(u16, Frame), String>);

/// HTTP requests to a foreign server run at most this many at once.
pub(super) const CONCURRENT_FETCHES: usize = 8;

/// A foreign server: its adapter, and the HTTP client its requests use.
pub(super) struct Foreign {
    pub(super) adapter: Arc<dyn Adapter>,
    pub(super) http: reqwest::Client,
    pub(super) fetch_timeout: Duration,
    pub(super) max_answer_bytes: usize,
    pub(super) permits: Arc<tokio::sync::Semaphore>,
    pub(super) answers: mpsc::UnboundedSender<Fetched>,
}

/// One HTTP request to a foreign server, its answer read up to `max` bytes
/// within `limit`.
pub(super) async fn fetch(
    client: reqwest::Client,
    request: HttpRequest,
    limit: Duration,
    max: usize,
) -> Result<(u16, Frame), String> {
    let method = reqwest::Method::from_bytes(request.method.as_bytes())
        .map_err(|e| format!("method {}: {e}", request.method))?;
    let mut builder = client.request(method, &request.url);
    for (name, value) in request.headers {
        builder = builder.header(name, value);
    }
    if let Some(body) = request.body {
        builder = builder.body(body);
    }
    let read = async {
        let mut response = builder.send().await.map_err(|e| error_chain(&e))?;
        let status = response.status().as_u16();
        if response.content_length().is_some_and(|n| n > max as u64) {
            return Err(format!("the answer is larger than {max} bytes"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| error_chain(&e))? {
            if body.len() + chunk.len() > max {
                return Err(format!("the answer is larger than {max} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        let text = String::from_utf8(body).map_err(|_| "the answer is not UTF-8".to_string())?;
        Ok((status, Frame::new(text)))
    };
    match timeout(limit, read).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {} ms", limit.as_millis())),
    }
}

/// An error with its causes, in one line.
pub(super) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl Driver {
    /// Carries out one request to a foreign server: a frame goes to the
    /// outbox, an HTTP request runs on its own task and its answer comes
    /// back as `Wake::Fetched`. Every request with an id is answered once.
    pub(super) fn foreign_request(&mut self, id: Option<FetchId>, request: ForeignRequest) {
        let Some(foreign) = &self.foreign else {
            return;
        };
        let now = self.now();
        match foreign.adapter.request(&request) {
            Outbound::Frame(text) => {
                self.outbox.push(text);
                if let Some(id) = id {
                    self.session.handle_fetched(now, id, 0, FetchAnswer::Sent);
                }
            }
            Outbound::Http(http) => {
                let client = foreign.http.clone();
                let (limit, max) = (foreign.fetch_timeout, foreign.max_answer_bytes);
                let permits = foreign.permits.clone();
                let answers = foreign.answers.clone();
                tokio::spawn(async move {
                    let _permit = permits.acquire_owned().await;
                    let result = fetch(client, http, limit, max).await;
                    // A subscribe or unsubscribe over HTTP: nobody waits.
                    if let Some(id) = id {
                        let _ = answers.send((id, request, result));
                    }
                });
            }
            Outbound::Nothing => {
                if let Some(id) = id {
                    let answer = FetchAnswer::Failed {
                        reason: "the adapter cannot carry this request out".into(),
                        status: None,
                    };
                    self.session.handle_fetched(now, id, 0, answer);
                }
            }
        }
    }
}
