//! A safe wrapper over libsystemd's sd-journal reader: the crate's one `unsafe` exception.
//!
//! Why FFI and not `journalctl --follow --output=json`: journald coalesces
//! its change notifications (about 250 ms), so a follower woken only by
//! them lags about 390 ms at p50 on our machines; journalctl has no option
//! to poll sooner. sd-journal reads the journal files through mmap, so a
//! reader can look for new entries every few milliseconds at the cost of a
//! header check, and it follows rotation, vacuuming and a journald restart
//! itself (`sd_journal_process`). The journal's file format is internal to
//! systemd; libsystemd is its only stable reader.
//!
//! Linking: `libsystemd.so.0` by its soname (`+verbatim`), so building needs
//! the runtime library every systemd host has, not the `-dev` package.
//!
//! Safety argument, once for the whole file: a [`Journal`] owns its
//! `sd_journal*` exclusively and closes it in `Drop`; it is `!Send` and
//! `!Sync` (the raw pointer makes it so), matching sd-journal's rule that
//! a handle stays on the thread that opened it. Every call passes that
//! live handle, NUL-terminated strings built by `CString`, and out-pointers
//! to locals. Data returned by `sd_journal_get_data` is copied before the
//! next call on the handle can invalidate it; strings libsystemd allocates
//! (cursors) are copied and released with `free`.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::time::Duration;

#[repr(C)]
struct SdJournal {
    _private: [u8; 0],
}

#[link(name = "libsystemd.so.0", kind = "dylib", modifiers = "+verbatim")]
extern "C" {
    fn sd_journal_open(ret: *mut *mut SdJournal, flags: c_int) -> c_int;
    fn sd_journal_close(j: *mut SdJournal);
    fn sd_journal_add_match(j: *mut SdJournal, data: *const c_void, size: usize) -> c_int;
    fn sd_journal_seek_tail(j: *mut SdJournal) -> c_int;
    fn sd_journal_seek_cursor(j: *mut SdJournal, cursor: *const c_char) -> c_int;
    fn sd_journal_seek_realtime_usec(j: *mut SdJournal, usec: u64) -> c_int;
    fn sd_journal_test_cursor(j: *mut SdJournal, cursor: *const c_char) -> c_int;
    fn sd_journal_next(j: *mut SdJournal) -> c_int;
    fn sd_journal_previous(j: *mut SdJournal) -> c_int;
    fn sd_journal_get_data(
        j: *mut SdJournal,
        field: *const c_char,
        data: *mut *const c_void,
        length: *mut usize,
    ) -> c_int;
    fn sd_journal_set_data_threshold(j: *mut SdJournal, sz: usize) -> c_int;
    fn sd_journal_get_realtime_usec(j: *mut SdJournal, ret: *mut u64) -> c_int;
    fn sd_journal_get_cursor(j: *mut SdJournal, cursor: *mut *mut c_char) -> c_int;
    fn sd_journal_wait(j: *mut SdJournal, timeout_usec: u64) -> c_int;
    fn free(ptr: *mut c_void);
}

const SD_JOURNAL_LOCAL_ONLY: c_int = 1;
const SD_JOURNAL_SYSTEM: c_int = 1 << 2;

/// A failed sd-journal call.
#[derive(Debug, thiserror::Error)]
#[error("reading the systemd journal failed: {call}: {source}")]
pub(crate) struct JournalError {
    /// The libsystemd function.
    pub call: &'static str,
    /// The errno it returned.
    #[source]
    pub source: std::io::Error,
}

fn check(call: &'static str, r: c_int) -> Result<c_int, JournalError> {
    if r < 0 {
        Err(JournalError {
            call,
            source: std::io::Error::from_raw_os_error(-r),
        })
    } else {
        Ok(r)
    }
}

/// What `sd_journal_wait` saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Nothing changed before the timeout.
    Nothing,
    /// Entries were appended.
    Appended,
    /// Files were added, removed or rotated (journald restarted, vacuum).
    Invalidated,
}

/// An open reader over the local system journal (one thread only).
#[derive(Debug)]
pub(crate) struct Journal {
    handle: *mut SdJournal,
}

impl Journal {
    /// Opens the local system journal (`SD_JOURNAL_SYSTEM |
    /// SD_JOURNAL_LOCAL_ONLY`): dyno units are system units. Fields up to
    /// 1 MiB are returned whole (the default threshold cuts at 64 KiB).
    pub(crate) fn open_system() -> Result<Self, JournalError> {
        let mut handle = std::ptr::null_mut();
        // SAFETY: see the file's safety argument.
        check("sd_journal_open", unsafe {
            sd_journal_open(&mut handle, SD_JOURNAL_SYSTEM | SD_JOURNAL_LOCAL_ONLY)
        })?;
        let journal = Self { handle };
        // SAFETY: as above.
        check("sd_journal_set_data_threshold", unsafe {
            sd_journal_set_data_threshold(journal.handle, 1 << 20)
        })?;
        Ok(journal)
    }

    /// Only entries with `field=value` (several calls on one field: any of
    /// the values; on different fields: all of them).
    pub(crate) fn add_match(&mut self, field: &str, value: &[u8]) -> Result<(), JournalError> {
        let mut m = Vec::with_capacity(field.len() + 1 + value.len());
        m.extend_from_slice(field.as_bytes());
        m.push(b'=');
        m.extend_from_slice(value);
        // SAFETY: as above; the pointer and length describe `m`.
        check("sd_journal_add_match", unsafe {
            sd_journal_add_match(self.handle, m.as_ptr().cast(), m.len())
        })?;
        Ok(())
    }

    /// After the last entry: `next` then waits for new ones, `previous`
    /// reads backwards from the newest.
    pub(crate) fn seek_tail(&mut self) -> Result<(), JournalError> {
        // SAFETY: as above.
        check("sd_journal_seek_tail", unsafe {
            sd_journal_seek_tail(self.handle)
        })?;
        Ok(())
    }

    /// At `cursor`, or where it would be if that entry is gone (rotated or
    /// vacuumed away): the next `next` lands on it or its successor.
    pub(crate) fn seek_cursor(&mut self, cursor: &str) -> Result<(), JournalError> {
        let c = CString::new(cursor).map_err(|_| JournalError {
            call: "sd_journal_seek_cursor",
            source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
        })?;
        // SAFETY: as above.
        check("sd_journal_seek_cursor", unsafe {
            sd_journal_seek_cursor(self.handle, c.as_ptr())
        })?;
        Ok(())
    }

    /// Before the first entry at or after `usec` (wall clock, µs since the
    /// epoch): the next `step` lands on it.
    pub(crate) fn seek_realtime(&mut self, usec: u64) -> Result<(), JournalError> {
        // SAFETY: see the file's safety argument.
        check("sd_journal_seek_realtime_usec", unsafe {
            sd_journal_seek_realtime_usec(self.handle, usec)
        })?;
        Ok(())
    }

    /// Whether the current entry is the one `cursor` names.
    pub(crate) fn test_cursor(&mut self, cursor: &str) -> Result<bool, JournalError> {
        let Ok(c) = CString::new(cursor) else {
            return Ok(false);
        };
        // SAFETY: as above.
        let r = check("sd_journal_test_cursor", unsafe {
            sd_journal_test_cursor(self.handle, c.as_ptr())
        })?;
        Ok(r > 0)
    }

    /// Moves to the next entry; false at the end.
    pub(crate) fn step(&mut self) -> Result<bool, JournalError> {
        // SAFETY: as above.
        Ok(check("sd_journal_next", unsafe { sd_journal_next(self.handle) })? > 0)
    }

    /// Moves to the previous entry; false at the start.
    pub(crate) fn step_back(&mut self) -> Result<bool, JournalError> {
        // SAFETY: as above.
        Ok(check("sd_journal_previous", unsafe {
            sd_journal_previous(self.handle)
        })? > 0)
    }

    /// The current entry's `field`, without the `FIELD=` prefix; `None`
    /// when the entry has no such field.
    pub(crate) fn data(&mut self, field: &CStr) -> Result<Option<Vec<u8>>, JournalError> {
        let mut data: *const c_void = std::ptr::null();
        let mut len = 0usize;
        // SAFETY: as above; on success libsystemd points `data` at `len`
        // readable bytes that stay valid until the next call on the handle,
        // and they are copied before that.
        let r = unsafe { sd_journal_get_data(self.handle, field.as_ptr(), &mut data, &mut len) };
        if r == -libc_enoent() {
            return Ok(None);
        }
        check("sd_journal_get_data", r)?;
        if data.is_null() {
            return Ok(None);
        }
        // SAFETY: as above.
        let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) };
        let prefix = field.to_bytes().len() + 1;
        Ok(Some(bytes.get(prefix..).unwrap_or_default().to_vec()))
    }

    /// The current entry's wall-clock time, µs since the epoch.
    pub(crate) fn realtime_usec(&mut self) -> Result<u64, JournalError> {
        let mut t = 0u64;
        // SAFETY: as above.
        check("sd_journal_get_realtime_usec", unsafe {
            sd_journal_get_realtime_usec(self.handle, &mut t)
        })?;
        Ok(t)
    }

    /// The current entry's cursor: a stable name to resume after.
    pub(crate) fn cursor(&mut self) -> Result<String, JournalError> {
        let mut raw: *mut c_char = std::ptr::null_mut();
        // SAFETY: as above; libsystemd allocates a NUL-terminated string
        // that is copied, then released with `free`.
        check("sd_journal_get_cursor", unsafe {
            sd_journal_get_cursor(self.handle, &mut raw)
        })?;
        if raw.is_null() {
            return Ok(String::new());
        }
        // SAFETY: as above.
        let cursor = unsafe { CStr::from_ptr(raw) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: as above.
        unsafe { free(raw.cast()) };
        Ok(cursor)
    }

    /// Waits up to `timeout` for the journal to change, and takes in
    /// rotated, added or removed files either way.
    pub(crate) fn wait(&mut self, timeout: Duration) -> Result<Wake, JournalError> {
        let usec = u64::try_from(timeout.as_micros()).unwrap_or(u64::MAX);
        // SAFETY: as above.
        let r = check("sd_journal_wait", unsafe {
            sd_journal_wait(self.handle, usec)
        })?;
        Ok(match r {
            1 => Wake::Appended,
            2 => Wake::Invalidated,
            _ => Wake::Nothing,
        })
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        // SAFETY: as above; the handle is not used again.
        unsafe { sd_journal_close(self.handle) }
    }
}

const fn libc_enoent() -> c_int {
    2
}
