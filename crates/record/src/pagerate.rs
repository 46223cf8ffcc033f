//! How many page events this host makes per second, measured for a quarter of a second just
//! before a `--memory` recording: counted by `perf stat` where perf can count tracepoints,
//! else bounded by the kernel's page counters in `/proc/vmstat`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::events::PageRate;
use crate::host::Host;

const WINDOW: Duration = Duration::from_millis(250);

/// This host's page event rate now, or `None` when neither way works.
pub(crate) fn measure(host: &Host) -> Option<PageRate> {
    let countable = host.perf_events_work == Some(true)
        && host.has_tracepoint("kmem:mm_page_alloc")
        && host.has_tracepoint("kmem:mm_page_free");
    if let (true, Some(perf)) = (countable, host.perf.as_deref()) {
        if let Some(rate) = by_perf(perf) {
            return Some(rate);
        }
    }
    by_vmstat(Path::new("/proc/vmstat"))
}

fn by_perf(perf: &Path) -> Option<PageRate> {
    let started = Instant::now();
    let out = Command::new(perf)
        .args(["stat", "-x,", "-a"])
        .args(["-e", "kmem:mm_page_alloc", "-e", "kmem:mm_page_free"])
        .args(["--", "sleep", &format!("{}", WINDOW.as_secs_f64())])
        .output()
        .ok()?;
    let secs = started.elapsed().as_secs_f64();
    let (allocs, frees) = perf_counts(&String::from_utf8_lossy(&out.stderr))?;
    Some(PageRate::Events {
        allocs: allocs as f64 / secs,
        frees: frees as f64 / secs,
    })
}

fn by_vmstat(path: &Path) -> Option<PageRate> {
    let before = vmstat_pages(&std::fs::read_to_string(path).ok()?)?;
    let started = Instant::now();
    std::thread::sleep(WINDOW);
    let after = vmstat_pages(&std::fs::read_to_string(path).ok()?)?;
    let secs = started.elapsed().as_secs_f64();
    Some(PageRate::Pages {
        allocs: after.0.saturating_sub(before.0) as f64 / secs,
        frees: after.1.saturating_sub(before.1) as f64 / secs,
    })
}

/// `perf stat -x,` lines `COUNT,,EVENT,…`: the counts of the allocation and free events.
fn perf_counts(text: &str) -> Option<(u64, u64)> {
    let count = |event: &str| {
        text.lines().find_map(|l| {
            let mut f = l.split(',');
            let n = f.next()?.trim().parse::<u64>().ok()?;
            (f.nth(1)? == event).then_some(n)
        })
    };
    Some((count("kmem:mm_page_alloc")?, count("kmem:mm_page_free")?))
}

/// Pages allocated (every zone's `pgalloc_*`) and freed (`pgfree`) since boot.
fn vmstat_pages(text: &str) -> Option<(u64, u64)> {
    let (mut alloc, mut free, mut seen) = (0u64, None, false);
    for line in text.lines() {
        let Some((key, value)) = line.split_once(' ') else {
            continue;
        };
        let Ok(v) = value.trim().parse::<u64>() else {
            continue;
        };
        if key.starts_with("pgalloc_") {
            alloc += v;
            seen = true;
        } else if key == "pgfree" {
            free = Some(v);
        }
    }
    Some((seen.then_some(alloc)?, free?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_stat_csv_gives_both_counts() {
        let text = "50,,kmem:mm_page_alloc,503292990,100.00,,\n\
                    75,,kmem:mm_page_free,503295862,100.00,,\n";
        assert_eq!(perf_counts(text), Some((50, 75)));
        let refused = "<not supported>,,kmem:mm_page_alloc,0,100.00,,\n";
        assert_eq!(perf_counts(refused), None);
    }

    #[test]
    fn vmstat_sums_the_zones() {
        let text = "nr_free_pages 1\npgalloc_dma 0\npgalloc_dma32 7\npgalloc_normal 238516747\n\
                    pgalloc_movable 0\npgfree 241931055\npgactivate 3\n";
        assert_eq!(vmstat_pages(text), Some((238516754, 241931055)));
        assert_eq!(vmstat_pages("nr_free_pages 1\n"), None);
    }
}
