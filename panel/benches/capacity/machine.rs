//! What the capacity benchmark reads of the machine: the page cache's
//! dirty bytes and the kernel threads' CPU.

use std::collections::HashMap;

/// `/proc/meminfo`'s Dirty, in MB: written, not yet on the disk.
pub fn dirty_mb() -> f64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Dirty:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb * 1024.0 / 1e6)
}

/// CPU seconds each kernel thread (a child of `kthreadd`: writeback
/// workers, the journal, `kswapd`) has run, by pid, from the scheduler's
/// own clock (`/proc/<pid>/sched`). `/proc/stat`'s busy time, read before,
/// samples on the timer tick: on this VM it read less than the server's
/// own CPU in some windows and twice it in others.
pub fn kernel_threads_secs() -> HashMap<u32, f64> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u32>().ok());
        if pid != 2 && ppid != Some(2) {
            continue;
        }
        let ran_ms = std::fs::read_to_string(format!("/proc/{pid}/sched"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("se.sum_exec_runtime"))
            .and_then(|v| v.trim_start_matches([' ', ':']).trim().parse::<f64>().ok());
        if let Some(ms) = ran_ms {
            out.insert(pid, ms / 1000.0);
        }
    }
    out
}

/// What the kernel threads ran between two readings: a thread started
/// in between counts whole.
pub fn kernel_threads_between(before: &HashMap<u32, f64>, after: &HashMap<u32, f64>) -> f64 {
    after
        .iter()
        .map(|(pid, s)| s - before.get(pid).copied().unwrap_or(0.0))
        .filter(|d| *d > 0.0)
        .sum()
}
