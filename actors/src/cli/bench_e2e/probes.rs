//! What the end-to-end benchmark reads off Redis and /proc: Redis INFO
//! sums, command counts, CPU and memory of a process and of the machine,
//! and when the daemon first read the backlog.

use crate::repository::Keys;
use std::collections::HashMap;

/// The numeric `fields` of one `INFO` section, summed (0 for any missing).
pub(super) fn info_sum(c: &mut redis::Connection, section: &str, fields: &[&str]) -> f64 {
    let info: String = redis::cmd("INFO").arg(section).query(c).unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| fields.contains(k))
        .filter_map(|(_, v)| v.trim().parse::<f64>().ok())
        .sum()
}

pub(super) fn info_commands(c: &mut redis::Connection) -> u64 {
    info_sum(c, "stats", &["total_commands_processed"]) as u64
}

/// Seconds of CPU the Redis server has used (user + system).
pub(super) fn redis_cpu(c: &mut redis::Connection) -> f64 {
    info_sum(c, "cpu", &["used_cpu_user", "used_cpu_sys"])
}

/// Redis's resident memory in MiB (`used_memory_rss`).
pub(super) fn redis_rss_mib(c: &mut redis::Connection) -> f64 {
    info_sum(c, "memory", &["used_memory_rss"]) / (1024.0 * 1024.0)
}

/// The fields of `/proc/<pid>/stat` after the command name (which is in
/// parentheses and may hold spaces), so index 0 is field 3, `state`; empty
/// where there is no `/proc`.
pub(super) fn proc_stat(pid: u32) -> Vec<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    // `state` is a letter: keep it as 0 so the indexes hold.
    rest.split_whitespace()
        .map(|t| t.parse().unwrap_or(0))
        .collect()
}

/// Seconds of CPU a process has used (user + system, all its threads), from
/// `/proc` (0 where there is none). Linux reports it in USER_HZ ticks, which
/// are 1/100 s on every architecture it exposes to user space this way.
pub(super) fn process_cpu(pid: u32) -> f64 {
    // utime and stime: fields 14 and 15.
    let ticks: u64 = proc_stat(pid).iter().skip(11).take(2).sum();
    ticks as f64 / 100.0
}

/// A process's peak resident memory in MiB (`VmHWM`) and the page faults
/// it has taken (minor and major), from `/proc`; zeros where there is none.
/// Every fresh page the kernel hands out is zeroed first, and on a virtual
/// machine the host may back it only then: faults cost CPU of their own.
pub(super) fn process_memory(pid: u32) -> (f64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    // minflt and majflt: fields 10 and 12.
    let stat = proc_stat(pid);
    let faults = [7, 9].iter().filter_map(|&i| stat.get(i)).sum();
    (peak_kib as f64 / 1024.0, faults)
}

/// The machine's CPU time so far, from `/proc/stat`: (all, stolen by the
/// hypervisor), in ticks; zeros where there is no `/proc`.
pub(super) fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu: Vec<u64> = stat
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("cpu "))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|t| t.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    // user nice system idle iowait irq softirq steal (guest time is
    // already counted in user).
    (cpu.iter().take(8).sum(), cpu.get(7).copied().unwrap_or(0))
}

/// Calls of these commands (lower case) the server has counted.
pub(super) fn calls(c: &mut redis::Connection, commands: &[&str]) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(c)
        .unwrap_or_default();
    info.lines()
        .filter(|l| {
            l.strip_prefix("cmdstat_")
                .and_then(|l| l.split_once(':'))
                .is_some_and(|(name, _)| commands.contains(&name))
        })
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// When the daemon first took entries of the backlog: the consumer group
/// exists and has delivered some (`entries-read`, or pending entries).
pub(super) fn first_read(c: &mut redis::Connection, keys: &Keys) -> bool {
    let groups: Vec<HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(keys.input())
        .query(c)
        .unwrap_or_default();
    let positive = |v: Option<&redis::Value>| matches!(v, Some(redis::Value::Int(n)) if *n > 0);
    groups
        .iter()
        .any(|g| positive(g.get("entries-read")) || positive(g.get("pending")))
}
