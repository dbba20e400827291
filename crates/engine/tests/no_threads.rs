//! Unit's prototype process compiles the component and then forks: it must not
//! have started a thread by then (threads do not survive `fork`). Alone in its
//! own test binary so that no other test's threads are counted.

use std::sync::Arc;

use rvm_engine::{App, Embedding, Policy, PoolConfig, Runtime};

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[test]
fn compiling_on_the_calling_thread_starts_no_thread() {
    let component = rvm_e2e::guest("misbehave");
    let before = threads();
    let runtime = Arc::new(Runtime::new(&PoolConfig::default(), Embedding::BeforeFork).unwrap());
    let app = App::load(runtime, "misbehave", &component, Policy::default()).unwrap();
    assert_eq!(threads(), before, "threads were started while compiling");
    drop(app);
}
