//! Where the daemon's memory goes, in-process: a store of the benchmark
//! corpus settled by both clusterers (`SettledStore`, the corpus `clusterd
//! bench` and `bench-e2e` use), then each part dropped in turn while a
//! counting allocator tracks the bytes live, so each part's share is what
//! dropping it frees (heap bytes as requested, before the allocator's own
//! rounding and overhead). Also the size of an observation's stored
//! evidence in both forms (`src/evidence/stored.rs`).
//!
//! `cargo bench --bench footprint` (200,000 observations);
//! `cargo bench --bench footprint -- 1000000` for another size.

use decnet_clusterd::evidence::{Fingerprint, Observation, Session, Sym};
use decnet_clusterd::harness::benchmark::SettledStore;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts the bytes live on the heap, every thread together.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counter is a static atomic (no allocation).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's layout is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as for `dealloc`, and `new` is the caller's new size.
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

fn main() {
    // `cargo bench` passes `--bench`; the first number is the size.
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200_000);
    let before = live();
    let s = SettledStore::new(n, 7);
    let total = live() - before;
    let per = |b: usize| b as f64 / n as f64;
    println!("footprint of {n} observations settled by both layers (heap bytes live)");
    println!(
        "  all: {:.0} MiB, {:.0} B per observation",
        total as f64 / 1048576.0,
        per(total)
    );

    let (mut compact, mut earlier) = (0usize, 0usize);
    for o in s.store.observations.values() {
        compact += decnet_clusterd::evidence::stored::encode(o).len();
        earlier += serde_json::to_string(o).map_or(0, |j| j.len());
    }
    println!(
        "  stored evidence: {:.0} B per observation compact, {:.0} B as earlier versions wrote it",
        per(compact),
        per(earlier)
    );

    let obs = s.store.observations.values();
    let (mut sessions, mut fps, mut nonempty) = (0usize, 0usize, [0usize; 8]);
    for o in obs {
        fps += o.fingerprints.len();
        for x in o.sessions.values() {
            sessions += 1;
            let sets = [
                x.commands.len(),
                x.credentials.len(),
                x.extras.payload_hashes.len(),
                x.extras.c2_endpoints.len(),
                x.extras.auth_keys.len(),
                x.extras.planted_keys.len(),
                usize::from(x.decky_id.is_some()),
                usize::from(x.extras.is_boxed()),
            ];
            for (n, len) in nonempty.iter_mut().zip(sets) {
                *n += usize::from(len > 0);
            }
        }
    }
    println!(
        "  per observation: {:.2} sessions, {:.2} fingerprints; sessions with commands, credentials, payloads, C2, auth keys, planted keys, decky, extras boxed: {:?} %",
        sessions as f64 / n as f64,
        fps as f64 / n as f64,
        nonempty.map(|k| (100 * k).checked_div(sessions).unwrap_or(0))
    );
    println!(
        "  sizes: Observation {} B, Session {} B, Fingerprint {} B, SortedSet {} B, Sym {} B; {} strings interned",
        std::mem::size_of::<Observation>(),
        std::mem::size_of::<Session>(),
        std::mem::size_of::<Fingerprint>(),
        std::mem::size_of::<decnet_clusterd::set::SortedSet<Sym>>(),
        std::mem::size_of::<Sym>(),
        Sym::interned()
    );

    let SettledStore {
        mut store,
        identities,
        campaigns,
        ..
    } = s;
    let mut parts = 0usize;
    let mut part = |name: &str, drop_it: &mut dyn FnMut()| {
        let at = live();
        drop_it();
        let freed = at.saturating_sub(live());
        parts += freed;
        println!(
            "  {name:<34} {:>7.1} MiB {:>6.0} B/obs {:>5.1} %",
            freed as f64 / 1048576.0,
            per(freed),
            100.0 * freed as f64 / total as f64
        );
    };
    part("store: observations (evidence)", &mut || {
        drop(std::mem::take(&mut store.observations))
    });
    part("store: identity_members", &mut || {
        drop(std::mem::take(&mut store.identity_members))
    });
    part("store: identity groups", &mut || {
        drop(std::mem::take(&mut store.identity_groups))
    });
    part("store: identity rows", &mut || {
        drop(std::mem::take(&mut store.identities))
    });
    part("store: campaign groups + rows", &mut || {
        drop(std::mem::take(&mut store.campaign_groups));
        drop(std::mem::take(&mut store.campaigns));
    });
    part("store: the rest", &mut || drop(std::mem::take(&mut store)));
    let mut identities = Some(identities);
    part("identity graph (clusterer)", &mut || {
        drop(identities.take())
    });
    let mut campaigns = Some(campaigns);
    part("campaign graph + roll-ups", &mut || drop(campaigns.take()));
    // What no part frees: the interner's table and the strings it still
    // holds (they go when the next sweep finds them unheld), and whatever
    // the bench itself keeps.
    let left = total.saturating_sub(parts);
    println!(
        "  {:<34} {:>7.1} MiB {:>6.0} B/obs {:>5.1} %",
        "left (interner table, strings)",
        left as f64 / 1048576.0,
        per(left),
        100.0 * left as f64 / total as f64
    );
}
