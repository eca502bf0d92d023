/*
 * brokercfg_internal.h - helpers shared by the brokercfg_*.c files and by
 * nothing else: atomic file replacement and a lock for read-modify-write
 * updates.
 */
#ifndef FIREWATCH_BROKERCFG_INTERNAL_H
#define FIREWATCH_BROKERCFG_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

/* A file being replaced: written to a temporary file beside it, then renamed
 * over it by brokercfg_atomic_commit. */
struct brokercfg_atomic {
    FILE *f;
    char path[PATH_MAX];
    char tmp[PATH_MAX];
    /* Set before commit to give the new file this owner instead of the old
     * file's (brokercfg_config_write with a bridge). */
    bool set_owner;
    uid_t uid;
    gid_t gid;
};

/* Creates the temporary file with mode (exactly, whatever the umask) and
 * opens a->f on it. Returns 0 or a negative errno. */
int brokercfg_atomic_begin(struct brokercfg_atomic *a, const char *path, mode_t mode);

/* Flushes and fsyncs the temporary file, gives it a->uid/gid when
 * a->set_owner, else the owner and group of the file it replaces (when there
 * is one), renames it over path and fsyncs the directory. On failure the
 * temporary file is removed. Returns 0 or a negative errno. */
int brokercfg_atomic_commit(struct brokercfg_atomic *a);

/* Abandons the replacement: closes and removes the temporary file. */
void brokercfg_atomic_abort(struct brokercfg_atomic *a);

/* Takes an exclusive lock on "<path>.lock" (created 0600) and returns its
 * descriptor, or a negative errno. Release with brokercfg_unlock. */
int brokercfg_lock(const char *path);
void brokercfg_unlock(int fd);

/* True when s is non-empty and has no whitespace or control characters (so
 * it is safe on one line of a Mosquitto file). */
int brokercfg_token_ok(const char *s);

#endif
