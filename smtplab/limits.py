"""Process limits a lab needs: enough open files for its listeners' connections.

Linux gives a process a soft limit of 1024 open files, while the hard limit is
usually far higher. Every connection to every lab service is a file, so at
about a thousand idle connections (a careless client, a flood, a class) the
whole lab would stop answering. Raising the soft limit to the hard one is
what servers do at start (nginx's worker_rlimit_nofile, systemd's LimitNOFILE).
"""

from __future__ import annotations

__all__ = ["raise_open_file_limit"]

CEILING = 1 << 20  # no need for more, even where the hard limit is "unlimited"


def raise_open_file_limit() -> int:
    """Raise this process's soft open-file limit to its hard limit; returns the soft limit now in force."""
    try:
        import resource
    except ImportError:  # not on Windows
        return -1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = CEILING if hard == resource.RLIM_INFINITY else min(hard, CEILING)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            return wanted
        except (ValueError, OSError):
            pass
    return soft
