//! One request handed to us by libunit, until it is done.

use std::cell::Cell;
use std::ptr;

use rvm_unit_logic::request::Head;
use rvm_unit_logic::room::Room;

use super::ffi;
use super::segments::{PLAIN_MESSAGE_MAX, Segments};
use super::wake_ups::WakeUps;

/// libunit ended the request (client gone, context quitting), or we did.
#[derive(Debug)]
pub struct Gone;

/// How starting a response went.
#[derive(Debug, PartialEq, Eq)]
pub enum ResponseInit {
    /// Shared memory has no room for the response's buffer now, and nothing
    /// was done: ask again once the context hears that memory was freed
    /// ([`super::Events::shm_freed`]), or after a while, since the router does
    /// not always say so.
    NoRoom,
    /// Started.
    Started,
    /// Started, but libunit may have waited for the router to free memory and
    /// taken its word itself, unheard by [`super::Events::shm_freed`]:
    /// responses waiting for memory should look again.
    StartedAfterWaiting,
}

/// A request of this thread's context. Every call reaches libunit only while
/// the request is live: once [`Request::done`] ran, calls fail with [`Gone`]. Not `Send`: libunit's
/// requests belong to the thread that runs their context.
pub struct Request {
    raw: Cell<*mut ffi::nxt_unit_request_info_t>,
}

impl Request {
    /// # Safety
    /// `raw` is a request libunit handed to a callback on this thread, of a
    /// context of ours, and it stays valid until `done` is called on the
    /// returned value.
    pub(super) unsafe fn from_raw(raw: *mut ffi::nxt_unit_request_info_t) -> Request {
        Request {
            raw: Cell::new(raw),
        }
    }

    /// The pointer libunit knows this request by (for matching callbacks).
    pub fn key(&self) -> usize {
        self.raw.get() as usize
    }

    fn live(&self) -> Result<*mut ffi::nxt_unit_request_info_t, Gone> {
        let raw = self.raw.get();
        if raw.is_null() { Err(Gone) } else { Ok(raw) }
    }

    pub fn head(&self) -> Result<Head, Gone> {
        let raw = self.live()?;
        // SAFETY: a live request's `request` points at its head, whose serialized
        // pointers (sptr) address bytes inside the same buffer with the given
        // lengths; everything is copied before returning.
        unsafe {
            let r = &mut *(*raw).request;
            let fields =
                std::slice::from_raw_parts_mut(r.fields.as_mut_ptr(), r.fields_count as usize)
                    .iter_mut()
                    .map(|f| {
                        (
                            sptr_bytes(&mut f.name, f.name_length as usize),
                            sptr_bytes(&mut f.value, f.value_length as usize),
                        )
                    })
                    .collect();
            Ok(Head {
                method: sptr_bytes(&mut r.method, r.method_length as usize),
                version: sptr_bytes(&mut r.version, r.version_length as usize),
                target: sptr_bytes(&mut r.target, r.target_length as usize),
                server_name: sptr_bytes(&mut r.server_name, r.server_name_length as usize),
                tls: r.tls != 0,
                content_length: r.content_length,
                fields,
            })
        }
    }

    /// Reads body bytes that have arrived; `Ok(0)` when none are there yet.
    pub fn read(&self, buf: &mut [u8]) -> Result<usize, Gone> {
        let raw = self.live()?;
        // SAFETY: live request; `buf` is writable for `buf.len()` bytes.
        let n = unsafe { ffi::nxt_unit_request_read(raw, buf.as_mut_ptr().cast(), buf.len()) };
        usize::try_from(n).map_err(|_| Gone)
    }

    /// Starts the response: status, and room for `fields` header fields of
    /// `bytes` name and value bytes in all, if shared memory has room for its
    /// buffer (see `segments`).
    pub fn response_init(
        &self,
        status: u16,
        fields: u32,
        bytes: u32,
    ) -> Result<ResponseInit, Gone> {
        let raw = self.live()?;
        // nxt_unit_response_init's buffer: the response, and each field with
        // the NULs after its name and value, then the bytes.
        let size = size_of::<ffi::nxt_unit_response_t>()
            + fields as usize * (size_of::<ffi::nxt_unit_field_t>() + 2)
            + bytes as usize;
        // SAFETY: a live request of a context of ours, on its thread (as
        // `from_raw` was promised); its response port is set and outlives it.
        let (segments, wake_ups, port) = unsafe {
            (
                Segments::of((*raw).ctx),
                WakeUps::of((*raw).ctx),
                (*(*raw).response_port).id.id,
            )
        };
        let _allocating = segments.allocating();
        let room = if size <= PLAIN_MESSAGE_MAX {
            Room::Free
        } else {
            segments.room(port, size)
        };
        match room {
            Room::Full => return Ok(ResponseInit::NoRoom),
            // libunit may wait for the router to free memory: memory the
            // router knows of, then.
            Room::Unknown => wake_ups.send_held(),
            Room::Free => {}
        }
        // SAFETY: live request whose response was not started.
        check(unsafe { ffi::nxt_unit_response_init(raw, status, fields, bytes) })?;
        Ok(match room {
            Room::Unknown => ResponseInit::StartedAfterWaiting,
            _ => ResponseInit::Started,
        })
    }

    /// Adds a header field; `name` is at most 255 bytes.
    pub fn add_field(&self, name: &[u8], value: &[u8]) -> Result<(), Gone> {
        let raw = self.live()?;
        let name_length = u8::try_from(name.len()).map_err(|_| Gone)?;
        let value_length = u32::try_from(value.len()).map_err(|_| Gone)?;
        // SAFETY: live request with an initialised response; the pointers are
        // valid for the lengths given (libunit copies them).
        check(unsafe {
            ffi::nxt_unit_response_add_field(
                raw,
                name.as_ptr().cast(),
                name_length,
                value.as_ptr().cast(),
                value_length,
            )
        })
    }

    /// Adds body bytes to the response head's buffer (before `send`).
    pub fn add_content(&self, content: &[u8]) -> Result<(), Gone> {
        let raw = self.live()?;
        let size = u32::try_from(content.len()).map_err(|_| Gone)?;
        // SAFETY: live request with an initialised, unsent response.
        check(unsafe { ffi::nxt_unit_response_add_content(raw, content.as_ptr().cast(), size) })
    }

    /// Sends the status and header fields.
    pub fn send(&self) -> Result<(), Gone> {
        let raw = self.live()?;
        // SAFETY: live request with an initialised response.
        check(unsafe { ffi::nxt_unit_response_send(raw) })
    }

    /// Writes as much of `data` as shared memory takes now, without blocking;
    /// `Ok(0)`: no room now, ask again as after [`ResponseInit::NoRoom`].
    pub fn write_nb(&self, data: &[u8]) -> Result<usize, Gone> {
        let raw = self.live()?;
        // It never waits, but the room it takes must not be room another
        // context was just told of (see `segments`).
        // SAFETY: a live request of a context of ours, on its thread.
        let _allocating = unsafe { Segments::of((*raw).ctx) }.allocating();
        // SAFETY: live request whose response head was sent.
        let n =
            unsafe { ffi::nxt_unit_response_write_nb(raw, data.as_ptr().cast(), data.len(), 0) };
        usize::try_from(n).map_err(|_| Gone)
    }

    /// Ends the request: complete if `ok`, else as an error (before headers the
    /// client gets 503, after them the connection is cut).
    pub fn done(&self, ok: bool) {
        let raw = self.raw.replace(ptr::null_mut());
        if raw.is_null() {
            return;
        }
        let rc = if ok {
            ffi::NXT_UNIT_OK
        } else {
            ffi::NXT_UNIT_ERROR
        };
        // SAFETY: live until now; no call reaches it after this one.
        unsafe { ffi::nxt_unit_request_done(raw, rc as i32) };
    }
}

fn check(rc: i32) -> Result<(), Gone> {
    if rc == ffi::NXT_UNIT_OK as i32 {
        Ok(())
    } else {
        Err(Gone)
    }
}

/// The bytes a serialized pointer addresses.
///
/// # Safety
/// `sptr` is part of a libunit message buffer in which it addresses `len` bytes.
unsafe fn sptr_bytes(sptr: &mut ffi::nxt_unit_sptr_t, len: usize) -> Vec<u8> {
    if len == 0 {
        return Vec::new();
    }
    // SAFETY: as the caller promised; this is nxt_unit_sptr_get().
    unsafe {
        let base = sptr.base.as_mut_ptr();
        let start = base.add(sptr.offset as usize);
        std::slice::from_raw_parts(start.cast::<u8>().cast_const(), len).to_vec()
    }
}
