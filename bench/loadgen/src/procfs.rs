//! Reading a process's CPU time and memory from `/proc` (Linux).

use anyhow::{Context, bail};

/// CPU time of a process in clock ticks: (utime, stime), fields 14 and 15 of
/// `/proc/<pid>/stat` (proc(5)). The command name (field 2) may contain spaces and
/// parentheses, so fields are counted after its last `)`.
pub fn parse_stat_ticks(stat: &str) -> anyhow::Result<(u64, u64)> {
    let close = stat.rfind(')').context("no `)` in stat")?;
    let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14 → rest[11], stime rest[12].
    if rest.len() < 13 {
        bail!("stat has {} fields after the name", rest.len());
    }
    Ok((rest[11].parse().context("utime")?, rest[12].parse().context("stime")?))
}

/// A `kB` field of `/proc/<pid>/status` (e.g. `VmHWM`, `VmRSS`), in KiB.
pub fn parse_status_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        if name.trim() != field {
            return None;
        }
        value.split_whitespace().next()?.parse().ok()
    })
}

/// Machine-wide CPU from the `cpu` line of `/proc/stat`: (busy ticks, steal ticks, total ticks).
pub fn parse_proc_stat(stat: &str) -> Option<(u64, u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    if v.len() < 8 {
        return None;
    }
    // user nice system idle iowait irq softirq steal [guest guest_nice: included in user]
    let idle = v[3] + v[4];
    let steal = v[7];
    let total: u64 = v.iter().take(8).sum();
    Some((total - idle - steal, steal, total))
}

/// Clock ticks per second (`getconf CLK_TCK`); 100 when it cannot be asked.
pub fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// CPU seconds (user + system) a process has used so far.
pub fn cpu_seconds(pid: u32, ticks: u64) -> anyhow::Result<f64> {
    let s =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("reading /proc/{pid}/stat"))?;
    let (u, st) = parse_stat_ticks(&s)?;
    Ok((u + st) as f64 / ticks as f64)
}

/// A `kB` field of a process's status, in KiB.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kib(&s, field)
}

/// Load averages from `/proc/loadavg`.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Other processes' CPU use: every pid's ticks now, to diff over a window.
pub fn all_process_ticks() -> Vec<(u32, String, u64)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let name = s.find('(').zip(s.rfind(')')).map(|(a, b)| s[a + 1..b].to_string()).unwrap_or_default();
        if let Ok((u, st)) = parse_stat_ticks(&s) {
            out.push((pid, name, u + st));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (strong room) S 1 4242 4242 0 -1 4194560 1234 0 0 0 750 125 0 0 20 0 5 0 1000 123456789 4000 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn stat_ticks_after_name_with_spaces() {
        assert_eq!(parse_stat_ticks(STAT).unwrap(), (750, 125));
        let tricky = STAT.replace("(strong room)", "(a) b) c)");
        assert_eq!(parse_stat_ticks(&tricky).unwrap(), (750, 125));
        assert!(parse_stat_ticks("1 (x) S 1 2").is_err());
        assert!(parse_stat_ticks("garbage").is_err());
    }

    #[test]
    fn status_fields() {
        let s = "Name:\tstrongroom\nVmPeak:\t  100000 kB\nVmHWM:\t   23456 kB\nVmRSS:\t   20000 kB\n";
        assert_eq!(parse_status_kib(s, "VmHWM"), Some(23456));
        assert_eq!(parse_status_kib(s, "VmRSS"), Some(20000));
        assert_eq!(parse_status_kib(s, "VmSwap"), None);
    }

    #[test]
    fn machine_stat() {
        let s = "cpu  100 5 50 1000 10 1 2 3 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        assert_eq!(parse_proc_stat(s), Some((158, 3, 1171)));
        assert_eq!(parse_proc_stat("intr 1 2"), None);
    }

    #[test]
    fn own_process_is_readable() {
        let pid = std::process::id();
        assert!(cpu_seconds(pid, clock_ticks()).unwrap() >= 0.0);
        assert!(status_kib(pid, "VmRSS").unwrap() > 0);
    }
}
