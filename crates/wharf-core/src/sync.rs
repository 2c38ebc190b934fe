//! How Wharf takes a `std::sync::Mutex`: a panic while a lock is held (caught,
//! as a handler's panic is) must not poison the lock for every later request,
//! so the guard is taken whether or not the last holder panicked. The data
//! behind Wharf's locks is kept consistent by each critical section (a table
//! insert, a counter), never left half-written across an await. The one home
//! of that rule: `clippy.toml` refuses `Mutex::lock` anywhere else.

use std::sync::{Mutex, MutexGuard};

/// The guard of `m`, poisoned or not.
#[allow(clippy::disallowed_methods)] // the one place that calls it
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
