//! Process-wide settings that servers, tools and the load generator need.

/// Raises the soft limit on open files to the hard limit: each connection is a file,
/// and the common soft default of 1024 is far below what a server should hold.
pub fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// What this process creates (a log, a database) is readable by its owner only,
/// whatever a log configuration or SQLite would choose.
pub fn restrict_new_files() {
    // SAFETY: umask has no preconditions and cannot fail; it only sets this process's
    // file creation mask.
    unsafe {
        libc::umask(0o077);
    }
}
