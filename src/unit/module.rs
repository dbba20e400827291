//! The module descriptor unitd looks for (`nxt_app_module`), made by
//! [`export_module!`] for a [`Module`]; its `setup` and `start` entry points,
//! and the application configuration they receive.

use std::ffi::CStr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::ptr;

use anyhow::{Context as _, Result, anyhow};

use super::context::Context;
use super::segments::Segments;
use super::{Events, Level, ffi, log};

/// A language module: what unitd knows it by, and its work in Unit's
/// processes: set up in `setup` (the prototype, once per application), then
/// run in `start` (every application process).
pub trait Module {
    /// What starts each of the module's lines in Unit's log.
    const NAME: &'static str;
    /// The application type (Unit accepts only the types it knows).
    const TYPE: &'static str;
    /// The module's version: `"type": "<TYPE> <version>"` selects it, a bare
    /// type the highest version installed.
    const VERSION: &'static CStr;
    fn setup(conf: &AppConf) -> Result<()>;
    /// Runs until the process is told to quit; the process then exits with the result.
    fn start(process: AppProcess) -> Result<()>;
}

/// Defines `nxt_app_module`, the symbol unitd reads from every `*.unit.so` in
/// its modules directory, for the [`Module`] `$module`.
macro_rules! export_module {
    ($module:ty) => {
        #[unsafe(no_mangle)]
        #[allow(non_upper_case_globals)]
        pub static nxt_app_module: $crate::unit::ModuleDescriptor =
            $crate::unit::ModuleDescriptor::new::<$module>();
    };
}
pub(crate) use export_module;

/// Unit loads a module only if this matches the running unitd byte for byte.
static COMPAT: [u32; 2] = [ffi::NXT_VERNUM, ffi::NXT_DEBUG];

/// What unitd reads of a module: see [`export_module!`].
#[repr(transparent)]
pub struct ModuleDescriptor(ffi::nxt_app_module_t);

// SAFETY: unitd only reads the descriptor; the pointers in it address statics
// and functions that never change.
unsafe impl Sync for ModuleDescriptor {}

impl ModuleDescriptor {
    pub const fn new<M: Module>() -> ModuleDescriptor {
        ModuleDescriptor(ffi::nxt_app_module_t {
            compat_length: size_of::<[u32; 2]>(),
            compat: &raw const COMPAT as *mut u32,
            type_: ffi::nxt_str_t {
                length: M::TYPE.len(),
                start: M::TYPE.as_ptr().cast_mut(),
            },
            version: M::VERSION.as_ptr(),
            mounts: ptr::null(),
            nmounts: 0,
            setup: Some(setup::<M>),
            start: Some(start::<M>),
        })
    }
}

/// An application's configuration as Unit validated it.
pub struct AppConf<'a>(&'a ffi::nxt_common_app_conf_t);

impl AppConf<'_> {
    pub fn name(&self) -> String {
        // SAFETY: Unit's configuration strings are valid for the conf's lifetime.
        String::from_utf8_lossy(unsafe { str_bytes(&self.0.name) }).into_owned()
    }

    /// The `component` path.
    pub fn component(&self) -> Result<PathBuf> {
        // SAFETY: for this type Unit fills the `wasm_wc` member of the union.
        let component = unsafe { self.0.u.wasm_wc.component };
        if component.is_null() {
            return Err(anyhow!("no \"component\" is configured"));
        }
        // SAFETY: a NUL-terminated string owned by the configuration.
        let path = unsafe { CStr::from_ptr(component) }
            .to_str()
            .context("\"component\"")?;
        Ok(PathBuf::from(path))
    }

    /// The directories of `access.filesystem`.
    pub fn filesystem(&self) -> Result<Vec<PathBuf>> {
        // SAFETY: as in `component`.
        let access = unsafe { self.0.u.wasm_wc.access };
        if access.is_null() {
            return Ok(Vec::new());
        }
        let name = nxt_str("filesystem");
        // SAFETY: `access` is a validated object value; these functions are
        // exported by unitd and only read it.
        unsafe {
            let dirs = ffi::nxt_conf_get_object_member(access, &name, ptr::null_mut());
            if dirs.is_null() {
                return Ok(Vec::new());
            }
            (0..ffi::nxt_conf_array_elements_count(dirs))
                .map(|i| {
                    let value = ffi::nxt_conf_get_array_element(dirs, i);
                    let mut dir = nxt_str("");
                    ffi::nxt_conf_get_string(value, &mut dir);
                    let dir = std::str::from_utf8(str_bytes(&dir))
                        .context("access.filesystem holds a path that is not UTF-8")?;
                    Ok(PathBuf::from(dir))
                })
                .collect()
        }
    }
}

/// An application process, before libunit runs in it.
pub struct AppProcess {
    task: *mut ffi::nxt_task_t,
    conf: *mut ffi::nxt_common_app_conf_t,
}

impl AppProcess {
    /// Starts libunit: the main context of this process, its callbacks going to
    /// `events`.
    pub fn init<E: Events>(self, events: E) -> Result<Context<E>> {
        let mut init = std::mem::MaybeUninit::<ffi::nxt_unit_init_t>::uninit();
        // SAFETY: `task` and `conf` are the ones Unit passed to `start`;
        // nxt_unit_default_init fills every field of `init`.
        let rc = unsafe { ffi::nxt_unit_default_init(self.task, init.as_mut_ptr(), self.conf) };
        if rc != ffi::NXT_OK as ffi::nxt_int_t {
            return Err(anyhow!("nxt_unit_default_init() failed"));
        }
        // SAFETY: initialised just above.
        let mut init = unsafe { init.assume_init() };
        // The process's segments, reached by every context through
        // unit->data; they live as long as the process.
        let segments: &'static Segments = Box::leak(Box::new(Segments::new(init.shm_limit)));
        init.data = std::ptr::from_ref(segments).cast_mut().cast();
        Context::init(&mut init, events).ok_or_else(|| anyhow!("nxt_unit_init() failed"))
    }
}

unsafe extern "C" fn setup<M: Module>(
    _task: *mut ffi::nxt_task_t,
    _process: *mut ffi::nxt_process_t,
    conf: *mut ffi::nxt_common_app_conf_t,
) -> ffi::nxt_int_t {
    super::name_log_lines(M::NAME);
    // SAFETY: Unit passes the application's validated configuration, alive
    // for the whole call.
    let conf = AppConf(unsafe { &*conf });
    let name = conf.name();
    let outcome = catch_unwind(AssertUnwindSafe(|| M::setup(&conf)));
    report(&name, outcome)
}

unsafe extern "C" fn start<M: Module>(
    task: *mut ffi::nxt_task_t,
    data: *mut ffi::nxt_process_data_t,
) -> ffi::nxt_int_t {
    super::name_log_lines(M::NAME);
    // SAFETY: for an application process Unit fills the `app` member.
    let conf = unsafe { (*data).app };
    // SAFETY: as in `setup`.
    let name = AppConf(unsafe { &*conf }).name();
    let process = AppProcess { task, conf };
    let outcome = catch_unwind(AssertUnwindSafe(|| M::start(process)));
    let rc = report(&name, outcome);
    if rc == ffi::NXT_OK as ffi::nxt_int_t {
        // As Unit's own modules do: the process ends with its loop.
        std::process::exit(0);
    }
    rc
}

/// Logs a failure as one alert line naming the application; Unit's return code.
fn report(name: &str, outcome: std::thread::Result<Result<()>>) -> ffi::nxt_int_t {
    let error = match outcome {
        Ok(Ok(())) => return ffi::NXT_OK as ffi::nxt_int_t,
        Ok(Err(error)) => format!("{error:#}"),
        Err(_) => "internal error (panic)".to_string(),
    };
    log(Level::Alert, &format!("application \"{name}\": {error}"));
    ffi::NXT_ERROR as ffi::nxt_int_t
}

fn nxt_str(s: &'static str) -> ffi::nxt_str_t {
    ffi::nxt_str_t {
        length: s.len(),
        start: s.as_ptr().cast_mut(),
    }
}

/// # Safety
/// `s` addresses `s.length` readable bytes (or has length 0).
unsafe fn str_bytes(s: &ffi::nxt_str_t) -> &[u8] {
    if s.length == 0 || s.start.is_null() {
        return &[];
    }
    // SAFETY: as the caller promised.
    unsafe { std::slice::from_raw_parts(s.start, s.length) }
}
