//! The process's own resources, read from /proc at each scrape, under the names every
//! Prometheus client library gives them (`process_cpu_seconds_total`, …), so the usual
//! dashboards and alerts work unchanged. Linux only; elsewhere there is nothing to read.
//!
//! The files: proc(5) — `/proc/self/stat` (times in clock ticks, sizes in bytes and pages),
//! `/proc/stat` (`btime`, the boot time) and `/proc/self/fd` (one entry per open descriptor).

/// What the process uses now.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessStats {
    /// User and system CPU time spent, in seconds.
    pub cpu_seconds: f64,
    pub resident_memory_bytes: u64,
    pub virtual_memory_bytes: u64,
    pub open_fds: u64,
    /// The soft limit on open descriptors.
    pub max_fds: Option<u64>,
    /// When the process started, in seconds since the Unix epoch.
    pub start_time_seconds: Option<f64>,
}

/// Reads the process's resources; `None` where /proc cannot be read.
#[cfg(target_os = "linux")]
pub fn read() -> Option<ProcessStats> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields = StatFields::parse(&stat)?;
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    let page_size = rustix::param::page_size() as u64;
    let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    let boot_time = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|text| boot_time(&text));
    let max_fds = rlimit::getrlimit(rlimit::Resource::NOFILE)
        .ok()
        .map(|(soft, _hard)| soft);
    Some(ProcessStats {
        cpu_seconds: (fields.utime + fields.stime) as f64 / ticks,
        resident_memory_bytes: fields.rss_pages * page_size,
        virtual_memory_bytes: fields.vsize_bytes,
        open_fds,
        max_fds,
        start_time_seconds: boot_time.map(|boot| boot as f64 + fields.starttime as f64 / ticks),
    })
}

/// Reads the process's resources; `None` where /proc cannot be read.
#[cfg(not(target_os = "linux"))]
pub fn read() -> Option<ProcessStats> {
    None
}

/// The fields of `/proc/self/stat` we use, in their units.
#[derive(Debug, PartialEq, Eq)]
struct StatFields {
    utime: u64,
    stime: u64,
    starttime: u64,
    vsize_bytes: u64,
    rss_pages: u64,
}

impl StatFields {
    /// The fields after the command name, which is in parentheses and may itself hold spaces
    /// and parentheses: the last `)` ends it.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    fn parse(stat: &str) -> Option<StatFields> {
        let after_name = &stat[stat.rfind(')')? + 1..];
        // Field 3 (state) is the first after the name; field n is at n - 3.
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
        Some(StatFields {
            utime: field(14)?,
            stime: field(15)?,
            starttime: field(22)?,
            vsize_bytes: field(23)?,
            rss_pages: field(24)?,
        })
    }
}

/// The `btime` line of `/proc/stat`: when the system booted, in seconds since the epoch.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn boot_time(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|value| value.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fields_after_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (sw (itch) board) S 1 4242 4242 0 -1 4194560 1200 0 3 0 \
                    250 75 0 0 20 0 9 0 123456 987654321 2048 18446744073709551615";
        assert_eq!(
            StatFields::parse(stat),
            Some(StatFields {
                utime: 250,
                stime: 75,
                starttime: 123456,
                vsize_bytes: 987654321,
                rss_pages: 2048,
            })
        );
        assert_eq!(StatFields::parse("4242 (short) S 1"), None);
        assert_eq!(
            boot_time("cpu  1 2 3\nbtime 1764600000\nprocesses 9\n"),
            Some(1_764_600_000)
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_cpu_time_memory_and_open_files() {
        let stats = read().expect("/proc is readable");
        assert!(stats.resident_memory_bytes > 0);
        assert!(stats.virtual_memory_bytes >= stats.resident_memory_bytes);
        assert!(stats.open_fds > 0);
        assert!(stats.max_fds.is_some_and(|max| max >= stats.open_fds));
        assert!(stats.start_time_seconds.is_some_and(|start| start > 1.0e9));
        assert!(stats.cpu_seconds >= 0.0);
    }
}
