//! A pure map split over the machine's cores, for the per-identity work of
//! a large pass (identity rows, campaign roll-ups): each value depends only
//! on shared, read-only state, so the pieces can be computed anywhere and
//! are put back in input order, and the result is the same as the
//! sequential map's. A first pass over a large store otherwise runs on one
//! core while the other waits (start-up of 1,000,000: about 20 s of one
//! core).
//!
//! Below [`MIN_ITEMS`] items, on one core, or when a thread cannot be
//! started, the work runs on the calling thread. A panic in a worker
//! reaches the caller as the same panic.

use std::sync::OnceLock;

/// Fewer items than this are mapped on the calling thread: starting a
/// thread costs tens of microseconds, a roll-up or a row a few.
pub const MIN_ITEMS: usize = 512;

/// The threads a map uses: the machine's cores, at most eight.
pub fn workers() -> usize {
    static WORKERS: OnceLock<usize> = OnceLock::new();
    *WORKERS.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 8)
    })
}

/// `items.iter().map(f).collect()`, in contiguous chunks over
/// [`workers`] threads (the first on the calling thread).
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let parts = chunks(items, MIN_ITEMS, |_, c| {
        c.iter().map(&f).collect::<Vec<R>>()
    });
    let mut out = Vec::with_capacity(items.len());
    for part in parts {
        out.extend(part);
    }
    out
}

/// `f(offset, chunk)` for contiguous chunks of `items`, one per
/// [`workers`] thread (the first on the calling thread), in input order;
/// one call over all of `items` when there are fewer than `min_items`.
/// `offset` is where the chunk starts in `items`.
pub fn chunks<T: Sync, R: Send>(
    items: &[T],
    min_items: usize,
    f: impl Fn(usize, &[T]) -> R + Sync,
) -> Vec<R> {
    let workers = workers();
    if workers < 2 || items.len() < min_items.max(2) {
        return vec![f(0, items)];
    }
    let chunk = items.len().div_ceil(workers);
    let f = &f;
    std::thread::scope(|scope| {
        let spawned: Vec<_> = items
            .chunks(chunk)
            .enumerate()
            .skip(1)
            .map(|(k, c)| {
                let worker = std::thread::Builder::new()
                    .name("clusterd-par".into())
                    .spawn_scoped(scope, move || f(k * chunk, c));
                (k, c, worker)
            })
            .collect();
        let mut out: Vec<R> = Vec::with_capacity(workers);
        out.push(f(0, &items[..chunk]));
        for (k, c, worker) in spawned {
            match worker {
                Ok(handle) => match handle.join() {
                    Ok(part) => out.push(part),
                    Err(panic) => std::panic::resume_unwind(panic),
                },
                // No thread to be had (a process limit): this chunk here.
                Err(_) => out.push(f(k * chunk, c)),
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_is_the_sequential_map_in_order() {
        for n in [0, 1, MIN_ITEMS - 1, MIN_ITEMS, 10_007] {
            let items: Vec<u64> = (0..n as u64).map(|i| i * 7919 % 10_007).collect();
            let want: Vec<String> = items.iter().map(|i| format!("{}", i * i)).collect();
            assert_eq!(map(&items, |i| format!("{}", i * i)), want, "{n} items");
        }
    }

    #[test]
    fn chunks_cover_the_items_in_order_with_their_offsets() {
        let items: Vec<u32> = (0..1000).collect();
        for min in [0, 1, 999, 1000, 1001] {
            let parts = chunks(&items, min, |offset, c| (offset, c.to_vec()));
            let mut next = 0;
            for (offset, c) in &parts {
                assert_eq!(*offset, next);
                assert_eq!(c[..], items[next..next + c.len()]);
                next += c.len();
            }
            assert_eq!(next, items.len());
        }
        assert_eq!(chunks(&[] as &[u32], 0, |_, c| c.len()), vec![0]);
    }

    #[test]
    fn a_panic_in_a_worker_reaches_the_caller() {
        let items: Vec<usize> = (0..4 * MIN_ITEMS).collect();
        let last = items.len() - 1;
        let caught = std::panic::catch_unwind(|| {
            map(&items, |&i| {
                assert!(i != last, "item {i}");
                i
            })
        });
        assert!(caught.is_err());
    }
}
