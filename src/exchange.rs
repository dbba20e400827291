//! One request through Unit: its body streamed from libunit into the guest as it
//! arrives, the guest's response streamed back through shared memory, and the
//! request ended the way the engine's response ended.

#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response, StatusCode, header};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Limited};
use rvm_engine::{RequestBodyError, ResponseBody};
use rvm_unit_logic::response::{MAX_FIELD_NAME, NameTooLong};
use tokio::sync::{Notify, mpsc};
use tokio::task::AbortHandle;

use crate::serving::Serving;
use crate::unit::{Gone, PLAIN_MESSAGE_MAX, Request, ResponseInit};

/// Largest piece of request body read from libunit at once.
const BODY_CHUNK: usize = 64 * 1024;
/// Request body pieces buffered ahead of the guest.
const BODY_CHUNKS_AHEAD: usize = 4;
/// Responses with a declared length up to this go out in one message with
/// their head, rather than as a head and a body write.
const SMALL_BODY: u64 = 64 * 1024;
/// The least room a guest's response asks for in its head's buffer. The buffer
/// then exceeds libunit's plain-message size, so it lives in shared memory and
/// goes through the router's queue, whose wake-ups the loop sends once per
/// batch (see `crate::worker`): even a small response goes there.
const GUEST_HEAD_ROOM: usize = PLAIN_MESSAGE_MAX;
/// How long a response waiting for shared memory waits for the router's word
/// that it freed some before it looks again: the router says so only to a
/// process that told it it ran out, and not when it takes a new segment.
const SHARED_MEMORY_RECHECK: Duration = Duration::from_millis(10);

/// A request in flight.
pub struct Exchange {
    request: Request,
    /// Told when more body arrived (libunit's data_handler).
    body_arrived: Notify,
    task: RefCell<Option<AbortHandle>>,
}

impl Exchange {
    pub fn new(request: Request) -> Exchange {
        Exchange {
            request,
            body_arrived: Notify::new(),
            task: RefCell::default(),
        }
    }

    pub fn key(&self) -> usize {
        self.request.key()
    }

    pub fn set_task(&self, task: AbortHandle) {
        *self.task.borrow_mut() = Some(task);
    }

    pub fn body_arrived(&self) {
        self.body_arrived.notify_one();
    }

    /// libunit gives up on the request (its context quits): end it as failed
    /// and stop serving it (which stops its guest).
    pub fn cancel(&self) {
        self.request.done(false);
        if let Some(task) = self.task.borrow_mut().take() {
            task.abort();
        }
    }
}

/// Serves one request to its end.
pub async fn serve(serving: Arc<Serving>, exchange: Rc<Exchange>, shm_freed: Rc<Notify>) {
    let request = &exchange.request;
    if let Ok(head) = request.head() {
        let (body, pump) = request_body(&exchange, head.content_length);
        match rvm_unit_logic::request::request(&head, body) {
            Ok(http_request) => {
                let response = serving.handle(http_request).await;
                respond(serving.name(), request, &shm_freed, response).await;
            }
            Err(why) => {
                tracing::warn!(app = serving.name(), status = 400, "bad request: {why}");
                respond_text(
                    request,
                    &shm_freed,
                    StatusCode::BAD_REQUEST,
                    &format!("bad request: {why}\n"),
                )
                .await;
            }
        }
        // The pump, if any, stops with the request (or with this task, if the
        // request is cancelled).
        drop(pump);
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The guest's view of the request body, and the task filling it from libunit.
fn request_body(exchange: &Rc<Exchange>, length: u64) -> (UnitBody, Option<AbortOnDrop>) {
    if length == 0 {
        return (UnitBody(None), None);
    }
    let (sender, receiver) = mpsc::channel(BODY_CHUNKS_AHEAD);
    let pump = tokio::task::spawn_local(pump_body(Rc::clone(exchange), length, sender));
    (
        UnitBody(Some(receiver)),
        Some(AbortOnDrop(pump.abort_handle())),
    )
}

/// Moves the body from libunit to the guest as it arrives, as fast as the guest
/// takes it.
async fn pump_body(
    exchange: Rc<Exchange>,
    length: u64,
    sender: mpsc::Sender<Result<Bytes, RequestBodyError>>,
) {
    let mut left = length;
    while left > 0 {
        // The guest stopped reading: nothing more to do.
        let Ok(slot) = sender.reserve().await else {
            return;
        };
        let mut chunk = vec![0; BODY_CHUNK.min(usize::try_from(left).unwrap_or(BODY_CHUNK))];
        match exchange.request.read(&mut chunk) {
            Ok(0) => {
                drop(slot);
                exchange.body_arrived.notified().await;
            }
            Ok(n) => {
                chunk.truncate(n);
                left = left.saturating_sub(n as u64);
                slot.send(Ok(Bytes::from(chunk)));
            }
            Err(Gone) => {
                slot.send(Err(RequestBodyError::ConnectionTerminated));
                return;
            }
        }
    }
}

/// A request body fed by [`pump_body`]; `Send`, unlike the libunit request.
struct UnitBody(Option<mpsc::Receiver<Result<Bytes, RequestBodyError>>>);

impl Body for UnitBody {
    type Data = Bytes;
    type Error = RequestBodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, RequestBodyError>>> {
        let Some(receiver) = &mut self.0 else {
            return Poll::Ready(None);
        };
        receiver
            .poll_recv(cx)
            .map(|piece| piece.map(|piece| piece.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }
}

/// Sends the engine's response through Unit and ends the request as the
/// response body ended: cleanly, or cut off.
async fn respond(
    app: &str,
    request: &Request,
    shm_freed: &Notify,
    response: Response<ResponseBody>,
) {
    let (parts, mut body) = response.into_parts();
    let fields = match rvm_unit_logic::response::fields(&parts.headers) {
        Ok(fields) => fields,
        Err(NameTooLong(name)) => {
            tracing::error!(
                app,
                "response header {}… is {} bytes long; Unit carries at most {MAX_FIELD_NAME}",
                &name.as_str()[..32],
                name.as_str().len()
            );
            let message = "the application sent a header Unit cannot carry\n";
            return respond_text(
                request,
                shm_freed,
                StatusCode::INTERNAL_SERVER_ERROR,
                message,
            )
            .await;
        }
    };
    // A small body of declared length goes out with the head in one message.
    if let Some(length) = body.size_hint().exact().filter(|&n| n <= SMALL_BODY) {
        let Some(content) = collect(body, length).await else {
            // Nothing was sent yet: Unit answers the client with an error.
            return request.done(false);
        };
        let started = start(
            request,
            shm_freed,
            parts.status,
            &fields,
            &content,
            GUEST_HEAD_ROOM,
        )
        .await;
        return request.done(started.is_ok());
    }

    let started = start(
        request,
        shm_freed,
        parts.status,
        &fields,
        &[],
        GUEST_HEAD_ROOM,
    )
    .await;
    if started.and_then(|()| request.send()).is_err() {
        // The client is gone; dropping the body stops the guest.
        return request.done(false);
    }
    loop {
        match body.frame().await {
            Some(Ok(frame)) => {
                // Unit has no trailer API: trailers are dropped.
                if let Ok(data) = frame.into_data()
                    && write_all(request, shm_freed, &data).await.is_err()
                {
                    return request.done(false);
                }
            }
            // The engine logged why; the client must see the response cut off.
            Some(Err(_)) => return request.done(false),
            None => return request.done(true),
        }
    }
}

/// Starts the response: its status, header `fields` and `content`, if any, in
/// one buffer with room for at least `least` bytes of them, once shared memory
/// has room for it.
async fn start(
    request: &Request,
    shm_freed: &Notify,
    status: StatusCode,
    fields: &[(&HeaderName, &HeaderValue)],
    content: &[u8],
    least: usize,
) -> Result<(), Gone> {
    let bytes: usize = fields
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    let room = (bytes + content.len()).max(least);
    with_room(shm_freed, || {
        match request.response_init(status.as_u16(), fields.len() as u32, room as u32)? {
            ResponseInit::NoRoom => return Ok(None),
            ResponseInit::Started => {}
            // Other responses waiting for memory may find some now.
            ResponseInit::StartedAfterWaiting => shm_freed.notify_waiters(),
        }
        Ok(Some(()))
    })
    .await?;
    fields.iter().try_for_each(|(name, value)| {
        request.add_field(name.as_str().as_bytes(), value.as_bytes())
    })?;
    if content.is_empty() {
        Ok(())
    } else {
        request.add_content(content)
    }
}

/// The whole body, if it ends cleanly within `limit` bytes.
async fn collect(body: ResponseBody, limit: u64) -> Option<Bytes> {
    let limit = usize::try_from(limit).ok()?;
    Some(Limited::new(body, limit).collect().await.ok()?.to_bytes())
}

/// Writes `data` into the response, waiting on the loop for Unit to free
/// shared memory when it is full.
async fn write_all(request: &Request, shm_freed: &Notify, mut data: &[u8]) -> Result<(), Gone> {
    while !data.is_empty() {
        let written = with_room(shm_freed, || {
            let written = request.write_nb(data)?;
            Ok((written > 0).then_some(written))
        })
        .await?;
        data = &data[written..];
    }
    Ok(())
}

/// Makes `attempt` until it finds room in shared memory (`Some`), waiting on
/// the loop in between: for the router's word that it freed memory, or for
/// [`SHARED_MEMORY_RECHECK`].
async fn with_room<T>(
    shm_freed: &Notify,
    mut attempt: impl FnMut() -> Result<Option<T>, Gone>,
) -> Result<T, Gone> {
    loop {
        // Registered before the attempt, so that a release in between is not missed.
        let freed = shm_freed.notified();
        tokio::pin!(freed);
        freed.as_mut().enable();
        if let Some(done) = attempt()? {
            return Ok(done);
        }
        let _ = tokio::time::timeout(SHARED_MEMORY_RECHECK, freed).await;
    }
}

/// A short plain-text answer from the module itself. It asks for no more room
/// than it needs, so it fits a plain message and needs no shared memory: it
/// goes out even while all of it is in use.
async fn respond_text(request: &Request, shm_freed: &Notify, status: StatusCode, text: &str) {
    let content_type = HeaderValue::from_static("text/plain; charset=utf-8");
    let fields = [(&header::CONTENT_TYPE, &content_type)];
    let started = start(request, shm_freed, status, &fields, text.as_bytes(), 0).await;
    // A started response goes out as the request ends.
    request.done(started.is_ok());
}
